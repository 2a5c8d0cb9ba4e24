"""Unit tests for utils.features.splicing (the SAE spliced into the model: next-token losses and
the loss recovered) on a random model (d_model 48) and random SAEs (d_sae 200)."""

from __future__ import annotations

import math

import pytest
import torch
from feature_helpers import CTX
from random_models import D_MODEL, D_SAE, SAMPLE_TEXTS, build_sae

from utils import features as F


def identity_sae(d_in: int = D_MODEL, d_sae: int = D_SAE):
    """An SAE that reconstructs its input exactly: features relu(x) and relu(-x), decoded back."""
    sae = build_sae(d_in=d_in, d_sae=d_sae)
    with torch.no_grad():
        eye = torch.eye(d_in)
        sae.W_enc.zero_()
        sae.W_dec.zero_()
        sae.b_enc.zero_()
        sae.b_dec.zero_()
        sae.W_enc[:, :d_in] = eye
        sae.W_enc[:, d_in : 2 * d_in] = -eye
        sae.W_dec[:d_in] = eye
        sae.W_dec[d_in : 2 * d_in] = -eye
    return sae


def test_splice_losses_with_a_perfect_sae(model):
    losses = F.splice_losses(model, identity_sae(), SAMPLE_TEXTS, CTX, progress=False)
    assert losses.sae == pytest.approx(losses.original, abs=1e-4)
    assert losses.recovered_vs_zero == pytest.approx(1, abs=1e-3)
    assert losses.n_tokens > 0
    frame = losses.to_frame()
    assert list(frame.index) == ["original model", "SAE spliced in", "zero-ablated", "mean-ablated"]
    assert frame.loc["original model", "increase"] == 0


def test_splice_losses_with_a_zero_sae_equals_zero_ablation(model):
    dead = build_sae()
    with torch.no_grad():
        dead.W_dec.zero_()
        dead.b_dec.zero_()
    losses = F.splice_losses(model, dead, SAMPLE_TEXTS, CTX, progress=False)
    assert losses.sae == pytest.approx(losses.zero_ablated, abs=1e-5)
    assert losses.recovered_vs_zero == pytest.approx(0, abs=1e-3)


def test_splice_losses_mean_ablation_uses_the_given_vector(model, sae, sample):
    given = F.splice_losses(
        model, sae, SAMPLE_TEXTS, CTX, mean_activation=sample.mean_activation_vector, progress=False
    )
    computed = F.splice_losses(model, sae, SAMPLE_TEXTS, CTX, progress=False)
    assert given.mean_ablated == pytest.approx(computed.mean_ablated, rel=1e-5)
    zero_mean = F.splice_losses(
        model, sae, SAMPLE_TEXTS, CTX, mean_activation=torch.zeros(D_MODEL), progress=False
    )
    assert zero_mean.mean_ablated == pytest.approx(zero_mean.zero_ablated, rel=1e-6)
    with pytest.raises(ValueError, match="mean_activation"):
        F.splice_losses(
            model, sae, SAMPLE_TEXTS, CTX, mean_activation=torch.zeros(D_MODEL + 2), progress=False
        )


def test_splice_losses_matches_run_with_saes_without_bos_exclusion(model, sae):
    """With BOS included, the SAE condition equals SAELens' own splice (run_with_saes)."""
    text = ["The capital of France is Paris. The capital of Italy is Rome."]
    losses = F.splice_losses(model, sae, text, CTX, exclude_bos=False, progress=False)
    tokens, _ = F.tokenize_texts(model, text, CTX)
    per_token = model.run_with_saes(tokens, saes=[sae], return_type="loss", loss_per_token=True)
    assert losses.sae == pytest.approx(per_token.mean().item(), rel=1e-5)


@pytest.mark.parametrize(
    ("original", "spliced", "ablated", "recovered"),
    [
        (2.0, 2.0, 6.0, 1.0),  # the SAE loses nothing
        (2.0, 4.0, 6.0, 0.5),  # it wins back half of the 4 nats that ablating costs
        (2.0, 6.0, 6.0, 0.0),  # no better than ablating
        (3.0, 8.0, 5.0, -1.5),  # worse than ablating: (5 - 8) / (5 - 3)
    ],
)
def test_loss_recovered_by_hand(original, spliced, ablated, recovered):
    assert F.loss_recovered(original, spliced, ablated) == pytest.approx(recovered)
    assert math.isnan(F.loss_recovered(2.0, 3.0, 2.0))  # no gap to recover


def test_recovered_is_nan_when_ablation_changes_nothing():
    losses = F.SpliceLosses(original=2.0, sae=2.0, zero_ablated=2.0, mean_ablated=3.0, n_tokens=5)
    assert math.isnan(losses.recovered_vs_zero)
    assert losses.recovered_vs_mean == pytest.approx(1.0)


def test_splice_losses_table_by_hand():
    losses = F.SpliceLosses(original=2.0, sae=2.5, zero_ablated=6.0, mean_ablated=4.0, n_tokens=7)
    frame = losses.to_frame()
    assert frame.index.name == "condition"
    assert frame.index.tolist() == [
        "original model",
        "SAE spliced in",
        "zero-ablated",
        "mean-ablated",
    ]
    assert frame["ce_loss"].tolist() == [2.0, 2.5, 6.0, 4.0]
    assert frame["increase"].tolist() == [0.0, 0.5, 4.0, 2.0]
    assert losses.recovered_vs_zero == pytest.approx((6.0 - 2.5) / (6.0 - 2.0))
    assert losses.recovered_vs_mean == pytest.approx((4.0 - 2.5) / (4.0 - 2.0))
