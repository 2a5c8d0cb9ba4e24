"""Checking a graph against the real model: ablate latents, compare with what the graph predicts.

**Predicted** change of the target when latent ``s`` is set to zero: minus its *total* effect in the
graph, the sum over every path from ``s`` to the target of the products of per-unit edge weights
(``edge / value of its source``), through active latents only (they pass a change on one to one, as
a TopK or ReLU latent does while it stays active).

**Real** change: the model run with every MLP replaced by its transcoder plus the error term of the
clean run (:func:`.replacement.replacement_hooks`: exactly the model until something changes), the
latent zeroed at its layer and position, and everything else recomputed: attention patterns,
LayerNorm scales, which latents of later layers are active. ``freeze`` holds parts of the clean run
fixed instead (``"ln_final"``: the final LayerNorm's scale; ``"attention"``: every attention
pattern; ``"layernorm"``: every LayerNorm scale), to find which one the graph's error comes from.

**Share** of a latent: the size of what it writes into the residual stream (its activation times
its decoder row, centred as LayerNorm centres it) over the size of the centred stream that enters
the final LayerNorm at its position. The graph holds every LayerNorm's divisor at its clean value;
removing a latent with a large share changes those divisors by about as much, which the graph
cannot see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .graph import AttributionGraph, _target_from_logits
from .replacement import Transcoders, check_transcoders, mlp_errors, replacement_hooks

FREEZABLE = ("ln_final", "attention", "layernorm")


def total_effects(graph: AttributionGraph) -> torch.Tensor:
    """``[n_nodes]``: each node's total effect on the target (sum over paths through active
    latents of ``value(s) * product of per-unit weights``); the target's own entry is 0."""
    kinds = graph.nodes["kind"].to_numpy()
    values = torch.tensor(graph.nodes["value"].to_numpy(), dtype=torch.float64)
    adjacency = graph.adjacency.double()
    # per-unit weights: an edge divided by its source's value (latent sources only pass changes on)
    is_latent = torch.tensor(kinds == "latent")
    per_unit = torch.zeros_like(adjacency)
    per_unit[:, is_latent] = adjacency[:, is_latent] / values[is_latent]
    n = graph.n_nodes
    # row of the target in per_unit (I - per_unit)^-1: d target / d value(s), all paths
    unit = torch.zeros(n, dtype=torch.float64)
    unit[graph.target_index] = 1.0
    # D = unit + D @ per_unit: D[s] = d target / d value(s) along every path (D[target] = 1)
    derivative = torch.linalg.solve((torch.eye(n, dtype=torch.float64) - per_unit).T, unit)
    effects = torch.zeros(n, dtype=torch.float64)
    effects[is_latent] = derivative[is_latent] * values[is_latent]
    # other nodes pass on nothing but their own edges: sum_t D[t] * edge(s -> t)
    not_latent = ~is_latent
    effects[not_latent] = derivative @ adjacency[:, not_latent]
    effects[graph.target_index] = 0.0
    return effects.float()


def _freeze_hooks(model: Any, cache: dict[str, torch.Tensor], freeze: Sequence[str]):
    for part in freeze:
        if part not in FREEZABLE:
            raise ValueError(f"freeze takes parts of {FREEZABLE}, got {part!r}")
    names = []
    for name in cache:
        if name.endswith("attn.hook_pattern") and "attention" in freeze:
            names.append(name)
        elif name.endswith("hook_scale") and (
            "layernorm" in freeze or (name == "ln_final.hook_scale" and "ln_final" in freeze)
        ):
            names.append(name)
    return [
        (name, lambda x, hook, c=cache[name]: c.expand(x.shape[0], *c.shape[1:])) for name in names
    ]


def ablate_latents(
    model: Any,
    transcoders: Transcoders,
    graph: AttributionGraph,
    latents: Sequence[tuple[int, int, int]],
    freeze: Sequence[str] = (),
    batch_size: int = 32,
) -> torch.Tensor:
    """The real change of ``graph``'s target when each ``(layer, position, latent)`` is zeroed in
    turn: ``[len(latents)]`` (see the module docstring)."""
    with torch.no_grad():
        transcoders = check_transcoders(model, transcoders)
        device = model.cfg.device
        tokens = graph.tokens[None].to(device)
        names = {
            n for n in model.hook_dict if n.endswith("hook_scale") or n.endswith("hook_pattern")
        }
        logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
        top, second = graph.target_tokens
        second = -1 if second is None else second
        clean = float(_target_from_logits(logits, graph.target, top, second)[0])
        errors = mlp_errors(model, transcoders, tokens)
        frozen = _freeze_hooks(model, cache, freeze)
        changes = []
        for start in range(0, len(latents), batch_size):
            chunk = list(latents[start : start + batch_size])
            batch = len(chunk)

            def edit(layer: int, acts: torch.Tensor, chunk=chunk) -> torch.Tensor:
                acts = acts.clone()
                for b, (lay, p, j) in enumerate(chunk):
                    if lay == layer:
                        acts[b, p, j] = 0.0
                return acts

            held = {layer: e.expand(batch, -1, -1) for layer, e in errors.items()}
            hooks = replacement_hooks(transcoders, held, edit)
            out = model.run_with_hooks(tokens.expand(batch, -1), fwd_hooks=frozen + hooks)
            changes.append(_target_from_logits(out, graph.target, top, second) - clean)
        return torch.cat(changes).cpu() if changes else torch.empty(0)


def residual_share(
    model: Any,
    transcoders: Transcoders,
    graph: AttributionGraph,
    latents: Sequence[tuple[int, int, int]],
) -> torch.Tensor:
    """``[len(latents)]``: each ``(layer, position, latent)``'s share of the residual stream that
    enters the final LayerNorm at its position (see the module docstring); the latent's activation
    is its node value in ``graph``."""
    with torch.no_grad():
        transcoders = check_transcoders(model, transcoders)
        final = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
        _, cache = model.run_with_cache(
            graph.tokens[None].to(model.cfg.device), names_filter=lambda n: n == final
        )
        stream = cache[final][0]
        stream = stream - stream.mean(dim=-1, keepdim=True)
        shares = []
        for layer, p, j in latents:
            value = float(graph.nodes.at[graph.latent_node(layer, p, j), "value"])
            row = transcoders[layer].W_dec[j]
            written = value * (row - row.mean())
            shares.append(float(written.norm() / stream[p].norm()))
        return torch.tensor(shares)


def pick_ablations(
    graph: AttributionGraph, n_top: int, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Node indices to ablate: the ``n_top`` latents with the largest total effect on the target,
    and as a control as many random *other* active latents, drawn layer by layer in the same
    numbers (seeded)."""
    if n_top < 1:
        raise ValueError(f"n_top must be at least 1, got {n_top}")
    effects = total_effects(graph).abs()
    latent_idx = graph.index("latent")
    if len(latent_idx) == 0:
        return [], []
    order = latent_idx[effects[latent_idx].argsort(descending=True)]
    top = order[:n_top].tolist()
    rng = np.random.default_rng(seed)
    layers = graph.nodes["layer"].to_numpy()
    control: list[int] = []
    for layer in sorted({int(layers[i]) for i in top}):
        wanted = sum(int(layers[i]) == layer for i in top)
        pool = [int(i) for i in latent_idx.tolist() if layers[i] == layer and i not in top]
        control += [int(i) for i in rng.permutation(pool)[:wanted]]
    return top, control


def ablation_check(
    model: Any,
    transcoders: Transcoders,
    graphs: Sequence[AttributionGraph],
    n_top: int,
    freeze: Sequence[str] = (),
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Predicted and real changes of each graph's target when its top latents, and a control of
    random active latents of the same layers, are ablated one at a time.

    One row per ablation: ``prompt`` (the graph's number), ``group`` ("top"/"random"),
    ``layer``, ``position``, ``latent``, ``predicted``, ``real``, ``share`` (the latent's share of
    the residual stream, :func:`residual_share`).
    """
    rows = []
    items = list(enumerate(graphs))
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="ablations", leave=False)
    for number, graph in items:
        top, control = pick_ablations(graph, n_top, seed=seed + number)
        picked = [(i, "top") for i in top] + [(i, "random") for i in control]
        effects = total_effects(graph)
        where = [
            (
                int(graph.nodes.at[i, "layer"]),
                int(graph.nodes.at[i, "position"]),
                int(graph.nodes.at[i, "latent"]),
            )
            for i, _ in picked
        ]
        real = ablate_latents(model, transcoders, graph, where, freeze=freeze)
        shares = residual_share(model, transcoders, graph, where).tolist()
        for (i, group), (layer, p, j), change, share in zip(picked, where, real.tolist(), shares):
            rows.append(
                dict(
                    prompt=number,
                    group=group,
                    layer=layer,
                    position=p,
                    latent=j,
                    predicted=-float(effects[i]),
                    real=change,
                    share=share,
                )
            )
    return pd.DataFrame(rows)


def agreement(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """How well ``predicted`` matches ``real`` in ``frame``'s rows: Pearson r, Spearman rho, the
    least-squares slope of real on predicted, the share with the same sign, the median ratio
    real/predicted, ``n``, and a 90 % bootstrap interval of Pearson r resampling whole prompts
    (``r_low``, ``r_high``)."""
    if len(frame) < 3:
        raise ValueError(f"need at least 3 ablations to compare, got {len(frame)}")
    pred, real = frame["predicted"].to_numpy(), frame["real"].to_numpy()

    def pearson(a: np.ndarray, b: np.ndarray) -> float:
        if a.std() == 0 or b.std() == 0:
            return float("nan")
        return float(np.corrcoef(a, b)[0, 1])

    ranks = pd.Series(pred).rank().to_numpy(), pd.Series(real).rank().to_numpy()
    slope = float((pred * real).sum() / (pred * pred).sum()) if (pred != 0).any() else float("nan")
    same = float(np.mean(np.sign(pred) == np.sign(real)))
    nonzero = pred != 0
    ratio = float(np.median(real[nonzero] / pred[nonzero])) if nonzero.any() else float("nan")
    rng = np.random.default_rng(seed)
    prompts = frame["prompt"].to_numpy()
    groups = [np.flatnonzero(prompts == p) for p in np.unique(prompts)]
    boots = []
    for _ in range(n_boot):
        rows = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        boots.append(pearson(pred[rows], real[rows]))
    boots_arr = np.array([b for b in boots if not np.isnan(b)])
    low, high = np.quantile(boots_arr, [0.05, 0.95]) if len(boots_arr) else (np.nan, np.nan)
    return {
        "pearson": pearson(pred, real),
        "spearman": pearson(*ranks),
        "slope": slope,
        "same_sign": same,
        "median_ratio": ratio,
        "n": int(len(frame)),
        "prompts": int(len(groups)),
        "r_low": float(low),
        "r_high": float(high),
    }
