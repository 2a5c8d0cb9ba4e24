"""How much each node of an attribution graph matters for its target, pruning to the nodes and
edges that carry most of it, and the graph's replacement and completeness scores.

**Influence** (Ameisen et al. 2025): take absolute edge weights, normalise each node's inputs to
sum to 1 (``A_n``), and sum over all paths: ``influence = w A_n + w A_n^2 + ... = w A_n (I -
A_n)^-1``, with ``w`` one-hot on the target. It is the share of the target's input that flows from a
node, directly or through other nodes.

**Pruning** as circuit-tracer does by default: keep the nodes that make up ``node_threshold`` (0.8)
of the total influence (input nodes and the target always), then the edges that make up
``edge_threshold`` (0.98) of the edge scores (normalised weight times the influence of the node it
enters), then drop latents and errors left without a kept edge out, or (latents) in.

**Scores**: *replacement*: of the influence that reaches the target from inputs (embeddings and
the bias) and error nodes, the share from inputs; *completeness*: each node's share of input not
from error nodes, averaged over latents and the target weighted by their influence (circuit-tracer
also averages over nodes without inputs, counting them complete; we leave them out).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .graph import AttributionGraph


def normalized_abs(adjacency: torch.Tensor) -> torch.Tensor:
    """``|adjacency|`` with each row divided by its sum (rows that sum to zero stay zero)."""
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency must be square, got shape {tuple(adjacency.shape)}")
    absolute = adjacency.abs().double()
    sums = absolute.sum(dim=1, keepdim=True)
    return torch.where(sums > 0, absolute / sums.clamp_min(1e-300), torch.zeros_like(absolute))


def influence(adjacency: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``weights @ (A_n + A_n^2 + ...)`` for the row-normalised ``|adjacency|`` ``A_n``: each node's
    influence on the nodes ``weights`` puts weight on. Nodes must be in topological order
    (``adjacency`` strictly lower triangular)."""
    a_n = normalized_abs(adjacency)
    n = a_n.shape[0]
    if weights.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {tuple(weights.shape)}")
    if bool(torch.triu(adjacency).ne(0).any()):
        raise ValueError(
            "adjacency must be strictly lower triangular (nodes in an order where every edge goes "
            "from a lower index to a higher one): influence is defined for acyclic graphs"
        )
    eye = torch.eye(n, dtype=a_n.dtype)
    # x (I - A_n) = w A_n  <=>  (I - A_n)^T x^T = (w A_n)^T
    right = weights.double() @ a_n
    return torch.linalg.solve((eye - a_n).T, right).float()


def target_weights(graph: AttributionGraph) -> torch.Tensor:
    """One-hot on the graph's target node."""
    weights = torch.zeros(graph.n_nodes)
    weights[graph.target_index] = 1.0
    return weights


def node_influence(graph: AttributionGraph) -> torch.Tensor:
    """``[n_nodes]``: each node's influence on the target (the target's own is 0)."""
    return influence(graph.adjacency, target_weights(graph))


def _keep_share(scores: torch.Tensor, share: float) -> torch.Tensor:
    """True for the largest ``scores`` whose running total, before each, is under ``share`` of
    the total (so the kept ones make up at least ``share``)."""
    flat = scores.flatten().double()
    order = flat.argsort(descending=True)
    total = flat.sum()
    if total <= 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    before = (flat[order].cumsum(0) - flat[order]) / total
    keep_sorted = before < share
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[order] = keep_sorted & (flat[order] > 0)
    return keep.reshape(scores.shape)


@dataclass
class PrunedGraph:
    """Which nodes and edges of ``graph`` pruning kept (``node_mask [n_nodes]``, ``edge_mask
    [n_nodes, n_nodes]``), and every node's influence on the target in the full graph."""

    graph: AttributionGraph
    node_mask: torch.Tensor
    edge_mask: torch.Tensor
    influence: torch.Tensor
    node_threshold: float
    edge_threshold: float

    @property
    def n_nodes(self) -> int:
        return int(self.node_mask.sum())

    @property
    def n_edges(self) -> int:
        return int(self.edge_mask.sum())

    def kept_nodes(self):
        """The kept rows of ``graph.nodes``, with their influence."""
        frame = self.graph.nodes[self.node_mask.numpy()].copy()
        frame["influence"] = self.influence[self.node_mask].numpy()
        return frame


def prune_graph(
    graph: AttributionGraph, node_threshold: float = 0.8, edge_threshold: float = 0.98
) -> PrunedGraph:
    """Prune ``graph`` as the module docstring says (circuit-tracer's defaults 0.8 / 0.98)."""
    for name, value in (("node_threshold", node_threshold), ("edge_threshold", edge_threshold)):
        if not 0 < value <= 1:
            raise ValueError(f"{name} must be in (0, 1], got {value}")
    kinds = graph.nodes["kind"].to_numpy()
    prunable = torch.tensor([k in ("latent", "error") for k in kinds])
    has_inputs = torch.tensor([k == "latent" for k in kinds])
    weights = target_weights(graph)
    scores = node_influence(graph)
    node_mask = _keep_share(scores, node_threshold) | ~prunable
    pruned = graph.adjacency * node_mask[:, None] * node_mask[None, :]
    edge_scores = normalized_abs(pruned).float() * (influence(pruned, weights) + weights)[:, None]
    edge_mask = _keep_share(edge_scores, edge_threshold)
    while True:
        edge_mask &= node_mask[:, None] & node_mask[None, :]
        new_mask = node_mask.clone()
        new_mask &= ~prunable | edge_mask.any(dim=0)  # an edge out
        new_mask &= ~has_inputs | edge_mask.any(dim=1)  # a latent needs an edge in
        if torch.equal(new_mask, node_mask):
            break
        node_mask = new_mask
    return PrunedGraph(graph, node_mask, edge_mask, scores, node_threshold, edge_threshold)


@dataclass
class GraphScores:
    """The replacement and completeness scores of a graph (see the module docstring)."""

    replacement: float
    completeness: float


def graph_scores(graph: AttributionGraph) -> GraphScores:
    """Replacement and completeness scores of ``graph`` (module docstring)."""
    kinds = graph.nodes["kind"].to_numpy()
    is_kind = {k: torch.tensor(kinds == k) for k in ("embedding", "bias", "error", "latent")}
    weights = target_weights(graph)
    scores = node_influence(graph)
    inputs = scores[is_kind["embedding"] | is_kind["bias"]].sum()
    errors = scores[is_kind["error"]].sum()
    replacement = float(inputs / (inputs + errors))
    a_n = normalized_abs(graph.adjacency).float()
    not_error = 1 - a_n[:, is_kind["error"]].sum(dim=1)
    receivers = is_kind["latent"] | (weights > 0)
    weight = (scores + weights)[receivers]
    completeness = float((not_error[receivers] * weight).sum() / weight.sum())
    return GraphScores(replacement, completeness)
