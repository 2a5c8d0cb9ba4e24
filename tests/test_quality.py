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
    with pytest.raises(ValueError, match=r"'ignore'.*\['raise', 'warn'\]"):
        assert_quality(False, "x")
