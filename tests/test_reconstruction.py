"""The book's one implementation of each reconstruction metric and of the small rules several modules
share (utils/features/reconstruction.py, utils.features' hook_layer and resid_pre_layer,
utils.evaluation.dead_fraction, utils.features.spliced_losses), each against numbers worked out by
hand in the comments, not against another implementation."""

from __future__ import annotations

import math

import pytest
import torch

from utils import features as F
from utils.evaluation import dead_fraction, explained_variances
from utils.features.reconstruction import ReconstructionSums

# Three vectors in 2-D and their reconstructions, worked by hand:
#   x     = (1, 0), (3, 0), (2, 3)     mean (2, 1)
#   x_hat = (1, 1), (2, 0), (2, 3)
#   ||x - x_hat||^2      = 1, 1, 0     mean 2/3; per element 2 / 6 = 1/3
#   ||x - mean||^2       = 2, 2, 4     mean 8/3
#   ||x||^2              = 1, 9, 13    mean 23/3
#   explained variance   1 - (2/3) / (8/3) = 3/4
#   legacy (one batch)   1 - mean(1/2, 1/2, 0) = 2/3
#   about zero           1 - (2/3) / (23/3) = 21/23
#   cosine               (1/sqrt(2) + 1 + 1) / 3
X = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 3.0]])
X_HAT = torch.tensor([[1.0, 1.0], [2.0, 0.0], [2.0, 3.0]])


def test_every_metric_of_one_batch_by_hand():
    sums = ReconstructionSums()
    sums.add(X, X_HAT)
    out = sums.result()
    assert out["mse"] == pytest.approx(1 / 3)
    assert out["explained_variance"] == pytest.approx(3 / 4)
    assert out["explained_variance_legacy"] == pytest.approx(2 / 3)
    assert out["explained_variance_about_zero"] == pytest.approx(21 / 23)
    assert out["cosine_similarity"] == pytest.approx((1 / math.sqrt(2) + 2) / 3)
    assert out["n_tokens"] == 3
    torch.testing.assert_close(sums.mean, torch.tensor([2.0, 1.0], dtype=torch.float64))


def test_batches_add_up_except_the_legacy_figure():
    # The same three vectors in two batches: every sum is the same, so every figure but the
    # legacy one is too. Legacy: the first batch's mean is (2, 0), so ||x - mean||^2 = 1, 1 and
    # its ratios are 1/1, 1/1; the second batch holds one vector (no batch mean to measure
    # about), so it is left out: 1 - (1 + 1) / 2 = 0.
    sums = ReconstructionSums()
    sums.add(X[:2], X_HAT[:2])
    sums.add(X[2:], X_HAT[2:])
    out = sums.result()
    assert out["explained_variance"] == pytest.approx(3 / 4)
    assert out["explained_variance_about_zero"] == pytest.approx(21 / 23)
    assert out["mse"] == pytest.approx(1 / 3)
    assert out["explained_variance_legacy"] == pytest.approx(0.0)
    assert out["n_tokens"] == 3 and sums.n_legacy == 2


def test_an_empty_batch_changes_nothing():
    sums = ReconstructionSums()
    sums.add(X, X_HAT)
    sums.add(torch.zeros(0, 2), torch.zeros(0, 2))
    assert sums.result()["explained_variance"] == pytest.approx(3 / 4)


def test_one_vector_has_an_error_but_no_variance():
    sums = ReconstructionSums()
    sums.add(X[:1], X_HAT[:1])  # (1, 0) against (1, 1): squared error 1 over 2 elements
    out = sums.result()
    assert out["mse"] == pytest.approx(0.5)
    assert out["cosine_similarity"] == pytest.approx(1 / math.sqrt(2))
    for name in (
        "explained_variance",
        "explained_variance_legacy",
        "explained_variance_about_zero",
    ):
        assert math.isnan(out[name]), name


def test_a_constant_input_has_no_variance_to_explain():
    x = torch.ones(4, 3)
    sums = ReconstructionSums()
    sums.add(x, x * 0.5)  # squared error 3 * 0.25 per vector; ||x||^2 = 3
    out = sums.result()
    assert math.isnan(out["explained_variance"])
    assert out["explained_variance_about_zero"] == pytest.approx(1 - 0.75 / 3)


def test_bad_input_is_refused():
    sums = ReconstructionSums()
    with pytest.raises(ValueError, match="No activation vectors"):
        sums.result()
    with pytest.raises(ValueError, match=r"\[n, d_in\]"):
        sums.add(X, X_HAT[:, :1])
    with pytest.raises(ValueError, match=r"\[n, d_in\]"):
        sums.add(X[0], X_HAT[0])
    sums.add(X, X_HAT)
    with pytest.raises(ValueError, match="d_in=3, earlier ones 2"):
        sums.add(torch.zeros(2, 3), torch.zeros(2, 3))


def test_the_wrappers_report_the_same_hand_numbers():
    """reconstruction_metrics (tutorial 1's prompt) and explained_variances (utils.evaluation)
    are views of the same sums: the hand numbers again, and their own input checks."""
    one = F.reconstruction_metrics(X, X_HAT)
    assert one == pytest.approx(
        {"mse": 1 / 3, "explained_variance": 3 / 4, "cosine_similarity": (1 / math.sqrt(2) + 2) / 3}
    )
    three = explained_variances(X, X_HAT)
    assert three == pytest.approx(
        {
            "explained_variance": 3 / 4,
            "explained_variance_legacy": 2 / 3,
            "explained_variance_about_zero": 21 / 23,
            "n_tokens": 3.0,
        }
    )
    # [..., d_in] is flattened to vectors: the same three vectors in a [1, 3, 2] batch
    assert F.reconstruction_metrics(X[None], X_HAT[None]) == pytest.approx(one)
    with pytest.raises(ValueError, match="at least two activation vectors"):
        explained_variances(X[:1], X_HAT[:1])
    with pytest.raises(ValueError, match="at least two activation vectors to measure variance"):
        F.reconstruction_metrics(X[:1], X_HAT[:1])


@pytest.mark.parametrize(
    "density, share",
    [([0.0, 0.5, 0.0, 1.0], 0.5), ([0.1, 0.2], 0.0), ([0.0], 1.0), ([], 0.0)],
)
def test_dead_fraction_by_hand(density, share):
    assert dead_fraction(density) == share


def test_dead_fraction_refuses_what_is_not_a_density():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        dead_fraction([0.0, 1.5])


@pytest.mark.parametrize(
    "hook, layer, resid_pre",
    [
        ("blocks.0.hook_resid_pre", 0, 0),
        ("blocks.11.hook_resid_pre", 11, 11),
        ("blocks.3.hook_resid_post", 3, None),
        ("blocks.12.attn.hook_z", 12, None),
        ("blocks.3.hook_resid_pre.extra", 3, None),
        ("hook_embed", None, None),
        ("ln_final.hook_normalized", None, None),
        ("xblocks.3.hook_resid_pre", None, None),
    ],
)
def test_the_layer_of_a_hook(hook, layer, resid_pre):
    assert F.hook_layer(hook) == layer
    assert F.resid_pre_layer(hook) == resid_pre


def test_spliced_losses_score_the_counted_positions_of_any_layout(model, sae):
    """Packed contexts with a BOS token inside and padding: the positions scored, and the
    original model's loss over them, counted by hand from the model's own logits."""
    bos = model.tokenizer.bos_token_id
    a, b, c, pad = 11, 12, 13, 0
    tokens = torch.tensor([[bos, a, b, bos, c], [bos, a, b, pad, pad]])
    valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
    counted = (tokens != bos) & valid
    # Scored predictions (made at a counted position, of a real token), by hand:
    # row 0: at 1 (-> b), at 2 (-> the BOS between documents); not at 0 or 3 (BOS), 4 (last)
    # row 1: at 1 (-> b); not at 2 (-> padding)
    scored = [(0, 1), (0, 2), (1, 1)]
    losses = F.spliced_losses(model, sae, tokens, counted, valid, progress=False)
    assert losses.n_tokens == len(scored)
    with torch.no_grad():
        logits = model(tokens, attention_mask=valid.long())
    logp = logits.double().log_softmax(-1)
    by_hand = -sum(logp[i, p, tokens[i, p + 1]].item() for i, p in scored) / len(scored)
    assert losses.original == pytest.approx(by_hand, rel=1e-5)


def test_zero_ablate_all_also_zeroes_bos(model, sae):
    """Zeroing BOS changes the losses (the model leans on it); zeroing only the counted positions
    of a context whose only uncounted position is BOS is the like-for-like baseline."""
    bos = model.tokenizer.bos_token_id
    tokens = torch.tensor([[bos, 11, 12, 13, 14, 15]])
    counted = tokens != bos
    like_for_like = F.spliced_losses(model, sae, tokens, counted, progress=False)
    everywhere = F.spliced_losses(model, sae, tokens, counted, zero_ablate_all=True, progress=False)
    assert like_for_like.original == everywhere.original
    assert like_for_like.sae == everywhere.sae
    assert like_for_like.zero_ablated != pytest.approx(everywhere.zero_ablated)
    with pytest.raises(ValueError, match=r"must all be \[n, ctx\]"):
        F.spliced_losses(model, sae, tokens, counted[:, :-1], progress=False)


def test_two_vectors_are_enough_by_hand():
    # The first two vectors of X: x = (1, 0), (3, 0), mean (2, 0); x_hat = (1, 1), (2, 0).
    #   ||x - x_hat||^2 = 1, 1 (mean 1; per element 2 / 4 = 1/2); ||x - mean||^2 = 1, 1 (mean 1)
    #   explained variance 1 - 1 / 1 = 0; cosine (1/sqrt(2) + 1) / 2
    assert F.reconstruction_metrics(X[:2], X_HAT[:2]) == pytest.approx(
        {"mse": 1 / 2, "explained_variance": 0.0, "cosine_similarity": (1 / math.sqrt(2) + 1) / 2}
    )


def test_the_legacy_figure_sums_over_every_batch_of_two_or_more():
    # Batch 1: the first two vectors of X, ratios 1/1 and 1/1 (as above).
    # Batch 2: x = (0, 0), (2, 0), mean (1, 0), so ||x - mean||^2 = 1, 1; x_hat = (0, 1), (2, 0),
    #   so ||x - x_hat||^2 = 1, 0: ratios 1 and 0.
    # Legacy over both: 1 - (1 + 1 + 1 + 0) / 4 = 1/4.
    sums = ReconstructionSums()
    sums.add(X[:2], X_HAT[:2])
    sums.add(torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.tensor([[0.0, 1.0], [2.0, 0.0]]))
    assert sums.result()["explained_variance_legacy"] == pytest.approx(1 / 4)
    assert sums.n_legacy == 4


def test_only_empty_batches_are_no_vectors():
    sums = ReconstructionSums()
    sums.add(torch.zeros(0, 2), torch.zeros(0, 2))
    with pytest.raises(ValueError, match="No activation vectors were added"):
        sums.result()
    with pytest.raises(ValueError, match="No activation vectors were added"):
        _ = sums.mean
