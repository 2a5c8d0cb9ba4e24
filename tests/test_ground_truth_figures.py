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


def test_frontier_figure_one_line_per_architecture_sorted_by_l0():
    frontier = pd.DataFrame(
        {
            "SAE": ["L1", "L1", "TopK"],
            "L1 or k": [1.0, 0.1, 4],
            "l0": [3.0, 9.0, 4.0],
            "mcc": [0.7, 0.6, 0.9],
            "explained_variance": [0.5, 0.9, 0.8],
        }
    )
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
