"""Reading tutorial 3's measurements without resting a claim on one point: a line through a
control group's gains (:func:`fit_line`), an interval for the gap between two groups
(:func:`mean_difference`), and, for attribution against real ablation, robust ratios with
an interval from resampling whole contexts (:func:`ratio_by_regime`) and the agreement inside each
context (:func:`agreement_by_context`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Line:
    """A least-squares line ``y = slope * x + intercept`` and the spread of the points about it.

    Attributes:
        slope, intercept: the line.
        residual_std: standard deviation of the residuals ``y - line(x)`` (``n - 2`` degrees of
            freedom: two parameters were fitted).
        n: points fitted.
    """

    slope: float
    intercept: float
    residual_std: float
    n: int

    def __call__(self, x: float | np.ndarray | pd.Series) -> float | np.ndarray | pd.Series:
        return self.slope * x + self.intercept


def fit_line(x: Sequence[float] | pd.Series, y: Sequence[float] | pd.Series) -> Line:
    """The least-squares line through ``(x, y)`` (at least 3 points, not all at one ``x``)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D and the same length, got {x.shape} and {y.shape}")
    if len(x) < 3:
        raise ValueError(f"need at least 3 points to fit a line and see its spread, got {len(x)}")
    if np.ptp(x) == 0:
        raise ValueError("every x is the same: no line fits")
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (slope * x + intercept)
    spread = float(np.sqrt((residuals**2).sum() / (len(x) - 2)))
    return Line(float(slope), float(intercept), spread, len(x))


def mean_difference(
    a: Sequence[float] | pd.Series,
    b: Sequence[float] | pd.Series,
    level: float = 0.95,
) -> tuple[float, float, float, float]:
    """``mean(a) - mean(b)`` with Welch's interval for it (unequal variances, t with
    Welch-Satterthwaite degrees of freedom) and the two-sided p-value of "no difference":
    ``(difference, low, high, p)``. With a handful of values per group this is wider, and more
    honest, than a percentile bootstrap, which underestimates the spread of small samples."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 values in each group, got {len(a)} and {len(b)}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    difference = float(a.mean() - b.mean())
    half = float(stats.t.ppf((1 + level) / 2, dof)) * se
    p = float(2 * stats.t.sf(abs(difference) / se, dof))
    return difference, difference - half, difference + half, p


def least_squares_slope(predicted: pd.Series, actual: pd.Series) -> float:
    """The slope of the least-squares line through the origin, ``sum(p * a) / sum(p * p)``."""
    return float((predicted * actual).sum() / (predicted * predicted).sum())


def ratio_by_regime(
    frame: pd.DataFrame,
    regimes: pd.Series,
    n_boot: int = 2_000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """How far real ablation effects are from the linear estimate, per regime, with statistics no
    single pair can rule.

    ``frame`` is a :func:`~utils.interventions.compare_attribution_with_ablation` table and
    ``regimes`` labels its rows (one partition, e.g. :func:`attribution_regime`). Per regime:
    ``pairs``, ``contexts``, ``pearson``, ``median ratio`` (the median of ``actual /
    predicted`` over its pairs: 1 means right, 2 means real effects twice the estimate), its
    percentile bootstrap interval ``low``/``high`` (whole contexts resampled with replacement,
    since pairs of one context share its prediction), the least-squares slope through the origin
    and that slope without the regime's largest ``|predicted|`` pair (how much one point moves
    it). Pairs predicted at exactly 0 are left out of the ratios; a regime with no other pair
    gets a row of NaNs (0 pairs).
    """
    if len(frame) != len(regimes):
        raise ValueError(f"{len(regimes)} regime labels for {len(frame)} rows")
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2 * 100
    rows = {}
    for regime in pd.unique(regimes):
        group = frame[(regimes == regime).to_numpy()]
        group = group[group["predicted"] != 0]
        if group.empty:  # nothing to take a ratio of: a row of NaNs, not an error
            rows[regime] = {"pairs": 0, "contexts": 0}
            continue
        ratio = group["actual"] / group["predicted"]
        by_context = [r.to_numpy() for _, r in ratio.groupby(group["context"])]
        boots = [
            np.median(
                np.concatenate(
                    [by_context[i] for i in rng.integers(len(by_context), size=len(by_context))]
                )
            )
            for _ in range(n_boot)
        ]
        low, high = np.percentile(boots, [tail, 100 - tail])
        rest = group.drop(index=group["predicted"].abs().idxmax())
        rows[regime] = {
            "pairs": len(group),
            "contexts": len(by_context),
            "pearson": group["predicted"].corr(group["actual"]),
            "median ratio": float(ratio.median()),
            "low": float(low),
            "high": float(high),
            "slope": least_squares_slope(group["predicted"], group["actual"]),
            "slope without largest": least_squares_slope(rest["predicted"], rest["actual"])
            if len(rest)
            else float("nan"),
        }
    columns = ["pairs", "contexts", "pearson", "median ratio", "low", "high", "slope"]
    return pd.DataFrame(rows).T.reindex(columns=[*columns, "slope without largest"])


def agreement_by_context(frame: pd.DataFrame, top: str = "top") -> pd.DataFrame:
    """Per context of a :func:`~utils.interventions.compare_attribution_with_ablation` table:
    the Spearman correlation of ``predicted`` with ``actual`` over all its ablated pairs and over
    its ``chosen == top`` pairs alone (the top pairs are similar in size, so ranking them is the
    harder test: random pairs near zero make any ranking look good), and its ``probability``."""
    rows = []
    for context, group in frame.groupby("context", sort=True):
        best = group[group["chosen"] == top]
        rows.append(
            {
                "context": context,
                "probability": float(group["probability"].iloc[0]),
                "spearman": group["predicted"].corr(group["actual"], method="spearman"),
                "spearman, top pairs": best["predicted"].corr(best["actual"], method="spearman"),
            }
        )
    return pd.DataFrame(rows).set_index("context")
