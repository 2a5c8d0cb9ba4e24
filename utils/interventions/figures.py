"""Tutorial 3's figures of its own measurements: steering curves with the controls' spread, gain
against the selection score, and attribution against real ablation on signed-log axes. In the
book's template, layout and palette (:mod:`utils.plots`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..plots import LAYOUT, PALETTE
from .attribution import attribution_regime


def _palette(i: int) -> str:
    """The book's ``i``-th colour (:data:`utils.plots.PALETTE`), cycling."""
    return PALETTE[i % len(PALETTE)]


def _transparent(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def steering_spread_figure(curves: pd.DataFrame, lines: str, title: str):
    """Log-probability gain against steering scale, with the spread of each control.

    ``curves`` has columns ``group``, ``direction``, ``scale`` and ``logprob_gain`` (one row per
    direction and scale). The directions of group ``lines`` are drawn one line each; every other
    group as its mean (a dashed line) inside a band from its lowest to its highest direction.
    """
    fig = go.Figure()
    groups = curves.groupby("group", sort=False)
    for i, (group, rows) in enumerate(groups):
        color = _palette(i)
        if group == lines:  # its first line in the group's colour, the others after every group's
            for j, (name, line) in enumerate(rows.groupby("direction", sort=False)):
                fig.add_trace(
                    go.Scatter(
                        x=line["scale"],
                        y=line["logprob_gain"],
                        mode="lines+markers",
                        name=str(name),
                        line={"color": _palette(len(groups) + j - 1) if j else color},
                        hovertemplate="c=%{x}<br>gain %{y:.2f} nats<extra>"
                        + str(name)
                        + "</extra>",
                    )
                )
            continue
        stats = rows.groupby("scale")["logprob_gain"].agg(["mean", "min", "max"]).reset_index()
        fig.add_trace(
            go.Scatter(
                x=list(stats["scale"]) + list(stats["scale"])[::-1],
                y=list(stats["max"]) + list(stats["min"])[::-1],
                fill="toself",
                fillcolor=_transparent(color, 0.15),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=str(group),
            )
        )
        n = rows["direction"].nunique()
        fig.add_trace(
            go.Scatter(
                x=stats["scale"],
                y=stats["mean"],
                mode="lines+markers",
                name=f"{group} (mean, band: min-max of {n})",
                line={"color": color, "dash": "dash"},
                legendgroup=str(group),
                hovertemplate="c=%{x}<br>mean gain %{y:.2f} nats<extra>" + str(group) + "</extra>",
            )
        )
    fig.update_layout(
        **LAYOUT,
        title=title,
        xaxis_title="steering scale c (fraction of the activation's norm)",
        yaxis_title="gain in mean log-prob of scored tokens (nats)",
        legend={"font": {"size": 11}},
    )
    return fig


def steering_gain_scatter(
    table: pd.DataFrame,
    title: str,
    line: Any = None,
    line_name: str = "trend",
    marked: str | None = None,
):
    """Each direction's gain at one scale against its concentration score, one colour per group.

    ``table`` has columns ``group``, ``direction``, ``concentration`` and ``logprob_gain``.
    ``line``: a fitted :class:`~utils.interventions.statistics.Line`, drawn across the
    concentrations of every point (dotted) and named ``line_name``; ``marked``: a group whose
    points are drawn larger, as diamonds, so they stand out.
    """
    fig = go.Figure()
    for i, (group, rows) in enumerate(table.groupby("group", sort=False)):
        big = group == marked
        fig.add_trace(
            go.Scatter(
                x=rows["concentration"],
                y=rows["logprob_gain"],
                mode="markers",
                name=str(group),
                marker={
                    "color": _palette(i),
                    "size": 13 if big else 8,
                    "symbol": "diamond" if big else "circle",
                },
                customdata=rows[["direction"]].to_numpy(),
                hovertemplate="%{customdata[0]}<br>concentration %{x:.2f}<br>gain %{y:.2f} nats"
                "<extra></extra>",
            )
        )
    if line is not None:
        ends = [float(table["concentration"].min()), float(table["concentration"].max())]
        fig.add_trace(
            go.Scatter(
                x=ends,
                y=[float(line(x)) for x in ends],
                mode="lines",
                name=line_name,
                line={"color": "#777", "dash": "dot"},
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        **LAYOUT,
        title=title,
        xaxis_title="concentration of the direct logit effects (the rule's score)",
        yaxis_title="gain in mean log-prob of its own top tokens (nats)",
        legend={"font": {"size": 11}},
    )
    return fig


def signed_log(values: Any, linear_below: float) -> Any:
    """``sign(v) * log10(1 + |v| / linear_below)``: a symmetric log scale that keeps 0 at 0, is
    close to linear for ``|v|`` below ``linear_below`` and logarithmic above it (matplotlib calls
    this a "symlog" axis; plotly has none). Works on floats, numpy arrays and pandas series."""
    return np.sign(values) * np.log10(1 + np.abs(values) / linear_below)


def _signed_log_ticks(largest: float, linear_below: float) -> tuple[list[float], list[str]]:
    """Tick positions and labels for a :func:`signed_log` axis up to ``largest``: 0 and
    ``±10^e`` for every power of ten from ``linear_below`` up."""
    low = math.floor(math.log10(linear_below))
    high = math.ceil(math.log10(max(largest, linear_below)))
    powers = [10.0**e for e in range(low, high + 1)]
    values = [-p for p in reversed(powers)] + [0.0] + powers
    return [float(signed_log(v, linear_below)) for v in values], [f"{v:g}" for v in values]


def attribution_scatter(
    frame: pd.DataFrame, title: str, large_share: float = 0.3, confident: float = 0.8
):
    """Predicted (gradient x activation) against actual ablation effect, one colour per regime
    (:func:`attribution_regime`), with the line y = x, on signed-log axes (:func:`signed_log`)
    so that pairs with effects near zero spread out instead of piling on one dot. The linear
    part of the axes ends at the 5th percentile of the non-zero ``|effects|``."""
    values = pd.concat([frame["predicted"], frame["actual"]]).abs()
    nonzero = values[values > 0]
    linear_below = 10.0 ** math.floor(math.log10(nonzero.quantile(0.05))) if len(nonzero) else 1.0
    largest = float(values.max()) if len(values) else 1.0
    ticks, labels = _signed_log_ticks(largest, linear_below)
    edge = float(signed_log(largest, linear_below))
    regimes = attribution_regime(frame, large_share, confident)
    fig = go.Figure(
        go.Scatter(
            x=[-edge, edge],
            y=[-edge, edge],
            mode="lines",
            name="y = x",
            line={"color": "#999", "dash": "dot"},
        )
    )
    order = ["neither", f"share of norm > {large_share:g}", f"p > {confident:g}", "both"]
    for i, regime in enumerate(order):
        rows = frame[regimes == regime]
        if not len(rows):
            continue
        fig.add_trace(
            go.Scatter(
                x=signed_log(rows["actual"], linear_below),
                y=signed_log(rows["predicted"], linear_below),
                mode="markers",
                name=f"{regime} ({len(rows)})",
                marker={"color": _palette(i), "size": 6, "opacity": 0.7},
                customdata=rows[
                    ["latent", "position", "actual", "predicted", "probability", "share_of_norm"]
                ].to_numpy(),
                hovertemplate="latent %{customdata[0]} at position %{customdata[1]}<br>"
                "actual %{customdata[2]:.2g}, predicted %{customdata[3]:.2g}<br>"
                "p %{customdata[4]:.2f}, share of norm %{customdata[5]:.2f}<extra></extra>",
            )
        )
    axis = {"tickvals": ticks, "ticktext": labels, "zeroline": True}
    fig.update_layout(
        **LAYOUT,
        title=title,
        xaxis={**axis, "title": "actual change in log p(correct token) when ablated (nats)"},
        yaxis={**axis, "title": "predicted by gradient x activation (nats)"},
        legend={"font": {"size": 11}},
    )
    return fig
