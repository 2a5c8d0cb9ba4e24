"""Unit tests for utils/interventions/statistics.py (reading tutorial 3's measurements): each
number against a hand computation or scipy."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from utils import interventions as I


def test_fit_line_by_hand():
    # the normal equations worked out by hand for x = 0, 1, 2, 3 (mean 1.5) and y (mean 4)
    x = [0.0, 1.0, 2.0, 3.0]
    y = [2.0, 2.0, 6.0, 6.0]
    line = I.fit_line(x, y)
    # slope = sum (x - 1.5)(y - 4) / sum (x - 1.5)^2 = 8 / 5
    assert line.slope == pytest.approx(1.6)
    assert line.intercept == pytest.approx(4 - 1.6 * 1.5)
    residuals = [yi - (1.6 * xi + 1.6) for xi, yi in zip(x, y)]  # 0.4, -1.2, 1.2, -0.4
    assert line.residual_std == pytest.approx(math.sqrt(sum(r * r for r in residuals) / 2))
    assert line(10.0) == pytest.approx(17.6) and line.n == 4
    with pytest.raises(ValueError, match="at least 3 points"):
        I.fit_line([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="every x is the same"):
        I.fit_line([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])


def test_mean_difference_against_scipy_and_by_hand():
    from scipy import stats

    a, b = [1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 1.0]
    gap, low, high, p = I.mean_difference(a, b)
    assert gap == pytest.approx(2.5 - 0.5)
    # Welch's test as scipy computes it, independently of the code under test
    assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    # by hand: variances of the means 1.6667 / 4 and 0.25 / 3; Welch-Satterthwaite dof
    va, vb = (5 / 3) / 4, 0.25 / 3
    dof = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert (low, high) == pytest.approx((2.0 - half, 2.0 + half))
    assert I.mean_difference(a, b, level=0.5)[2] < high  # a lower level, a narrower interval
    with pytest.raises(ValueError, match="at least 2 values"):
        I.mean_difference([1.0], [1.0, 2.0])


def test_ratio_by_regime_by_hand():
    # two regimes; "b" has one pair that alone sets its least-squares slope
    frame = pd.DataFrame(
        {
            "context": [0, 0, 1, 1, 2, 2, 2],
            "predicted": [1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 10.0],
            "actual": [1.0, 2.0, 1.0, 2.0, 2.0, 2.0, 100.0],
        }
    )
    regimes = pd.Series(["a", "a", "a", "a", "b", "b", "b"])
    table = I.ratio_by_regime(frame, regimes, n_boot=200)
    assert table.loc["a", "pairs"] == 4 and table.loc["a", "contexts"] == 2
    assert table.loc["a", "median ratio"] == 1.0 and table.loc["a", "slope"] == pytest.approx(1.0)
    assert table.loc["a", "low"] == table.loc["a", "high"] == 1.0  # every ratio is 1
    # b: ratios 2, 2, 10 -> median 2; slope (2 + 2 + 1000) / (1 + 1 + 100); without the largest
    # predicted pair, (2 + 2) / 2
    assert table.loc["b", "median ratio"] == 2.0
    assert table.loc["b", "slope"] == pytest.approx(1004 / 102)
    assert table.loc["b", "slope without largest"] == pytest.approx(2.0)
    # one context only: resampling contexts gives that context's median every time
    assert table.loc["b", "low"] == table.loc["b", "high"] == 2.0
    with pytest.raises(ValueError, match="regime labels"):
        I.ratio_by_regime(frame, regimes[:3])
    # a regime whose pairs are all predicted at 0 has no ratio: NaNs, not an error
    zero = frame.assign(predicted=[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 10.0])
    empty = I.ratio_by_regime(zero, regimes, n_boot=10).loc["a"]
    assert empty["pairs"] == 0 and empty[["median ratio", "low", "slope"]].isna().all()


def test_agreement_by_context_by_hand():
    frame = pd.DataFrame(
        {
            "context": [0, 0, 0, 0, 1, 1, 1, 1],
            "probability": [0.5] * 4 + [0.9] * 4,
            "chosen": ["top", "top", "top", "random"] * 2,
            "predicted": [3.0, 2.0, 1.0, 0.0, 3.0, 2.0, 1.0, 0.0],
            # context 0 ranks every pair right; context 1 reverses its top three
            "actual": [3.0, 2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 0.0],
        }
    )
    table = I.agreement_by_context(frame)
    assert table.loc[0, "spearman"] == pytest.approx(1.0)
    assert table.loc[0, "spearman, top pairs"] == pytest.approx(1.0)
    assert table.loc[1, "spearman, top pairs"] == pytest.approx(-1.0)
    # over all four pairs of context 1, ranks 4,3,2,1 vs 2,3,4,1: rho = 1 - 6*(4+0+4+0)/(4*15)
    assert table.loc[1, "spearman"] == pytest.approx(1 - 6 * 8 / 60)
    assert table.loc[1, "probability"] == 0.9
