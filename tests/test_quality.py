"""utils.quality: the one mark for claims that only trained weights meet."""

from __future__ import annotations

import pytest

from utils.quality import QUALITY_ENV_VAR, QUALITY_PREFIX, QualityCheckError, assert_quality


def test_a_true_claim_passes_silently(capsys, monkeypatch):
    monkeypatch.delenv(QUALITY_ENV_VAR, raising=False)
    assert_quality(0.9 >= 0.7, "explained variance 0.90 >= 0.7")
    assert capsys.readouterr().out == ""


def test_a_false_claim_raises_an_assertion_error_by_default(monkeypatch):
    monkeypatch.delenv(QUALITY_ENV_VAR, raising=False)
    with pytest.raises(AssertionError, match="explained variance 0.10 >= 0.7"):
        assert_quality(0.1 >= 0.7, "explained variance 0.10 >= 0.7")
    with pytest.raises(QualityCheckError):
        assert_quality(False, "anything")


def test_warn_mode_prints_the_claim_and_goes_on(capsys, monkeypatch):
    monkeypatch.setenv(QUALITY_ENV_VAR, "warn")
    assert_quality(False, "CE loss recovered 0.12 >= 0.7")
    assert capsys.readouterr().out.strip() == f"{QUALITY_PREFIX} CE loss recovered 0.12 >= 0.7"


def test_an_unknown_mode_is_named_in_the_error(monkeypatch):
    monkeypatch.setenv(QUALITY_ENV_VAR, "ignore")
    with pytest.raises(ValueError, match=r"'ignore'.*\['raise', 'warn'\] \(or leave it unset"):
        assert_quality(False, "x")


def test_tensor_and_numpy_conditions_are_judged_by_their_truth(capsys, monkeypatch):
    """Tutorials pass comparisons of tensors and numpy numbers, not Python bools."""
    import numpy as np
    import torch

    monkeypatch.delenv(QUALITY_ENV_VAR, raising=False)
    assert_quality(torch.tensor(0.9) >= 0.7, "a 0-d torch bool, true")
    assert_quality(np.float64(0.9) >= 0.7, "a numpy bool, true")
    assert_quality((torch.tensor([0.8, 0.9]) > 0.7).all(), "torch .all(), true")
    assert capsys.readouterr().out == ""
    with pytest.raises(QualityCheckError, match="a 0-d torch bool, false"):
        assert_quality(torch.tensor(0.1) >= 0.7, "a 0-d torch bool, false")
    with pytest.raises(QualityCheckError, match="a numpy bool, false"):
        assert_quality(np.float64(0.1) >= 0.7, "a numpy bool, false")


@pytest.mark.parametrize("written", ["WARN", " Warn ", "warn"])
def test_the_mode_ignores_case_and_spaces(capsys, monkeypatch, written):
    monkeypatch.setenv(QUALITY_ENV_VAR, written)
    assert_quality(False, "EV 0.10 >= 0.7")
    assert capsys.readouterr().out.strip() == f"{QUALITY_PREFIX} EV 0.10 >= 0.7"
