"""Tutorial 4's figures of its own measurements, in the book's template and palette
(:mod:`utils.plots`): the synthetic model (firing rates, overlaps), each true feature's best latent,
the sparsity frontier, the spread over seeds (dot and range) and absorption per parent and per
architecture. Each function returns a plotly ``Figure``; the notebook calls ``.show()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..plots import LAYOUT, PALETTE
from .metrics import OUTCOMES

#: The colour of the roles in the hierarchy, and of a dotted reference line.
ROLE_COLOURS = {"parent": PALETTE[1], "child": PALETTE[4], "other": PALETTE[0]}
REFERENCE = "grey"


def _colour(i: int) -> str:
    """The book's ``i``-th colour (:data:`utils.plots.PALETTE`), cycling."""
    return PALETTE[i % len(PALETTE)]


def _names(frame: pd.DataFrame, column: str = "SAE") -> list[str]:
    """The distinct values of ``column`` in order of first appearance."""
    return list(dict.fromkeys(frame[column]))


def firing_rate_figure(firing_rate: torch.Tensor, role: Sequence[str]) -> go.Figure:
    """Each true feature's firing rate (``[N]``) against its index, log scale, coloured by its
    ``role`` in the hierarchy (``"parent"``, ``"child"`` or ``"other"``, one per feature)."""
    rates = firing_rate.detach().cpu().numpy()
    if len(role) != len(rates):
        raise ValueError(f"role has {len(role)} entries for {len(rates)} features.")
    fig = go.Figure()
    for name in dict.fromkeys(role):
        index = [i for i, r in enumerate(role) if r == name]
        fig.add_scatter(
            x=index,
            y=rates[index],
            mode="markers",
            name=name,
            marker_color=ROLE_COLOURS.get(name, _colour(len(fig.data))),
            hovertemplate=f"feature %{{x}} ({name})<br>firing rate %{{y:.4f}}<extra></extra>",
        )
    fig.update_yaxes(type="log", title_text="firing rate")
    fig.update_xaxes(title_text="feature index")
    fig.update_layout(**LAYOUT, title="How often each true feature fires (Zipfian)")
    fig.update_layout(legend_title_text="role")
    return fig


def pair_cosine_figure(true_features: torch.Tensor, bins: int = 80) -> go.Figure:
    """Histogram (log counts) of the cosine between every pair of true features ``[N, d]``.

    Binned here, so that the page stores ``bins`` bars rather than every pair.
    """
    unit = torch.nn.functional.normalize(true_features.detach().cpu().float(), dim=1)
    n = unit.shape[0]
    pairs = (unit @ unit.T)[torch.ones(n, n, dtype=torch.bool).triu(diagonal=1)]
    low, high = pairs.min().item(), pairs.max().item()
    counts = torch.histc(pairs, bins=bins, min=low, max=high)
    width = (high - low) / bins
    centres = low + (torch.arange(bins) + 0.5) * width
    fig = go.Figure(
        go.Bar(
            x=centres.numpy(),
            y=counts.numpy(),
            width=width,
            marker_color=PALETTE[0],
            hovertemplate="cosine %{x:.3f}<br>%{y:.0f} pairs<extra></extra>",
        )
    )
    fig.update_yaxes(type="log", title_text="pairs")
    fig.update_xaxes(title_text="cosine similarity between two true features")
    fig.update_layout(
        **LAYOUT,
        title=f"{n} features in {unit.shape[1]} dimensions: "
        f"all {len(pairs):,} pairs overlap a little",
    )
    return fig


def detection_figure(detection: pd.DataFrame, title: str) -> go.Figure:
    """Two panels, one dot per true feature, coloured by ``role``: the cosine of its best latent
    against its firing rate, and that latent's recall against the cosine.

    ``detection`` is :func:`utils.ground_truth.feature_detection_table`'s table with a ``role``
    column added.
    """
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.12,
        subplot_titles=("direction: cosine to its best latent", "detection: recall"),
    )
    for name in _names(detection, "role"):
        rows = detection[detection["role"] == name]
        text = [
            f"feature {f} ({name}), latent {latent}<br>precision {p:.2f}"
            for f, latent, p in zip(rows["feature"], rows["latent"], rows["precision"])
        ]
        for col, (x, y) in enumerate((("firing_rate", "cos"), ("cos", "recall")), start=1):
            fig.add_scatter(
                x=rows[x],
                y=rows[y],
                mode="markers",
                name=name,
                legendgroup=name,
                showlegend=col == 1,
                marker_color=ROLE_COLOURS.get(name, _colour(col)),
                text=text,
                hovertemplate="%{text}<br>x %{x:.3f}<br>y %{y:.3f}<extra></extra>",
                row=1,
                col=col,
            )
    fig.update_xaxes(type="log", title_text="true feature's firing rate", row=1, col=1)
    fig.update_yaxes(title_text="cosine to its best latent", row=1, col=1)
    fig.update_xaxes(title_text="cosine to its best latent", row=1, col=2)
    fig.update_yaxes(title_text="recall of that latent", range=[0, 1.05], row=1, col=2)
    fig.update_layout(**LAYOUT, title=title, height=420)
    fig.update_layout(legend_title_text="role")
    return fig


def frontier_figure(
    frontier: pd.DataFrame,
    panels: dict[str, str],
    title: str,
    *,
    true_l0: float | None = None,
    lines: dict[str, tuple[float, str]] | None = None,
) -> go.Figure:
    """One panel per metric against L0 (log scale), one line per SAE architecture.

    ``frontier`` has columns ``SAE``, ``L1 or k``, ``l0`` and the ``panels``' metrics
    (``{column: panel title}``). ``true_l0`` draws a dotted vertical line; ``lines`` maps a
    column to a horizontal reference ``(y, label)`` drawn dashed in its panel.
    """
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels.values()))
    for i, name in enumerate(_names(frontier)):
        group = frontier[frontier["SAE"] == name].sort_values("l0")
        for col, metric in enumerate(panels, start=1):
            fig.add_scatter(
                x=group["l0"],
                y=group[metric],
                mode="lines+markers",
                name=name,
                legendgroup=name,
                line_color=_colour(i),
                showlegend=col == 1,
                text=[f"{name}, L1 or k = {v:g}" for v in group["L1 or k"]],
                hovertemplate="%{text}<br>L0 %{x:.2f}<br>%{y:.3f}<extra></extra>",
                row=1,
                col=col,
            )
            fig.update_yaxes(title_text=panels[metric], row=1, col=col)
    if true_l0 is not None:
        fig.add_vline(x=true_l0, line_dash="dot", line_color=REFERENCE)
    for metric, (y, label) in (lines or {}).items():
        col = list(panels).index(metric) + 1
        fig.add_hline(
            y=y, line_dash="dash", line_color=REFERENCE, annotation_text=label, row=1, col=col
        )
    fig.update_xaxes(type="log", title_text="L0 (latents active per sample)")
    fig.update_layout(**LAYOUT, title=title, height=420)
    return fig


def seed_scatter_figure(by_seed: pd.DataFrame, x: str, y: str, title: str) -> go.Figure:
    """One dot per (SAE, seed): ``y`` against ``x``, a colour per SAE and a symbol per seed."""
    fig = go.Figure()
    symbols = ("circle", "square", "diamond", "cross", "x", "triangle-up")
    for i, name in enumerate(_names(by_seed)):
        rows = by_seed[by_seed["SAE"] == name]
        fig.add_scatter(
            x=rows[x],
            y=rows[y],
            mode="markers",
            name=name,
            marker={
                "color": _colour(i),
                "size": 11,
                "symbol": [symbols[int(s) % len(symbols)] for s in rows["seed"]],
            },
            text=[f"{name}, seed {s}" for s in rows["seed"]],
            hovertemplate=f"%{{text}}<br>{x} %{{x:.3f}}<br>{y} %{{y:.3f}}<extra></extra>",
        )
    fig.update_xaxes(title_text=x.replace("_", " "))
    fig.update_yaxes(title_text=y.replace("_", " ").replace("mcc", "MCC"))
    fig.update_layout(**LAYOUT, title=title + " (symbol: seed)")
    return fig


def seed_spread_figure(frame: pd.DataFrame, metrics: dict[str, str], title: str) -> go.Figure:
    """Dot and range over seeds: one panel per metric (``{column: label}``), one row per SAE.

    ``frame`` has one row per (``SAE``, ``seed``). Each SAE gets a line from its lowest to its
    highest seed, a small dot per seed and a large dot at the mean.
    """
    names = _names(frame)
    # a long label breaks after its colon, so that neighbouring panels' titles do not overlap
    titles = [m.replace(": ", ":<br>") if len(m) > 20 else m for m in metrics.values()]
    fig = make_subplots(rows=1, cols=len(metrics), shared_yaxes=True, subplot_titles=titles)
    for col, metric in enumerate(metrics, start=1):
        for i, name in enumerate(names):
            rows = frame[frame["SAE"] == name]
            values = rows[metric].astype(float)
            colour = _colour(i)
            fig.add_scatter(
                x=[values.min(), values.max()],
                y=[name, name],
                mode="lines",
                line={"color": colour, "width": 3},
                showlegend=False,
                hoverinfo="skip",
                row=1,
                col=col,
            )
            fig.add_scatter(
                x=values,
                y=[name] * len(values),
                mode="markers",
                marker={"color": colour, "size": 7, "symbol": "line-ns-open"},
                showlegend=False,
                text=[f"{name}, seed {s}" for s in rows["seed"]],
                hovertemplate=f"%{{text}}<br>{metrics[metric]} %{{x:.3f}}<extra></extra>",
                row=1,
                col=col,
            )
            fig.add_scatter(
                x=[values.mean()],
                y=[name],
                mode="markers",
                marker={"color": colour, "size": 12},
                name=name,
                legendgroup=name,
                showlegend=col == 1,
                hovertemplate=(
                    f"{name}: mean %{{x:.3f}} over {len(values)} seeds "
                    f"[{values.min():.3f}, {values.max():.3f}]<extra></extra>"
                ),
                row=1,
                col=col,
            )
    for col, label in enumerate(metrics.values(), start=1):
        fig.update_xaxes(title_text=label, row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    fig.update_yaxes(title_text="SAE", row=1, col=1)
    fig.update_layout(
        **LAYOUT,
        title=title + " (dot: mean; line: lowest to highest seed)",
        height=160 + 45 * len(names),
        showlegend=False,
    )
    fig.update_layout(
        margin={**LAYOUT["margin"], "t": 100 if titles != list(metrics.values()) else 70}
    )
    return fig


def absorption_distribution_figure(tables: dict[tuple[str, int], pd.DataFrame]) -> go.Figure:
    """Per parent, every seed: the firing-ratio absorption and the carried fraction, as a box
    with every parent's dot, one per SAE. ``tables`` maps ``(SAE, seed)`` to an
    :func:`utils.ground_truth.absorption_table`."""
    panels = {
        "absorption": "firing-ratio absorption",
        "carried_with_child": "carried with a child (Chanin et al.)",
    }
    fig = make_subplots(rows=1, cols=2, subplot_titles=list(panels.values()))
    names = list(dict.fromkeys(name for name, _ in tables))
    for i, name in enumerate(names):
        rows = pd.concat([t.assign(seed=s) for (n, s), t in tables.items() if n == name])
        text = [f"{name}, parent {p}, seed {s}" for p, s in zip(rows["parent"], rows["seed"])]
        for col, metric in enumerate(panels, start=1):
            fig.add_trace(
                go.Box(
                    y=rows[metric],
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    marker_color=_colour(i),
                    boxpoints="all",
                    jitter=0.5,
                    pointpos=0,
                    text=text,
                    hovertemplate="%{text}<br>%{y:.2f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.add_hline(y=0, line_dash="dot", line_color=REFERENCE)
    fig.update_xaxes(title_text="SAE")
    fig.update_yaxes(title_text="per parent", row=1, col=1)
    fig.update_layout(
        **LAYOUT,
        title="Absorption per parent feature, every seed (each dot is one parent)",
        height=420,
        showlegend=False,
    )
    return fig


def absorption_outcomes_figure(outcomes: pd.DataFrame) -> go.Figure:
    """A stacked bar per SAE: on the samples where a parent is active with a child, the share
    where its latent fires, is silent but carried by other latents, or is silent and lost.

    ``outcomes`` is :func:`utils.ground_truth.absorption_outcomes`'s table (one row per SAE and
    seed); the bars are means over the seeds, the hover text gives each seed's value.
    """
    names = _names(outcomes)
    fig = go.Figure()
    for j, label in enumerate(OUTCOMES.values()):
        means, text = [], []
        for name in names:
            values = outcomes.loc[outcomes["SAE"] == name, label].to_numpy(dtype=float)
            means.append(float(np.mean(values)))
            text.append(", ".join(f"{v:.2f}" for v in values))
        fig.add_bar(
            x=names,
            y=means,
            name=label,
            marker_color=(PALETTE[2], PALETTE[4], PALETTE[1])[j],
            customdata=text,
            hovertemplate=(
                f"%{{x}}: {label}<br>mean %{{y:.2f}} (per seed: %{{customdata}})<extra></extra>"
            ),
        )
    fig.update_yaxes(title_text="share of parent-and-child samples", range=[0, 1])
    fig.update_xaxes(title_text="SAE")
    fig.update_layout(
        **LAYOUT,
        barmode="stack",
        title="What happens to a parent when a child is active (mean over parents and seeds)",
        legend_title_text="the parent's latent",
    )
    return fig
