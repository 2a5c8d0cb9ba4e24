"""Tests for utils/ground_truth/figures.py (tutorial 4): each figure's numbers checked against the
tables it draws, and every figure titled."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from ground_truth_helpers import outcome_table

from utils.ground_truth import (
    OUTCOMES,
    absorption_distribution_figure,
    absorption_outcomes,
    absorption_outcomes_figure,
    detection_figure,
    firing_rate_figure,
    frontier_figure,
    pair_cosine_figure,
    seed_scatter_figure,
    seed_spread_figure,
)


def test_seed_spread_figure_draws_each_saes_range_seeds_and_mean():
    frame = pd.DataFrame(
        {
            "SAE": ["A", "A", "A", "B", "B", "B"],
            "seed": [0, 1, 2] * 2,
            "mcc": [0.5, 0.9, 0.7, 0.2, 0.2, 0.5],
        }
    )
    fig = seed_spread_figure(frame, {"mcc": "MCC"}, "t")
    assert len(fig.data) == 2 * 3  # per SAE: a range line, the seeds, the mean
    line_a, seeds_a, mean_a, line_b, _, mean_b = fig.data
    assert list(line_a.x) == [0.5, 0.9] and list(line_b.x) == [0.2, 0.5]
    assert list(seeds_a.x) == [0.5, 0.9, 0.7]
    assert mean_a.x[0] == pytest.approx(0.7) and mean_b.x[0] == pytest.approx(0.3)
    assert set(mean_a.y) == {"A"} and line_a.line.color != line_b.line.color
    long = seed_spread_figure(frame, {"mcc": "children's latents: cos to parent"}, "t")
    assert long.layout.annotations[0].text == "children's latents:<br>cos to parent"


def test_absorption_outcomes_figure_stacks_the_means_over_seeds():
    fires, carried, lost = OUTCOMES.values()
    outcomes = pd.DataFrame(
        {
            "SAE": ["A", "A", "B"],
            "seed": [0, 1, 0],
            fires: [0.2, 0.4, 1.0],
            carried: [0.5, 0.3, 0.0],
            lost: [0.3, 0.3, 0.0],
        }
    )
    fig = absorption_outcomes_figure(outcomes)
    assert fig.layout.barmode == "stack"
    bars = {bar.name: list(bar.y) for bar in fig.data}
    assert bars[fires] == pytest.approx([0.3, 1.0])
    assert bars[carried] == pytest.approx([0.4, 0.0])
    assert bars[lost] == pytest.approx([0.3, 0.0])
    assert list(fig.data[0].x) == ["A", "B"]
    assert fig.data[0].customdata[0] == "0.20, 0.40"  # each seed in the hover text


def test_absorption_distribution_figure_has_every_parent_of_every_seed():
    tables = {
        ("A", 0): outcome_table([(0, 0.2, 0.5, 0.3), (1, 0.6, 0.1, 0.3)]),
        ("A", 1): outcome_table([(0, 1.0, 0.0, 0.0), (1, 0.0, 0.0, 1.0)]),
        ("B", 0): outcome_table([(0, 0.2, 0.5, 0.3), (1, 0.6, 0.1, 0.3)]),
    }
    fig = absorption_distribution_figure(tables)
    boxes = [(trace.name, list(trace.y)) for trace in fig.data]
    assert boxes[0] == ("A", [0.5, -1.0, 0.5, -1.0])  # firing-ratio absorption, 2 seeds
    assert boxes[1] == ("A", [0.5, 0.1, 0.0, 0.0])  # carried with a child
    assert boxes[2][0] == "B" and len(boxes[2][1]) == 2


def small_frontier() -> pd.DataFrame:
    """Three SAEs of two architectures, written out (the frontier figures' tests share it)."""
    return pd.DataFrame(
        {
            "SAE": ["L1", "L1", "TopK"],
            "L1 or k": [1.0, 0.1, 4],
            "l0": [3.0, 9.0, 4.0],
            "mcc": [0.7, 0.6, 0.9],
            "explained_variance": [0.5, 0.9, 0.8],
        }
    )


def test_frontier_figure_one_line_per_architecture_sorted_by_l0():
    frontier = small_frontier()
    fig = frontier_figure(
        frontier,
        {"mcc": "MCC", "explained_variance": "EV"},
        "t",
        true_l0=4.1,
        lines={"mcc": (0.3, "random")},
    )
    l1_mcc, l1_ev, topk_mcc, _ = fig.data
    assert list(l1_mcc.x) == [3.0, 9.0] and list(l1_mcc.y) == [0.7, 0.6]
    assert list(l1_ev.y) == [0.5, 0.9] and list(topk_mcc.y) == [0.9]
    vertical = [s.x0 for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1]
    assert vertical == [4.1, 4.1]  # the true L0, in each panel


def test_detection_and_simple_figures_show_every_feature():
    detection = pd.DataFrame(
        {
            "feature": [0, 1, 2],
            "firing_rate": [0.3, 0.1, 0.01],
            "latent": [5, 6, 7],
            "cos": [0.99, 0.6, 0.9],
            "precision": [1.0, 0.5, 0.9],
            "recall": [0.3, 0.9, 1.0],
            "role": ["parent", "child", "parent"],
        }
    )
    fig = detection_figure(detection, "t")
    parent_cos, parent_recall = fig.data[0], fig.data[1]
    assert list(parent_cos.y) == [0.99, 0.9] and list(parent_recall.y) == [0.3, 1.0]
    assert list(parent_recall.x) == [0.99, 0.9]
    rates = firing_rate_figure(torch.tensor([0.3, 0.1, 0.01]), ["parent", "child", "parent"])
    assert sorted(x for trace in rates.data for x in trace.x) == [0, 1, 2]
    unit = torch.eye(3)
    unit[2] = torch.tensor([1.0, 1.0, 0.0]) / 2**0.5  # cosines 0, 0.707, 0.707
    bars = pair_cosine_figure(unit, bins=4).data[0]
    assert sum(bars.y) == 3 and bars.y[0] == 1 and bars.y[-1] == 2
    with pytest.raises(ValueError, match="role has 2 entries for 3 features"):
        firing_rate_figure(torch.tensor([0.3, 0.1, 0.01]), ["parent", "child"])


def test_every_tutorial_4_figure_has_a_title_and_axis_titles():
    frame = pd.DataFrame({"SAE": ["A", "B"], "seed": [0, 0], "mcc": [0.5, 0.6], "l0": [1, 2]})
    tables = {("A", 0): outcome_table([(0, 0.2, 0.5, 0.3), (1, 0.6, 0.1, 0.3)])}
    frontier = frame.assign(**{"L1 or k": [1, 2]})
    detection = pd.DataFrame(
        {"feature": [0], "firing_rate": [0.3], "latent": [5], "cos": [0.9], "precision": [1.0],
         "recall": [0.3], "role": ["parent"]}
    )  # fmt: skip
    figures = [
        firing_rate_figure(torch.tensor([0.3, 0.1]), ["parent", "other"]),
        pair_cosine_figure(torch.eye(3)),
        detection_figure(detection, "t"),
        frontier_figure(frontier, {"mcc": "MCC"}, "t"),
        seed_spread_figure(frame, {"mcc": "MCC"}, "t"),
        seed_scatter_figure(frame, "l0", "mcc", "t"),
        absorption_distribution_figure(tables),
        absorption_outcomes_figure(absorption_outcomes(tables)),
    ]
    for fig in figures:
        assert fig.layout.title.text and fig.layout.template.layout.paper_bgcolor is not None
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text, fig.layout.title.text


# the survivors of the mutation run of part t4: each figure's data and structure, by hand
def book_layout(fig) -> bool:
    """The figure starts from utils.plots.LAYOUT (the book's template and margins)."""
    import plotly.graph_objects as go

    from utils.plots import LAYOUT

    template = go.Figure(layout={"template": LAYOUT["template"]}).layout.template
    return fig.layout.template == template and fig.layout.margin.l == LAYOUT["margin"]["l"]


def axes(fig, letter: str) -> list[str]:
    return sorted(k for k in fig.layout.to_plotly_json() if k.startswith(f"{letter}axis"))


def test_absorption_distribution_figure_panels_points_and_zero_line():
    tables = {
        ("A", 0): outcome_table([(0, 0.2, 0.5, 0.3), (1, 0.6, 0.1, 0.3)]),
        ("A", 3): outcome_table([(4, 1.0, 0.0, 0.0), (5, 0.0, 0.0, 1.0)]),
    }
    fig = absorption_distribution_figure(tables)
    assert axes(fig, "x") == ["xaxis", "xaxis2"] and axes(fig, "y") == ["yaxis", "yaxis2"]
    assert [a.text for a in fig.layout.annotations] == [
        "firing-ratio absorption",
        "carried with a child (Chanin et al.)",
    ]
    box = fig.data[0]
    assert box.boxpoints == "all"  # every parent's dot is drawn
    assert list(box.text) == [
        "A, parent 0, seed 0", "A, parent 1, seed 0", "A, parent 4, seed 3", "A, parent 5, seed 3"
    ]  # fmt: skip
    assert list(fig.data[1].text) == list(box.text)
    zero = [s for s in fig.layout.shapes if s.type == "line"]
    assert [(s.y0, s.y1) for s in zero] == [(0, 0)] * len(zero) and zero
    assert fig.layout.yaxis.title.text == "per parent" and fig.layout.yaxis2.title.text is None
    assert book_layout(fig)


def test_absorption_outcomes_figure_axis_is_a_share():
    fires, carried, lost = OUTCOMES.values()
    outcomes = pd.DataFrame({"SAE": ["A"], "seed": [0], fires: [0.2], carried: [0.5], lost: [0.3]})
    fig = absorption_outcomes_figure(outcomes)
    assert tuple(fig.layout.yaxis.range) == (0, 1)
    assert book_layout(fig)


def test_firing_rate_figure_one_trace_per_role_log_scale():
    rates = torch.tensor([0.3, 0.1, 0.01, 0.02])
    fig = firing_rate_figure(rates, ["parent", "child", "parent", "other"])
    traces = {t.name: (list(t.x), list(t.y)) for t in fig.data}
    assert traces.keys() == {"parent", "child", "other"}
    assert traces["parent"][0] == [0, 2] and traces["parent"][1] == pytest.approx([0.3, 0.01])
    assert traces["child"][0] == [1] and traces["child"][1] == pytest.approx([0.1])
    assert fig.layout.yaxis.type == "log"
    assert book_layout(fig)


def test_frontier_figure_panels_titles_reference_line_and_log_axes():
    frontier = small_frontier()
    panels = {"mcc": "MCC", "explained_variance": "EV"}
    for metric, yref in (("mcc", "y"), ("explained_variance", "y2")):
        fig = frontier_figure(frontier, panels, "t", lines={metric: (0.3, "random")})
        assert axes(fig, "x") == ["xaxis", "xaxis2"] and axes(fig, "y") == ["yaxis", "yaxis2"]
        assert [a.text for a in fig.layout.annotations][:2] == ["MCC", "EV"]
        flat = [s for s in fig.layout.shapes if s.y0 == s.y1]
        assert [(s.y0, s.yref) for s in flat] == [(0.3, yref)]  # in its metric's panel
    assert [t.name for t in fig.data] == ["L1", "L1", "TopK", "TopK"]
    assert list(fig.data[0].text) == ["L1, L1 or k = 1", "L1, L1 or k = 0.1"]  # sorted by L0
    assert fig.layout.yaxis.title.text == "MCC" and fig.layout.yaxis2.title.text == "EV"
    assert fig.layout.xaxis.type == fig.layout.xaxis2.type == "log"
    assert book_layout(fig)


def test_pair_cosine_figure_bins_by_hand():
    import numpy as np

    # 4 features in 3 dimensions, rows of different lengths: the cosines of every pair
    features = torch.tensor([[2.0, 0, 0], [0, 3.0, 0], [1, 1, 0], [-1, 0.5, 2]])
    unit = features.numpy() / np.linalg.norm(features.numpy(), axis=1, keepdims=True)
    cosines = [unit[i] @ unit[j] for i in range(4) for j in range(i + 1, 4)]
    counts, edges = np.histogram(cosines, bins=5, range=(min(cosines), max(cosines)))
    bars = pair_cosine_figure(features, bins=5).data[0]
    assert list(bars.y) == counts.tolist() and sum(bars.y) == 6  # 4 * 3 / 2 pairs
    assert list(bars.x) == pytest.approx((edges[:-1] + edges[1:]) / 2, abs=1e-6)
    assert bars.width == pytest.approx(edges[1] - edges[0], abs=1e-6)
    assert len(pair_cosine_figure(features).data[0].x) == 80  # the default number of bins


def test_seed_scatter_figure_one_trace_per_sae():
    frame = pd.DataFrame(
        {"SAE": ["A", "B", "A"], "seed": [0, 0, 1], "l0": [1.0, 2.0, 3.0], "mcc": [0.5, 0.6, 0.7]}
    )
    fig = seed_scatter_figure(frame, "l0", "mcc", "t")
    assert [t.name for t in fig.data] == ["A", "B"]
    assert list(fig.data[0].x) == [1.0, 3.0] and list(fig.data[0].y) == [0.5, 0.7]
    assert list(fig.data[1].x) == [2.0] and list(fig.data[1].y) == [0.6]
    assert list(fig.data[0].text) == ["A, seed 0", "A, seed 1"]
    assert book_layout(fig)


def test_detection_figure_panels_axes_colours_and_hover_text():
    from utils.plots import PALETTE

    detection = pd.DataFrame(
        {
            "feature": [0, 1, 2, 3],
            "firing_rate": [0.3, 0.1, 0.01, 0.05],
            "latent": [5, 6, 7, 8],
            "cos": [0.99, 0.6, 0.9, 0.4],
            "precision": [1.0, 0.5, 0.9, 0.25],
            "recall": [0.3, 0.9, 1.0, 0.2],
            "role": ["parent", "child", "parent", "mystery"],
        }
    )
    fig = detection_figure(detection, "t")
    # one row of two panels, 0.12 apart: each panel (1 - 0.12) / 2 wide
    assert axes(fig, "x") == ["xaxis", "xaxis2"] and axes(fig, "y") == ["yaxis", "yaxis2"]
    assert fig.layout.xaxis.domain[1] == pytest.approx(0.44)
    assert fig.layout.xaxis2.domain[0] == pytest.approx(0.56)
    assert [a.text for a in fig.layout.annotations] == [
        "direction: cosine to its best latent",
        "detection: recall",
    ]
    # per role, in order of first appearance, a trace in each panel; the legend once per role
    assert [(t.name, t.xaxis, t.showlegend) for t in fig.data] == [
        ("parent", "x", True), ("parent", "x2", False),
        ("child", "x", True), ("child", "x2", False),
        ("mystery", "x", True), ("mystery", "x2", False),
    ]  # fmt: skip
    # the roles' colours; a role without one takes the palette's colour of its panel's number
    colours = [t.marker.color for t in fig.data]
    assert colours[:4] == [PALETTE[1], PALETTE[1], PALETTE[4], PALETTE[4]]
    assert colours[4:] == [PALETTE[1], PALETTE[2]]
    assert fig.data[0].text == (
        "feature 0 (parent), latent 5<br>precision 1.00",
        "feature 2 (parent), latent 7<br>precision 0.90",
    )
    assert fig.data[5].text == ("feature 3 (mystery), latent 8<br>precision 0.25",)
    # each axis its own title; the firing rate alone on a log scale; recall on [0, 1.05]
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type != "log"
    assert fig.layout.xaxis.title.text == "true feature's firing rate"
    assert fig.layout.xaxis2.title.text == "cosine to its best latent"
    assert fig.layout.yaxis.title.text == "cosine to its best latent"
    assert fig.layout.yaxis2.title.text == "recall of that latent"
    assert fig.layout.yaxis.range is None and list(fig.layout.yaxis2.range) == [0, 1.05]
    assert fig.layout.height == 420 and fig.layout.legend.title.text == "role"
    assert fig.layout.title.text == "t" and book_layout(fig)


def test_seed_spread_figure_panels_share_the_sae_axis_and_each_has_its_label():
    frame = pd.DataFrame(
        {
            "SAE": ["A", "A", "B", "B", "C", "C"],
            "seed": [0, 1] * 3,
            "mcc": [1, 3, 2, 2, 0, 4],  # whole numbers: drawn as floats all the same
            "ev": [0.5, 0.7, 0.1, 0.3, 0.2, 0.2],
        }
    )
    metrics = {"mcc": "a: b", "ev": "twenty chars: exact!"}  # 4 and 20 characters: no break
    assert len("twenty chars: exact!") == 20 and len("twenty-1 chars: exact") == 21
    fig = seed_spread_figure(frame, metrics, "t")
    assert axes(fig, "x") == ["xaxis", "xaxis2"] and axes(fig, "y") == ["yaxis", "yaxis2"]
    assert [a.text for a in fig.layout.annotations] == ["a: b", "twenty chars: exact!"]
    assert fig.layout.yaxis2.matches == "y"  # shared: one SAE axis for every panel
    assert fig.layout.xaxis.title.text == "a: b"
    assert fig.layout.xaxis2.title.text == "twenty chars: exact!"
    assert fig.layout.yaxis.title.text == "SAE" and fig.layout.yaxis2.title.text is None
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.height == 160 + 45 * 3 and fig.layout.margin.t == 70
    assert fig.layout.title.text.startswith("t ") and book_layout(fig)
    # per SAE and panel: range line, seeds, mean; in the second panel, on the second axes
    assert len(fig.data) == 2 * 3 * 3 and {t.xaxis for t in fig.data[9:]} == {"x2"}
    line, seeds, mean = fig.data[3:6]  # B in the first panel
    assert list(line.y) == ["B", "B"] and list(line.x) == [2.0, 2.0]
    assert list(seeds.y) == ["B", "B"] and list(seeds.text) == ["B, seed 0", "B, seed 1"]
    assert mean.name == "B" and list(mean.x) == [2.0] and mean.showlegend
    assert not fig.data[12 + 2].showlegend  # B's mean in the second panel: no second entry
    # 21 characters: broken after the colon, and the top margin makes room for two lines
    long = seed_spread_figure(frame, {"mcc": "twenty-1 chars: exact"}, "t")
    assert long.layout.annotations[0].text == "twenty-1 chars:<br>exact"
    assert long.layout.margin.t == 100


def test_pair_cosine_figure_counts_on_a_log_axis_in_the_book_layout():
    fig = pair_cosine_figure(torch.eye(3) + 0.1, bins=3)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.title.text == "pairs"
    assert book_layout(fig)


def test_frontier_figure_reference_line_in_its_own_panel_of_three():
    """With three panels a line's panel cannot come out right by wrapping around."""
    frontier = small_frontier().assign(dead=[0.1, 0.2, 0.3])
    panels = {"mcc": "MCC", "explained_variance": "EV", "dead": "dead"}
    for metric, yref in (("mcc", "y"), ("explained_variance", "y2"), ("dead", "y3")):
        fig = frontier_figure(frontier, panels, "t", lines={metric: (0.3, "random")})
        assert [(s.y0, s.yref) for s in fig.layout.shapes if s.y0 == s.y1] == [(0.3, yref)]


# what the reader sees of each figure: the titles that say what is drawn, one colour per role,
# outcome and SAE used the same way in every figure, reference lines drawn apart from the data
def test_firing_rate_figure_titles_and_role_colours():
    from utils.plots import PALETTE

    fig = firing_rate_figure(torch.tensor([0.3, 0.1, 0.01, 0.02]), ["other", "x", "parent", "y"])
    # roles of the hierarchy keep their colour; any other takes the palette's next free colour
    assert [(t.name, t.marker.color) for t in fig.data] == [
        ("other", PALETTE[0]), ("x", PALETTE[1]), ("parent", PALETTE[1]), ("y", PALETTE[3]),
    ]  # fmt: skip
    assert fig.layout.title.text == "How often each true feature fires (Zipfian)"
    assert fig.layout.xaxis.title.text == "feature index"
    assert fig.layout.yaxis.title.text == "firing rate"
    assert fig.layout.legend.title.text == "role"


def test_frontier_figure_reference_lines_labels_and_size():
    from utils.ground_truth.figures import REFERENCE

    fig = frontier_figure(
        small_frontier(),
        {"mcc": "MCC", "explained_variance": "EV"},
        "t",
        true_l0=4.1,
        lines={"mcc": (0.3, "random")},
    )
    vertical = [s for s in fig.layout.shapes if s.x0 == s.x1]
    flat = [s for s in fig.layout.shapes if s.y0 == s.y1]
    assert {(s.line.dash, s.line.color) for s in vertical} == {("dot", REFERENCE)}
    assert [(s.line.dash, s.line.color) for s in flat] == [("dash", REFERENCE)]
    assert [a.text for a in fig.layout.annotations] == ["MCC", "EV", "random"]
    assert fig.layout.xaxis.title.text == fig.layout.xaxis2.title.text
    assert fig.layout.xaxis.title.text == "L0 (latents active per sample)"
    assert fig.layout.height == 420
    # one colour per architecture, the same in both panels
    assert [t.line.color for t in fig.data] == [fig.data[0].line.color] * 2 + [
        fig.data[2].line.color
    ] * 2
    assert fig.data[0].line.color != fig.data[2].line.color


def test_seed_scatter_figure_axis_titles_from_columns_and_a_symbol_per_seed():
    frame = pd.DataFrame(
        {"SAE": ["A"] * 7, "seed": range(7), "mean_l0": range(7), "mcc_gap": [0.1] * 7}
    )
    fig = seed_scatter_figure(frame, "mean_l0", "mcc_gap", "t")
    assert fig.layout.xaxis.title.text == "mean l0"
    assert fig.layout.yaxis.title.text == "MCC gap"
    assert fig.layout.title.text == "t (symbol: seed)"
    symbols = ["circle", "square", "diamond", "cross", "x", "triangle-up", "circle"]
    assert list(fig.data[0].marker.symbol) == symbols  # seed 6 wraps around


def test_absorption_figures_colours_lines_and_titles():
    from utils.ground_truth.figures import REFERENCE
    from utils.plots import PALETTE

    tables = {
        (name, seed): outcome_table([(0, 0.2, 0.5, 0.3), (1, 0.6, 0.1, 0.3)])
        for name in ("A", "B")
        for seed in (0, 1)
    }
    spread = absorption_distribution_figure(tables)
    assert [t.marker.color for t in spread.data] == [PALETTE[0]] * 2 + [PALETTE[1]] * 2
    assert {(t.boxpoints, t.jitter, t.pointpos) for t in spread.data} == {("all", 0.5, 0)}
    zeros = {(s.y0, s.y1, s.yref, s.line.dash, s.line.color) for s in spread.layout.shapes}
    assert zeros == {(0, 0, y, "dot", REFERENCE) for y in ("y", "y2")}  # in both panels
    assert spread.layout.xaxis.title.text == spread.layout.xaxis2.title.text == "SAE"
    assert spread.layout.yaxis.title.text == "per parent" and spread.layout.height == 420
    assert spread.layout.title.text.startswith("Absorption per parent feature, every seed")
    bars = absorption_outcomes_figure(absorption_outcomes(tables))
    # the parent's latent fires: green; silent but carried by other latents: orange; lost: red
    colours = ["#2ca02c", "#ff7f0e", "#d62728"]
    assert [(t.name, t.marker.color) for t in bars.data] == list(zip(OUTCOMES.values(), colours))
    assert bars.layout.yaxis.title.text == "share of parent-and-child samples"
    assert bars.layout.xaxis.title.text == "SAE"
    assert bars.layout.legend.title.text == "the parent's latent"
    assert bars.layout.title.text.startswith("What happens to a parent when a child is active")
