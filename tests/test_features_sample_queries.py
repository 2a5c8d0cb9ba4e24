"""Unit tests for what utils.features.sample reads from a feature sample (top activating
contexts, a feature's top tokens, the features for a token, token-concentrated features,
choose_feature), on a random model (d_model 48) and random SAEs (d_sae 200), and on samples small
enough to work out by hand (feature_helpers.py). The store itself: test_features_sample.py."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from feature_fixtures import toy  # noqa: F401 (a fixture)
from feature_helpers import (
    CTX,
    TOY_COUNTED,
    TOY_TOKENS,
    VOCAB,
    one_firing_sample,
    sample_by_hand,
)
from random_models import D_SAE, SAMPLE_TEXTS, build_sae

from utils import features as F

# ---- on the random model ----------------------------------------------------------------------


def test_top_activating_contexts(sample):
    feature = int(sample.firing_counts.argmax())
    table = F.top_activating_contexts(sample, feature, k=3, left=2, right=1)
    assert len(table) == 3
    assert table["activation"].is_monotonic_decreasing
    top = table.iloc[0]
    assert top["activation"] == pytest.approx(sample.max_activation[feature].item())
    assert top["context_tokens"][top["highlight"]] == top["token"]
    assert top["context_activations"][top["highlight"]] == pytest.approx(top["activation"])
    assert len(top["context_tokens"]) <= 4
    one_each = F.top_activating_contexts(sample, feature, k=10, one_per_text=True)
    assert one_each["text"].is_unique


def test_top_activating_contexts_for_a_silent_feature(model):
    silent = build_sae()
    with torch.no_grad():
        silent.b_enc[3] = -1e6
    sample = F.collect_feature_stats(model, silent, SAMPLE_TEXTS, CTX, progress=False)
    assert len(F.top_activating_contexts(sample, 3)) == 0
    assert len(F.feature_top_tokens(sample, 3)) == 0


def test_feature_top_tokens(sample):
    feature = int(sample.firing_counts.argmax())
    table = F.feature_top_tokens(sample, feature, k=5)
    assert table["fires"].is_monotonic_decreasing
    assert (table["fires"] <= table["occurrences"]).all()
    full = F.feature_top_tokens(sample, feature, k=10_000)
    assert full["fires"].sum() == sample.firing_counts[feature]


def test_features_for_token(sample):
    token = sample.token_counts().index[0]
    table = F.features_for_token(sample, token, k=5)
    assert list(table.columns)[:4] == ["feature", "f1", "precision", "recall"]
    assert ((table["precision"] <= 1) & (table["recall"] <= 1)).all()
    assert table["f1"].is_monotonic_decreasing
    with pytest.raises(KeyError, match="does not occur"):
        F.features_for_token(sample, "no such token here")


def test_choose_feature(sample):
    acts = torch.zeros(D_SAE)
    busy = int(sample.firing_counts.argmax())
    acts[busy] = 1.0
    assert F.choose_feature(acts, sample, min_fires=1, max_density=1.0) == busy
    with pytest.raises(ValueError, match="No active feature"):
        F.choose_feature(acts, sample, min_fires=10_000)
    with pytest.raises(ValueError, match="shape"):
        F.choose_feature(torch.zeros(D_SAE + 1), sample)


def test_choose_feature_prefers_the_last_position(sample):
    order = torch.argsort(sample.firing_counts, descending=True)
    first_choice, fallback = int(order[0]), int(order[1])
    acts = torch.zeros(3, D_SAE)
    acts[0, fallback] = 5.0
    assert F.choose_feature(acts, sample, min_fires=1, max_density=1.0) == fallback
    acts[2, first_choice] = 0.1
    assert F.choose_feature(acts, sample, min_fires=1, max_density=1.0) == first_choice


# ---- on samples worked out by hand ------------------------------------------------------------


def test_features_for_token_by_hand(toy):
    # ' a' occurs 3 times. Feature 0 fires on all 3 and nowhere else: recall 1, precision 1,
    # F1 1, mean (2 + 4 + 1) / 3. Feature 1 fires on 1 of them, and on 1 of its 2 firings:
    # recall 1/3, precision 1/2, F1 = 2 (1/2)(1/3) / (1/2 + 1/3) = 2/5, mean 0.5.
    # Feature 2 never fires on ' a'.
    expected = pd.DataFrame(
        {
            "feature": [0, 1],
            "f1": [1.0, 2 / 5],
            "precision": [1.0, 1 / 2],
            "recall": [1.0, 1 / 3],
            "fires_on_token": [3, 1],
            "mean_activation": [7 / 3, 0.5],
        }
    )
    pd.testing.assert_frame_equal(F.features_for_token(toy, " a"), expected)
    assert F.features_for_token(toy, " a", k=1)["feature"].tolist() == [0]
    # ' be': feature 1 fires on its only occurrence: recall 1, precision 1/2, F1 2/3.
    b = F.features_for_token(toy, " be")
    assert b["feature"].tolist() == [1] and b["f1"].tolist() == pytest.approx([2 / 3])


def test_features_for_token_default_k_and_the_tokens_it_suggests():
    # 12 texts: text i holds token i + 1 (i + 1 times over, so the counts are all different) and
    # every feature fires on token 1: 12 candidates for the default k=10 to cut to 10.
    vocab = ["<bos>"] + [f" w{i}" for i in range(1, 13)]
    ctx = 13
    tokens = torch.zeros(12, ctx, dtype=torch.long)
    counted = torch.zeros(12, ctx, dtype=torch.bool)
    for i in range(12):
        tokens[i, 1 : i + 2] = i + 1
        counted[i, 1 : i + 2] = True
    dense = torch.zeros(12, ctx, 12)
    dense[0, 1, :] = torch.arange(1, 13).float()  # text 0 is ' w1' once
    sample = sample_by_hand(tokens, [i + 2 for i in range(12)], counted, dense, vocab)
    assert len(F.features_for_token(sample, " w1")) == 10
    with pytest.raises(KeyError, match="does not occur") as error:
        F.features_for_token(sample, " w13")
    # the 10 most common tokens, most common first: ' w12' (12 times) down to ' w3' (3 times)
    listed = ", ".join(repr(f" w{i}") for i in range(12, 2, -1))
    assert f"The most common ones are: {listed}." in str(error.value)


def test_choose_feature_thresholds_by_hand(toy):
    # fires 3, 2, 1; densities 3/5, 2/5, 1/5 (the toy sample, feature_fixtures.py)
    # feature 0 is the most active but too dense for 1/2: feature 1 is next
    assert F.choose_feature(torch.tensor([1.0, 0.5, 0.0]), toy, min_fires=1, max_density=0.5) == 1
    # both thresholds are inclusive: feature 1 fired exactly 2 times, on exactly 2/5 of the tokens
    acts = torch.tensor([0.0, 1.0, 0.5])
    assert F.choose_feature(acts, toy, min_fires=2, max_density=1.0) == 1
    assert F.choose_feature(acts, toy, min_fires=1, max_density=0.4) == 1


def test_choose_feature_default_thresholds():
    # 400 counted tokens; feature 0 fires 20 times (density 0.05), feature 1 21 times (0.0525),
    # feature 2 19 times: with the defaults (20 fires, density 0.05) only feature 0 qualifies.
    ctx = 401
    tokens = torch.ones(1, ctx, dtype=torch.long)
    tokens[0, 0] = 0
    counted = tokens.bool()
    dense = torch.zeros(1, ctx, 3)
    for feature, fires in enumerate([20, 21, 19]):
        dense[0, 1 : fires + 1, feature] = 1.0
    sample = sample_by_hand(tokens, [ctx], counted, dense, ["<bos>", " a"])
    assert sample.density.tolist() == pytest.approx([0.05, 0.0525, 0.0475])
    assert F.choose_feature(torch.tensor([1.0, 2.0, 3.0]), sample) == 0


def test_top_activating_contexts_by_hand(toy):
    # feature 0: 4.0 at text 0 position 3, 2.0 at text 0 position 1, 1.0 at text 1 position 2
    table = F.top_activating_contexts(toy, 0, k=2, left=1, right=1)
    assert table.to_dict("records") == [
        {
            "text": 0,
            "position": 3,
            "token": " a",
            "activation": 4.0,
            "context_tokens": [" be", " a"],  # the text ends there: nothing on the right
            "context_activations": [0.0, 4.0],
            "highlight": 1,
        },
        {
            "text": 0,
            "position": 1,
            "token": " a",
            "activation": 2.0,
            "context_tokens": ["<bos>", " a", " be"],
            "context_activations": [0.0, 2.0, 0.0],
            "highlight": 1,
        },
    ]
    one_each = F.top_activating_contexts(toy, 0, k=10, left=0, right=5, one_per_text=True)
    assert one_each[["text", "position", "activation"]].values.tolist() == [
        [0, 3, 4.0],
        [1, 2, 1.0],
    ]
    # text 1 has 3 real tokens: the padding after position 2 is no part of its context
    assert one_each["context_tokens"].tolist() == [[" a"], [" a"]]
    assert one_each["context_activations"].tolist() == [[4.0], [1.0]]
    assert len(F.top_activating_contexts(toy, 0)) == 3  # every firing when k is larger
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        F.top_activating_contexts(toy, 0, k=0)
    with pytest.raises(ValueError, match="left=-1, right=0"):
        F.top_activating_contexts(toy, 0, left=-1, right=0)
    with pytest.raises(ValueError, match="left=0, right=-1"):
        F.top_activating_contexts(toy, 0, left=0, right=-1)


def test_feature_top_tokens_by_hand(toy):
    columns = ["token", "fires", "share_of_firings", "occurrences", "fires_per_occurrence"]
    # feature 1 fires once on ' be' (3.0; its one occurrence) and once on ' a' (0.5; 1 of 3):
    # equal fires, so the larger mean activation first
    table = F.feature_top_tokens(toy, 1)
    assert table[columns].values.tolist() == [[" be", 1, 0.5, 1, 1.0], [" a", 1, 0.5, 3, 1 / 3]]
    assert table["mean_activation"].tolist() == [3.0, 0.5]
    assert F.feature_top_tokens(toy, 1, k=1)["token"].tolist() == [" be"]
    only = F.feature_top_tokens(toy, 0)  # every ' a', 2.0, 4.0 and 1.0
    assert only[columns].values.tolist() == [[" a", 3, 1.0, 3, 1.0]]
    assert only["mean_activation"].tolist() == pytest.approx([7 / 3])


@pytest.fixture
def detectors():
    """The toy texts with three other features: 0 on every ' a' (share 1 of 3 firings), 1 on two
    ' a' and the ' be' (share 2/3 of 3), 2 on the ' cat' (share 1 of 1). Densities 3/5, 3/5, 1/5."""
    dense = torch.zeros(2, 4, 3)
    dense[0, 1, 0] = dense[0, 3, 0] = dense[1, 2, 0] = 1.0
    dense[0, 1, 1] = dense[0, 2, 1] = dense[0, 3, 1] = 1.0
    dense[1, 1, 2] = 1.0
    return sample_by_hand(TOY_TOKENS, [4, 3], TOY_COUNTED, dense, VOCAB)


def test_token_concentrated_features_by_hand(detectors):
    def chosen(**kwargs):
        frame = F.token_concentrated_features(detectors, **kwargs)
        return frame.values.tolist(), frame.attrs["eligible"].to_dict()

    rows, eligible = chosen(k=4, min_fires=1, max_density=1.0, min_letters=0)
    # shares 1 (3 fires), 1 (1 fire), 2/3: feature 1's top token ' a' is feature 0's already
    assert rows == [[0, " a", 1.0, 3, 0.6], [2, " cat", 1.0, 1, 0.2]]
    assert eligible == pytest.approx({0: 1.0, 1: 2 / 3, 2: 1.0})
    assert chosen(k=1, min_fires=1, max_density=1.0, min_letters=0)[0] == rows[:1]
    # ' cat' has 3 letters, ' a' one
    assert chosen(k=4, min_fires=1, max_density=1.0, min_letters=3)[0] == rows[1:]
    # the thresholds are inclusive: 3 fires, density 3/5 and 1/5
    rows_3, eligible_3 = chosen(k=4, min_fires=3, max_density=0.6, min_letters=0)
    assert rows_3 == rows[:1] and set(eligible_3) == {0, 1}
    assert set(chosen(k=4, min_fires=1, max_density=0.2, min_letters=0)[1]) == {2}
    # the defaults: 20 fires, so nothing here
    nothing = F.token_concentrated_features(detectors)
    assert list(nothing.columns) == [
        "feature",
        "top_token",
        "share_on_top_token",
        "fires",
        "density",
    ]
    assert len(nothing) == 0 and nothing.attrs["eligible"].name == "share_on_top_token"
    assert nothing.attrs["eligible"].dtype == float
    with pytest.raises(ValueError, match=r"in \(0, 1\], got 1.5"):
        F.token_concentrated_features(detectors, max_density=1.5)


def test_token_concentrated_features_defaults():
    """k=4, min_fires=20, max_density=0.05, min_letters=3 on 500 counted tokens: ' cat', ' dog',
    ' emu', ' fox', ' gnu' 20 times each, then ' zz' 400 times. Feature i < 5 fires on the 20 of
    animal i and on i of the ' zz' (share 20 / (20 + i), density at most 24/500); feature 5 on 20
    ' zz' (share 1, but 2 letters); feature 6 on one ' cat' only (too few fires)."""
    vocab = ["<bos>", " cat", " dog", " emu", " fox", " gnu", " zz"]
    ctx = 501
    tokens = torch.full((1, ctx), 6)
    tokens[0, 0] = 0
    for i in range(5):
        tokens[0, 1 + 20 * i : 21 + 20 * i] = i + 1
    dense = torch.zeros(1, ctx, 7)
    for i in range(5):
        dense[0, 1 + 20 * i : 21 + 20 * i, i] = 1.0
        dense[0, 101 : 101 + i, i] = 1.0
    dense[0, 200:220, 5] = 1.0
    dense[0, 1, 6] = 1.0
    sample = sample_by_hand(tokens, [ctx], tokens != 0, dense, vocab)
    frame = F.token_concentrated_features(sample)
    assert frame["feature"].tolist() == [0, 1, 2, 3]
    assert frame["top_token"].tolist() == [" cat", " dog", " emu", " fox"]
    assert frame["share_on_top_token"].tolist() == pytest.approx([1, 20 / 21, 20 / 22, 20 / 23])
    assert frame["fires"].tolist() == [20, 21, 22, 23]
    assert frame["density"].tolist() == pytest.approx([0.04, 0.042, 0.044, 0.046])
    assert sorted(frame.attrs["eligible"].index) == [0, 1, 2, 3, 4, 5]


def test_top_activating_contexts_edges_by_hand(toy):
    # k = 1, and no context on the right (right = 0 is allowed)
    first = F.top_activating_contexts(toy, 0, k=1, left=1, right=0)
    assert first[
        ["text", "position", "activation", "context_tokens", "highlight"]
    ].values.tolist() == [[0, 3, 4.0, [" be", " a"], 1]]
    single = F.top_activating_contexts(one_firing_sample(), 0)  # a feature that fired once
    assert single[["text", "position", "token", "activation"]].values.tolist() == [
        [0, 1, " a", 3.0]
    ]
    silent = F.top_activating_contexts(one_firing_sample(), 1)  # and one that never fired
    assert len(silent) == 0 and list(silent.columns) == list(single.columns)
    one = F.feature_top_tokens(one_firing_sample(), 0)
    assert one.values.tolist() == [[" a", 1, 1.0, 1, 1.0, 3.0]]
    none = F.feature_top_tokens(one_firing_sample(), 1)
    assert len(none) == 0 and list(none.columns) == list(one.columns)


def test_top_activating_contexts_defaults():
    # One text of 30 tokens (ids 1..29 after BOS). Feature 0 fires 0.1 * p at positions 1..11 and
    # 10 at position 15: 12 firings, the default k=10 keeps 10, the strongest first; its context
    # is 12 tokens on the left and 4 on the right (positions 3..19), the firing token 13th.
    tokens = torch.arange(30)[None]
    vocab = [f"t{i}" for i in range(30)]
    dense = torch.zeros(1, 30, 1)
    dense[0, 1:12, 0] = 0.1 * torch.arange(1, 12)
    dense[0, 15, 0] = 10.0
    sample = sample_by_hand(tokens, [30], tokens > 0, dense, vocab)
    table = F.top_activating_contexts(sample, 0)
    assert table["position"].tolist() == [15, 11, 10, 9, 8, 7, 6, 5, 4, 3]
    top = table.iloc[0]
    assert top["context_tokens"] == [f"t{i}" for i in range(3, 20)] and top["highlight"] == 12
    assert top["context_activations"][:9] == pytest.approx(
        [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]
    )
    assert top["context_activations"][9:] == [0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0]
    # feature_top_tokens' default k=10 too: it fired on 12 different tokens, once each
    tops = F.feature_top_tokens(sample, 0)
    assert tops["token"].tolist() == ["t15", "t11", "t10", "t9", "t8", "t7", "t6", "t5", "t4", "t3"]


def test_feature_top_tokens_counts_are_integers(toy):
    table = F.feature_top_tokens(toy, 1)
    assert table["occurrences"].tolist() == [1, 3] and table["occurrences"].dtype == int
    assert table["fires"].dtype == int


def test_token_concentrated_features_needs_a_firing():
    """A feature that never fired has no top token: min_fires=0 would make the silent feature 1
    eligible with a share of 0 / 0 and the vocabulary's last string as its top token."""
    with pytest.raises(ValueError, match="min_fires must be at least 1, got 0"):
        F.token_concentrated_features(one_firing_sample(), min_fires=0, max_density=1.0)
    rows = F.token_concentrated_features(
        one_firing_sample(), min_fires=1, max_density=1.0, min_letters=0
    )
    assert rows.values.tolist() == [[0, " a", 1.0, 1, 1.0]]
