"""utils/circuits/graph.py: the hand-made three-node graph's nodes and edge sums, the prompt and
the target read by hand, and real graphs whose edges into every node add up to it, with one edge
worked out through the attention by hand."""

from __future__ import annotations

import re

import pytest
import torch
from circuit_fixtures import graph, lm, prompt, transcoders  # noqa: F401 (fixtures)
from circuit_helpers import K, hand_graph
from random_models import SAMPLE_TEXTS

from utils import circuits as C


def test_node_indices_by_kind_are_integers_even_when_there_are_none():
    graph = hand_graph()
    assert graph.index("latent").tolist() == [2] and graph.index("latent").dtype == torch.long
    without_bias = graph.nodes[graph.nodes["kind"] != "bias"]
    graph.nodes = without_bias
    assert graph.index("bias").dtype == torch.long and len(graph.index("bias")) == 0
    with pytest.raises(ValueError, match=r"kind must be one of \('embedding', .*got 'node'"):
        graph.index("node")


def test_edge_sum_error_is_the_largest_gap_at_a_latent_or_the_target():
    graph = hand_graph()  # node inputs: l 2 (its edges add to 2), T 3.5 (edges 3 + 1 - 1 + 0.5)
    graph.node_input = torch.tensor([0, 0, 2.25, 0, 3.5])  # l off by 0.25
    assert C.edge_sum_error(graph) == pytest.approx(0.25)
    graph.node_input = torch.tensor([0, 0, 2.0, 0, 3.0])  # the target off by 0.5
    assert C.edge_sum_error(graph) == pytest.approx(0.5)
    graph.node_input = torch.tensor([7.0, 7.0, 2.0, 7.0, 3.5])  # inputs and errors receive none
    assert C.edge_sum_error(graph) == pytest.approx(0.0)


def test_prompt_tokens_from_text_or_ids(lm, transcoders, monkeypatch):
    """Text is tokenized with BOS even when the model would not add it; ids may come as [pos] or
    [1, pos]; an empty text, a batch of several prompts or a lone token is refused by name."""
    from utils.circuits.graph import prompt_tokens, str_tokens_of

    monkeypatch.setattr(lm.cfg, "default_prepend_bos", False)
    text = SAMPLE_TEXTS[1]
    tokens = prompt_tokens(lm, text)
    assert tokens.tolist() == [lm.tokenizer.bos_token_id] + lm.to_tokens(text)[0].tolist()
    assert prompt_tokens(lm, tokens[None]).tolist() == tokens.tolist()
    assert prompt_tokens(lm, tokens[:2]).tolist() == tokens[:2].tolist()
    with pytest.raises(ValueError, match="the prompt is empty"):
        prompt_tokens(lm, "  ")
    for bad, shape in ((tokens[None].expand(2, -1), (2, len(tokens))), (tokens[:1], (1,))):
        with pytest.raises(
            ValueError, match=rf"at least one token.*got shape {re.escape(str(shape))}"
        ):
            prompt_tokens(lm, bad)
    assert str_tokens_of(lm, tokens[1]) == lm.to_single_str_token(int(tokens[1]))
    with pytest.raises(ValueError, match=r"target must be one of \('logit_diff'.*got 'logit'"):
        C.build_graph(lm, transcoders, tokens, target="logit")


def test_the_target_read_from_a_batch_of_logits_by_hand():
    from utils.circuits.graph import _target_from_logits

    logits = torch.tensor(
        [[[9.0, 9.0, 9.0], [1.0, 2.0, 6.0]], [[9.0, 9.0, 9.0], [0.0, 4.0, -1.0]]]
    )  # [batch 2, pos 2, vocab 3]; only the last position counts
    diff = _target_from_logits(logits, "logit_diff", 2, 0)
    assert diff.tolist() == [6.0 - 1.0, -1.0 - 0.0]
    demeaned = _target_from_logits(logits, "demeaned_logit", 1, 0)
    assert demeaned.tolist() == pytest.approx([2.0 - 3.0, 4.0 - 1.0])  # each row's own mean


@pytest.mark.parametrize("target", C.TARGETS)
def test_edges_into_every_node_add_up_to_it(lm, transcoders, prompt, target):
    graph = C.build_graph(lm, transcoders, prompt, target=target, batch_size=7)
    assert C.edge_sum_error(graph) < 1e-4
    assert torch.triu(graph.adjacency).eq(0).all()
    latents = torch.tensor((graph.nodes["kind"] == "latent").to_numpy())
    # a TopK latent's input (pre-activation) is its activation
    values = torch.tensor(graph.nodes["value"].to_numpy().copy(), dtype=torch.float32)
    assert torch.allclose(graph.node_input[latents], values[latents], atol=1e-5)
    with torch.no_grad():
        logits = lm(prompt[None])[0, -1]
    top, second = logits.topk(2).indices.tolist()
    expected = logits[top] - (logits[second] if target == "logit_diff" else logits.mean())
    assert graph.nodes.iloc[-1]["value"] == pytest.approx(float(expected), abs=1e-5)
    n_pos = len(prompt) - 1
    counts = graph.nodes["kind"].value_counts()
    assert counts["embedding"] == n_pos and counts["error"] == 2 * n_pos
    assert counts["latent"] == 2 * K * n_pos  # random TopK latents: all k positive


def test_one_edge_through_attention_by_hand(lm, transcoders, prompt, graph):
    """The edge from the embedding at position q to a layer-0 latent at a later position p goes
    only through layer 0's attention (frozen pattern and LayerNorm scales)."""
    _, cache = lm.run_with_cache(prompt[None])
    nodes = graph.nodes
    p = len(prompt) - 1
    q = 2
    j = int(
        nodes[(nodes["kind"] == "latent") & (nodes["layer"] == 0) & (nodes["position"] == p)].iloc[
            0
        ]["latent"]
    )
    e = lm.W_E[prompt[q]]
    # through ln1 at q (centre, divide by the frozen scale, times w; the bias is a constant)
    ln1 = (e - e.mean()) / cache["blocks.0.ln1.hook_scale"][0, q, 0] * lm.blocks[0].ln1.w
    pattern = cache["blocks.0.attn.hook_pattern"][0, :, p, q]  # [heads]
    v = torch.einsum("d,hde->he", ln1, lm.blocks[0].attn.W_V)
    written = torch.einsum("h,he,hed->d", pattern, v, lm.blocks[0].attn.W_O)
    into_mlp = (written - written.mean()) / cache["blocks.0.ln2.hook_scale"][0, p, 0]
    by_hand = float((into_mlp @ transcoders[0].W_enc[:, j]).detach())
    src = int(nodes.index[(nodes["kind"] == "embedding") & (nodes["position"] == q)][0])
    dst = graph.latent_node(0, p, j)
    assert float(graph.adjacency[dst, src]) == pytest.approx(by_hand, rel=1e-4, abs=1e-6)
    with pytest.raises(KeyError, match=f"latent {lm.cfg.d_mlp * 99} of layer 0 .* not a node"):
        graph.latent_node(0, p, lm.cfg.d_mlp * 99)


def test_a_graph_on_some_layers_and_positions_still_adds_up(lm, transcoders, prompt):
    """Latents of layer 1 only, at the last 2 positions, and no transcoder for layer 0: the rest is
    held in the error nodes and the edges still add up; a mapping of layers works as a list."""
    graph = C.build_graph(lm, {1: transcoders[1]}, prompt, positions=2)
    latents = graph.nodes[graph.nodes["kind"] == "latent"]
    assert set(latents["layer"]) == {1}
    assert set(latents["position"]) == {len(prompt) - 2, len(prompt) - 1}
    assert C.edge_sum_error(graph) < 1e-4
    full = C.build_graph(lm, transcoders, prompt)
    assert graph.nodes.iloc[-1]["value"] == pytest.approx(full.nodes.iloc[-1]["value"])
    with pytest.raises(ValueError, match="no transcoder"):
        C.build_graph(lm, {1: transcoders[1]}, prompt, layers=[0])


# ---- build_graph's arguments, nodes and edges against hand computations ---------------------------


def _decode(lm, token):
    return lm.tokenizer.decode([int(token)], clean_up_tokenization_spaces=False)


def _n_receivers(lm, transcoders, prompt):
    """Latent nodes (k per graph layer and position after BOS: the random TopK latents are all
    positive) plus the target."""
    return len(transcoders) * K * (len(prompt) - 1) + 1


def test_default_batch_size_is_64_nodes_per_backward_pass(lm, transcoders, prompt, monkeypatch):
    """Each batched backward pass takes ``batch_size`` rows of the identity (one per node with
    inputs), 64 by default; the last pass takes what is left."""
    sizes = []
    real_grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        sizes.append(int(kwargs["grad_outputs"].shape[0]))
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    n = _n_receivers(lm, transcoders, prompt)
    assert n > 64
    C.build_graph(lm, transcoders, prompt)
    assert sizes == [64] * (n // 64) + ([n % 64] if n % 64 else [])
    sizes.clear()
    C.build_graph(lm, transcoders, prompt, batch_size=10)
    assert sizes == [10] * (n // 10) + ([n % 10] if n % 10 else [])


def test_a_progress_bar_only_when_asked(lm, transcoders, prompt, monkeypatch):
    import tqdm.auto

    bars = []

    def fake_tqdm(iterable, **kwargs):
        bars.append((list(iterable), kwargs))
        return bars[-1][0]

    monkeypatch.setattr(tqdm.auto, "tqdm", fake_tqdm)
    C.build_graph(lm, transcoders, prompt)
    assert bars == []  # no bar by default
    C.build_graph(lm, transcoders, prompt, batch_size=30, progress=True)
    n = _n_receivers(lm, transcoders, prompt)
    assert len(bars) == 1 and bars[0][0] == list(range(0, n, 30))
    assert bars[0][1] == {"desc": "graph", "leave": False}  # named, and gone when done


def test_a_text_prompt_is_tokenized_with_bos(lm, transcoders):
    text = SAMPLE_TEXTS[4]
    graph = C.build_graph(lm, transcoders, text)
    tokens = [lm.tokenizer.bos_token_id] + lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert graph.tokens.tolist() == tokens
    assert graph.str_tokens == [_decode(lm, t) for t in tokens]
    emb = graph.nodes[graph.nodes["kind"] == "embedding"]
    assert emb["label"].tolist() == [f"emb {_decode(lm, t)!r}" for t in tokens[1:]]


def test_positions_keep_the_latents_of_the_last_positions_only(lm, transcoders, prompt):
    """``positions=n``: latents at the last n positions only (one is allowed); n at least the
    number after BOS is the whole prompt; 0 or fewer is refused by name."""
    n_pos = len(prompt)
    full = C.build_graph(lm, transcoders, prompt)
    assert full.meta == {"layers": [0, 1], "first_position": 1}
    one = C.build_graph(lm, transcoders, prompt, positions=1)
    latents = one.nodes[one.nodes["kind"] == "latent"]
    assert set(latents["position"]) == {n_pos - 1} and len(latents) == 2 * K
    assert one.meta["first_position"] == n_pos - 1
    for many in (n_pos - 1, n_pos, 50):
        graph = C.build_graph(lm, transcoders, prompt, positions=many)
        assert graph.meta["first_position"] == 1
        assert graph.nodes.equals(full.nodes)
    for bad in (0, -2):
        with pytest.raises(
            ValueError, match=f"positions must be a positive number of positions or None, got {bad}"
        ):
            C.build_graph(lm, transcoders, prompt, positions=bad)


@pytest.mark.parametrize("target", C.TARGETS)
def test_given_target_tokens_are_read(lm, transcoders, prompt, target):
    logits = lm(prompt[None])[0, -1].detach()
    a, b = logits.argsort()[:2].tolist()  # the two lowest logits, not the top two
    graph = C.build_graph(lm, transcoders, prompt, target=target, target_tokens=(a, b))
    expected = logits[a] - (logits[b] if target == "logit_diff" else logits.mean())
    assert graph.nodes.iloc[-1]["value"] == pytest.approx(float(expected), abs=1e-5)
    assert float(graph.node_input[-1]) == pytest.approx(float(expected), abs=1e-4)
    name_a, name_b = _decode(lm, a), _decode(lm, b)
    if target == "logit_diff":
        assert graph.target_tokens == (a, b) and graph.target_str == (name_a, name_b)
        assert graph.nodes.iloc[-1]["label"] == f"{name_a!r} - {name_b!r}"
    else:
        assert graph.target_tokens == (a, None) and graph.target_str == (name_a, None)
        assert graph.nodes.iloc[-1]["label"] == f"{name_a!r} - mean"
    assert C.edge_sum_error(graph) < 1e-4


def _hand_graph_of(lm, transcoders, tokens, graph_layers, first, target, top, second):
    """The nodes, node inputs and edges of the attribution graph worked out without build_graph:
    latents by a hand TopK, and each edge as the change in a node's input when the source node
    is taken out of the frozen model (attention patterns and LayerNorm scales held at their clean
    values), which is linear, so the change is the direct effect exactly; the bias edge is the
    input when every node is taken out."""
    n_layers, n_pos = lm.cfg.n_layers, len(tokens)
    _, cache = lm.run_with_cache(tokens[None])
    embed = lm.W_E[tokens].detach()
    mlp_out = [cache[f"blocks.{i}.hook_mlp_out"][0] for i in range(n_layers)]
    acts, errors = {}, list(mlp_out)
    for i in graph_layers:
        tc = transcoders[i]
        pre = cache[f"blocks.{i}.ln2.hook_normalized"][0] @ tc.W_enc + tc.b_enc
        top_k = pre.topk(K, dim=-1)
        a = torch.zeros_like(pre).scatter(-1, top_k.indices, top_k.values.relu())
        a[:first] = 0
        acts[i] = a
        errors[i] = mlp_out[i] - (a @ tc.W_dec + tc.b_dec)
    rows = [("bias", -1, 0, -1, 1.0, "bias")]
    strs = [_decode(lm, t) for t in tokens]
    rows += [("embedding", -1, p, -1, 1.0, f"emb {strs[p]!r}") for p in range(1, n_pos)]
    # per source node: (embedding, MLP outputs) with it taken out
    variants = [None]
    variants += [(p, None) for p in range(1, n_pos)]
    for i in range(n_layers):
        for p in range(1, n_pos):
            for j in range(transcoders[0].cfg.d_sae if i in acts else 0):
                if acts[i][p, j] != 0:
                    rows.append(("latent", i, p, j, float(acts[i][p, j]), f"L{i}/{j}"))
                    variants.append((i, p, acts[i][p, j] * transcoders[i].W_dec[j]))
        for p in range(1, n_pos):
            rows.append(("error", i, p, -1, float(errors[i][p].norm()), f"err L{i}"))
            variants.append((i, p, errors[i][p]))
    logits = lm(tokens[None])[0, -1].detach()
    value = logits[top] - (logits[second] if target == "logit_diff" else logits.mean())
    read = repr(_decode(lm, second)) if target == "logit_diff" else "mean"
    rows.append(("target", n_layers, n_pos - 1, -1, float(value), f"{_decode(lm, top)!r} - {read}"))
    embs, mlps = [], [[] for _ in range(n_layers)]
    for v in [None, "bias only", *variants[1:]]:  # the full run, no node, each node taken out
        e, m = embed.clone(), [x.clone() for x in mlp_out]
        if v == "bias only":
            e[1:] = 0
            for i in range(n_layers):
                m[i][1:] = transcoders[i].b_dec if i in acts else 0
        elif v is not None and len(v) == 2:
            e[v[0]] = 0
        elif v is not None:
            m[v[0]][v[1]] -= v[2]
        embs.append(e)
        for i in range(n_layers):
            mlps[i].append(m[i])
    embs, mlps = torch.stack(embs), [torch.stack(m) for m in mlps]
    batch = len(embs)
    seen = {}
    hooks = [("hook_embed", lambda x, hook: embs)]
    for name in cache:
        if name.endswith("hook_scale") or name.endswith("hook_pattern"):
            hooks.append((name, lambda x, hook, c=cache[name]: c.expand(batch, *c.shape[1:])))
    for i in range(n_layers):
        hooks.append(
            (f"blocks.{i}.ln2.hook_normalized", lambda x, hook, i=i: seen.setdefault(i, x))
        )
        hooks.append((f"blocks.{i}.hook_mlp_out", lambda x, hook, i=i: mlps[i]))
    out = lm.run_with_hooks(tokens[None].expand(batch, -1), fwd_hooks=hooks)[:, -1]
    target_in = out[:, top] - (out[:, second] if target == "logit_diff" else out.mean(-1))
    n_nodes = len(rows)
    adjacency, node_input = torch.zeros(n_nodes, n_nodes), torch.zeros(n_nodes)
    for t, (kind, i, p, j, _, _) in enumerate(rows):
        if kind == "latent":
            inputs = seen[i][:, p] @ transcoders[i].W_enc[:, j] + transcoders[i].b_enc[j]
        elif kind == "target":
            inputs = target_in
        else:
            continue
        node_input[t] = inputs[0]
        adjacency[t, 0] = inputs[1]
        adjacency[t, 1:-1] = inputs[0] - inputs[2:]
    return rows, adjacency.detach(), node_input.detach()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=5),
        dict(target="demeaned_logit", batch_size=64),
        dict(layers=[1], positions=3, target_tokens=(3, 9), batch_size=8),
        dict(layers=[0], positions=2, target="demeaned_logit", target_tokens=(11, 0)),
    ],
    ids=["all", "demeaned", "layer1-last3", "layer0-last2"],
)
def test_nodes_and_edges_against_the_frozen_model_by_hand(lm, transcoders, prompt, kwargs):
    """Every node (kind, layer, position, latent, value, label, in order) and every edge: the
    change in a node's input when the source is taken out of the frozen model."""
    graph = C.build_graph(lm, transcoders, prompt, **kwargs)
    target = kwargs.get("target", "logit_diff")
    layers = kwargs.get("layers", [0, 1])
    first = max(1, len(prompt) - kwargs.get("positions", len(prompt)))
    logits = lm(prompt[None])[0, -1].detach()
    top, second = kwargs.get("target_tokens", logits.topk(2).indices.tolist())
    with torch.no_grad():  # the hand graph takes sources out; it needs no gradient
        rows, adjacency, node_input = _hand_graph_of(
            lm, transcoders, prompt, layers, first, target, top, second
        )
    nodes = graph.nodes
    assert list(nodes.columns) == ["kind", "layer", "position", "latent", "value", "label"]
    got = list(nodes.itertuples(index=False, name=None))
    assert [r[:4] for r in got] == [r[:4] for r in rows]
    assert [r[5] for r in got] == [r[5] for r in rows]
    assert graph.target_tokens == (top, second if target == "logit_diff" else None)
    assert nodes["value"].tolist() == pytest.approx([r[4] for r in rows], rel=1e-4, abs=1e-5)
    assert graph.meta == {"layers": layers, "first_position": first}
    assert graph.n_layers == lm.cfg.n_layers and graph.target == target
    assert graph.node_input.shape == (len(rows),)
    assert torch.allclose(graph.node_input, node_input, atol=1e-4)
    assert graph.adjacency.shape == (len(rows), len(rows))
    assert torch.allclose(graph.adjacency, adjacency, atol=1e-5)


def test_a_chunk_of_early_latents_runs_only_the_blocks_it_needs(lm, transcoders, prompt):
    """Nodes with inputs go in order (layer-0 latents, layer-1 latents, the target), batch_size at
    a time; a chunk runs the blocks up to its deepest node's layer (the unembedding only for the
    chunk with the target), after the clean run and the run with every node at zero."""
    calls = {"block 1": 0, "unembed": 0}
    handles = [
        lm.blocks[1].register_forward_hook(
            lambda *a: calls.__setitem__("block 1", calls["block 1"] + 1)
        ),
        lm.unembed.register_forward_hook(
            lambda *a: calls.__setitem__("unembed", calls["unembed"] + 1)
        ),
    ]
    try:
        C.build_graph(lm, transcoders, prompt, batch_size=5)
    finally:
        for handle in handles:
            handle.remove()
    n0 = K * (len(prompt) - 1)  # layer-0 latents, node inputs 0..n0-1
    n = 2 * n0 + 1  # and the layer-1 latents, then the target
    starts = range(0, n, 5)
    assert calls["block 1"] == 2 + sum(1 for s in starts if min(s + 5, n) > n0)
    assert calls["unembed"] == 2 + 1
