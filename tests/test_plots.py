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


def test_configure_plotly_renderer_outside_colab_sets_and_returns_the_site_renderer():
    pio.renderers.default = "json"
    try:
        name = plots.configure_plotly_renderer()
        assert name == f"plotly_mimetype+{plots.SITE_RENDERER}"
        assert pio.renderers.default == name
        assert isinstance(pio.renderers[plots.SITE_RENDERER], plots.SiteHtmlRenderer)
    finally:
        plots.configure_plotly_renderer()


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


# ---- each figure's data, names, order and labels against a hand computation ---------------------


def heatmap_acts() -> torch.Tensor:
    """Four tokens x 200 latents: BOS fires latent 150 at 9; 'a' fires 7 (2.0) and 3 (1.0); 'b'
    fires nothing; 'c' fires 199 at 0.5."""
    acts = torch.zeros(4, 200)
    acts[0, 150] = 9.0
    acts[1, 3], acts[1, 7] = 1.0, 2.0
    acts[3, 199] = 0.5
    return acts


TOKENS = ["<bos>", "a", "b", "c"]


def test_top_features_heatmap_cells_labels_and_layout_by_hand():
    fig = plots.top_features_heatmap(heatmap_acts(), TOKENS, k=2)
    assert len(fig.data) == 1
    heat = fig.data[0]
    # columns: each token's positive top-2 latents, first seen first (a zero never counts)
    assert list(heat.x) == ["150", "7", "3", "199"]
    assert list(heat.y) == ["0: '<bos>'", "1: 'a'", "2: 'b'", "3: 'c'"]
    assert [list(row) for row in heat.z] == [
        [9.0, 0.0, 0.0, 0.0],
        [0.0, 2.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.5],
    ]
    assert heat.zmin == 0  # the colour scale starts at "not firing"
    assert heat.colorbar.title.text == "activation"
    assert fig.layout.title.text == "Top features per token"
    assert fig.layout.xaxis.title.text == "feature" and fig.layout.yaxis.title.text == "token"
    # latent indices are categories (not numbers spaced 3..199), each one labelled
    assert fig.layout.xaxis.type == "category" and fig.layout.xaxis.tickmode == "array"
    assert list(fig.layout.xaxis.tickvals) == ["150", "7", "3", "199"]
    assert fig.layout.yaxis.autorange == "reversed"  # the first token on top, as it is read
    assert fig.layout.height == 40 * 4 + 150  # 40 px per token row, at least 300
    assert (
        fig.layout.template.layout.to_plotly_json()
        == pio.templates[plots.TEMPLATE].layout.to_plotly_json()
    )


def test_top_features_heatmap_k_skip_title_and_a_batch_of_one():
    fig = plots.top_features_heatmap(heatmap_acts(), TOKENS, k=1, title="Mine", skip_positions=[0])
    heat = fig.data[0]
    assert list(heat.x) == ["7", "199"]  # k=1: 'a' brings only its strongest latent, 7
    assert list(heat.y) == ["1: 'a'", "2: 'b'", "3: 'c'"]
    assert [list(row) for row in heat.z] == [[2.0, 0.0], [0.0, 0.0], [0.0, 0.5]]
    assert fig.layout.title.text == "Mine"
    assert fig.layout.height == 300  # 3 rows would give 270: the floor holds
    batch = plots.top_features_heatmap(heatmap_acts()[None], TOKENS, k=2)
    assert batch.data[0].z == plots.top_features_heatmap(heatmap_acts(), TOKENS, k=2).data[0].z
    six = torch.zeros(1, 200)
    six[0, 10:16] = torch.arange(1.0, 7.0)  # six latents fire: the default k keeps five
    assert list(plots.top_features_heatmap(six, ["a"]).data[0].x) == ["15", "14", "13", "12", "11"]
    # k may be anything from 1 to d_sae
    assert list(plots.top_features_heatmap(heatmap_acts(), TOKENS, k=200).data[0].x) == [
        "150",
        "7",
        "3",
        "199",
    ]


def test_top_features_heatmap_errors_name_what_is_wrong():
    acts = heatmap_acts()
    with pytest.raises(ValueError, match=r"\[pos, d_sae\], got \(2, 4, 200\)"):
        plots.top_features_heatmap(torch.stack([acts, acts]), TOKENS, k=2)  # a batch of two
    with pytest.raises(ValueError, match=r"Got 3 token strings for 4 positions"):
        plots.top_features_heatmap(acts, TOKENS[:3], k=2)
    for k in (0, 201):
        with pytest.raises(ValueError, match=rf"k must be between 1 and d_sae=200, got {k}"):
            plots.top_features_heatmap(acts, TOKENS, k=k)
    with pytest.raises(ValueError, match="skip_positions leaves no token"):
        plots.top_features_heatmap(acts, TOKENS, k=2, skip_positions=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="No feature is active"):
        plots.top_features_heatmap(acts, TOKENS, k=2, skip_positions=[0, 1, 3])


def test_histogram_bins_counts_and_hover_by_hand():
    fig = plots.histogram([0.0, 1.0, 2.0, 3.0, 4.0], "T", "X", nbins=4)
    bar = fig.data[0]
    # edges 0, 1, 2, 3, 4; the last bin holds its right edge
    assert list(bar.x) == [0.5, 1.5, 2.5, 3.5] and list(bar.y) == [1, 1, 1, 2]
    assert bar.width == 1.0
    assert list(bar.hovertext) == ["0 to 1: 1", "1 to 2: 1", "2 to 3: 1", "3 to 4: 2"]
    assert fig.layout.title.text == "T"
    assert fig.layout.xaxis.title.text == "X" and fig.layout.yaxis.title.text == "count"
    assert fig.layout.yaxis.type is None  # linear unless asked
    logged = plots.histogram([0.0, 1.0, 2.0, 3.0, 4.0], "T", "X", yaxis_title="Y", log_y=True)
    assert logged.layout.yaxis.type == "log" and logged.layout.yaxis.title.text == "Y"
    assert len(logged.data[0].x) == 50  # nbins' default


def test_histogram_of_a_constant_spans_one_unit_around_it():
    bar = plots.histogram(torch.ones(5), "t", "x", nbins=3).data[0]
    # edges 0.5, 5/6, 7/6, 1.5: every value in the middle bin
    assert list(bar.x) == pytest.approx([2 / 3, 1.0, 4 / 3])
    assert list(bar.y) == [0, 5, 0] and bar.width == pytest.approx(1 / 3)


def test_histogram_integer_bins_by_hand():
    bar = plots.histogram([0, 1, 1, 3], "t", "x", integer_bins=True).data[0]
    assert list(bar.x) == [0.0, 1.0, 2.0, 3.0] and list(bar.y) == [1, 2, 0, 1]
    assert bar.width == 1.0
    assert list(bar.hovertext) == [
        "-0.5 to 0.5: 1",
        "0.5 to 1.5: 2",
        "1.5 to 2.5: 0",
        "2.5 to 3.5: 1",
    ]
    # 0..10 in 5 bins: 11 integers, 3 per bar (ceil(11 / 5)); edges -0.5, 2.5, 5.5, 8.5, 11.5
    wide = plots.histogram([0.0, 2.0, 3.0, 10.0, 10.5], "t", "x", nbins=5, integer_bins=True)
    assert list(wide.data[0].x) == [1.0, 4.0, 7.0, 10.0] and list(wide.data[0].y) == [2, 1, 0, 2]
    assert wide.data[0].width == 3.0


def test_feature_activation_histogram_title_and_bins_by_hand():
    values = torch.arange(1.0, 31.0)  # 30 activations, 1..30
    fig = plots.feature_activation_histogram(values, feature=12, n_tokens=300)
    assert fig.layout.title.text == (
        "Feature 12: activations when it fires, fires on 30 of 300 tokens (10.000%)"
    )
    assert fig.layout.xaxis.title.text == "activation" and fig.layout.yaxis.title.text == "tokens"
    assert len(fig.data[0].x) == 40 and sum(fig.data[0].y) == 30
    assert fig.data[0].x[0] == pytest.approx(1 + 29 / 80)  # half of the first bin's 29/40
    bare = plots.feature_activation_histogram(values, feature=12)
    assert bare.layout.title.text == "Feature 12: activations when it fires"
    empty = plots.feature_activation_histogram(torch.zeros(0), feature=5, n_tokens=300)
    assert empty.layout.title.text == "Feature 5 never fired in the sample"
    assert len(empty.data) == 0


def test_l0_histogram_one_bar_per_three_integers_and_the_mean_line():
    fig = plots.l0_histogram(torch.tensor([0, 120, 3, 4]))
    # mean 31.75; 0..120 is 121 integers: 60 bars would need ceil(121 / 60) = 3 per bar
    assert fig.layout.title.text == "Active features per token (L0), mean 31.8"
    bar = fig.data[0]
    assert len(bar.x) == 41 and list(bar.x[:3]) == [1.0, 4.0, 7.0] and bar.x[-1] == 121.0
    assert list(bar.y[:3]) == [1, 2, 0] and bar.y[-1] == 1 and sum(bar.y) == 4
    assert fig.layout.xaxis.title.text == "active features (L0)"
    assert fig.layout.yaxis.title.text == "tokens"
    (line,) = fig.layout.shapes
    assert line.x0 == line.x1 == 31.75
    assert (line.line.dash, line.line.color) == ("dash", "firebrick")
    assert [a.text for a in fig.layout.annotations] == ["mean"]
    with pytest.raises(ValueError, match=r"^l0_values is empty: there is nothing to plot\.$"):
        plots.l0_histogram(torch.zeros(0))
    with pytest.raises(ValueError, match=r"^values is empty: there is nothing to plot\.$"):
        plots.histogram([], "t", "x")
    # 0..100 is 101 integers: 60 bars need 2 per bar (51 bars; 50 bars would need 3)
    assert len(plots.l0_histogram(torch.tensor([0, 100])).data[0].x) == 51
    one = plots.l0_histogram(torch.tensor([7]))  # a single value is enough
    assert list(one.data[0].x) == [7.0] and list(one.data[0].y) == [1]


def test_feature_density_histogram_by_hand():
    density = torch.tensor([0.0, 0.1, 0.01, 0.001, 1.0])
    fig = plots.feature_density_histogram(density, n_tokens=1000)
    assert fig.layout.title.text == ("Feature density: 1 of 5 features never fired in 1,000 tokens")
    bar = fig.data[0]
    # log10: -1, -2, -3, 0 in 50 bins of 0.06 from -3 to 0
    assert (
        len(bar.x) == 50 and bar.x[0] == pytest.approx(-2.97) and bar.x[-1] == pytest.approx(-0.03)
    )
    assert [bar.y[i] for i in (0, 16, 33, 49)] == [1, 1, 1, 1] and sum(bar.y) == 4
    assert fig.layout.xaxis.title.text == "log10(fraction of tokens the feature fires on)"
    assert fig.layout.yaxis.title.text == "features"
    (line,) = fig.layout.shapes
    assert line.x0 == line.x1 == pytest.approx(-3.0)  # log10(1 / 1000): one token
    assert (line.line.dash, line.line.color) == ("dot", "grey")
    assert [a.text for a in fig.layout.annotations] == ["fires once"]
    bare = plots.feature_density_histogram(density)
    assert bare.layout.title.text == "Feature density: 1 of 5 features never fired"
    assert len(bare.layout.shapes) == 0 and len(bare.layout.annotations) == 0
    all_dead = plots.feature_density_histogram(torch.zeros(3), n_tokens=10)
    assert all_dead.layout.title.text == "Feature density: 3 of 3 features never fired in 10 tokens"
    assert len(all_dead.data) == 0
    assert (
        all_dead.layout.template.layout.to_plotly_json()
        == pio.templates[plots.TEMPLATE].layout.to_plotly_json()
    )


def test_feature_density_histogram_rejects_what_is_not_a_frequency():
    with pytest.raises(ValueError, match="density is empty"):
        plots.feature_density_histogram(torch.zeros(0))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"firing frequencies in \[0, 1\]"):
            plots.feature_density_histogram(torch.tensor([0.5, bad]))
    always = plots.feature_density_histogram(torch.tensor([1.0, 1.0]))  # both ends are allowed
    assert sum(always.data[0].y) == 2


def test_ce_loss_bar_by_hand():
    frame = SpliceLosses(
        original=3.0, sae=3.2, zero_ablated=8.0, mean_ablated=6.0, n_tokens=10
    ).to_frame()
    fig = plots.ce_loss_bar(frame)
    assert len(fig.data) == 1
    bar = fig.data[0]
    assert list(bar.x) == ["original model", "SAE spliced in", "zero-ablated", "mean-ablated"]
    assert list(bar.y) == [3.0, 3.2, 8.0, 6.0]
    assert list(bar.text) == ["3.000", "3.200", "8.000", "6.000"]
    assert bar.textposition == "outside"
    # the palette's green, blue, red, orange: the original model, the SAE, the two ablations
    assert list(bar.marker.color) == ["#2ca02c", "#1f77b4", "#d62728", "#ff7f0e"]
    assert list(fig.layout.yaxis.range) == pytest.approx([0, 8.0 * 1.15])  # room for the labels
    assert fig.layout.title.text == "Next-token loss with the hook's activations replaced"
    assert fig.layout.xaxis.title.text == "condition"
    assert fig.layout.yaxis.title.text == "cross-entropy (nats per token)"
    assert (
        fig.layout.template.layout.to_plotly_json()
        == pio.templates[plots.TEMPLATE].layout.to_plotly_json()
    )
    two = plots.ce_loss_bar(frame.iloc[:2])  # fewer conditions: fewer bars, same scale rule
    assert list(two.data[0].y) == [3.0, 3.2]
    assert list(two.data[0].marker.color) == ["#2ca02c", "#1f77b4"]
    assert list(two.layout.yaxis.range) == pytest.approx([0, 3.2 * 1.15])
    with pytest.raises(ValueError, match=r"SpliceLosses.to_frame\(\) \(a 'ce_loss' column\)"):
        plots.ce_loss_bar(frame.rename(columns={"ce_loss": "loss"}))


def test_training_curves_figure_panels_traces_and_axes_by_hand():
    frame = fake_curves(3)
    fig = plots.training_curves_figure(frame)
    # one run: each trace named after its column, in DEFAULT_CURVES' order, panel by panel
    assert [t.name for t in fig.data] == [c for c, _ in plots.DEFAULT_CURVES]
    assert [(t.xaxis, t.yaxis) for t in fig.data] == [
        ("x", "y"),
        ("x2", "y2"),
        ("x3", "y3"),
        ("x4", "y4"),
    ]
    assert [list(t.x) for t in fig.data] == [[640, 1280, 1920]] * 4
    assert [list(t.y) for t in fig.data] == [
        [5.0, 3.0, 1.0],
        [4.0, 2.25, 0.5],
        [100.0, 60.0, 20.0],
        [0.1, 0.5, 0.9],
    ]
    assert [a.text for a in fig.layout.annotations] == [t for _, t in plots.DEFAULT_CURVES]
    # two columns of panels, two rows of 300 px; the panel grid reads left to right
    assert fig.layout.xaxis.domain[0] == 0 and fig.layout.xaxis2.domain[1] == 1
    assert fig.layout.xaxis3.domain == fig.layout.xaxis.domain
    assert fig.layout.yaxis.domain[0] > fig.layout.yaxis3.domain[1]
    assert fig.layout.height == 600
    assert fig.layout.title.text == "Training curves"
    assert [fig.layout[f"xaxis{i}"].title.text for i in ("", 2, 3, 4)] == ["tokens"] * 4
    # only L0's panel is logarithmic; l0 20..100: 1-2-5 ticks from 1 to 5000
    assert [fig.layout[f"yaxis{i}"].type for i in ("", 2, 3, 4)] == [None, None, "log", None]
    assert fig.layout.yaxis3.tickmode == "array"
    assert list(fig.layout.yaxis3.tickvals) == plots.log_axis_ticks([20.0, 100.0])
    assert (
        fig.layout.template.layout.to_plotly_json()
        == pio.templates[plots.TEMPLATE].layout.to_plotly_json()
    )


def test_training_curves_figure_one_panel_steps_and_other_log_axes():
    frame = fake_curves(3)
    fig = plots.training_curves_figure(frame, columns=[("metrics/l0", "L0")], x="step", title=None)
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [
        ("metrics/l0", [10, 20, 30], [100.0, 60.0, 20.0])
    ]
    assert "xaxis2" not in fig.layout and fig.layout.xaxis.domain == (0.0, 1.0)  # one column
    assert fig.layout.height == 300 and fig.layout.title.text is None
    assert fig.layout.xaxis.title.text == "step"
    two = plots.training_curves_figure(frame, columns=plots.DEFAULT_CURVES[:2])
    assert two.layout.height == 300  # 2 panels side by side: 1 row
    assert two.layout.xaxis.domain[1] < two.layout.xaxis2.domain[0]
    three = plots.training_curves_figure(frame, columns=plots.DEFAULT_CURVES[:3], log_y=())
    assert three.layout.height == 600  # 3 panels in 2 columns: 2 rows
    assert [three.layout[f"yaxis{i}"].type for i in ("", 2, 3)] == [None, None, None]
    mse = plots.training_curves_figure(frame, log_y=("losses/mse_loss",))
    assert [mse.layout[f"yaxis{i}"].type for i in ("", 2, 3, 4)] == [None, "log", None, None]
    frame["metrics/l0"] = 0.0  # nothing positive: a log axis with plotly's own ticks
    zero = plots.training_curves_figure(frame)
    assert zero.layout.yaxis3.type == "log" and zero.layout.yaxis3.tickvals is None


def test_training_curves_figure_overlays_runs_by_label():
    a = fake_curves(3)
    b = fake_curves(2).drop(columns="metrics/l0")  # a run without the L0 column: skipped there
    b["metrics/l0"] = [600.0, 300.0]
    b = b.drop(columns="losses/mse_loss")
    fig = plots.training_curves_figure({"A": a, "B": b})
    assert [(t.name, t.yaxis) for t in fig.data] == [
        ("A", "y"),
        ("A", "y2"),
        ("A", "y3"),
        ("A", "y4"),
        ("B", "y"),
        ("B", "y3"),
        ("B", "y4"),
    ]
    assert list(fig.data[5].y) == [600.0, 300.0]
    # the L0 ticks cover both runs: 20..600
    assert list(fig.layout.yaxis3.tickvals) == plots.log_axis_ticks([20.0, 600.0])
    assert max(fig.layout.yaxis3.tickvals) == 50000.0
    with pytest.raises(KeyError, match=r"run 'B' has no 'tokens' column; its columns: \['step'"):
        plots.training_curves_figure({"A": a, "B": b.drop(columns="tokens")})
    with pytest.raises(KeyError, match=r"none of \['nope'\] is in the curves; known: \["):
        plots.training_curves_figure(a, columns=[("nope", "Nope")])
    with pytest.raises(ValueError, match=r"x must be 'tokens' or 'step', got 'epoch'"):
        plots.training_curves_figure(a, x="epoch")


def test_log_axis_ticks_full_lists_by_hand():
    one_two_five = [1.0, 2.0, 5.0]
    # 35..600: decades 10^0..10^4; powers of ten show one tick inside (100), 1-2-5 show four
    assert plots.log_axis_ticks([35.0, 600.0]) == [
        m * 10.0**e for e in range(0, 5) for m in one_two_five
    ]
    # 1..100: three powers of ten inside (1, 10, 100) are enough; decades 10^-1..10^3
    assert plots.log_axis_ticks([1.0, 100.0]) == [0.1, 1.0, 10.0, 100.0, 1000.0]
    # 5..200: two powers of ten inside are too few
    assert plots.log_axis_ticks([5.0, 200.0]) == [
        m * 10.0**e for e in range(-1, 5) for m in one_two_five
    ]
    assert plots.log_axis_ticks([5.0, 200.0], min_visible=2) == [
        0.1,
        1.0,
        10.0,
        100.0,
        1000.0,
        10000.0,
    ]
    # 31..45: no sequence reaches three: the finest, 1..9 per decade from 10^0 to 10^3
    assert plots.log_axis_ticks([31.0, 45.0, float("nan"), 0.0]) == [
        float(m * 10.0**e) for e in range(0, 4) for m in range(1, 10)
    ]
    assert plots.log_axis_ticks([]) == []


def test_architecture_comparison_figure_points_panels_and_axes_by_hand():
    table = pd.DataFrame(
        {
            "sae": ["Standard", "TopK"],
            "l0": [50.0, 32.0],
            "explained_variance": [0.8, 0.9],
            "ce_loss_score": [0.95, 0.98],
        }
    )
    fig = plots.architecture_comparison_figure(table, label="sae")
    # per SAE, its point on the left panel then on the right one
    assert [(t.name, t.xaxis, t.yaxis, tuple(t.x), tuple(t.y)) for t in fig.data] == [
        ("Standard", "x", "y", (50.0,), (0.8,)),
        ("Standard", "x2", "y2", (50.0,), (0.95,)),
        ("TopK", "x", "y", (32.0,), (0.9,)),
        ("TopK", "x2", "y2", (32.0,), (0.98,)),
    ]
    assert [a.text for a in fig.layout.annotations] == [
        "explained variance vs L0",
        "CE loss recovered vs L0",
    ]
    # side by side, 0.14 of the width between them
    assert fig.layout.xaxis.domain == pytest.approx((0.0, 0.43))
    assert fig.layout.xaxis2.domain == pytest.approx((0.57, 1.0))
    assert fig.layout.height == 380
    assert (fig.layout.margin.t, fig.layout.margin.b) == (60, 40)
    assert (
        fig.layout.template.layout.to_plotly_json()
        == pio.templates[plots.TEMPLATE].layout.to_plotly_json()
    )
    assert "xaxis3" not in fig.layout and "yaxis3" not in fig.layout  # one row of two panels
    assert fig.layout.yaxis.domain == fig.layout.yaxis2.domain == (0.0, 1.0)
    for axis in (fig.layout.xaxis, fig.layout.xaxis2):
        assert axis.title.text == "L0 (active latents per token)"
        assert list(axis.range) == pytest.approx([0, 57.5])  # 1.15 x the largest L0
    assert fig.layout.yaxis.title.text == "explained variance"
    assert fig.layout.yaxis2.title.text == "fraction of CE loss recovered"
    assert fig.layout.legend.title.text == "sae"
    with pytest.raises(KeyError, match=r"lacks columns \['l0', 'ce_loss_score'\]; it has \['sae'"):
        plots.architecture_comparison_figure(table.drop(columns=["l0", "ce_loss_score"]), "sae")
    with pytest.raises(KeyError, match=r"lacks columns \['architecture'\]"):
        plots.architecture_comparison_figure(table)


def test_histogram_and_an_empty_activation_histogram_use_the_book_layout():
    template = pio.templates[plots.TEMPLATE].layout.to_plotly_json()
    for fig in (
        plots.histogram([0.0, 1.0], "t", "x"),
        plots.feature_activation_histogram(torch.zeros(0), feature=5),
    ):
        assert fig.layout.template.layout.to_plotly_json() == template
        margin = fig.layout.margin
        assert (margin.l, margin.r, margin.t, margin.b) == (60, 20, 60, 50)


def test_histogram_integer_bins_away_from_zero_and_an_exact_multiple():
    # 100..104 in 5 bins: 5 integers, one per bar (ceil(5 / 5)); edges 99.5 .. 104.5
    bar = plots.histogram([100, 101, 101, 104], "t", "x", nbins=5, integer_bins=True).data[0]
    assert list(bar.x) == [100.0, 101.0, 102.0, 103.0, 104.0] and list(bar.y) == [1, 2, 0, 0, 1]
    assert bar.width == 1.0
    # 0..9 in 5 bins: 10 integers, 2 per bar (ceil(10 / 5)); edges -0.5, 1.5, ..., 9.5
    even = plots.histogram(list(range(10)), "t", "x", nbins=5, integer_bins=True).data[0]
    assert list(even.x) == [0.5, 2.5, 4.5, 6.5, 8.5] and list(even.y) == [2] * 5
    assert even.width == 2.0
