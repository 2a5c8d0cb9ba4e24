"""token_concentrated_features: tutorial 2's rule for which latents to show, against brute force."""

from __future__ import annotations

import pytest
from random_models import SAMPLE_TEXTS

from utils import features as F

CTX = 24


@pytest.fixture(scope="module")
def sample(model, sae):  # conftest's random model and SAE, on more text than its `sample`
    return F.collect_feature_stats(
        model, sae, SAMPLE_TEXTS * 3, context_size=CTX, batch_size=4, progress=False
    )


def brute_force(sample, min_fires, max_density, min_letters):
    rows = {}
    for feature in range(sample.d_sae):
        fires = int(sample.firing_counts[feature])
        if fires < min_fires or float(sample.density[feature]) > max_density:
            continue
        top = F.feature_top_tokens(sample, feature, k=sample.d_sae)
        best = top["fires"].max()
        rows[feature] = (set(top.loc[top["fires"] == best, "token"]), best / fires)
    return rows


def test_shares_and_top_tokens_match_brute_force(sample):
    chosen = F.token_concentrated_features(sample, k=5, min_fires=3, max_density=0.5, min_letters=0)
    expected = brute_force(sample, 3, 0.5, 0)
    eligible = chosen.attrs["eligible"]
    assert set(eligible.index) == set(expected)
    for feature, (_tokens, share) in expected.items():
        assert eligible[feature] == pytest.approx(share)
    assert len(chosen) > 0
    for row in chosen.itertuples():
        tokens, share = expected[row.feature]
        assert row.top_token in tokens and row.share_on_top_token == pytest.approx(share)
    # the highest shares, one per token, in decreasing order
    assert chosen["share_on_top_token"].is_monotonic_decreasing
    assert chosen["top_token"].is_unique
    assert chosen["share_on_top_token"].iloc[0] == pytest.approx(
        max(s for _, s in expected.values())
    )


def test_min_letters_keeps_only_word_tokens(sample):
    chosen = F.token_concentrated_features(
        sample, k=50, min_fires=1, max_density=1.0, min_letters=3
    )
    assert all(sum(c.isalpha() for c in token) >= 3 for token in chosen["top_token"])


def test_thresholds_and_bad_input(sample):
    nothing = F.token_concentrated_features(sample, min_fires=10**9)
    assert len(nothing) == 0 and len(nothing.attrs["eligible"]) == 0
    with pytest.raises(ValueError, match="k must be at least 1"):
        F.token_concentrated_features(sample, k=0)
    with pytest.raises(ValueError, match="max_density"):
        F.token_concentrated_features(sample, max_density=0)
