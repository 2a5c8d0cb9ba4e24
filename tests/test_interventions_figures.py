"""Unit tests for utils/interventions/figures.py: each figure's data checked by hand (the
steering spread, the gain scatter, the attribution scatter on its signed-log axes).

Random models of unusual sizes (d_model 48, d_sae 200), one with a final LayerNorm whose weights
are not all ones (tests/intervention_helpers.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from intervention_fixtures import attribution, contexts, model, tokenizer  # noqa: F401 (fixtures)

from utils import interventions as I
from utils.interventions import figures


def test_attribution_regime_and_signed_log():
    frame = pd.DataFrame(
        {"share_of_norm": [0.1, 0.5, 0.1, 0.5], "probability": [0.5, 0.5, 0.9, 0.9]}
    )
    assert I.attribution_regime(frame).tolist() == [
        "neither",
        "share of norm > 0.3",
        "p > 0.8",
        "both",
    ]
    # sign(v) log10(1 + |v| / t), by hand for t = 0.01
    values = I.signed_log(pd.Series([0.0, 0.09, -0.99, 9.99]), 0.01)
    assert values.tolist() == pytest.approx([0.0, 1.0, -2.0, 3.0])
    ticks, labels = figures._signed_log_ticks(2.0, 0.1)
    assert labels == ["-10", "-1", "-0.1", "0", "0.1", "1", "10"]
    assert ticks[3] == 0 and ticks[4] == pytest.approx(math.log10(2))


def test_figures(attribution, model, sae):
    frame = I.compare_attribution_with_ablation(model, sae, attribution, n_top=2, n_random=1)
    fig = I.attribution_scatter(frame, "t")
    assert sum(len(trace.x) for trace in fig.data[1:]) == len(frame)
    regimes = set(I.attribution_regime(frame))
    assert [t.name.split(" (")[0] for t in fig.data[1:]] == [
        r for r in ["neither", "share of norm > 0.3", "p > 0.8", "both"] if r in regimes
    ]
    curves = pd.DataFrame(
        {
            "group": ["picked"] * 4 + ["control"] * 4,
            "direction": ["a", "a", "b", "b", "c", "c", "d", "d"],
            "scale": [0, 1] * 4,
            "logprob_gain": [0, 3, 0, 2, 0, 1, 0, 0.5],
        }
    )
    fig = I.steering_spread_figure(curves, "picked", "t")
    assert [t.name for t in fig.data[:2]] == ["a", "b"]
    band, mean = fig.data[2:]
    assert list(band.y) == [0, 1, 0.5, 0]  # highest along c, then lowest back
    assert list(mean.y) == [0, 0.75]
    points = curves.assign(concentration=1.0)
    assert [t.name for t in I.steering_gain_scatter(points, "t").data] == ["picked", "control"]


# ---- edges the review's mutants found untested ---------------------------------------------------


def test_steering_figures_carry_their_data():
    curves = pd.DataFrame(
        {
            "group": ["picked"] * 4 + ["control"] * 6,
            "direction": ["b", "b", "a", "a", "c", "c", "d", "d", "e", "e"],
            "scale": [0, 1] * 5,
            "logprob_gain": [0, 3, 0, 2, 0, 1, 0, 0.5, 0, 0.7],
        }
    )
    fig = I.steering_spread_figure(curves, "picked", "the title")
    assert fig.layout.title.text == "the title"
    assert "steering scale c" in fig.layout.xaxis.title.text
    assert "log-prob" in fig.layout.yaxis.title.text
    first, second, band, mean = fig.data
    assert (first.name, list(first.x), list(first.y)) == ("b", [0, 1], [0, 3])  # data order
    assert (second.name, list(second.y)) == ("a", [0, 2])
    assert "b" in first.hovertemplate
    assert list(band.x) == [0, 1, 1, 0] and list(band.y) == [0, 1, 0.5, 0]
    assert band.fill == "toself"
    assert list(mean.x) == [0, 1] and list(mean.y) == pytest.approx([0, 2.2 / 3])
    assert mean.name == "control (mean, band: min-max of 3)"
    points = pd.DataFrame(
        {
            "group": ["z", "z", "a"],
            "direction": ["latent 1", "latent 2", "random 0"],
            "concentration": [4.0, 3.5, 2.0],
            "logprob_gain": [1.5, 1.0, 0.2],
        }
    )
    scatter = I.steering_gain_scatter(points, "t").data
    assert [trace.name for trace in scatter] == ["z", "a"]
    assert list(scatter[0].x) == [4.0, 3.5] and list(scatter[0].y) == [1.5, 1.0]
    assert [row[0] for row in scatter[1].customdata] == ["random 0"]


def test_attribution_scatter_by_hand():
    frame = pd.DataFrame(
        {
            "latent": [1, 2, 3, 4],
            "position": [0, 1, 2, 3],
            "actual": [0.0, -0.02, 0.5, 2.0],
            "predicted": [0.001, -0.01, 0.4, 1.0],
            "probability": [0.5, 0.5, 0.9, 0.5],
            "share_of_norm": [0.1, 0.1, 0.1, 0.5],
        }
    )
    fig = I.attribution_scatter(frame, "the title", confident=0.8)
    # linear part: 10^floor(log10(5th percentile of the non-zero |values|)) = 0.001
    linear_below = 10.0 ** math.floor(
        math.log10(pd.Series([0.02, 0.5, 2, 0.001, 0.01, 0.4, 1]).quantile(0.05))
    )
    assert linear_below == 0.001
    edge = float(I.signed_log(2.0, linear_below))
    line, *points = fig.data
    assert line.name == "y = x" and list(line.x) == list(line.y) == [-edge, edge]
    names = {t.name: t for t in points}
    assert set(names) == {"neither (2)", "share of norm > 0.3 (1)", "p > 0.8 (1)"}
    neither = names["neither (2)"]
    assert list(neither.x) == pytest.approx(list(I.signed_log(pd.Series([0.0, -0.02]), 0.001)))
    assert list(neither.y) == pytest.approx(list(I.signed_log(pd.Series([0.001, -0.01]), 0.001)))
    assert [row[0] for row in neither.customdata] == [1, 2]
    ticks, labels = figures._signed_log_ticks(2.0, 0.001)
    assert list(fig.layout.xaxis.tickvals) == ticks and list(fig.layout.yaxis.ticktext) == labels
    assert fig.layout.xaxis.zeroline is True
    assert fig.layout.title.text == "the title"
    assert "actual change" in fig.layout.xaxis.title.text
    assert "predicted" in fig.layout.yaxis.title.text
    # no pair in a regime: no empty trace, and the later regimes still drawn
    only_both = frame.assign(probability=0.9, share_of_norm=0.5)
    assert [t.name for t in I.attribution_scatter(only_both, "t").data[1:]] == ["both (4)"]
    # all effects zero: the linear part is 1 (ticks at -1, 0, 1)
    zeros = frame.assign(actual=0.0, predicted=0.0)
    assert list(I.attribution_scatter(zeros, "t").layout.xaxis.ticktext) == ["-1", "0", "1"]


def test_transparent_colour_by_hand():
    assert figures._transparent("#1f77b4", 0.15) == "rgba(31,119,180,0.15)"
    assert figures._transparent("#ff0a00", 1) == "rgba(255,10,0,1)"


def test_gain_scatter_draws_the_line_and_marks_a_group():
    table = pd.DataFrame(
        {
            "group": ["picked", "band", "band", "band"],
            "direction": ["latent 1", "latent 2", "latent 3", "latent 4"],
            "concentration": [5.0, 1.0, 2.0, 3.0],
            "logprob_gain": [4.0, 1.0, 2.0, 3.0],
        }
    )
    line = I.fit_line([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    fig = I.steering_gain_scatter(table, "t", line=line, line_name="trend", marked="picked")
    traces = {trace.name: trace for trace in fig.data}
    assert list(traces["trend"].x) == [1.0, 5.0]
    assert list(traces["trend"].y) == pytest.approx([1.0, 5.0])
    assert traces["picked"].marker.symbol == "diamond"
    assert traces["band"].marker.symbol == "circle"
    assert "trend" not in {t.name for t in I.steering_gain_scatter(table, "t").data}


def test_figures_have_the_books_layout_titles_and_thresholds():
    from utils.plots import LAYOUT

    table = pd.DataFrame(
        {
            "group": ["picked", "band"],
            "direction": ["latent 1", "latent 2"],
            "concentration": [5.0, 1.0],
            "logprob_gain": [4.0, 1.0],
        }
    )
    gain = I.steering_gain_scatter(table, "gain title")
    assert gain.layout.title.text == "gain title"
    assert gain.layout.xaxis.title.text == (
        "concentration of the direct logit effects (the rule's score)"
    )
    assert gain.layout.yaxis.title.text == "gain in mean log-prob of its own top tokens (nats)"
    curves = table.assign(scale=0.0).rename(columns={"concentration": "unused"})
    frame = pd.DataFrame(
        {
            "latent": [1, 2],
            "position": [0, 1],
            "actual": [0.5, 2.0],
            "predicted": [0.4, 1.0],
            "probability": [0.6, 0.9],
            "share_of_norm": [0.1, 0.1],
        }
    )
    attribution = I.attribution_scatter(frame, "t", confident=0.5)
    # the threshold passed on to the regimes: both pairs are above p = 0.5
    assert [t.name for t in attribution.data[1:]] == ["p > 0.5 (2)"]
    for fig in (gain, I.steering_spread_figure(curves, "picked", "t"), attribution):
        assert fig.layout.template.layout.plot_bgcolor == "white"  # plotly_white, the book's
        assert fig.layout.margin.l == LAYOUT["margin"]["l"]
