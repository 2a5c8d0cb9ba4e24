"""Unit tests for utils.exercises: right answers pass, wrong ones fail with a hint, and unfinished
ones print a reminder and return None (the convention in the module's docstring)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from random_models import D_MODEL, make_cfg

from utils import exercises as E
from utils import features as F


def test_check_l0():
    assert E.check_l0(lambda acts: (acts > 0).sum(-1))
    assert E.check_l0(None) is None

    def unfinished(acts):
        raise NotImplementedError

    assert E.check_l0(unfinished) is None
    assert E.check_l0(lambda acts: None) is None
    with pytest.raises(AssertionError, match="shape"):
        E.check_l0(lambda acts: (acts > 0).sum())
    with pytest.raises(AssertionError, match="non-zero"):
        E.check_l0(lambda acts: (acts > 1).sum(-1))


def test_check_explained_variance():
    def right(x, x_hat):
        return 1 - (x - x_hat).pow(2).sum(-1).mean() / (x - x.mean(0)).pow(2).sum(-1).mean()

    assert E.check_explained_variance(right)
    assert E.check_explained_variance(None) is None
    with pytest.raises(AssertionError, match="expected"):
        E.check_explained_variance(lambda x, x_hat: 1 - (x - x_hat).pow(2).mean() / x.pow(2).mean())


def test_check_token_detector(sample):
    token = E.pick_exercise_token(sample, min_chars=2)
    assert token in sample.token_counts().index
    table = F.features_for_token(sample, token, k=sample.d_sae)
    best, worst = table.iloc[0], table.iloc[-1]
    scores = E.token_detector_scores(sample, token, int(best["feature"]))
    assert scores["precision"] == pytest.approx(best["precision"])
    assert scores["f1"] == pytest.approx(best["f1"])
    assert E.check_token_detector(sample, token, None) is None
    assert E.check_token_detector(sample, token, int(best["feature"]))
    # The sample has poor detectors of the token and features that never fire on it: a check
    # that accepted any feature, or scored a silent one above 0, fails here.
    assert worst["f1"] < 0.9 * best["f1"]
    with pytest.raises(AssertionError, match="better"):
        E.check_token_detector(sample, token, int(worst["feature"]))
    never = sorted(set(range(sample.d_sae)) - set(table["feature"]))
    assert never, "every feature fires on the token: the sample cannot test a silent one"
    assert E.token_detector_scores(sample, token, never[0])["f1"] == 0.0
    with pytest.raises(AssertionError, match="better"):
        E.check_token_detector(sample, token, never[0])
    with pytest.raises(IndexError):
        E.check_token_detector(sample, token, sample.d_sae)


def test_pick_exercise_token_falls_back_to_the_most_common(sample):
    assert E.pick_exercise_token(sample, min_chars=50) == sample.token_counts().index[0]


# ---- tutorial 2 --------------------------------------------------------------------------------


def test_check_dead_latents(capsys):
    density = np.array([0.0, 0.2, 0.0, 0.3])
    assert E.check_dead_latents(lambda d: np.flatnonzero(d == 0), density) is True
    assert E.check_dead_latents(None, density) is None

    def unfinished(d):
        raise NotImplementedError

    assert E.check_dead_latents(unfinished, density) is None
    with pytest.raises(AssertionError, match="Hint"):
        E.check_dead_latents(lambda d: np.flatnonzero(d < 1e-3), density)  # "rare" is not dead
    assert "Not answered yet" in capsys.readouterr().out


def test_check_expansion_config():
    from sae_lens import TopKTrainingSAEConfig

    cfg = make_cfg("topk")
    cfg4 = replace(cfg, sae=TopKTrainingSAEConfig(d_in=D_MODEL, d_sae=4 * D_MODEL, k=8))
    assert E.check_expansion_config(cfg4, d_in=D_MODEL, expansion_factor=4, k=8) is True
    assert E.check_expansion_config(None, d_in=D_MODEL, expansion_factor=4, k=8) is None
    with pytest.raises(AssertionError, match="d_sae"):
        E.check_expansion_config(cfg, d_in=D_MODEL, expansion_factor=4, k=8)
    with pytest.raises(AssertionError, match="TopKTrainingSAEConfig"):
        E.check_expansion_config(make_cfg("standard"), d_in=D_MODEL, expansion_factor=4, k=8)


def test_check_ce_loss_score(capsys):
    metrics = {
        "ce_loss_without_sae": 2.0,
        "ce_loss_with_sae": 2.5,
        "ce_loss_zero_ablation": 7.0,
        "ce_loss_score": 0.9,
    }

    def right(without, with_sae, zero):
        return (zero - with_sae) / (zero - without)

    assert E.check_ce_loss_score(right, metrics) is True
    assert "0.9000" in capsys.readouterr().out
    assert E.check_ce_loss_score(None, metrics) is None

    def unfinished(without, with_sae, zero):
        raise NotImplementedError

    assert E.check_ce_loss_score(unfinished, metrics) is None
    assert "Not answered yet" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Hint"):  # the share of the loss kept, not recovered
        E.check_ce_loss_score(
            lambda without, with_sae, zero: (with_sae - without) / (zero - without), metrics
        )
    with pytest.raises(AssertionError, match="Hint"):  # right on the SAE's losses only
        E.check_ce_loss_score(lambda *losses: 0.9, metrics)
