"""Unit tests for utils.plots: figures from tensors of sizes unlike GPT-2's."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch
import random_models  # noqa: F401  (puts the repo on sys.path)

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


def test_logit_effects_bar():
    import pandas as pd

    table = pd.DataFrame({"promoted": [" a", " b"], "promoted_logit": [2.0, 1.0],
                          "suppressed": [" c", " a"], "suppressed_logit": [-2.0, -1.0]})
    fig = plots.logit_effects_bar(table, feature=3)
    assert len(fig.data[0].x) == 4
    assert list(fig.layout.yaxis.ticktext) == ["' a'", "' c'", "' b'", "' a'"]
    with pytest.raises(ValueError, match="feature_logit_effects"):
        plots.logit_effects_bar(pd.DataFrame({"x": [1]}), 3)


def test_ce_loss_bar():
    frame = SpliceLosses(original=3.0, sae=3.2, zero_ablated=8.0, mean_ablated=6.0, n_tokens=10).to_frame()
    fig = plots.ce_loss_bar(frame)
    assert list(fig.data[0].x) == list(frame.index)
    with pytest.raises(ValueError):
        plots.ce_loss_bar(top_features_per_token(torch.rand(2, 5), ["a", "b"], 1))
