"""Unit tests for utils/interventions/choosing.py: the latents picked in a density band, the
steering controls drawn beside them, and the contexts sampled for steering and ablation.

Random models of unusual sizes (d_model 48, d_sae 200), one with a final LayerNorm whose weights
are not all ones (tests/intervention_helpers.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from intervention_fixtures import model, tokenizer  # noqa: F401 (fixtures)
from intervention_helpers import (
    concentration_by_hand,
    firing_feature,
)
from random_models import D_MODEL, D_SAE

from utils import interventions as I
from utils.interventions import choosing

CTX = 24


def test_pick_latents_respects_the_density_range(model, sae, sample):
    lo, hi = 0.01, 0.5
    table = I.pick_latents(model, sae, sample, n=3, min_density=lo, max_density=hi)
    assert len(table) == 3
    assert table["density"].between(lo, hi).all()
    assert table["concentration"].is_monotonic_decreasing
    in_range = ((sample.density >= lo) & (sample.density <= hi)).nonzero()[:, 0]
    best = I.logit_effect_concentration(model, sae, in_range).max().item()
    assert math.isclose(table["concentration"].iloc[0], best, rel_tol=1e-5)
    with pytest.raises(ValueError, match="Only"):
        I.pick_latents(model, sae, sample, n=D_SAE, min_density=lo, max_density=hi)


def test_steering_controls(model, sae, sample):
    lo, hi, n = 0.01, 0.5, 3
    picked = I.pick_latents(model, sae, sample, n=2, min_density=lo, max_density=hi, k=4)
    controls = I.steering_controls(model, sae, sample, picked, lo, hi, k=4, n=n, seed=5)
    table = controls.table
    groups = [I.RANDOM, I.RANDOM_PICKED, I.MEDIAN_LATENTS, I.RUNNERS_UP]
    assert table["group"].tolist() == [g for g in groups for _ in range(n)]
    assert controls.directions.shape == (4 * n, D_MODEL)
    assert torch.allclose(controls.directions.norm(dim=-1), torch.ones(4 * n), atol=1e-5)
    for row, d in zip(table.itertuples(), controls.directions):
        assert math.isclose(row.concentration, concentration_by_hand(model, d, 4), rel_tol=1e-4)

    # the random draws: seeds 5, 6, ...; as many as match the picked latents' selection ratio
    in_band = ((sample.density >= lo) & (sample.density <= hi)).nonzero()[:, 0]
    assert controls.n_candidates == len(in_band)
    wanted = math.ceil(n * len(in_band) / 2)
    assert controls.n_draws == min(max(wanted, I.MIN_RANDOM_DRAWS), I.MAX_RANDOM_DRAWS)
    draws = [I.random_unit_direction(D_MODEL, 5 + i) for i in range(controls.n_draws)]
    for i in range(n):
        assert torch.equal(controls.directions[i], draws[i])
    by_hand = torch.tensor([concentration_by_hand(model, d, 4) for d in draws])
    best = set(by_hand.topk(n).indices.tolist())
    assert {int(name.split()[1]) for name in table["name"][n : 2 * n]} == best

    # the latents: in the band, never the picked ones; runners-up ranked right after them
    others = [int(f) for f in in_band if int(f) not in set(picked["latent"])]
    score = {f: concentration_by_hand(model, sae.W_dec[f].detach(), 4) for f in others}
    ranked = sorted(others, key=score.get, reverse=True)
    runners = [int(name.split()[1]) for name in table["name"][3 * n :]]
    assert runners == ranked[:n]
    median = torch.tensor(list(score.values())).median().item()
    near = sorted((f for f in others if f not in runners), key=lambda f: abs(score[f] - median))
    assert [int(name.split()[1]) for name in table["name"][2 * n : 3 * n]] == near[:n]
    # pick_latents' scores are reused, not recomputed: the same table without them
    picked_plain = pd.DataFrame(picked.to_dict())
    assert not picked_plain.attrs
    again = I.steering_controls(model, sae, sample, picked_plain, lo, hi, k=4, n=n, seed=5)
    pd.testing.assert_frame_equal(again.table, table)
    with pytest.raises(ValueError, match="controls need"):
        I.steering_controls(model, sae, sample, picked, lo, hi, n=len(in_band))


def test_sample_contexts(sample):
    tokens, counted = I.sample_contexts(sample, 12, 100)
    assert tokens.shape[1] == 12 and counted.shape == tokens.shape
    assert (sample.lengths >= 12).sum() == tokens.shape[0]
    f = firing_feature(sample)
    tokens, _ = I.sample_contexts(sample, 12, 100, latent=f)
    grid = sample.activation_grid(f)[:, :12]
    firing_texts = [
        t for t in range(sample.n_texts) if sample.lengths[t] >= 12 and grid[t].gt(0).any()
    ]
    assert torch.equal(tokens, sample.tokens[firing_texts, :12])
    with pytest.raises(ValueError, match="context_size"):
        I.sample_contexts(sample, CTX + 1, 3)


# ---- edges the review's mutants found untested ---------------------------------------------------


def test_density_band_edges(sample):
    # both ends are inclusive: a zero lower end and an empty-width band are valid ranges
    density = sample.density
    assert torch.equal(choosing._band(sample, 0.0, 1.0), torch.arange(len(density)))
    some = float(density[density > 0][0])
    assert torch.equal(choosing._band(sample, some, some), (density == some).nonzero()[:, 0])
    with pytest.raises(ValueError, match="got 0.5 and 0.1"):
        choosing._band(sample, 0.5, 0.1)
    with pytest.raises(ValueError, match="got -0.1 and 0.1"):
        choosing._band(sample, -0.1, 0.1)


def test_steering_controls_defaults_sizes_and_the_cache(model, sae, sample, monkeypatch):
    lo, hi = 0.01, 0.5
    picked = I.pick_latents(model, sae, sample, n=2, min_density=lo, max_density=hi)
    # one direction per control is allowed; the defaults are k = 10 and seed 0
    one = I.steering_controls(model, sae, sample, picked, lo, hi, n=1)
    explicit = I.steering_controls(model, sae, sample, picked, lo, hi, k=10, n=1, seed=0)
    pd.testing.assert_frame_equal(one.table, explicit.table)
    assert torch.equal(one.directions[0], I.random_unit_direction(D_MODEL, 0))
    # a small band draws the floor of MIN_RANDOM_DRAWS, not n * band / picked
    in_band = choosing._band(sample, lo, hi)
    assert math.ceil(1 * len(in_band) / 2) < I.MIN_RANDOM_DRAWS
    assert one.n_draws == I.MIN_RANDOM_DRAWS
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        I.steering_controls(model, sae, sample, picked, lo, hi, n=0)
    # exactly 2n latents besides the picked ones is enough, 2n - 2 is not
    n_picked = 2 if (len(in_band) - 2) % 2 == 0 else 3
    picked_even = I.pick_latents(model, sae, sample, n=n_picked, min_density=lo, max_density=hi)
    others = len(in_band) - n_picked
    assert others % 2 == 0 and others >= 4
    I.steering_controls(model, sae, sample, picked_even, lo, hi, n=others // 2)
    with pytest.raises(ValueError, match=f"holds {others} latents besides the picked ones"):
        I.steering_controls(model, sae, sample, picked_even, lo, hi, n=others // 2 + 1)
    # pick_latents' scores of the same band are reused (no latent scored again)...
    scored = []
    real = I.logit_effect_concentration
    monkeypatch.setattr(
        choosing, "logit_effect_concentration", lambda *a, **kw: scored.append(1) or real(*a, **kw)
    )
    I.steering_controls(model, sae, sample, picked, lo, hi, n=1)
    assert scored == []
    # ...and only those: another k or another band is scored afresh
    I.steering_controls(model, sae, sample, picked, lo, hi, k=5, n=1)
    assert scored == [1]
    I.steering_controls(model, sae, sample, picked, lo, hi * 0.99, n=1)
    assert scored == [1, 1]


def test_pick_latents_and_promoted_tokens_edges(model, sae, sample):
    lo, hi = 0.01, 0.5
    in_band = choosing._band(sample, lo, hi)
    assert len(I.pick_latents(model, sae, sample, n=1, min_density=lo, max_density=hi)) == 1
    every = I.pick_latents(model, sae, sample, n=len(in_band), min_density=lo, max_density=hi)
    assert sorted(every["latent"]) == in_band.tolist()
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        I.pick_latents(model, sae, sample, n=0, min_density=lo, max_density=hi)
    with pytest.raises(ValueError, match=r"got 0.1 and 1.5"):
        choosing._band(sample, 0.1, 1.5)
    direction = I.unit_direction(sae, int(in_band[0]))
    assert len(I.promoted_token_ids(model, direction)) == 10
    assert len(I.promoted_token_ids(model, direction, k=1)) == 1
    assert len(I.promoted_token_ids(model, direction, k=model.cfg.d_vocab)) == model.cfg.d_vocab
    with pytest.raises(ValueError, match=f"between 1 and d_vocab={model.cfg.d_vocab}, got 0"):
        I.promoted_token_ids(model, direction, k=0)


def test_sample_contexts_edges(sample):
    longest = int(sample.lengths.max())
    assert longest <= sample.context_size
    tokens, counted = I.sample_contexts(sample, longest, 1)  # a text exactly that long counts
    assert tokens.shape == counted.shape == (1, longest)
    assert I.sample_contexts(sample, 2, 3)[0].shape == (3, 2)
    with pytest.raises(ValueError, match=r"context_size must be in 2\.\.\d+ .* got 1"):
        I.sample_contexts(sample, 1, 3)
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        I.sample_contexts(sample, 4, 0)
    silent = int((sample.firing_counts == 0).nonzero()[0, 0])
    with pytest.raises(ValueError, match=f"has 4 tokens where latent {silent} fires"):
        I.sample_contexts(sample, 4, 2, latent=silent)
