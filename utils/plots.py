"""The book's plotly template and colours, its renderer, and the figures of general data that more
than one tutorial could use (CONTRIBUTING.md, "Figures": a tutorial's figures of its own
measurements live in its module, with this template and palette). Importing this module sets up
plotly's renderer.

Every function takes tensors / tables and returns a ``plotly.graph_objects.Figure`` (call
``.show()`` or leave it last in a cell). Figures have a title, axis labels and hover text.
Tutorial 1: feature heatmaps and histograms, the CE-loss bars. Tutorial 2: training curves
(:func:`training_curves_figure`, from ``RecordingTrainingRunner.curves``) and the comparison of
architectures (:func:`architecture_comparison_figure`).

Renderer (:func:`configure_plotly_renderer`, run at import): in Google Colab plotly's ``colab``
renderer; everywhere else ``plotly_mimetype+sae_book``: the plotly mime type for JupyterLab /
VS Code, plus an HTML copy of the figure for the book's website (Jupyter Book drops the plotly
mime type; the site loads plotly.js once per page itself, so the HTML does not inline it).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.io._base_renderers import MimetypeRenderer
from plotly.subplots import make_subplots

SITE_RENDERER = "sae_book"


class SiteHtmlRenderer(MimetypeRenderer):
    """A plotly renderer emitting the figure as an HTML ``div`` without plotly.js (``text/html``)."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        html = pio.to_html(fig_dict, include_plotlyjs=False, full_html=False, validate=False)
        return {"text/html": html}


def configure_plotly_renderer() -> str:
    """Choose plotly's default renderer for where we run; returns its name.

    Colab: ``"colab"``. Elsewhere: ``"plotly_mimetype+sae_book"`` (interactive in Jupyter, and
    visible on the built website).
    """
    pio.renderers[SITE_RENDERER] = SiteHtmlRenderer()
    name = "colab" if "google.colab" in sys.modules else f"plotly_mimetype+{SITE_RENDERER}"
    pio.renderers.default = name
    return name


configure_plotly_renderer()

TEMPLATE = "plotly_white"  # every figure of the book, wherever it is drawn
#: One colour per run, SAE or series, in order (every figure that needs several colours): the
#: first five serve most figures; tutorial 3's steering figure needs up to eight.
PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
)
#: The template and margins every figure starts from: ``fig.update_layout(**LAYOUT, title=...)``.
LAYOUT = dict(template=TEMPLATE, margin=dict(l=60, r=20, t=60, b=50))


def _as_1d(values: torch.Tensor | Sequence[float], name: str) -> list[float]:
    tensor = torch.as_tensor(values).detach().flatten().float().cpu()
    if tensor.numel() == 0:
        raise ValueError(f"{name} is empty: there is nothing to plot.")
    return tensor.tolist()


def top_features_heatmap(
    feature_acts: torch.Tensor,
    str_tokens: Sequence[str],
    k: int = 5,
    title: str = "Top features per token",
    skip_positions: Sequence[int] = (),
) -> go.Figure:
    """Heatmap of tokens (rows) x the union of each token's top-``k`` features (columns).

    Args:
        feature_acts: ``[pos, d_sae]`` (or ``[1, pos, d_sae]``) SAE feature activations.
        str_tokens: the ``pos`` tokens as strings.
        k: top features taken from each token.
        skip_positions: positions to leave out (e.g. ``[0]`` for a BOS token whose huge
            activations would wash out the colour scale).
    """
    if feature_acts.ndim == 3 and feature_acts.shape[0] == 1:
        feature_acts = feature_acts[0]
    if feature_acts.ndim != 2:
        raise ValueError(
            f"feature_acts must have shape [pos, d_sae], got {tuple(feature_acts.shape)}"
        )
    if len(str_tokens) != feature_acts.shape[0]:
        raise ValueError(
            f"Got {len(str_tokens)} token strings for {feature_acts.shape[0]} positions of feature_acts."
        )
    if not 1 <= k <= feature_acts.shape[1]:
        raise ValueError(f"k must be between 1 and d_sae={feature_acts.shape[1]}, got {k}")
    acts = feature_acts.detach().float().cpu()
    positions = [p for p in range(acts.shape[0]) if p not in set(skip_positions)]
    if not positions:
        raise ValueError("skip_positions leaves no token to plot.")
    features: list[int] = []
    for p in positions:
        values, indices = acts[p].topk(k)
        features += [
            i for v, i in zip(values.tolist(), indices.tolist()) if v > 0 and i not in features
        ]
    if not features:
        raise ValueError("No feature is active at any of these tokens.")
    z = acts[positions][:, features]
    row_labels = [f"{p}: {str_tokens[p]!r}" for p in positions]
    col_labels = [str(f) for f in features]
    fig = go.Figure(
        go.Heatmap(
            z=z.tolist(),
            x=col_labels,
            y=row_labels,
            colorscale="Blues",
            zmin=0,
            hovertemplate="token %{y}<br>feature %{x}<br>activation %{z:.3f}<extra></extra>",
            colorbar=dict(title="activation"),
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="feature",
        yaxis_title="token",
        **LAYOUT,
        xaxis=dict(
            type="category",
            tickmode="array",
            tickvals=col_labels,
            tickangle=-90,
            tickfont=dict(size=10),
        ),
        yaxis=dict(autorange="reversed"),
        height=max(300, 40 * len(positions) + 150),
    )
    return fig


def histogram(
    values: torch.Tensor | Sequence[float],
    title: str,
    xaxis_title: str,
    yaxis_title: str = "count",
    nbins: int = 50,
    log_y: bool = False,
    integer_bins: bool = False,
) -> go.Figure:
    """A histogram of ``values`` (any shape, flattened).

    The counts are computed here and drawn as bars, so the figure stores ``nbins`` numbers rather
    than every value (a sample can hold 100k values; the page stays light).
    ``integer_bins`` gives one bar per integer (for counts such as L0).
    """
    data = torch.as_tensor(_as_1d(values, "values"), dtype=torch.float64)
    lo, hi = data.min().item(), data.max().item()
    if integer_bins:
        lo, hi = math.floor(lo), math.floor(hi)
        step = max(1, math.ceil((hi - lo + 1) / nbins))
        edges = torch.arange(lo, hi + step + 1, step, dtype=torch.float64) - 0.5
    else:
        if hi == lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = torch.linspace(lo, hi, nbins + 1, dtype=torch.float64)
    counts = torch.histogram(data, bins=edges).hist
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()
    hover = [
        f"{a:.4g} to {b:.4g}: {int(c):,}"
        for a, b, c in zip(edges[:-1].tolist(), edges[1:].tolist(), counts.tolist())
    ]
    fig = go.Figure(
        go.Bar(
            x=centres,
            y=counts.tolist(),
            width=(edges[1] - edges[0]).item(),
            marker_color="#3366cc",
            hovertext=hover,
            hoverinfo="text",
        )
    )
    fig.update_layout(
        title=title, xaxis_title=xaxis_title, yaxis_title=yaxis_title, bargap=0.05, **LAYOUT
    )
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def feature_activation_histogram(
    values: torch.Tensor, feature: int, n_tokens: int | None = None
) -> go.Figure:
    """Histogram of one feature's non-zero activations (``[n_fired]``) over a sample.

    ``n_tokens`` (the sample's size) adds the firing frequency to the title.
    """
    if torch.as_tensor(values).numel() == 0:
        fig = go.Figure()
        fig.update_layout(title=f"Feature {feature} never fired in the sample", **LAYOUT)
        return fig
    n = torch.as_tensor(values).numel()
    freq = f", fires on {n:,} of {n_tokens:,} tokens ({n / n_tokens:.3%})" if n_tokens else ""
    return histogram(
        values,
        title=f"Feature {feature}: activations when it fires{freq}",
        xaxis_title="activation",
        yaxis_title="tokens",
        nbins=40,
    )


def l0_histogram(l0_values: torch.Tensor) -> go.Figure:
    """Histogram of active features per token (``[n_tokens]`` L0 values), mean marked."""
    data = _as_1d(l0_values, "l0_values")
    mean = sum(data) / len(data)
    fig = histogram(
        data,
        title=f"Active features per token (L0), mean {mean:.1f}",
        xaxis_title="active features (L0)",
        yaxis_title="tokens",
        nbins=60,
        integer_bins=True,
    )
    fig.add_vline(x=mean, line_dash="dash", line_color="firebrick", annotation_text="mean")
    return fig


def feature_density_histogram(density: torch.Tensor, n_tokens: int | None = None) -> go.Figure:
    """Histogram of log10(firing frequency) per feature (``density`` is ``[d_sae]`` in 0..1).

    Features that never fired (log10 0 = -inf) are counted in the title instead of plotted.
    """
    dens = torch.as_tensor(density).detach().double().flatten().cpu()
    if dens.numel() == 0:
        raise ValueError("density is empty: there is nothing to plot.")
    if ((dens < 0) | (dens > 1)).any():
        raise ValueError("density must be firing frequencies in [0, 1].")
    alive = dens[dens > 0]
    dead = int((dens == 0).sum())
    sample = f" in {n_tokens:,} tokens" if n_tokens else ""
    title = f"Feature density: {dead:,} of {dens.numel():,} features never fired{sample}"
    if alive.numel() == 0:
        fig = go.Figure()
        fig.update_layout(title=title, **LAYOUT)
        return fig
    fig = histogram(
        alive.log10(),
        title=title,
        xaxis_title="log10(fraction of tokens the feature fires on)",
        yaxis_title="features",
        nbins=50,
    )
    if n_tokens:
        fig.add_vline(
            x=math.log10(1 / n_tokens),
            line_dash="dot",
            line_color="grey",
            annotation_text="fires once",
        )
    return fig


def ce_loss_bar(losses_table) -> go.Figure:
    """Bar chart of cross-entropy per condition (``SpliceLosses.to_frame()``)."""
    if "ce_loss" not in losses_table:
        raise ValueError("losses_table must be SpliceLosses.to_frame() (a 'ce_loss' column)")
    names = list(losses_table.index)
    values = list(losses_table["ce_loss"])
    fig = go.Figure(
        go.Bar(
            x=names,
            y=values,
            text=[f"{v:.3f}" for v in values],
            textposition="outside",
            marker_color=[PALETTE[2], PALETTE[0], PALETTE[1], PALETTE[4]][: len(values)],
        )
    )
    fig.update_layout(
        title="Next-token loss with the hook's activations replaced",
        xaxis_title="condition",
        yaxis_title="cross-entropy (nats per token)",
        yaxis=dict(range=[0, max(values) * 1.15]),
        **LAYOUT,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Training and comparing SAEs (tutorial 2)
# ---------------------------------------------------------------------------------------------


#: The curves :func:`training_curves_figure` draws by default: (column, panel title).
DEFAULT_CURVES: tuple[tuple[str, str], ...] = (
    ("losses/overall_loss", "loss (total)"),
    ("losses/mse_loss", "reconstruction (MSE)"),
    ("metrics/l0", "L0 (active latents per token)"),
    ("metrics/explained_variance", "explained variance"),
)


def training_curves_figure(
    curves: pd.DataFrame | Mapping[str, pd.DataFrame],
    columns: Sequence[tuple[str, str]] = DEFAULT_CURVES,
    x: str = "tokens",
    title: str | None = "Training curves",
    log_y: Sequence[str] = ("metrics/l0",),
):
    """A plotly figure with one panel per metric, over training tokens (or steps).

    ``curves`` is :attr:`utils.training.RecordingTrainingRunner.curves` (one run), or a mapping
    ``{label: curves}`` to overlay several runs (e.g. ``{"Standard": ..., "TopK": ...}``).
    ``columns`` are ``(column name, panel title)`` pairs; a column a run lacks is skipped for
    that run. ``x`` is ``"tokens"`` or ``"step"``. Panels whose column is in ``log_y`` get a log
    y axis (by default L0, which falls by orders of magnitude early in an L1 run).
    """
    runs = {"": curves} if isinstance(curves, pd.DataFrame) else dict(curves)
    if not runs:
        raise ValueError("curves is empty: give a DataFrame or a non-empty {label: DataFrame}")
    if x not in ("tokens", "step"):
        raise ValueError(f"x must be 'tokens' or 'step', got {x!r}")
    for label, frame in runs.items():
        if x not in frame.columns:
            raise KeyError(f"run {label!r} has no {x!r} column; its columns: {list(frame.columns)}")
    known = {c for frame in runs.values() for c in frame.columns}
    panels = [(c, t) for c, t in columns if c in known]
    if not panels:
        raise KeyError(
            f"none of {[c for c, _ in columns]} is in the curves; known: {sorted(known)}"
        )

    n_cols = 2 if len(panels) > 1 else 1
    n_rows = math.ceil(len(panels) / n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[t for _, t in panels])
    for i, (label, frame) in enumerate(runs.items()):
        for j, (column, _) in enumerate(panels):
            if column not in frame.columns:
                continue
            fig.add_trace(
                go.Scatter(
                    x=frame[x],
                    y=frame[column],
                    mode="lines",
                    name=label or column,
                    legendgroup=label,
                    showlegend=bool(label) and j == 0,
                    line={"color": PALETTE[i % len(PALETTE)]},
                ),
                row=j // n_cols + 1,
                col=j % n_cols + 1,
            )
    for j, (column, _) in enumerate(panels):
        if column in log_y:
            values = pd.concat(
                [frame[column] for frame in runs.values() if column in frame.columns]
            )
            ticks = log_axis_ticks(values)
            fig.update_yaxes(
                type="log",
                row=j // n_cols + 1,
                col=j % n_cols + 1,
                **({"tickmode": "array", "tickvals": ticks} if ticks else {}),
            )
    fig.update_xaxes(title_text=x)
    fig.update_layout(
        title=title, height=300 * n_rows, margin={"t": 70, "b": 40}, template=TEMPLATE
    )
    return fig


def log_axis_ticks(values: Sequence[float] | pd.Series, min_visible: int = 3) -> list[float]:
    """Round tick values for a log axis over ``values``: 1-10-100, else 1-2-5, else 1-2-...-9.

    Plotly's own log ticks label the minor steps with single digits ("100, 2, 5, 2, ..."), which
    reads badly; these are whole numbers. The coarsest sequence that puts at least ``min_visible``
    ticks inside the data's range wins (the finest one if none does). Ticks reach a decade beyond
    the data on both sides, since the axis is padded. ``[]`` if no value is positive.
    """
    positive = [float(v) for v in values if v == v and v > 0]  # v == v drops NaN
    if not positive:
        return []
    lo, hi = min(positive), max(positive)
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2)
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [float(m * 10.0**e) for e in decades for m in mantissas]
        if sum(lo <= t <= hi for t in ticks) >= min_visible:
            break
    return ticks


def architecture_comparison_figure(table: pd.DataFrame, label: str = "architecture"):
    """Two scatter panels: explained variance vs L0, and CE loss recovered vs L0, one point per SAE.

    ``table`` has one row per SAE and columns ``label``, ``l0``, ``explained_variance`` and
    ``ce_loss_score`` (e.g. :func:`utils.evaluation.headline_metrics` rows). Up and to the left is better: the
    same reconstruction with fewer active latents.
    """
    needed = [label, "l0", "explained_variance", "ce_loss_score"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise KeyError(f"table lacks columns {missing}; it has {list(table.columns)}")
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.14,
        subplot_titles=("explained variance vs L0", "CE loss recovered vs L0"),
    )
    for i, row in enumerate(table.itertuples(index=False)):
        row = row._asdict()
        for col, metric in ((1, "explained_variance"), (2, "ce_loss_score")):
            fig.add_trace(
                go.Scatter(
                    x=[row["l0"]],
                    y=[row[metric]],
                    mode="markers",  # named in the legend
                    marker={"size": 12, "color": PALETTE[i % len(PALETTE)]},
                    name=str(row[label]),
                    legendgroup=str(row[label]),
                    showlegend=col == 1,
                    hovertemplate=f"{row[label]}<br>L0 %{{x:.1f}}<br>%{{y:.3f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(
        title_text="L0 (active latents per token)", range=[0, 1.15 * float(table["l0"].max())]
    )
    fig.update_yaxes(title_text="explained variance", row=1, col=1)
    fig.update_yaxes(title_text="fraction of CE loss recovered", row=1, col=2)
    fig.update_layout(
        height=380, margin={"t": 60, "b": 40}, legend={"title": {"text": label}}, template=TEMPLATE
    )
    return fig
