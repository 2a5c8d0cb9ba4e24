"""Write a pruned graph as the JSON that circuit-tracer's graph viewer (and Neuronpedia's) reads.

Written from the schema in circuit-tracer's source (``frontend/graph_models.py``: ``metadata``,
``qParams``, ``nodes``, ``links``; node ids ``{layer}_{latent}_{position}`` for latents,
``{layer}_-1_{position}`` for errors, ``E_{token}_{position}`` for embeddings,
``{n_layers + 1}_{token}_{position}`` for logits), without the library: circuit-tracer 0.5 cannot be
installed beside the book's locked versions. Two differences from its own graphs, recorded in the
metadata's ``info``: the book's target is written as a logit node of the top token (its ``clerp``
says what it really is), and the bias node, which circuit-tracer does not have, is left out with its
edges.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .pruning import PrunedGraph


def _cantor(x: int, y: int) -> int:
    return (x + y) * (x + y + 1) // 2 + y


def graph_json(pruned: PrunedGraph, slug: str, scan: str, labels: dict[int, str] | None = None):
    """The pruned graph as a dict in circuit-tracer's graph-file schema (module docstring);
    ``labels`` gives latents a description (circuit-tracer's ``clerp``)."""
    if not slug or any(c in slug for c in "/\\ "):
        raise ValueError(f"slug must be a non-empty name without slashes or spaces, got {slug!r}")
    graph = pruned.graph
    ids: dict[int, str] = {}
    nodes: list[dict[str, Any]] = []
    for i in pruned.node_mask.nonzero()[:, 0].tolist():
        row = graph.nodes.loc[i]
        kind, layer, pos = row["kind"], int(row["layer"]), int(row["position"])
        influence = float(pruned.influence[i])
        base: dict[str, Any] = dict(
            ctx_idx=pos,
            token_prob=0.0,
            is_target_logit=False,
            run_idx=0,
            reverse_ctx_idx=0,
            clerp="",
            influence=influence,
            activation=None,
        )
        if kind == "latent":
            j = int(row["latent"])
            node = dict(
                base,
                node_id=f"{layer}_{j}_{pos}",
                feature=_cantor(layer, j),
                layer=str(layer),
                feature_type="cross layer transcoder",
                jsNodeId=f"{layer}_{j}-0",
                activation=float(row["value"]),
                clerp=(labels or {}).get(i, row["label"]),
            )
        elif kind == "error":
            node = dict(
                base,
                node_id=f"{layer}_-1_{pos}",
                feature=-1,
                layer=str(layer),
                feature_type="mlp reconstruction error",
                jsNodeId=f"{layer}_-1-{pos}",
            )
        elif kind == "embedding":
            token = int(graph.tokens[pos])
            node = dict(
                base,
                node_id=f"E_{token}_{pos}",
                feature=pos,
                layer="E",
                feature_type="embedding",
                jsNodeId=f"E_{token}-{pos}",
            )
        elif kind == "target":
            token = graph.target_tokens[0]
            layer_name = str(graph.n_layers + 1)
            node = dict(
                base,
                node_id=f"{layer_name}_{token}_{pos}",
                feature=token,
                layer=layer_name,
                feature_type="logit",
                is_target_logit=True,
                token_prob=1.0,
                jsNodeId=f"L_{token}-{pos}",
                influence=None,
                clerp=f"target: {row['label']} = {row['value']:.3f}",
            )
        else:  # the bias node: no counterpart in circuit-tracer
            continue
        ids[i] = node["node_id"]
        nodes.append(node)
    targets, sources = pruned.edge_mask.nonzero(as_tuple=True)
    links = [
        {"source": ids[s], "target": ids[t], "weight": float(graph.adjacency[t, s])}
        for t, s in zip(targets.tolist(), sources.tolist())
        if s in ids and t in ids
    ]
    metadata = dict(
        slug=slug,
        scan=scan,
        transcoder_list=[],
        prompt_tokens=list(graph.str_tokens),
        prompt="".join(graph.str_tokens[1:]),
        node_threshold=pruned.node_threshold,
        schema_version=1,
        info=(f"sae-tutorial-book graph; target {graph.target}; bias node and its edges left out"),
    )
    qparams = dict(pinnedIds=[], supernodes=[], linkType="both", clickedId="", sg_pos="")
    return {"metadata": metadata, "qParams": qparams, "nodes": nodes, "links": links}


def write_graph_json(pruned: PrunedGraph, folder: str | Path, slug: str, scan: str, **kw) -> Path:
    """Write :func:`graph_json` to ``folder/slug.json``; returns the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.json"
    path.write_text(json.dumps(graph_json(pruned, slug, scan, **kw), indent=1))
    return path
