"""utils/circuits/figures.py and export.py, what a reader sees of a graph: the graph, ablation and
training figures by hand, and the JSON file for circuit-tracer's viewer written out whole for the
hand-made graph and checked on a real one."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from circuit_fixtures import graph, lm, prompt, transcoders  # noqa: F401 (fixtures)
from circuit_helpers import hand_graph

from utils import circuits as C


def test_the_graph_figure_by_hand():
    """The hand graph without its bias node: edges in the adjacency's row order, width 0.5 + 6
    |w| / max |w|, coloured by sign, from source to target; one marker trace per kind present, in
    KIND_COLORS' order, sized 10 + 40 sqrt(influence) (a negative influence counts as 0; the
    target 24) with hover text built from each node's label, value, influence and inputs; rows
    and columns named."""
    from utils.circuits.figures import KIND_COLORS, NEGATIVE, POSITIVE
    from utils.circuits.pruning import PrunedGraph
    from utils.plots import LAYOUT

    graph = hand_graph()
    node_mask = torch.tensor([False, True, True, True, True])
    edge_mask = (graph.adjacency != 0) & node_mask[:, None] & node_mask[None, :]
    influence = torch.tensor([0.0, 0.3, 0.6, -0.1, 0.0])
    pruned = PrunedGraph(graph, node_mask, edge_mask, influence, 0.8, 0.98)
    fig = C.graph_figure(pruned, hover={2: "top tokens: ' x'"})
    edges, markers = fig.data[:4], fig.data[4:]
    # (target, source, weight): l <- e 2, T <- e -1, T <- l 3, T <- r 1; e at (1, 0), l at
    # (0.65, 1), r at (1.35, 1), T at (1, 2)
    expected = [((0.65, 1.0), (1.0, 0.0), 2.0), ((1.0, 2.0), (1.0, 0.0), -1.0)]
    expected += [((1.0, 2.0), (0.65, 1.0), 3.0), ((1.0, 2.0), (1.35, 1.0), 1.0)]
    for trace, (target, source, w) in zip(edges, expected):
        assert trace.mode == "lines"
        assert list(trace.x) == pytest.approx([source[0], target[0]])
        assert list(trace.y) == pytest.approx([source[1], target[1]])
        assert trace.line.width == pytest.approx(0.5 + 6 * abs(w) / 3)
        assert trace.line.color == (POSITIVE if w > 0 else NEGATIVE)
    assert [t.name for t in markers] == ["embedding", "latent", "error", "target"]
    assert [t.marker.color for t in markers] == [KIND_COLORS[t.name] for t in markers]
    assert [float(t.x[0]) for t in markers] == pytest.approx([1.0, 0.65, 1.35, 1.0])
    assert [list(t.y) for t in markers] == [[0.0], [1.0], [1.0], [2.0]]
    sizes = [float(t.marker.size[0]) for t in markers]
    assert sizes == pytest.approx([10 + 40 * 0.3**0.5, 10 + 40 * 0.6**0.5, 10.0, 24.0])
    assert [t.text[0] for t in markers] == [
        "<b>e</b> at 'a' (position 1)<br>value 1, influence 0.300",
        "<b>l</b> at 'a' (position 1)<br>value 2, influence 0.600<br>input from 1 nodes"
        "<br>top tokens: ' x'",
        "<b>r</b> at 'a' (position 1)<br>value 1, influence -0.100",
        "<b>T</b> at 'a' (position 1)<br>value 3.5<br>input from 4 nodes",
    ]
    assert fig.layout.title.text == "Attribution graph: 4 nodes, 4 edges"
    assert list(fig.layout.yaxis.ticktext) == ["inputs", "layer 0", "target"]
    assert (fig.layout.yaxis.title.text, fig.layout.xaxis.title.text) == (
        "layer",
        "position (token)",
    )
    assert list(fig.layout.yaxis.tickvals) == [0, 1, 2]
    assert list(fig.layout.xaxis.ticktext) == ["'<bos>'", "'a'"]
    assert list(fig.layout.xaxis.tickvals) == [0, 1]
    assert list(fig.layout.xaxis.range) == pytest.approx([-0.6, 1.6])
    assert fig.layout.height == 480 and fig.layout.margin.l == LAYOUT["margin"]["l"]
    book = go.Figure(layout=LAYOUT).layout.template.to_plotly_json()
    assert (
        fig.layout.template.to_plotly_json() == book != go.Figure().layout.template.to_plotly_json()
    )
    bare = C.graph_figure(PrunedGraph(graph, node_mask, edge_mask & False, influence, 0.8, 0.98))
    assert [t.mode for t in bare.data] == ["markers"] * 4  # no edges, still drawn
    assert C.graph_figure(pruned, title="mine").layout.title.text == "mine"


def test_the_ablation_and_training_figures_by_hand():
    from utils.plots import LAYOUT, PALETTE

    book = go.Figure(layout=LAYOUT).layout.template.to_plotly_json()
    frame = pd.DataFrame(
        dict(
            prompt=[0, 0, 1],
            group=["top", "random", "top"],
            layer=[0, 1, 1],
            position=[1, 2, 3],
            latent=[3, 4, 5],
            predicted=[0.1, -0.2, 0.4],
            real=[0.2, -0.1, 0.5],
        )
    )
    fig = C.ablation_figure(frame, "checked")
    top, control, line = fig.data
    assert [t.name for t in fig.data] == ["top", "random", "real = predicted"]  # first seen first
    assert (list(top.x), list(top.y)) == ([0.1, 0.4], [0.2, 0.5])
    assert (list(control.x), list(control.y)) == ([-0.2], [-0.1])
    assert top.customdata.tolist() == [[0, 0, 1, 3], [1, 1, 3, 5]]
    assert (top.marker.color, control.marker.color) == (PALETTE[0], PALETTE[1])
    assert (list(line.x), list(line.y)) == ([-0.2, 0.5], [-0.2, 0.5])  # the diagonal, end to end
    layout = fig.layout
    assert (layout.title.text, layout.height) == ("checked", 450)
    assert layout.xaxis.title.text == "change of the target predicted by the graph"
    assert layout.yaxis.title.text == "real change (ablation in the model)"
    assert layout.template.to_plotly_json() == book
    run = C.TrainingRun(steps=[0, 4, 9], fvu=[1.0, 0.4, 0.2], n_steps=10, n_tokens=1000, seconds=1)
    fig = C.training_figure(run, "layer 0")
    assert list(fig.data[0].x) == [100, 500, 1000] and list(fig.data[0].y) == [1.0, 0.4, 0.2]
    one_step = C.TrainingRun(steps=[0], fvu=[1.0], n_steps=1, n_tokens=64, seconds=1)
    assert list(C.training_figure(one_step, "t").data[0].x) == [64]
    layout = fig.layout
    assert (layout.title.text, layout.height, layout.yaxis.type) == ("layer 0", 350, "log")
    assert layout.xaxis.title.text == "training tokens"
    assert layout.yaxis.title.text == "FVU of the batch (log scale)"
    assert layout.template.to_plotly_json() == book


def test_figures_and_export(graph, tmp_path):
    pruned = C.prune_graph(graph)
    fig = C.graph_figure(pruned, hover={int(pruned.node_mask.nonzero()[0]): "extra"})
    assert fig.layout.title.text and fig.layout.xaxis.title.text
    path = C.write_graph_json(pruned, tmp_path, "tiny-test", scan="random")
    data = json.loads(path.read_text())
    labelled = int(pruned.kept_nodes().query("kind == 'latent'").index[0])
    again = C.write_graph_json(pruned, tmp_path, "labelled", scan="random", labels={labelled: "hi"})
    assert again == tmp_path / "labelled.json"
    assert "hi" in {n["clerp"] for n in json.loads(again.read_text())["nodes"]}
    assert set(data) == {"metadata", "qParams", "nodes", "links"}
    assert data["metadata"]["prompt"] == "".join(graph.str_tokens[1:])  # the text after BOS
    ids = {n["node_id"] for n in data["nodes"]}
    assert all(link["source"] in ids and link["target"] in ids for link in data["links"])
    assert sum(n["is_target_logit"] for n in data["nodes"]) == 1
    kinds = {n["feature_type"] for n in data["nodes"]}
    assert "embedding" in kinds and "logit" in kinds
    latent = next(n for n in data["nodes"] if n["feature_type"] == "cross layer transcoder")
    layer, j, pos = (int(v) for v in latent["node_id"].split("_"))
    assert latent["feature"] == (layer + j) * (layer + j + 1) // 2 + j
    assert isinstance(latent["feature"], int)
    C.graph_json(pruned, "tiny-X_1", scan="x")  # any name without slashes or spaces
    for slug in ("a b", "a\\b", ""):
        with pytest.raises(ValueError, match="slug must be"):
            C.graph_json(pruned, slug, scan="x")
    with pytest.raises(ValueError, match="slug"):
        C.graph_json(pruned, "a/b", scan="x")
    frame = pd.DataFrame(
        dict(
            prompt=[0, 0],
            group=["top", "random"],
            layer=[0, 1],
            position=[1, 2],
            latent=[3, 4],
            predicted=[0.1, -0.2],
            real=[0.2, -0.1],
        )
    )
    assert len(C.ablation_figure(frame, "t").data) == 3
    assert np.isfinite(pruned.influence.numpy()).all()
    run = C.TrainingRun(steps=[0, 9], fvu=[1.0, 0.5], n_steps=10, n_tokens=100, seconds=1.0)
    curve = C.training_figure(run, "t").data[0]
    assert list(curve.x) == [10, 100] and list(curve.y) == [1.0, 0.5]


def test_the_exported_json_of_the_hand_graph_is_exactly_this(tmp_path):
    """The whole file, written out by hand from circuit-tracer's schema (utils/circuits/export.py's
    docstring): every field of every node, the links, the metadata and the viewer's parameters."""
    pruned = C.prune_graph(hand_graph(), node_threshold=1.0, edge_threshold=1.0)

    def node(**fields):
        base = dict(
            ctx_idx=1,
            token_prob=0.0,
            is_target_logit=False,
            run_idx=0,
            reverse_ctx_idx=0,
            clerp="",
            activation=None,
        )
        return {**base, **fields}

    expected = {
        "metadata": {
            "slug": "hand",
            "scan": "none",
            "transcoder_list": [],
            "prompt_tokens": ["<bos>", "a"],
            "prompt": "a",
            "node_threshold": 1.0,
            "schema_version": 1,
            "info": "sae-tutorial-book graph; target logit_diff; bias node and its edges left out",
        },
        "qParams": {
            "pinnedIds": [],
            "supernodes": [],
            "linkType": "both",
            "clickedId": "",
            "sg_pos": "",
        },
        "nodes": [
            node(
                node_id="E_1_1",
                feature=1,
                layer="E",
                feature_type="embedding",
                jsNodeId="E_1-1",
                influence=4 / 5.5,
            ),
            node(
                node_id="0_5_1",
                feature=20,
                layer="0",
                feature_type="cross layer transcoder",
                jsNodeId="0_5-0",
                activation=2.0,
                clerp="l",
                influence=3 / 5.5,
            ),
            node(
                node_id="0_-1_1",
                feature=-1,
                layer="0",
                feature_type="mlp reconstruction error",
                jsNodeId="0_-1-1",
                influence=1 / 5.5,
            ),
            node(
                node_id="2_1_1",
                feature=1,
                layer="2",
                feature_type="logit",
                is_target_logit=True,
                token_prob=1.0,
                jsNodeId="L_1-1",
                influence=None,
                clerp="target: T = 3.500",
            ),
        ],
        "links": [
            {"source": "E_1_1", "target": "0_5_1", "weight": 2.0},
            {"source": "E_1_1", "target": "2_1_1", "weight": -1.0},
            {"source": "0_5_1", "target": "2_1_1", "weight": 3.0},
            {"source": "0_-1_1", "target": "2_1_1", "weight": 1.0},
        ],
    }
    path = C.write_graph_json(pruned, tmp_path / "new" / "folder", "hand", scan="none")
    assert path == tmp_path / "new" / "folder" / "hand.json"
    written = json.loads(path.read_text())
    influences = [n.pop("influence") for n in written["nodes"]]
    wanted = [n.pop("influence") for n in expected["nodes"]]
    assert influences[:3] == pytest.approx(wanted[:3]) and influences[3] is None
    written["links"].sort(key=lambda link: (link["target"], link["source"]))
    expected["links"].sort(key=lambda link: (link["target"], link["source"]))
    assert written == expected
    # a description given for a latent replaces its label
    labelled = C.graph_json(pruned, "hand", scan="none", labels={2: "a label"})
    assert [n["clerp"] for n in labelled["nodes"]][:3] == ["", "a label", ""]


def test_node_positions_in_the_graph_figure_by_hand():
    """Rows: inputs 0, layer L at L + 1, the target (layer n_layers) on top; a row holding several
    nodes at one position spreads them from -0.35 to +0.35 around it."""
    from utils.circuits.figures import _node_xy

    nodes = hand_graph().nodes
    x, y = _node_xy(nodes)
    assert y.tolist() == [0.0, 0.0, 1.0, 1.0, 2.0] and y.dtype == float
    assert x.tolist() == pytest.approx([0.0, 1.0, 1 - 0.35, 1 + 0.35, 1.0])
    three = pd.concat([nodes, nodes.iloc[[2]]], ignore_index=True)
    x3, _ = _node_xy(three)
    assert x3[[2, 3, 5]].tolist() == pytest.approx([0.65, 1.0, 1.35])
