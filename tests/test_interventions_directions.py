"""Unit tests for utils/interventions/directions.py: a latent's unit direction, seeded random
directions, the tokens a direction promotes and its logit-effect concentration.

Random models of unusual sizes (d_model 48, d_sae 200), one with a final LayerNorm whose weights
are not all ones (tests/intervention_helpers.py)."""

from __future__ import annotations

import math

import pytest
import torch
from intervention_fixtures import model, tokenizer  # noqa: F401 (fixtures)
from intervention_helpers import concentration_by_hand
from random_models import D_MODEL, D_SAE, HOOK, build_sae

from utils import features as F
from utils import interventions as I


def test_feature_out_of_range(sae):
    with pytest.raises(IndexError, match=f"0..{D_SAE - 1}"):
        I.unit_direction(sae, D_SAE)
    with pytest.raises(IndexError, match="out of range"):
        I.unit_direction(sae, -1)


def test_unit_direction_is_the_normalised_decoder_row(sae):
    d = I.unit_direction(sae, 3)
    assert d.shape == (D_MODEL,)
    assert math.isclose(d.norm().item(), 1.0, rel_tol=1e-5)
    assert torch.allclose(d * sae.W_dec[3].norm(), sae.W_dec[3].detach(), atol=1e-6)


def test_random_directions_are_seeded():
    assert torch.equal(I.random_unit_direction(D_MODEL, 1), I.random_unit_direction(D_MODEL, 1))
    assert not torch.equal(I.random_unit_direction(D_MODEL, 1), I.random_unit_direction(D_MODEL, 2))


def test_promoted_tokens_use_the_final_layernorm_weights(model, tokenizer):
    """Steered hard enough, the residual stream is the direction: the model's own top next tokens
    are then the direction's promoted tokens, which only holds if ln_final.w is accounted for."""
    direction = I.random_unit_direction(D_MODEL, 5)
    promoted = I.promoted_token_ids(model, direction, k=5)
    naive = (direction @ model.W_U.detach()).topk(5).indices
    assert set(naive.tolist()) != set(promoted.tolist())  # the weights matter for this model
    tokens = model.to_tokens("Hello world")
    logits = model.run_with_hooks(tokens, fwd_hooks=I.steering_hooks(model, HOOK, direction, 1e4))
    assert logits[0, -1].topk(5).indices.tolist() == promoted.tolist()


def test_logit_effect_concentration_ranks_a_spiky_feature_first(model, sae):
    spiky = build_sae()
    with torch.no_grad():  # feature 7 writes the direction whose direct effect is one token's
        target = torch.linalg.lstsq(
            (F.final_norm_direction(model, torch.eye(D_MODEL)) @ model.W_U).T,
            torch.nn.functional.one_hot(torch.tensor(11), model.cfg.d_vocab).float()[:, None],
        ).solution[:, 0]
        spiky.W_dec[7] = target / target.norm()
    scores = I.logit_effect_concentration(model, spiky, torch.arange(20), k=1)
    assert scores.shape == (20,)
    assert int(scores.argmax()) == 7


def test_direction_concentration_by_hand(model):
    directions = torch.stack([I.random_unit_direction(D_MODEL, s) for s in range(5)])
    scores = I.direction_concentration(model, directions, k=4, chunk=2)
    for d, score in zip(directions, scores.tolist()):
        assert math.isclose(score, concentration_by_hand(model, d, 4), rel_tol=1e-4)
    # a direction's length does not change its score
    assert torch.allclose(I.direction_concentration(model, 3 * directions, k=4), scores)


# ---- edges the mutants of direction_concentration / logit_effect_concentration found untested ----


def test_direction_concentration_default_k_is_10_and_k_may_be_the_vocabulary(model):
    directions = torch.stack([I.random_unit_direction(D_MODEL, s) for s in range(3)])
    scores = I.direction_concentration(model, directions)  # k defaults to 10
    for d, score in zip(directions, scores.tolist()):
        assert math.isclose(score, concentration_by_hand(model, d, 10), rel_tol=1e-4)
    # k = d_vocab is allowed: the top k are the whole vocabulary, so the score is 0
    every = I.direction_concentration(model, directions, k=model.cfg.d_vocab)
    assert every.abs().max() < 1e-4


def test_direction_concentration_argument_errors(model):
    with pytest.raises(ValueError, match=r"directions must be \[n, d_model\], got \(48,\)"):
        I.direction_concentration(model, torch.ones(D_MODEL))
    vocab = model.cfg.d_vocab
    for k in (0, vocab + 1):
        with pytest.raises(ValueError, match=f"k must be between 1 and d_vocab={vocab}, got {k}"):
            I.direction_concentration(model, torch.ones(2, D_MODEL), k=k)


def test_no_directions_or_latents_give_an_empty_score(model, sae):
    none = I.direction_concentration(model, torch.zeros(0, D_MODEL))
    assert none.shape == (0,)
    assert I.logit_effect_concentration(model, sae, []).shape == (0,)


def test_concentration_works_chunk_directions_at_a_time(model, sae, monkeypatch):
    """``chunk`` (default 512) bounds how many directions' effects are computed at once, for
    :func:`logit_effect_concentration` too; the scores do not depend on it."""
    from utils.interventions import directions as D

    sizes = []
    original = D.direct_logit_effects

    def counting(model, directions):
        sizes.append(len(directions))
        return original(model, directions)

    monkeypatch.setattr(D, "direct_logit_effects", counting)
    generator = torch.Generator().manual_seed(0)
    many = torch.randn(513, D_MODEL, generator=generator)
    scores = I.direction_concentration(model, many, k=3)
    assert sizes == [512, 1]
    for i in (0, 511, 512):
        assert math.isclose(
            scores[i].item(), concentration_by_hand(model, many[i], 3), rel_tol=1e-4
        )
    latents = list(range(D_SAE)) * 3  # 600 latents, repeats allowed
    sizes.clear()
    default = I.logit_effect_concentration(model, sae, latents, k=3)
    assert sizes == [512, 88]
    sizes.clear()
    small = I.logit_effect_concentration(model, sae, latents, k=3, chunk=250)
    assert sizes == [250, 250, 100]
    assert torch.allclose(small, default, atol=1e-5)
    by_hand = concentration_by_hand(model, sae.W_dec[5].detach(), 3)
    assert math.isclose(default[D_SAE + 5].item(), by_hand, rel_tol=1e-4)
