"""Tutorial 5's figures: the attribution graph (interactive, works on the static site: plain
plotly) and the graph's predictions against real ablations. In the book's template and palette."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..plots import LAYOUT, PALETTE
from .pruning import PrunedGraph
from .transcoders import TrainingRun

KIND_COLORS = {
    "embedding": PALETTE[2],
    "latent": PALETTE[0],
    "error": "#999999",
    "bias": "#bbbbbb",
    "target": PALETTE[4],
}
POSITIVE, NEGATIVE = PALETTE[0], PALETTE[1]


def _node_xy(nodes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """x: the position, spread within the position's column when a row holds several nodes;
    y: the row (inputs 0, layer L at L + 1, the target on top)."""
    rows = np.where(nodes["kind"].isin(["embedding", "bias"]), 0, nodes["layer"] + 1)
    x = nodes["position"].to_numpy(dtype=float).copy()
    for _, group in nodes.assign(row=rows).groupby(["row", "position"]):
        n = len(group)
        if n > 1:
            offsets = np.linspace(-0.35, 0.35, n)
            x[nodes.index.get_indexer(group.index)] += offsets
    return x, rows.astype(float)


def graph_figure(
    pruned: PrunedGraph, hover: Mapping[int, str] | None = None, title: str | None = None
) -> go.Figure:
    """The pruned graph: rows are the inputs, each layer and the target, columns the prompt's
    positions; an edge's width is its weight's size (blue adds to its target, red subtracts), a
    node's size its influence on the target. ``hover`` adds text to nodes by index (e.g. a latent's
    top tokens)."""
    graph = pruned.graph
    keep = pruned.node_mask.numpy()
    nodes = graph.nodes[keep]
    x_all = np.zeros(graph.n_nodes)
    y_all = np.zeros(graph.n_nodes)
    x, y = _node_xy(nodes)
    x_all[keep], y_all[keep] = x, y
    fig = go.Figure()
    targets, sources = pruned.edge_mask.nonzero(as_tuple=True)
    weights = graph.adjacency[targets, sources]
    biggest = float(weights.abs().max()) if len(weights) else 1.0
    for t, s, w in zip(targets.tolist(), sources.tolist(), weights.tolist()):
        fig.add_trace(
            go.Scatter(
                x=[x_all[s], x_all[t]],
                y=[y_all[s], y_all[t]],
                mode="lines",
                line=dict(width=0.5 + 6 * abs(w) / biggest, color=POSITIVE if w > 0 else NEGATIVE),
                opacity=0.55,
                hoverinfo="skip",
                showlegend=False,
            )
        )
    influence = pruned.influence.numpy()
    for kind, color in KIND_COLORS.items():
        rows = nodes[nodes["kind"] == kind]
        if rows.empty:
            continue
        idx = rows.index.to_numpy()
        text = []
        for i in idx:
            node = graph.nodes.loc[i]
            into = graph.adjacency[i]
            line = (
                f"<b>{node['label']}</b> at {graph.str_tokens[int(node['position'])]!r}"
                f" (position {int(node['position'])})<br>value {node['value']:.3g}"
            )
            if kind != "target":
                line += f", influence {influence[i]:.3f}"
            if kind in ("latent", "target"):
                line += f"<br>input from {int((into != 0).sum())} nodes"
            if hover and i in hover:
                line += "<br>" + hover[i]
            text.append(line)
        size = 10 + 40 * np.sqrt(np.clip(influence[idx], 0, None))
        if kind == "target":
            size = np.full(len(idx), 24.0)
        fig.add_trace(
            go.Scatter(
                x=x_all[idx],
                y=y_all[idx],
                mode="markers",
                marker=dict(size=size, color=color, line=dict(width=1, color="white")),
                name=kind,
                text=text,
                hovertemplate="%{text}<extra></extra>",
            )
        )
    layer_names = ["inputs"] + [f"layer {i}" for i in range(graph.n_layers)] + ["target"]
    fig.update_layout(
        **LAYOUT,
        title=title or f"Attribution graph: {pruned.n_nodes} nodes, {pruned.n_edges} edges",
        xaxis=dict(
            title="position (token)",
            tickvals=list(range(len(graph.str_tokens))),
            ticktext=[repr(t) for t in graph.str_tokens],
            range=[-0.6, len(graph.str_tokens) - 0.4],
        ),
        yaxis=dict(
            title="layer",
            tickvals=list(range(len(layer_names))),
            ticktext=layer_names,
        ),
        height=480,
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def ablation_figure(frame: pd.DataFrame, title: str) -> go.Figure:
    """Real change of the target against the graph's prediction, one point per ablated latent,
    the top latents and the random control in two colours, with the line real = predicted."""
    fig = go.Figure()
    for i, (group, rows) in enumerate(frame.groupby("group", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=rows["predicted"],
                y=rows["real"],
                mode="markers",
                name=str(group),
                marker=dict(color=PALETTE[i % len(PALETTE)], size=7, opacity=0.7),
                customdata=rows[["prompt", "layer", "position", "latent"]].to_numpy(),
                hovertemplate=(
                    "prompt %{customdata[0]}, L%{customdata[1]}/%{customdata[3]} at position "
                    "%{customdata[2]}<br>predicted %{x:.3f}<br>real %{y:.3f}<extra></extra>"
                ),
            )
        )
    low = float(min(frame["predicted"].min(), frame["real"].min()))
    high = float(max(frame["predicted"].max(), frame["real"].max()))
    fig.add_trace(
        go.Scatter(
            x=[low, high],
            y=[low, high],
            mode="lines",
            name="real = predicted",
            line=dict(color="#888888", dash="dash"),
            hoverinfo="skip",
        )
    )
    fig.update_layout(
        **LAYOUT,
        title=title,
        xaxis_title="change of the target predicted by the graph",
        yaxis_title="real change (ablation in the model)",
        height=450,
    )
    return fig


def training_figure(run: TrainingRun, title: str) -> go.Figure:
    """The training loss (FVU of each logged batch) against the tokens seen."""
    batch = run.n_tokens // max(run.n_steps, 1)
    fig = go.Figure(
        go.Scatter(
            x=[(step + 1) * batch for step in run.steps],
            y=run.fvu,
            mode="lines",
            line=dict(color=PALETTE[0]),
            hovertemplate="%{x:,} tokens<br>FVU %{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        **LAYOUT,
        title=title,
        xaxis_title="training tokens",
        yaxis_title="FVU of the batch (log scale)",
        yaxis_type="log",
        height=350,
    )
    return fig
