"""One meaning of zero-ablation, and the other one named: splice_losses against SAELens' evals.

The book's ``splice_losses`` zero-ablates the positions the SAE replaces (every real token but BOS);
SAELens' ``get_recons_loss`` (used by ``run_evals``) zeroes every position, BOS included, while its
SAE still leaves BOS alone. ``zero_ablate_bos=True`` is SAELens' definition: on the same tokens the
two libraries must then give the same numbers.
"""

from __future__ import annotations

import pytest
import torch

from utils import features as F

CTX = 12
# Texts at least CTX tokens long, so every row is full (SAELens' batches have no padding).
TEXTS = [
    "The capital of France is Paris. The capital of Italy is Rome. " * 2,
    "Sparse autoencoders split activations into many features, and most of them are zero. " * 2,
    "def add(a, b):\n    return a + b\nimport os\nimport sys\nprint(os.getcwd())\n" * 2,
]


# `model` and `sae` are tests/conftest.py's random model and SAE.


def sae_lens_losses(model, sae, tokens: torch.Tensor) -> dict[str, float]:
    """SAELens' CE losses on ``tokens`` [batch, ctx], averaged over non-BOS predictions as run_evals does."""
    from sae_lens.evals import get_recons_loss
    from sae_lens.training.activation_scaler import ActivationScaler

    bos = model.tokenizer.bos_token_id
    metrics = get_recons_loss(
        sae,
        model,
        ActivationScaler(),
        tokens,
        compute_kl=False,
        compute_ce_loss=True,
        ignore_tokens=[bos],
    )
    keep = (tokens != bos)[:, :-1]
    return {name: float(value[keep].mean()) for name, value in metrics.items()}


def test_zero_ablate_bos_is_sae_lens_definition(model, sae):
    hook, tokens, lengths, valid, counted = F._tokenize_for_sae(model, sae, TEXTS, CTX, True)
    assert bool(valid.all()), "test texts must fill every context"
    theirs = sae_lens_losses(model, sae, tokens)
    ours = F.splice_losses(model, sae, TEXTS, CTX, zero_ablate_bos=True, progress=False)
    assert ours.original == pytest.approx(theirs["ce_loss_without_sae"], abs=1e-5)
    assert ours.sae == pytest.approx(theirs["ce_loss_with_sae"], abs=1e-5)
    assert ours.zero_ablated == pytest.approx(theirs["ce_loss_with_ablation"], abs=1e-5)


def test_the_books_zero_ablation_leaves_bos_alone_and_differs(model, sae):
    """Default: only the SAE's positions are zeroed; the BOS position keeps its activation."""
    book = F.splice_losses(model, sae, TEXTS, CTX, progress=False)
    sae_lens_way = F.splice_losses(model, sae, TEXTS, CTX, zero_ablate_bos=True, progress=False)
    assert book.original == sae_lens_way.original and book.sae == sae_lens_way.sae
    assert book.mean_ablated == sae_lens_way.mean_ablated  # mean-ablation is the book's only
    assert abs(book.zero_ablated - sae_lens_way.zero_ablated) > 1e-4
    _, tokens, *_ = F._tokenize_for_sae(model, sae, TEXTS, CTX, True)
    theirs = sae_lens_losses(model, sae, tokens)
    assert abs(book.zero_ablated - theirs["ce_loss_with_ablation"]) > 1e-4
