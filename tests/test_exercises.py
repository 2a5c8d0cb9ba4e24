"""Unit tests for utils.exercises: right answers pass, wrong ones fail with a hint, blanks are tolerated."""

from __future__ import annotations

import pytest
from random_models import SAMPLE_TEXTS, build_model, build_sae, build_tokenizer

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


def test_check_token_detector(tmp_path):
    model = build_model(build_tokenizer(tmp_path))
    sample = F.collect_feature_stats(model, build_sae(), SAMPLE_TEXTS, 24, progress=False)
    token = E.pick_exercise_token(sample, min_chars=2)
    assert token in sample.token_counts().index
    table = F.features_for_token(sample, token, k=sample.d_sae)
    best, worst = table.iloc[0], table.iloc[-1]
    scores = E.token_detector_scores(sample, token, int(best["feature"]))
    assert scores["precision"] == pytest.approx(best["precision"])
    assert scores["f1"] == pytest.approx(best["f1"])
    assert E.check_token_detector(sample, token, None) is None
    assert E.check_token_detector(sample, token, int(best["feature"]))
    if worst["f1"] < 0.9 * best["f1"]:
        with pytest.raises(AssertionError, match="better"):
            E.check_token_detector(sample, token, int(worst["feature"]))
    never = [f for f in range(sample.d_sae) if f not in set(table["feature"])]
    if never:
        assert E.token_detector_scores(sample, token, never[0])["f1"] == 0.0
    with pytest.raises(IndexError):
        E.check_token_detector(sample, token, sample.d_sae)


def test_pick_exercise_token_falls_back_to_the_most_common(tmp_path):
    model = build_model(build_tokenizer(tmp_path))
    sample = F.collect_feature_stats(model, build_sae(), SAMPLE_TEXTS, 24, progress=False)
    assert E.pick_exercise_token(sample, min_chars=50) == sample.token_counts().index[0]
