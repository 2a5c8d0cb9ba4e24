"""Unit tests for utils/interventions/statistics.py (reading tutorial 3's measurements): each
number against a hand computation or scipy."""

from __future__ import annotations

import math

import numpy as np
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


def test_fit_line_checks_its_input_and_works_in_double_precision():
    # half-precision input (activations saved as float16) is fitted in float64: the normal
    # equations by hand on the same values give the same line to double precision
    x = np.array([0.1, 0.7, 1.3, 2.9], dtype=np.float16)
    y = np.array([1.1, 0.3, 2.2, 3.7], dtype=np.float16)
    xs, ys = x.astype(float), y.astype(float)
    slope = ((xs - xs.mean()) * (ys - ys.mean())).sum() / ((xs - xs.mean()) ** 2).sum()
    line = I.fit_line(x, y)
    assert line.slope == pytest.approx(slope, rel=1e-12)
    assert line.intercept == pytest.approx(ys.mean() - slope * xs.mean(), rel=1e-12)
    # numbers in an object column (what DataFrame.T leaves) are read as floats
    objects = pd.Series(list(xs), dtype=object), pd.Series(list(ys), dtype=object)
    assert I.fit_line(*objects).slope == pytest.approx(slope, rel=1e-12)
    with pytest.raises(ValueError, match="1-D and the same length"):
        I.fit_line([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="1-D and the same length"):
        I.fit_line([[0.0, 1.0, 2.0]], [[0.0, 1.0, 2.0]])


def test_mean_difference_edges_by_hand():
    from scipy import stats

    # two values per group is enough: a = 1, 3 (mean 2, var 2), b = 0, 2 (mean 1, var 2)
    gap, low, high, p = I.mean_difference([1.0, 3.0], [0.0, 2.0])
    se, dof = math.sqrt(2 / 2 + 2 / 2), 2.0  # (1 + 1)^2 / (1 / 1 + 1 / 1)
    half = stats.t.ppf(0.975, dof) * se
    assert (gap, low, high) == pytest.approx((1.0, 1.0 - half, 1.0 + half))
    assert p == pytest.approx(2 * stats.t.sf(1.0 / se, dof))
    # float16 input is computed in float64 (a float16 variance would be off in the 4th digit)
    a16 = np.array([0.1, 0.7, 1.3, 2.9], dtype=np.float16)
    b16 = np.array([1.1, 0.3, 2.2], dtype=np.float16)
    a, b = a16.astype(float), b16.astype(float)
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 3
    dof = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    gap = a.mean() - b.mean()
    p = 2 * stats.t.sf(abs(gap) / math.sqrt(va + vb), dof)
    expected = (gap, gap - half, gap + half, p)
    assert I.mean_difference(a16, b16) == pytest.approx(expected, rel=1e-12)
    assert I.mean_difference(b16, a16)[0] == pytest.approx(-gap, rel=1e-12)
    for level in (0.0, 1.0, 1.5, -0.5):
        with pytest.raises(ValueError, match="level must be between 0 and 1"):
            I.mean_difference([1.0, 3.0], [0.0, 2.0], level=level)
    with pytest.raises(ValueError, match="at least 2 values"):
        I.mean_difference([1.0, 2.0], [1.0])


def _bootstrap_by_hand(ratios_by_context, n_boot, seed, level):
    """Resample whole contexts with replacement, take the median of each resample, and read the
    percentile interval: written out here without the code under test."""
    rng = np.random.default_rng(seed)
    medians = []
    for _ in range(n_boot):
        picks = rng.integers(len(ratios_by_context), size=len(ratios_by_context))
        medians.append(np.median(np.concatenate([ratios_by_context[i] for i in picks])))
    tail = 100 * (1 - level) / 2
    return tuple(np.percentile(medians, [tail, 100 - tail]))


def test_ratio_by_regime_bootstrap_against_a_hand_resampling():
    # 30 contexts of one or two ratios: enough distinct resampled medians that the interval's
    # ends move with the tail, the seed and the number of resamples
    draw = np.random.default_rng(1)
    ratios = [np.round(draw.uniform(0.2, 3.0, size=draw.integers(1, 3)), 2) for _ in range(30)]
    contexts = [c for c, r in enumerate(ratios) for _ in r]
    predicted = np.linspace(0.5, 2.0, len(contexts))
    actual = np.concatenate([np.array(r) for r in ratios]) * predicted
    frame = pd.DataFrame({"context": contexts, "predicted": predicted, "actual": actual})
    regimes = pd.Series(["all"] * len(frame))
    by_context = [np.array(r) for r in ratios]
    # the defaults: 2000 resamples, seed 0, a 95 % interval
    row = I.ratio_by_regime(frame, regimes).loc["all"]
    low, high = _bootstrap_by_hand(by_context, 2000, 0, 0.95)
    assert (row["low"], row["high"]) == pytest.approx((low, high), rel=1e-12)
    assert row["low"] < row["median ratio"] < row["high"]
    assert row["median ratio"] == pytest.approx(np.median(np.concatenate(by_context)))
    row = I.ratio_by_regime(frame, regimes, n_boot=500, level=0.8, seed=3).loc["all"]
    assert (row["low"], row["high"]) == pytest.approx(
        _bootstrap_by_hand(by_context, 500, 3, 0.8), rel=1e-12
    )


def test_ratio_by_regime_empty_and_single_pair_regimes():
    import warnings

    frame = pd.DataFrame(
        {
            "context": [0, 0, 1, 1, 2],
            "predicted": [0.0, 0.0, 1.0, 2.0, 4.0],
            "actual": [1.0, 2.0, 3.0, 2.0, 2.0],
        }
    )
    # the empty regime comes first: the regimes after it still get their rows
    regimes = pd.Series(["none", "none", "two", "two", "one"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one pair: no slope without it, and no 0 / 0 warning
        table = I.ratio_by_regime(frame, regimes, n_boot=20)
    assert list(table.index) == ["none", "two", "one"]
    assert table.loc["none", "pairs"] == 0 and table.loc["none", "contexts"] == 0
    assert table.loc["two", "pairs"] == 2 and table.loc["two", "median ratio"] == 2.0
    assert table.loc["two", "slope without largest"] == pytest.approx(3.0)  # (1 * 3) / (1 * 1)
    one = table.loc["one"]
    assert one["pairs"] == 1 and one["median ratio"] == 0.5 and one["slope"] == 0.5
    assert math.isnan(one["slope without largest"])
    columns = ["pairs", "contexts", "pearson", "median ratio", "low", "high", "slope"]
    assert list(table.columns) == [*columns, "slope without largest"]
    # every regime empty: still every column, all NaN but the counts
    nothing = I.ratio_by_regime(frame.assign(predicted=0.0), regimes, n_boot=20)
    assert list(nothing.columns) == [*columns, "slope without largest"]
    assert nothing[columns[2:]].isna().all().all() and (nothing["pairs"] == 0).all()


def test_agreement_by_context_order_single_rows_and_rank_correlation():
    frame = pd.DataFrame(
        {
            "context": [2, 2, 2, 0, 1, 1, 1],
            "probability": [0.2, 0.2, 0.2, 0.7, 0.4, 0.4, 0.4],
            "chosen": ["top", "top", "top", "top", "top", "top", "random"],
            # context 2: actual grows with predicted, but not on a line: Spearman 1, Pearson < 1
            "predicted": [1.0, 2.0, 3.0, 1.0, 1.0, 2.0, 3.0],
            "actual": [1.0, 10.0, 1000.0, 5.0, 1.0, 8.0, 9.0],
        }
    )
    table = I.agreement_by_context(frame)
    assert list(table.index) == [0, 1, 2]  # contexts sorted, whatever order they came in
    assert list(table["probability"]) == [0.7, 0.4, 0.2]
    assert table.loc[2, "spearman"] == pytest.approx(1.0)
    assert table.loc[2, "spearman, top pairs"] == pytest.approx(1.0)
    # context 1: its top pairs are (1, 1) and (2, 8): any two distinct points rank alike
    assert table.loc[1, "spearman"] == pytest.approx(1.0)
    assert table.loc[1, "spearman, top pairs"] == pytest.approx(1.0)
    assert math.isnan(table.loc[0, "spearman"])  # one pair: nothing to rank
