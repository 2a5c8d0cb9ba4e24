"""Unit tests for utils.plots: figures from tensors of sizes unlike GPT-2's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from utils import plots
from utils.features import SpliceLosses, top_features_per_token


def test_import_configures_the_renderer():
    assert plots.SITE_RENDERER in pio.renderers
    assert pio.renderers.default == f"plotly_mimetype+{plots.SITE_RENDERER}"


def test_site_renderer_emits_html_without_plotlyjs():
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]))
    bundle = plots.SiteHtmlRenderer().to_mimebundle(fig.to_dict())
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html
    assert len(html) < 20_000  # plotly.js itself (~3 MB) is not inlined
    assert "<html" not in html


def test_colab_gets_the_colab_renderer(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "google.colab", object())
    try:
        assert plots.configure_plotly_renderer() == "colab"
    finally:
        monkeypatch.delitem(sys.modules, "google.colab")
        plots.configure_plotly_renderer()


def test_top_features_heatmap():
    acts = torch.zeros(4, 200)
    acts[0, 150] = 9.0
    acts[1, 3], acts[1, 7] = 1.0, 2.0
    acts[3, 199] = 0.5
    fig = plots.top_features_heatmap(acts, ["<bos>", "a", "b", "c"], k=2)
    heat = fig.data[0]
    assert list(heat.x) == ["150", "7", "3", "199"]
    assert len(heat.y) == 4
    assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert "token %{y}" in heat.hovertemplate and "activation %{z" in heat.hovertemplate
    skipped = plots.top_features_heatmap(acts, ["<bos>", "a", "b", "c"], k=2, skip_positions=[0])
    assert "150" not in list(skipped.data[0].x) and len(skipped.data[0].y) == 3


def test_top_features_heatmap_bad_input():
    with pytest.raises(ValueError, match="token strings"):
        plots.top_features_heatmap(torch.rand(3, 10), ["a"], k=2)
    with pytest.raises(ValueError, match="No feature is active"):
        plots.top_features_heatmap(torch.zeros(2, 10), ["a", "b"], k=2)
    with pytest.raises(ValueError, match="shape"):
        plots.top_features_heatmap(torch.zeros(10), ["a"], k=2)


def test_histograms():
    fig = plots.l0_histogram(torch.tensor([3, 4, 4, 10]))
    assert "mean 5.2" in fig.layout.title.text
    bars = dict(zip(fig.data[0].x, fig.data[0].y))
    assert bars[4.0] == 2 and bars[10.0] == 1 and sum(bars.values()) == 4
    fig = plots.feature_activation_histogram(torch.rand(30), feature=12, n_tokens=300)
    assert "Feature 12" in fig.layout.title.text and "10.000%" in fig.layout.title.text
    empty = plots.feature_activation_histogram(torch.zeros(0), feature=5)
    assert "never fired" in empty.layout.title.text
    with pytest.raises(ValueError, match="empty"):
        plots.histogram(torch.zeros(0), "t", "x")
    constant = plots.histogram(torch.ones(5), "t", "x", nbins=3)
    assert sum(constant.data[0].y) == 5


def test_histogram_stores_bins_not_values():
    """A histogram of 100k values holds nbins bars, so pages stay light."""
    fig = plots.histogram(torch.randn(100_000), "t", "x", nbins=40)
    assert len(fig.data[0].x) == 40 and sum(fig.data[0].y) == 100_000
    assert len(fig.to_json()) < 20_000


def test_feature_density_histogram_counts_dead_features():
    density = torch.tensor([0.0, 0.0, 0.1, 0.01, 0.001] + [0.05] * 195)
    fig = plots.feature_density_histogram(density, n_tokens=1000)
    assert "2 of 200 features never fired" in fig.layout.title.text
    assert sum(fig.data[0].y) == 198
    assert min(fig.data[0].x) == pytest.approx(-3, abs=0.05)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plots.feature_density_histogram(torch.tensor([1.5]))
    all_dead = plots.feature_density_histogram(torch.zeros(10))
    assert "10 of 10" in all_dead.layout.title.text


def test_ce_loss_bar():
    frame = SpliceLosses(
        original=3.0, sae=3.2, zero_ablated=8.0, mean_ablated=6.0, n_tokens=10
    ).to_frame()
    fig = plots.ce_loss_bar(frame)
    assert list(fig.data[0].x) == list(frame.index)
    with pytest.raises(ValueError):
        plots.ce_loss_bar(top_features_per_token(torch.rand(2, 5), ["a", "b"], 1))


# ---- tutorial 2: training curves and the comparison of architectures ---------------------------


def fake_curves(n: int = 5, with_l1: bool = True) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "step": np.arange(1, n + 1) * 10,
            "tokens": np.arange(1, n + 1) * 640,
            "losses/overall_loss": np.linspace(5, 1, n),
            "losses/mse_loss": np.linspace(4, 0.5, n),
            "metrics/l0": np.linspace(100, 20, n),
            "metrics/explained_variance": np.linspace(0.1, 0.9, n),
        }
    )
    if with_l1:
        frame["losses/l1_loss"] = 1.0
    return frame


def test_training_curves_figure_one_run_and_overlay():
    fig = plots.training_curves_figure(fake_curves())
    assert len(fig.data) == len(plots.DEFAULT_CURVES)
    l0_panel = [c for c, _ in plots.DEFAULT_CURVES].index("metrics/l0")
    assert fig.layout[f"yaxis{l0_panel + 1 if l0_panel else ''}"].type == "log"
    fig2 = plots.training_curves_figure(
        {"Standard": fake_curves(), "TopK": fake_curves(4)}, x="step"
    )
    assert len(fig2.data) == 2 * len(plots.DEFAULT_CURVES)
    assert {trace.name for trace in fig2.data} == {"Standard", "TopK"}


def test_log_axis_ticks_are_round_numbers_in_range():
    assert plots.log_axis_ticks([35.0, 600.0]).count(100.0) == 1
    visible = [t for t in plots.log_axis_ticks([35.0, 600.0]) if 35 <= t <= 600]
    assert visible == [50.0, 100.0, 200.0, 500.0]  # 1-2-5: powers of ten alone would give one tick
    visible = [t for t in plots.log_axis_ticks([1.0, 5000.0]) if 1 <= t <= 5000]
    assert visible == [1.0, 10.0, 100.0, 1000.0]
    visible = [t for t in plots.log_axis_ticks([31.0, 45.0, float("nan")]) if 31 <= t <= 45]
    assert visible == [40.0]  # a narrow range: the finest sequence
    assert plots.log_axis_ticks([0.0, -1.0]) == []


def test_training_curves_figure_labels_the_log_axis_with_round_ticks():
    frame = fake_curves(6)
    frame["metrics/l0"] = [600.0, 300.0, 120.0, 60.0, 40.0, 36.0]
    fig = plots.training_curves_figure(frame)
    l0_panel = [c for c, _ in plots.DEFAULT_CURVES].index("metrics/l0")
    axis = fig.layout[f"yaxis{l0_panel + 1 if l0_panel else ''}"]
    assert axis.type == "log" and 100.0 in axis.tickvals and 200.0 in axis.tickvals


def test_training_curves_figure_errors():
    with pytest.raises(ValueError, match="empty"):
        plots.training_curves_figure({})
    with pytest.raises(ValueError, match="x must be"):
        plots.training_curves_figure(fake_curves(), x="epoch")
    with pytest.raises(KeyError, match="none of"):
        plots.training_curves_figure(fake_curves(), columns=[("nope", "Nope")])
    with pytest.raises(KeyError, match="no 'tokens' column"):
        plots.training_curves_figure(fake_curves().drop(columns="tokens"))


def test_architecture_comparison_figure():
    table = pd.DataFrame(
        {
            "architecture": ["Standard", "TopK"],
            "l0": [50.0, 32.0],
            "explained_variance": [0.8, 0.9],
            "ce_loss_score": [0.95, 0.98],
        }
    )
    fig = plots.architecture_comparison_figure(table)
    assert len(fig.data) == 4
    assert [t.name for t in fig.data if t.showlegend] == ["Standard", "TopK"]
    assert fig.layout.xaxis.range[0] == 0 and fig.layout.xaxis.range[1] > 50  # every point inside
    with pytest.raises(KeyError, match="ce_loss_score"):
        plots.architecture_comparison_figure(table.drop(columns="ce_loss_score"))
