"""Attribution graphs on the local replacement model, their pruning and their scores.

**The local replacement model** of a prompt is the model with, on this prompt: every MLP's output
replaced by its transcoder's latents plus an *error node* per layer and position (what the
transcoder misses, held fixed), every attention pattern and every LayerNorm scale (the division by
the standard deviation, ``hook_scale``) frozen at their values on the clean run. What is left
between the nodes is linear: residual additions, LayerNorm's centring, the frozen division,
projections, attention's fixed mixing. Each node's input is then a sum of **direct effects**, one
per upstream node (Ameisen et al. 2025, "Circuit Tracing"; Dunefsky et al. 2024):

    input(t) = sum_s edge(s -> t) + bias(t),   edge(s -> t) = value(s) * d input(t) / d value(s)

the derivative taken in the frozen model with every MLP output held as its own input (so it counts
only paths through attention and the residual stream, never through another node).

Nodes, in the order of :attr:`AttributionGraph.nodes` (every edge goes from a lower index to a
higher one, so ``adjacency`` is strictly lower triangular):

* ``bias``: one node for everything constant: biases of every layer (LayerNorm, attention, the
  transcoders' ``b_enc``/``b_dec``, the unembedding), the position embeddings, and everything at
  the BOS position, which is the same on every prompt;
* ``embedding``: the token embedding at each position after BOS (value 1, its vector
  ``W_E[token]``);
* ``latent``: every active transcoder latent at each position after BOS, layer by layer (value:
  its activation, which for a TopK or ReLU latent equals the input its edges add up to);
* ``error``: each layer's transcoder error at each position after BOS;
* ``target``: a scalar read from the logits at the last position: the **logit difference** between
  the model's top token and its runner-up (default), or the top token's **demeaned logit** (its
  logit minus the mean logit, circuit-tracer's choice).

``adjacency[t, s]`` is the edge from node ``s`` to node ``t`` (rows: targets, columns: sources).
Embedding, error and bias nodes have no inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from .replacement import Transcoders, check_transcoders
from .transcoders import mlp_in_hook, mlp_out_hook

TARGETS = ("logit_diff", "demeaned_logit")
KINDS = ("embedding", "latent", "error", "bias", "target")


@dataclass
class AttributionGraph:
    """An attribution graph of one prompt (see the module docstring).

    ``nodes`` has one row per node: ``kind``, ``layer`` (-1 for embedding and bias nodes,
    ``n_layers`` for the target), ``position``, ``latent`` (-1 unless a latent), ``value`` (the
    node's activation; 1 for embeddings and bias, the error vector's norm for errors, the target's
    value) and ``label``. ``adjacency`` ``[n_nodes, n_nodes]``: rows targets, columns sources.
    ``target_tokens``: the token ids the target reads (top token, runner-up or ``None``).
    """

    tokens: torch.Tensor
    str_tokens: list[str]
    nodes: pd.DataFrame
    adjacency: torch.Tensor
    target: str
    target_tokens: tuple[int, int | None]
    target_str: tuple[str, str | None]
    n_layers: int
    # Each latent's and the target's input as the frozen model computes it (the latent's
    # pre-activation, the target's value): adjacency.sum(1) equals it (the bias is column 0).
    node_input: torch.Tensor = field(repr=False, default_factory=lambda: torch.empty(0))
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        """Edges with a non-zero weight."""
        return int((self.adjacency != 0).sum())

    def index(self, kind: str) -> torch.Tensor:
        """Indices of the nodes of one ``kind`` (one of :data:`KINDS`)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        return torch.tensor(self.nodes.index[self.nodes["kind"] == kind].tolist(), dtype=torch.long)

    @property
    def target_index(self) -> int:
        return self.n_nodes - 1

    def latent_node(self, layer: int, position: int, latent: int) -> int:
        """The node index of an active latent; ``KeyError`` when it is not a node."""
        rows = self.nodes.index[
            (self.nodes["kind"] == "latent")
            & (self.nodes["layer"] == layer)
            & (self.nodes["position"] == position)
            & (self.nodes["latent"] == latent)
        ]
        if len(rows) != 1:
            raise KeyError(f"latent {latent} of layer {layer} at position {position} is not a node")
        return int(rows[0])


def _frozen_hook_names(model: Any) -> list[str]:
    """The hooks frozen in the local replacement model: every LayerNorm scale and every attention
    pattern."""
    return [
        name
        for name in model.hook_dict
        if name.endswith("hook_scale") or name.endswith("attn.hook_pattern")
    ]


def _target_from_logits(logits: torch.Tensor, target: str, top: int, second: int) -> torch.Tensor:
    """``[batch]`` target read from ``logits [batch, pos, d_vocab]`` at the last position."""
    last = logits[:, -1]
    if target == "logit_diff":
        return last[:, top] - last[:, second]
    return last[:, top] - last.mean(dim=-1)


def _check_target(target: str) -> str:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    return target


def prompt_tokens(model: Any, prompt: str | torch.Tensor) -> torch.Tensor:
    """A prompt as ``[pos]`` token ids with BOS first (a string is tokenized with BOS)."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("the prompt is empty: give some text")
        tokens = model.to_tokens(prompt, prepend_bos=True)[0].cpu()
    else:
        tokens = torch.as_tensor(prompt).cpu()
        if tokens.ndim == 2 and tokens.shape[0] == 1:
            tokens = tokens[0]
    if tokens.ndim != 1 or len(tokens) < 2:
        raise ValueError(
            f"a prompt needs BOS and at least one token, as [pos] ids; got shape {tuple(tokens.shape)}"
        )
    return tokens


def build_graph(
    model: Any,
    transcoders: Transcoders,
    prompt: str | torch.Tensor,
    target: str = "logit_diff",
    target_tokens: tuple[int, int] | None = None,
    layers: Sequence[int] | None = None,
    positions: int | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> AttributionGraph:
    """The attribution graph of ``prompt`` (see the module docstring).

    ``target`` is ``"logit_diff"`` (logit of the top token minus the runner-up's, or of
    ``target_tokens = (a, b)``) or ``"demeaned_logit"`` (the top token's, or ``a``'s, logit minus
    the mean logit). One backward pass per node with inputs (latents and the target), run
    ``batch_size`` at a time after one forward pass of the frozen model (batched gradients).

    A smaller graph for a bigger model: only the latents of ``layers`` (default: every layer with a
    transcoder) and of the last ``positions`` positions (default: all after BOS) become nodes. The
    rest of every MLP's output, and the whole output of an MLP without a transcoder, is held fixed
    in the error nodes, so the edges still add up exactly.
    """
    with torch.no_grad():
        transcoders = check_transcoders(model, transcoders)
        target = _check_target(target)
        tokens = prompt_tokens(model, prompt)
        graph_layers = sorted(transcoders) if layers is None else sorted(int(i) for i in layers)
        missing = [i for i in graph_layers if i not in transcoders]
        if missing:
            raise ValueError(
                f"layers {missing} have no transcoder (given for {sorted(transcoders)})"
            )
        if positions is not None and positions < 1:
            raise ValueError(
                f"positions must be a positive number of positions or None, got {positions}"
            )
        device = model.cfg.device
        n_layers, n_pos = model.cfg.n_layers, len(tokens)
        frozen_names = _frozen_hook_names(model)
        wanted = set(frozen_names) | {"hook_embed"}
        wanted |= {mlp_in_hook(i) for i in range(n_layers)} | {
            mlp_out_hook(i) for i in range(n_layers)
        }
        logits, cache = model.run_with_cache(
            tokens[None].to(device), names_filter=lambda n: n in wanted
        )
        if target_tokens is None:
            top2 = logits[0, -1].topk(2).indices.tolist()
            top, second = int(top2[0]), int(top2[1])
        else:
            top, second = (int(t) for t in target_tokens)
        first = 1 if positions is None else max(1, n_pos - positions)  # first position with latents
        embed, mlp_out = (
            cache["hook_embed"][0],
            [cache[mlp_out_hook(i)][0] for i in range(n_layers)],
        )
        acts: dict[int, torch.Tensor] = {}  # the node latents' activations, [pos, d_sae]
        errors = list(
            mlp_out
        )  # what the nodes leave out of each MLP's output (all of it by default)
        for layer in graph_layers:
            tc = transcoders[layer]
            acts[layer] = tc.encode(cache[mlp_in_hook(layer)][0])
            acts[layer][:first] = 0.0
            errors[layer] = mlp_out[layer] - tc.decode(acts[layer])

        # The nodes
        str_tokens = [str(t) for t in model.to_str_tokens(tokens)]
        rows: list[dict[str, Any]] = [
            dict(kind="bias", layer=-1, position=0, latent=-1, value=1.0, label="bias")
        ]
        for p in range(1, n_pos):
            rows.append(
                dict(
                    kind="embedding",
                    layer=-1,
                    position=p,
                    latent=-1,
                    value=1.0,
                    label=f"emb {str_tokens[p]!r}",
                )
            )
        active: dict[int, torch.Tensor] = {}  # per graph layer: [n_active, 2] (position, latent)
        for layer in range(n_layers):
            where = (acts[layer][1:] != 0).nonzero() if layer in acts else torch.empty(0, 2)
            where = where.long()
            where[:, 0] += 1
            active[layer] = where.cpu()
            for p, j in where.tolist():
                rows.append(
                    dict(
                        kind="latent",
                        layer=layer,
                        position=p,
                        latent=j,
                        value=float(acts[layer][p, j]),
                        label=f"L{layer}/{j}",
                    )
                )
            for p in range(1, n_pos):
                rows.append(
                    dict(
                        kind="error",
                        layer=layer,
                        position=p,
                        latent=-1,
                        value=float(errors[layer][p].norm()),
                        label=f"err L{layer}",
                    )
                )
        target_str = (
            str_tokens_of(model, top),
            None if target == "demeaned_logit" else str_tokens_of(model, second),
        )
        label = (
            f"{target_str[0]!r} - {target_str[1]!r}"
            if target == "logit_diff"
            else f"{target_str[0]!r} - mean"
        )
        rows.append(
            dict(
                kind="target",
                layer=n_layers,
                position=n_pos - 1,
                latent=-1,
                value=float(_target_from_logits(logits, target, top, second)[0]),
                label=label,
            )
        )
        nodes = pd.DataFrame(rows)
        n_nodes = len(nodes)
        kinds = nodes["kind"].to_numpy()
        layer_of = nodes["layer"].to_numpy()
        latent_rows = [
            torch.tensor(
                [i for i in range(n_nodes) if kinds[i] == "latent" and layer_of[i] == layer],
                dtype=torch.long,
            )
            for layer in range(n_layers)
        ]
        error_rows = [
            torch.tensor(
                [i for i in range(n_nodes) if kinds[i] == "error" and layer_of[i] == layer],
                dtype=torch.long,
            )
            for layer in range(n_layers)
        ]
        emb_rows = torch.tensor([i for i in range(n_nodes) if kinds[i] == "embedding"])
        bias_row = 0

        def frozen_run(
            emb: torch.Tensor, mlps: list[torch.Tensor], stop_at_layer: int | None = None
        ):
            """Logits and each layer's MLP input in the frozen model, given the embedding and every
            MLP output (each ``[batch, pos, d_model]``). With ``stop_at_layer`` the run stops after
            that many blocks (the MLP inputs up to there; no logits): what latent nodes need."""
            batch = emb.shape[0]
            seen: dict[int, torch.Tensor] = {}
            hooks: list[tuple[str, Any]] = [("hook_embed", lambda x, hook: emb)]
            for name in frozen_names:
                clean = cache[name]
                hooks.append((name, lambda x, hook, c=clean: c.expand(batch, *c.shape[1:])))
            for layer in range(n_layers):
                hooks.append((mlp_in_hook(layer), lambda x, hook, i=layer: seen.__setitem__(i, x)))
                hooks.append((mlp_out_hook(layer), lambda x, hook, i=layer: mlps[i]))
            out = model.run_with_hooks(
                tokens[None].expand(batch, -1).to(device),
                fwd_hooks=hooks,
                stop_at_layer=stop_at_layer,
            )
            return out, seen

        # The constant part of every node's input: all node values set to zero (BOS kept).
        def at_bos_only(x: torch.Tensor) -> torch.Tensor:
            z = torch.zeros_like(x)
            z[0] = x[0]
            return z[None]

        zero_logits, zero_in = frozen_run(at_bos_only(embed), [at_bos_only(m) for m in mlp_out])
        zero_pre = {i: zero_in[i][0] @ transcoders[i].W_enc + transcoders[i].b_enc for i in acts}
        zero_target = float(_target_from_logits(zero_logits, target, top, second)[0])

        # Nodes with inputs, as (node index, layer, position, latent); the target last.
        receivers = [
            (int(i), int(layer_of[i]), int(nodes.at[i, "position"]), int(nodes.at[i, "latent"]))
            for i in range(n_nodes)
            if kinds[i] == "latent"
        ]
        receivers.append((n_nodes - 1, n_layers, n_pos - 1, -1))
        adjacency = torch.zeros(n_nodes, n_nodes)
        node_input = torch.zeros(n_nodes)
        starts = range(0, len(receivers), batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="graph", leave=False)
        for start in starts:
            chunk = receivers[start : start + batch_size]
            batch = len(chunk)
            with torch.enable_grad():
                # One forward pass of the frozen model, then one backward pass per node of the chunk,
                # run together (autograd's batched gradients): the model is linear once frozen, so
                # the forward values are the same for every node and only the gradients differ.
                emb = embed[None].clone().requires_grad_(True)
                mlps = [m[None].clone().requires_grad_(True) for m in mlp_out]
                # a chunk of latents only runs the blocks up to its last latent's layer
                deepest = max(layer for _, layer, _, _ in chunk)
                out, mlp_in = frozen_run(emb, mlps, None if deepest == n_layers else deepest + 1)
                values = []
                for _, layer, p, j in chunk:
                    if layer == n_layers:
                        values.append(_target_from_logits(out, target, top, second)[0])
                    else:
                        tc = transcoders[layer]
                        values.append(mlp_in[layer][0, p] @ tc.W_enc[:, j] + tc.b_enc[j])
                values_t = torch.stack(values)
                grads = torch.autograd.grad(
                    values_t,
                    [emb, *mlps],
                    grad_outputs=torch.eye(batch, device=values_t.device, dtype=values_t.dtype),
                    is_grads_batched=True,
                    allow_unused=True,
                )
            # each [batch, 1, pos, d_model] -> [batch, pos, d_model]
            g_emb = grads[0][:, 0]
            g_mlp = [
                g[:, 0] if g is not None else torch.zeros(batch, *mlp_out[0].shape, device=device)
                for g in grads[1:]
            ]
            rows_idx = torch.tensor([c[0] for c in chunk])
            node_input[rows_idx] = values_t.detach().cpu()
            # embeddings: W_E[token] . gradient, at positions after BOS
            adjacency[rows_idx[:, None], emb_rows[None, :]] = (
                (g_emb[:, 1:] * embed[None, 1:]).sum(-1).cpu()
            )
            bias = torch.tensor(
                [
                    zero_target if layer == n_layers else float(zero_pre[layer][p, j])
                    for _, layer, p, j in chunk
                ]
            )
            for layer in range(n_layers):
                adjacency[rows_idx[:, None], error_rows[layer][None, :]] = (
                    (g_mlp[layer][:, 1:] * errors[layer][None, 1:]).sum(-1).cpu()
                )
                if layer not in acts:
                    continue
                tc = transcoders[layer]
                where = active[layer]
                if len(where):
                    # the gradient at each active latent's position . its decoder row: [batch, n_active]
                    # (only the active latents' rows, not every latent's at every position)
                    at = where.to(tc.W_dec.device)
                    per_latent = torch.einsum(
                        "bnd,nd->bn", g_mlp[layer][:, at[:, 0]], tc.W_dec[at[:, 1]]
                    )
                    adjacency[rows_idx[:, None], latent_rows[layer][None, :]] = (
                        per_latent * acts[layer][at[:, 0], at[:, 1]]
                    ).cpu()
                bias += (g_mlp[layer][:, 1:] @ tc.b_dec).sum(-1).cpu()
            adjacency[rows_idx, bias_row] = bias
        graph = AttributionGraph(
            tokens=tokens,
            str_tokens=str_tokens,
            nodes=nodes,
            adjacency=adjacency,
            target=target,
            target_tokens=(top, None if target == "demeaned_logit" else second),
            target_str=target_str,
            n_layers=n_layers,
            node_input=node_input,
            meta={"layers": graph_layers, "first_position": first},
        )
        return graph


def str_tokens_of(model: Any, token: int) -> str:
    """One token id as its string."""
    return str(model.to_single_str_token(int(token)))


def edge_sum_error(graph: AttributionGraph) -> float:
    """The largest gap, over latents and the target, between a node's input and the sum of the
    edges into it (bias included): float rounding when the graph is right."""
    receivers = graph.nodes.index[graph.nodes["kind"].isin(["latent", "target"])].tolist()
    idx = torch.tensor(receivers, dtype=torch.long)
    sums = graph.adjacency[idx].sum(dim=1)
    return float((sums - graph.node_input[idx]).abs().max())
