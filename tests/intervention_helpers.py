"""Helpers shared by the tests of utils/interventions/ (tests/test_interventions_*.py).

Their model is the random one of ``random_models.py`` with a final LayerNorm whose weights are not
all ones, so that anything ignoring ``ln_final.w`` picks the wrong tokens; each test file builds it
in its own ``model`` fixture (which ``conftest.py``'s ``sample`` is then built on).
"""

from __future__ import annotations

import torch
from random_models import D_MODEL, build_model

from utils import interventions as I


def build_model_with_final_ln_weights(tokenizer, seed: int = 0):
    """A random model whose final LayerNorm has weights far from 1 (some negative) and no biases,
    so anything that ignores ``ln_final.w`` picks the wrong tokens."""
    model = build_model(tokenizer, seed=seed)
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        model.ln_final.w.copy_(torch.randn(D_MODEL, generator=generator) * 2)
        model.ln_final.b.zero_()
        model.b_U.zero_()
    return model


def firing_feature(sample) -> int:
    return int(sample.firing_counts.argmax())


def concentration_by_hand(model, direction, k):
    """The rule's score computed from the model's weights directly: the direct logit effects
    through the final LayerNorm's centring and weights (this model has no other normalisation
    parameters), then (mean of the top k - mean) / std."""
    centred = direction - direction.mean()
    effects = (centred * model.ln_final.w.detach()) @ model.W_U.detach()
    return ((effects.topk(k).values.mean() - effects.mean()) / effects.std()).item()


def contexts_attribution(model, sae, contexts):
    """The attribution the attribution and figure tests share: each context's next-token
    attribution at a target position of its own."""
    tokens, _ = contexts
    return I.next_token_attribution(model, sae, tokens, [10, 6, 10, 3][: len(tokens)])
