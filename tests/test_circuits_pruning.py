"""utils/circuits/pruning.py: influence, the graph's scores and pruning worked out on the
hand-made three-node graph, and pruning a real graph at several thresholds."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from circuit_fixtures import graph, lm, prompt, transcoders  # noqa: F401 (fixtures)
from circuit_helpers import hand_graph

from utils import circuits as C


def test_pruning_keeps_a_connected_graph_and_drops_what_it_says(graph):
    """On a real graph, for several thresholds: inputs and the target always stay, some latents
    go; every kept edge joins two kept nodes; every kept latent or error has a kept edge out, and
    every kept latent one in; the cleanup after edge pruning really drops nodes here (so the
    checks above test it), and the thresholds are recorded."""
    from utils.circuits.pruning import _keep_share

    kinds = graph.nodes["kind"].to_numpy()
    fixed = torch.tensor([k in ("embedding", "bias", "target") for k in kinds])
    latent = torch.tensor(kinds == "latent")
    error = torch.tensor(kinds == "error")
    cleaned_up = 0
    for node_t, edge_t in ((0.8, 0.98), (0.5, 0.9), (0.95, 0.7), (1.0, 0.5), (1.0, 0.3)):
        pruned = C.prune_graph(graph, node_t, edge_t)
        nodes, edges = pruned.node_mask, pruned.edge_mask
        assert nodes[fixed].all() and not nodes[latent].all()
        assert not edges[~nodes].any() and not edges[:, ~nodes].any()
        assert edges[:, nodes & (latent | error)].any(dim=0).all()
        assert edges[nodes & latent].any(dim=1).all()
        assert (pruned.node_threshold, pruned.edge_threshold) == (node_t, edge_t)
        first = _keep_share(C.node_influence(graph), node_t) | fixed
        assert not (nodes & ~first).any()
        cleaned_up += int((first & ~nodes).sum())
    assert cleaned_up > 0
    with pytest.raises(ValueError, match=r"node_threshold must be in \(0, 1\], got 1.5"):
        C.prune_graph(graph, 1.5)
    with pytest.raises(ValueError, match=r"edge_threshold must be in \(0, 1\], got 0"):
        C.prune_graph(graph, 0.8, 0)


def test_keep_share_and_normalized_abs_by_hand():
    from utils.circuits.pruning import _keep_share, normalized_abs

    # the running total before each score (largest first) must be under the share
    assert _keep_share(torch.tensor([0.2, 0.3]), 0.5).tolist() == [False, True]
    assert _keep_share(torch.tensor([0.5, 0.5]), 0.5).tolist() == [True, False]
    assert _keep_share(torch.tensor([[1.0, 3.0], [0.0, 4.0]]), 0.6).tolist() == [
        [False, True],
        [False, True],
    ]
    nothing = _keep_share(torch.zeros(3), 0.8)
    assert nothing.dtype == torch.bool and not nothing.any()
    got = normalized_abs(torch.tensor([[0.0, 0.0, 0.0], [-1.0, 3.0, 0.0], [0.1, -0.3, 0.0]]))
    expected = [[0.0, 0.0, 0.0], [0.25, 0.75, 0.0], [0.25, 0.75, 0.0]]  # a small sum too
    assert [row == pytest.approx(want) for row, want in zip(got.tolist(), expected)] == [True] * 3
    for bad in (torch.zeros(2, 3), torch.zeros(2)):
        with pytest.raises(
            ValueError, match=rf"must be square, got shape {re.escape(str(tuple(bad.shape)))}"
        ):
            normalized_abs(bad)


def test_influence_refuses_weights_of_the_wrong_size():
    from utils.circuits.pruning import influence

    with pytest.raises(ValueError, match=r"weights must have shape \(3,\), got \(2,\)"):
        influence(torch.zeros(3, 3), torch.zeros(2))


def test_influence_and_scores_by_hand():
    graph = hand_graph()
    assert C.edge_sum_error(graph) == pytest.approx(0.0)
    # T's inputs normalised: l 3/5.5, r 1/5.5, e 1/5.5, bias 0.5/5.5; l's input all from e
    got = C.node_influence(graph)
    expected = torch.tensor([0.5, 1 + 3, 3, 1, 0]) / 5.5
    assert torch.allclose(got, expected, atol=1e-6)
    scores = C.graph_scores(graph)
    inputs = (0.5 + 4) / 5.5
    assert scores.replacement == pytest.approx(inputs / (inputs + 1 / 5.5))
    # completeness over l (no error input, weight 3/5.5) and T (1 - 1/5.5, weight 1)
    assert scores.completeness == pytest.approx((3 / 5.5 + (1 - 1 / 5.5)) / (3 / 5.5 + 1))


def test_pruning_by_hand():
    graph = hand_graph()
    pruned = C.prune_graph(graph, node_threshold=0.5, edge_threshold=0.98)
    # influences: e 4/5.5, l 3/5.5, r 1/5.5, bias 0.5/5.5 (total 8.5/5.5). Half of it is reached
    # after e (kept, an input) and l; r is beyond it, so it goes, and with it its edge.
    kept = set(pruned.kept_nodes()["label"])
    assert "r" not in kept
    assert {"e", "l", "T", "bias"} <= kept
    assert pruned.edge_mask[4, 3].item() is False
    everything = C.prune_graph(graph, node_threshold=1.0, edge_threshold=1.0)
    assert "r" in set(everything.kept_nodes()["label"]) and everything.n_edges == 5
    with pytest.raises(ValueError, match="node_threshold"):
        C.prune_graph(graph, node_threshold=0)


def test_influence_refuses_a_graph_out_of_order():
    adjacency = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="lower triangular"):
        C.influence(adjacency, torch.tensor([1.0, 0.0]))


def test_replacement_score_when_a_latent_has_no_inputs():
    """The hand graph with e -> l removed: l's influence reaches no input, so inputs and errors no
    longer add up to 1 and the score is their ratio, not the inputs' share alone."""
    graph = hand_graph()
    graph.adjacency[2, 1] = 0.0
    # T's inputs normalised by 5.5: inputs bias 0.5 + e 1 (direct only), errors r 1
    assert C.graph_scores(graph).replacement == pytest.approx(1.5 / 2.5)


def test_kept_nodes_carry_their_influence():
    kept = C.prune_graph(hand_graph(), node_threshold=1.0, edge_threshold=1.0).kept_nodes()
    assert kept["label"].tolist() == ["bias", "e", "l", "r", "T"]
    assert np.allclose(kept["influence"].to_numpy(), np.array([0.5, 4, 3, 1, 0]) / 5.5)
