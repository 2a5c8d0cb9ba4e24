"""utils.circuits against hand computations: a three-node graph whose edges are written down, one
edge of a real graph worked out through the attention by hand, the replacement model with error
terms equal to the model, and ablations the frozen model predicts exactly."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from random_models import SAMPLE_TEXTS, build_model, build_tokenizer

from utils import circuits as C
from utils.circuits.graph import AttributionGraph

D_SAE, K = 64, 6


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    """The random 2-layer model with every LayerNorm weight and bias and the attention and MLP
    biases made random too, so a hand computation that forgets one of them fails."""
    model = build_model(build_tokenizer(tmp_path_factory.mktemp("tok")))
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith((".w", ".b", "b_V", "b_O", "b_Q", "b_K", "b_in", "b_out")):
                if "ln" in name and name.endswith(".w"):
                    param.copy_(0.5 + torch.rand(param.shape, generator=generator))
                else:
                    param.copy_(0.1 * torch.randn(param.shape, generator=generator))
    return model


@pytest.fixture(scope="module")
def transcoders(lm):
    """One random TopK transcoder per layer, with non-zero biases."""
    out = []
    for layer in range(lm.cfg.n_layers):
        tc = C.make_transcoder(lm.cfg.d_model, lm.cfg.d_model, D_SAE, K, layer, seed=layer)
        with torch.no_grad():
            tc.b_enc.copy_(0.1 * torch.randn(D_SAE, generator=torch.Generator().manual_seed(7)))
            tc.b_dec.copy_(0.1 * torch.randn(lm.cfg.d_model, generator=torch.Generator()))
        out.append(tc)
    return out


@pytest.fixture(scope="module")
def prompt(lm):
    return lm.to_tokens(SAMPLE_TEXTS[0])[0, :7]


# --- transcoders -------------------------------------------------------------------------------


def test_harvest_mlp_io_is_the_cached_mlp_in_and_out_at_the_masked_positions(lm):
    tokens = torch.stack([lm.to_tokens(t)[0, :6] for t in SAMPLE_TEXTS[:3]])
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, 0] = False
    mask[1, 4:] = False  # another text's "padding"
    got = C.harvest_mlp_io(lm, tokens, [0], mask=mask, batch_size=2)
    _, cache = lm.run_with_cache(tokens)  # the whole model, every hook
    x, y = got[0]
    assert x.shape == (int(mask.sum()), lm.cfg.d_model)
    torch.testing.assert_close(x, cache["blocks.0.ln2.hook_normalized"][mask])
    torch.testing.assert_close(y, cache["blocks.0.hook_mlp_out"][mask])


def test_fvu_by_hand():
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # mean [2, 1]; total variance 1+1+1+1 = 4
    x_hat = torch.tensor([[1.0, 1.0], [3.0, 2.0]])  # one squared error of 1
    assert C.fvu(x_hat, x) == pytest.approx(0.25)
    assert C.fvu(x.mean(0).expand_as(x), x) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        C.fvu(x[:1], x)


def test_token_mask_leaves_out_bos_first_position_and_padding():
    tokens = torch.tensor([[9, 4, 9, 5, 6], [9, 7, 8, 0, 0]])
    mask = C.token_mask(tokens, bos_token_id=9, lengths=torch.tensor([5, 3]))
    assert mask.tolist() == [[False, True, False, True, True], [False, True, True, False, False]]


def test_topk_transcoder_forward_and_metrics_by_hand():
    tc = C.make_transcoder(4, 3, 8, 2, layer=0, seed=1)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    pre = x @ tc.W_enc + tc.b_enc
    top = pre.topk(2, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
    assert torch.allclose(tc.encode(x), acts, atol=1e-6)
    assert torch.allclose(tc(x), acts @ tc.W_dec + tc.b_dec, atol=1e-6)
    metrics = C.transcoder_metrics(tc, x, tc(x))
    assert metrics.fvu == pytest.approx(0.0, abs=1e-6)
    assert metrics.l0 == pytest.approx(float((acts != 0).sum()) / 5)
    assert metrics.dead == int((acts != 0).any(0).logical_not().sum())


def test_use_topk_survives_save_and_load(tmp_path):
    from sae_lens import SAE

    tc = C.make_transcoder(4, 4, 8, 3, layer=1, seed=0)
    tc.save_model(tmp_path / "tc")
    loaded = SAE.load_from_disk(str(tmp_path / "tc"))
    x = torch.randn(6, 4)
    assert not torch.allclose(loaded(x), tc(x))  # a plain load has SAELens' ReLU
    C.use_topk(loaded)
    assert torch.allclose(loaded(x), tc(x), atol=1e-6)
    loaded.cfg.metadata.activation_fn = None
    with pytest.raises(ValueError, match="pass k"):
        C.use_topk(loaded)
    with pytest.raises(ValueError, match="1..8"):
        C.use_topk(loaded, 9)


def test_training_lowers_the_loss_and_checks_shapes():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 8, generator=generator)
    y = torch.relu(x @ torch.randn(8, 8, generator=generator))
    tc = C.make_transcoder(8, 8, 32, 4, layer=0, seed=0)
    before = C.transcoder_metrics(tc, x, y).fvu
    run = C.train_transcoder(
        tc, x, y, n_tokens=256 * 60, batch_size=256, lr=1e-2, progress=False, unit_decoder=True
    )
    assert run.n_steps == 60 and run.n_tokens == 256 * 60
    assert C.transcoder_metrics(tc, x, y).fvu < 0.5 * before
    assert torch.allclose(tc.W_dec.norm(dim=-1), torch.ones(32), atol=1e-5)
    with pytest.raises(ValueError, match="d_in=8"):
        C.train_transcoder(tc, x[:, :4], y, n_tokens=512, progress=False)
    with pytest.raises(ValueError, match="at least one batch"):
        C.train_transcoder(tc, x, y, n_tokens=100, batch_size=256, progress=False)
    assert C.train_transcoder(tc, x, y, n_tokens=256, batch_size=256, progress=False).n_steps == 1
    for bad_x, bad_y in ((x[:100], y[:99]), (x[:100, 0], y[:100]), (x[:100], y[:100, 0])):
        with pytest.raises(ValueError, match=r"must be \[n, d\] with the same n"):
            C.train_transcoder(tc, bad_x, bad_y, n_tokens=256, progress=False)


def test_training_s_defaults_and_its_progress_bar(capsys):
    """The defaults the docstring reports as measured best (batch 2,048, rate 2e-3, seed 0, a
    log every 25 steps, no decay, free decoder norms) and a progress bar named by the layer."""
    import copy

    generator = torch.Generator().manual_seed(5)
    x = torch.randn(2048 * 27, 4, generator=generator)
    y = torch.relu(x @ torch.randn(4, 3, generator=generator))
    tc = C.make_transcoder(4, 3, 8, 2, layer=3, seed=0)
    explicit = copy.deepcopy(tc)
    run = C.train_transcoder(tc, x, y, n_tokens=2048 * 27)
    assert re.search(r"(?<![A-Za-z])layer 3:", capsys.readouterr().err)  # the bar's label
    same = C.train_transcoder(
        explicit, x, y, n_tokens=2048 * 27, batch_size=2048, lr=2e-3, seed=0, log_every=25,
        progress=False, decay_fraction=0.0, unit_decoder=False,
    )  # fmt: skip
    assert (
        (run.steps, run.fvu, run.n_steps)
        == (same.steps, same.fvu, same.n_steps)
        == ([0, 25, 26], same.fvu, 27)
    )
    for name, param in tc.named_parameters():
        assert torch.equal(param, dict(explicit.named_parameters())[name]), name
    assert not torch.allclose(tc.W_dec.norm(dim=-1), torch.ones(8))


# --- replacement model -------------------------------------------------------------------------


def test_every_mlp_is_replaced_by_its_transcoder_reading_the_live_input(lm, transcoders, prompt):
    with lm.hooks(fwd_hooks=C.replacement_hooks(transcoders)):
        _, cache = lm.run_with_cache(prompt[None])
    _, clean = lm.run_with_cache(prompt[None])
    by_layer = transcoders if isinstance(transcoders, dict) else dict(enumerate(transcoders))
    assert sorted(by_layer) == [0, 1]
    for layer, tc in by_layer.items():
        with torch.no_grad():
            expected = tc(cache[f"blocks.{layer}.ln2.hook_normalized"])
        assert torch.allclose(cache[f"blocks.{layer}.hook_mlp_out"], expected, atol=1e-5)
        assert not torch.allclose(clean[f"blocks.{layer}.hook_mlp_out"], expected, atol=1e-3)


def test_with_error_terms_the_replacement_model_is_the_model(lm, transcoders, prompt):
    tokens = prompt[None]
    clean = lm(tokens)
    errors = C.mlp_errors(lm, transcoders, tokens)
    spliced = lm.run_with_hooks(tokens, fwd_hooks=C.replacement_hooks(transcoders, errors))
    assert torch.allclose(spliced, clean, atol=1e-4)
    replaced = lm.run_with_hooks(tokens, fwd_hooks=C.replacement_hooks(transcoders))
    assert not torch.allclose(replaced, clean, atol=1e-2)
    mask = C.token_mask(tokens, None)
    losses = C.replacement_losses(lm, transcoders, tokens, mask)
    assert losses.with_errors == pytest.approx(losses.clean, abs=1e-4)
    logprobs = clean[0, :-1].log_softmax(-1)
    by_hand = -logprobs[torch.arange(len(prompt) - 1), prompt[1:]][mask[0, 1:]].mean().detach()
    assert losses.clean == pytest.approx(float(by_hand), abs=1e-5)
    assert losses.recovered == pytest.approx(
        (losses.zero_ablated - losses.replaced) / (losses.zero_ablated - losses.clean)
    )


def test_transcoders_must_match_the_layers(lm, transcoders):
    with pytest.raises(ValueError, match="one transcoder per layer"):
        C.replacement_losses(
            lm,
            transcoders[:1],
            torch.zeros(1, 3, dtype=torch.long),
            torch.ones(1, 3, dtype=torch.bool),
        )
    with pytest.raises(ValueError, match="layer order"):
        C.mlp_errors(lm, transcoders[::-1], torch.zeros(1, 3, dtype=torch.long))


# --- a hand-made three-node graph --------------------------------------------------------------


def hand_graph() -> AttributionGraph:
    """bias, embedding e, latent l (value 2), error r, target T. Edges: e -> l 2, bias -> l 0;
    l -> T 3, r -> T 1, e -> T -1, bias -> T 0.5."""
    nodes = pd.DataFrame(
        [
            dict(kind="bias", layer=-1, position=0, latent=-1, value=1.0, label="bias"),
            dict(kind="embedding", layer=-1, position=1, latent=-1, value=1.0, label="e"),
            dict(kind="latent", layer=0, position=1, latent=5, value=2.0, label="l"),
            dict(kind="error", layer=0, position=1, latent=-1, value=1.0, label="r"),
            dict(kind="target", layer=1, position=1, latent=-1, value=3.5, label="T"),
        ]
    )
    adjacency = torch.zeros(5, 5)
    adjacency[2, 1] = 2.0
    adjacency[4, 2], adjacency[4, 3], adjacency[4, 1], adjacency[4, 0] = 3.0, 1.0, -1.0, 0.5
    return AttributionGraph(
        tokens=torch.tensor([0, 1]),
        str_tokens=["<bos>", "a"],
        nodes=nodes,
        adjacency=adjacency,
        target="logit_diff",
        target_tokens=(1, 2),
        target_str=("x", "y"),
        n_layers=1,
        node_input=torch.tensor([0, 0, 2.0, 0, 3.5]),
    )


def test_node_indices_by_kind_are_integers_even_when_there_are_none():
    graph = hand_graph()
    assert graph.index("latent").tolist() == [2] and graph.index("latent").dtype == torch.long
    without_bias = graph.nodes[graph.nodes["kind"] != "bias"]
    graph.nodes = without_bias
    assert graph.index("bias").dtype == torch.long and len(graph.index("bias")) == 0
    with pytest.raises(ValueError, match=r"kind must be one of \('embedding', .*got 'node'"):
        graph.index("node")


def test_which_hooks_each_frozen_part_holds_by_name():
    """attention: every attention pattern; layernorm: every LayerNorm scale; ln_final: the final
    LayerNorm's scale only; nothing else (the residual stream is never held). Each hook hands
    back the clean value, repeated over the batch it is given."""
    from utils.circuits.ablation import _freeze_hooks

    cache = {
        "blocks.0.attn.hook_pattern": torch.rand(1, 2, 3, 3),
        "blocks.0.ln1.hook_scale": torch.rand(1, 3, 1),
        "blocks.0.hook_resid_pre": torch.rand(1, 3, 4),
        "ln_final.hook_scale": torch.rand(1, 3, 1),
    }

    def held(*parts):
        return sorted(name for name, _ in _freeze_hooks(None, cache, parts))

    assert held() == []
    assert held("attention") == ["blocks.0.attn.hook_pattern"]
    assert held("ln_final") == ["ln_final.hook_scale"]
    assert held("layernorm") == ["blocks.0.ln1.hook_scale", "ln_final.hook_scale"]
    assert held("attention", "ln_final") == ["blocks.0.attn.hook_pattern", "ln_final.hook_scale"]
    for name, hook in _freeze_hooks(None, cache, ("attention", "layernorm")):
        x = torch.zeros(5, *cache[name].shape[1:])
        assert torch.equal(hook(x, hook=None), cache[name].expand(5, *cache[name].shape[1:]))
    with pytest.raises(ValueError, match=r"freeze takes parts of .*got 'mlp'"):
        _freeze_hooks(None, cache, ("mlp",))


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


def test_the_target_read_from_a_batch_of_logits_by_hand():
    from utils.circuits.graph import _target_from_logits

    logits = torch.tensor(
        [[[9.0, 9.0, 9.0], [1.0, 2.0, 6.0]], [[9.0, 9.0, 9.0], [0.0, 4.0, -1.0]]]
    )  # [batch 2, pos 2, vocab 3]; only the last position counts
    diff = _target_from_logits(logits, "logit_diff", 2, 0)
    assert diff.tolist() == [6.0 - 1.0, -1.0 - 0.0]
    demeaned = _target_from_logits(logits, "demeaned_logit", 1, 0)
    assert demeaned.tolist() == pytest.approx([2.0 - 3.0, 4.0 - 1.0])  # each row's own mean


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


def test_total_effects_by_hand():
    effects = C.total_effects(hand_graph())
    # l: 2 * (3 / 2) = 3; e: -1 directly plus 2 * 3/2 through l; r: 1; bias 0.5
    assert torch.allclose(effects, torch.tensor([0.5, 2.0, 3.0, 1.0, 0.0]), atol=1e-6)


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


# --- a real graph ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph(lm, transcoders, prompt):
    return C.build_graph(lm, transcoders, prompt, batch_size=16)


@pytest.mark.parametrize("target", C.TARGETS)
def test_edges_into_every_node_add_up_to_it(lm, transcoders, prompt, target):
    graph = C.build_graph(lm, transcoders, prompt, target=target, batch_size=7)
    assert C.edge_sum_error(graph) < 1e-4
    assert torch.triu(graph.adjacency).eq(0).all()
    latents = graph.nodes["kind"] == "latent"
    # a TopK latent's input (pre-activation) is its activation
    values = torch.tensor(graph.nodes["value"].to_numpy().copy(), dtype=torch.float32)
    assert torch.allclose(
        graph.node_input[latents.to_numpy()], values[latents.to_numpy()], atol=1e-5
    )
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
    by_hand = float(into_mlp @ transcoders[0].W_enc[:, j])
    src = int(nodes.index[(nodes["kind"] == "embedding") & (nodes["position"] == q)][0])
    dst = graph.latent_node(0, p, j)
    assert float(graph.adjacency[dst, src]) == pytest.approx(by_hand, rel=1e-4, abs=1e-6)
    with pytest.raises(KeyError, match=f"latent {lm.cfg.d_mlp * 99} of layer 0 .* not a node"):
        graph.latent_node(0, p, lm.cfg.d_mlp * 99)


def test_freezing_the_final_layernorm_makes_last_layer_ablations_exact(lm, transcoders, graph):
    """A layer-1 latent reaches the target directly: with the final LayerNorm's scale frozen, its
    ablation changes the target by minus its edge, exactly; left free, not exactly."""
    latents = graph.index("latent")
    end = len(graph.tokens) - 1
    last = [
        int(i)
        for i in latents
        if graph.nodes.at[int(i), "layer"] == 1 and graph.nodes.at[int(i), "position"] == end
    ][:5]
    assert len(last) == 5
    where = [
        (1, int(graph.nodes.at[i, "position"]), int(graph.nodes.at[i, "latent"])) for i in last
    ]
    real = C.ablate_latents(lm, transcoders, graph, where, freeze=("ln_final",))
    direct = graph.adjacency[graph.target_index, last]
    assert torch.allclose(real, -direct, atol=1e-4)
    free = C.ablate_latents(lm, transcoders, graph, where)
    assert not torch.allclose(free, -direct, atol=1e-4)
    with pytest.raises(ValueError, match="freeze"):
        C.ablate_latents(lm, transcoders, graph, where, freeze=("mlp",))


def test_ablation_check_and_agreement(lm, transcoders, graph, capsys):
    top, control = C.pick_ablations(graph, 4, seed=0)
    assert len(top) == 4 and len(control) == 4 and not set(top) & set(control)
    effects = C.total_effects(graph).abs()
    latents = graph.index("latent")
    assert effects[top].min() >= effects[[i for i in latents.tolist() if i not in top]].max()
    frame = C.ablation_check(lm, transcoders, [graph, graph], 4)
    assert "ablations" not in capsys.readouterr().err  # no progress bar unless asked
    assert set(frame["group"]) == {"top", "random"} and len(frame) == 16
    stats = C.agreement(frame[frame.group == "top"], n_boot=50)
    assert stats["n"] == 8 and -1 <= stats["pearson"] <= 1

    def where(nodes):
        return [
            tuple(int(graph.nodes.at[i, c]) for c in ("layer", "position", "latent")) for i in nodes
        ]

    # graph number g draws its control with seed + g: the same graph twice gets two controls
    controls = [C.pick_ablations(graph, 4, seed=s)[1] for s in (0, 1, 2)]
    assert controls[0] != controls[1] != controls[2]
    for number in (0, 1):
        rows = frame[frame.prompt == number]
        assert list(zip(rows.layer, rows.position, rows.latent)) == where(top + controls[number])


def test_ablation_check_s_seed_progress_bar_and_frozen_parts(lm, transcoders, graph, capsys):
    freeze = ("attention", "ln_final")
    frame = C.ablation_check(lm, transcoders, [graph], 2, freeze=freeze, seed=2, progress=True)
    assert re.search(r"(?<![A-Za-z])ablations:", capsys.readouterr().err)  # the bar's label
    top, control = C.pick_ablations(graph, 2, seed=2)
    picked = [graph.nodes.loc[i, ["layer", "position", "latent"]].tolist() for i in top + control]
    assert frame[["layer", "position", "latent"]].values.tolist() == picked
    assert frame["group"].tolist() == ["top"] * 2 + ["random"] * 2
    # the prediction: ablating a latent removes its total effect, so the target moves by minus it
    effects = C.total_effects(graph)[top + control]
    assert torch.allclose(torch.tensor(frame["predicted"].tolist()), -effects, atol=1e-6)
    assert (effects != 0).any()
    where = [tuple(int(v) for v in row) for row in picked]
    frozen = C.ablate_latents(lm, transcoders, graph, where, freeze=freeze)
    free = C.ablate_latents(lm, transcoders, graph, where)
    assert torch.allclose(torch.tensor(frame["real"].tolist()), frozen, atol=1e-6)
    assert not torch.allclose(frozen, free, atol=1e-4)


def test_the_control_matches_the_top_latents_layer_by_layer(graph):
    """For every seed: as many random latents in each layer as the top latents have there, none
    of them a top latent, all active latents of that layer; the default seed is 0."""
    layers = graph.nodes["layer"]
    latents = set(graph.index("latent").tolist())
    for n_top in (1, 3, 6):
        for seed in range(4):
            top, control = C.pick_ablations(graph, n_top, seed=seed)
            assert sorted(layers[top]) == sorted(layers[control])
            assert set(control) <= latents - set(top) and len(set(control)) == len(control)
    assert C.pick_ablations(graph, 3) == C.pick_ablations(graph, 3, seed=0)
    assert C.pick_ablations(graph, 3, seed=0) != C.pick_ablations(graph, 3, seed=1)


def test_residual_share_by_hand(lm, transcoders, graph):
    """A latent's share: the norm of what it writes, centred (activation times decoder row minus
    its mean), over the norm of the centred stream entering the final LayerNorm there; the
    activation is recomputed from the model's own MLP input, not read from the graph."""
    _, cache = lm.run_with_cache(graph.tokens[None])
    stream = cache[f"blocks.{lm.cfg.n_layers - 1}.hook_resid_post"][0]
    latents = graph.nodes[graph.nodes["kind"] == "latent"]
    picked = [latents.iloc[0], latents.iloc[len(latents) // 2], latents.iloc[-1]]
    where = [(int(r.layer), int(r.position), int(r.latent)) for r in picked]
    assert {w[0] for w in where} == {0, 1}
    by_hand = []
    with torch.no_grad():
        for layer, p, j in where:
            x = cache[f"blocks.{layer}.ln2.hook_normalized"][0, p]
            tc = transcoders[layer]
            acts = torch.relu(x @ tc.W_enc + tc.b_enc)
            acts = acts * (acts >= acts.topk(K).values[-1])  # TopK by hand
            row = acts[j] * tc.W_dec[j]
            centred = stream[p] - stream[p].mean()
            by_hand.append(float((row - row.mean()).norm() / centred.norm()))
    got = C.residual_share(lm, transcoders, graph, where)
    assert torch.allclose(got, torch.tensor(by_hand), rtol=1e-4)
    frame = C.ablation_check(lm, transcoders, [graph], 3)
    first = frame.iloc[0]
    one = C.residual_share(
        lm, transcoders, graph, [(int(first.layer), int(first.position), int(first.latent))]
    )
    assert first["share"] == pytest.approx(float(one[0]), rel=1e-6) and (frame["share"] > 0).all()


def test_agreement_by_hand():
    frame = pd.DataFrame(
        dict(prompt=[0, 0, 1, 1], predicted=[1.0, 2.0, -1.0, 4.0], real=[2.0, 4.0, -2.0, 8.0])
    )
    stats = C.agreement(frame, n_boot=20)
    assert stats["pearson"] == pytest.approx(1.0)
    assert stats["slope"] == pytest.approx(2.0)
    assert stats["median_ratio"] == pytest.approx(2.0)
    assert stats["same_sign"] == 1.0 and stats["n"] == 4 and stats["prompts"] == 2
    frame.loc[3, "real"] = -8.0
    assert C.agreement(frame, n_boot=20)["same_sign"] == 0.75
    with pytest.raises(ValueError, match="at least 3"):
        C.agreement(frame.head(2))


# --- weights, figures, export ------------------------------------------------------------------


def test_virtual_weights_and_de_embedding_by_hand(lm, transcoders):
    low, high = transcoders
    w = C.virtual_weights(low, high, scale=2.0)
    d = low.W_dec[3] - low.W_dec[3].mean()
    assert float(w[3, 5]) == pytest.approx(float(d @ high.W_enc[:, 5]) / 2, rel=1e-5)
    table = C.de_embedding(lm, low, 4, k=3)
    e = lm.W_E[table["token_id"][0]]
    e = (e - e.mean()) / ((e - e.mean()).pow(2).mean() + 1e-5).sqrt()
    assert table["score"][0] == pytest.approx(float(e @ low.W_enc[:, 4]), rel=1e-5)
    assert table["score"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="0..63"):
        C.de_embedding(lm, low, 64)


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


@pytest.mark.parametrize("latent", [True, -1, 64, 2.0])
def test_a_latent_that_is_not_one_of_the_transcoders_is_refused(lm, transcoders, latent):
    with pytest.raises(ValueError, match="0..63"):
        C.de_embedding(lm, transcoders[0], latent)


def test_the_first_and_last_latents_are_accepted(lm, transcoders):
    for latent in (0, 63):
        assert len(C.de_embedding(lm, transcoders[0], latent, k=2)) == 2


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


def _training_by_hand(tc, x, y, n_tokens, batch_size, lr, seed, log_every, decay_fraction, unit):
    """The training loop written out plainly: Adam, the rate set by hand each step, batches from
    a seeded permutation that is redrawn when it runs out, loss = squared error / batch variance."""
    generator = torch.Generator().manual_seed(seed)
    n_steps = n_tokens // batch_size
    with torch.no_grad():
        tc.b_dec.copy_(y.mean(dim=0))
    optimizer = torch.optim.Adam(tc.parameters(), lr=lr)
    decay_from = n_steps - int(decay_fraction * n_steps)
    order, cursor, logged = torch.randperm(len(x), generator=generator), 0, []
    with torch.enable_grad():
        for step in range(n_steps):
            factor = 1.0 if step < decay_from else (n_steps - step) / (n_steps - decay_from)
            optimizer.param_groups[0]["lr"] = lr * factor
            if cursor + batch_size > len(x):
                order, cursor = torch.randperm(len(x), generator=generator), 0
            rows = order[cursor : cursor + batch_size]
            cursor += batch_size
            error = (tc(x[rows]) - y[rows]).pow(2).sum()
            loss = error / (y[rows] - y[rows].mean(dim=0)).pow(2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if unit:
                with torch.no_grad():
                    tc.W_dec /= tc.W_dec.norm(dim=-1, keepdim=True)
            if step % log_every == 0 or step == n_steps - 1:
                logged.append((step, float(loss)))
    return logged


@pytest.mark.parametrize(
    ("decay_fraction", "unit", "rows"), [(0.0, False, 100), (0.5, True, 100), (1.0, False, 96)]
)
def test_training_is_the_loop_written_out_by_hand(decay_fraction, unit, rows):
    """7 steps of 32 rows from 100 (the permutation is redrawn at step 3) or from exactly 96
    (the third batch still uses the first permutation's last rows), logged every 4 steps and at
    the last: the same weights and logged losses as the plain loop above."""
    import copy

    generator = torch.Generator().manual_seed(1)
    x = torch.randn(rows, 4, generator=generator)
    y = torch.relu(x @ torch.randn(4, 3, generator=generator)) + 0.5
    tc = C.make_transcoder(4, 3, 12, 3, layer=1, seed=2)
    by_hand = copy.deepcopy(tc)
    started = time.perf_counter()
    run = C.train_transcoder(
        tc,
        x,
        y,
        n_tokens=7 * 32 + 5,
        batch_size=32,
        lr=3e-2,
        seed=4,
        log_every=4,
        progress=False,
        decay_fraction=decay_fraction,
        unit_decoder=unit,
    )
    took = time.perf_counter() - started
    logged = _training_by_hand(by_hand, x, y, 7 * 32 + 5, 32, 3e-2, 4, 4, decay_fraction, unit)
    assert (run.n_steps, run.n_tokens) == (7, 7 * 32)
    assert run.steps == [s for s, _ in logged] == [0, 4, 6]
    assert run.fvu == pytest.approx([v for _, v in logged], rel=1e-5)
    for name, param in tc.named_parameters():
        assert torch.allclose(param, dict(by_hand.named_parameters())[name], atol=1e-6), name
    assert not tc.training and 0 < run.seconds <= took
    with pytest.raises(ValueError, match=r"decay_fraction must be in \[0, 1\], got 1.5"):
        C.train_transcoder(tc, x, y, n_tokens=64, batch_size=32, progress=False, decay_fraction=1.5)


def test_agreement_edge_cases_by_hand():
    """Exactly 3 ablations are enough; a constant prediction has no correlation (NaN, without
    numpy's warning); a spread of exactly 1 is an ordinary spread."""
    import warnings

    three = pd.DataFrame(dict(prompt=[0, 0, 1], predicted=[1.0, 2.0, 3.0], real=[1.0, 2.0, 3.5]))
    assert C.agreement(three, n_boot=10)["n"] == 3
    flat = pd.DataFrame(dict(prompt=[0, 1, 2, 3], predicted=[1.0] * 4, real=[1.0, 2.0, 0.0, 3.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = C.agreement(flat, n_boot=10)
        backwards = C.agreement(flat.rename(columns={"predicted": "real", "real": "predicted"}), 10)
    assert np.isnan(stats["pearson"]) and np.isnan(backwards["pearson"])
    unit = pd.DataFrame(  # each column's standard deviation is exactly 1
        dict(prompt=[0, 1, 2, 3], predicted=[-1.0, 1.0, -1.0, 1.0], real=[-1.0, 1.0, 1.0, 1.0])
    )
    r = float(np.corrcoef(unit["predicted"], unit["real"])[0, 1])
    assert C.agreement(unit, n_boot=10)["pearson"] == pytest.approx(r)
    swapped = unit.rename(columns={"predicted": "real", "real": "predicted"})
    assert C.agreement(swapped, n_boot=10)["pearson"] == pytest.approx(r)


def test_agreement_s_statistics_by_hand():
    """Eight ablations from six prompts, no ties: Pearson from its definition, Spearman as
    Pearson of hand-made ranks, the slope through the origin, signs and ratios counted; the
    defaults are 1,000 bootstrap draws with seed 0; predictions that are all zero give NaN slope
    and ratio without numpy's 0/0 warning."""
    import warnings

    pred = [0.5, -1.0, 2.0, 0.25, 3.0, -0.75, 1.5, -2.0]
    real = [0.4, -0.2, 2.5, -0.1, 2.0, -1.5, 0.3, -1.0]
    frame = pd.DataFrame(dict(prompt=[0, 0, 1, 1, 2, 3, 4, 5], predicted=pred, real=real))

    def r(a, b):
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        cov = sum((u - ma) * (v - mb) for u, v in zip(a, b))
        return cov / (sum((u - ma) ** 2 for u in a) * sum((v - mb) ** 2 for v in b)) ** 0.5

    def ranks(a):
        return [sorted(a).index(v) + 1.0 for v in a]

    stats = C.agreement(frame)
    assert stats["pearson"] == pytest.approx(r(pred, real))
    assert stats["spearman"] == pytest.approx(r(ranks(pred), ranks(real)))
    slope = sum(p * q for p, q in zip(pred, real)) / sum(p * p for p in pred)
    assert stats["slope"] == pytest.approx(slope)
    assert stats["same_sign"] == pytest.approx(7 / 8)
    assert stats["median_ratio"] == pytest.approx(
        sum(sorted(q / p for p, q in zip(pred, real))[3:5]) / 2
    )
    assert (stats["n"], stats["prompts"]) == (8, 6)
    assert stats == C.agreement(frame, n_boot=1000, seed=0)
    for other in (dict(n_boot=1000, seed=1), dict(n_boot=1001, seed=0)):
        assert (stats["r_low"], stats["r_high"]) != pytest.approx(
            (C.agreement(frame, **other)["r_low"], C.agreement(frame, **other)["r_high"])
        )
    assert stats["r_low"] <= stats["r_high"]
    zeros = frame.assign(predicted=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flat = C.agreement(zeros, n_boot=10)
    assert np.isnan(flat["slope"]) and np.isnan(flat["median_ratio"])
    assert flat["same_sign"] == 0.0


def test_token_mask_drops_position_zero_even_when_it_is_not_bos():
    tokens = torch.tensor([[3, 4, 9, 5]])
    assert C.token_mask(tokens, bos_token_id=9).tolist() == [[False, True, False, True]]
    assert C.token_mask(tokens, bos_token_id=None).tolist() == [[False, True, True, True]]


def test_next_token_loss_sums_the_masked_predictions_by_hand():
    from utils.circuits.replacement import _next_token_loss

    logits = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(0))
    tokens = torch.tensor([[0, 3, 1, 5], [0, 2, 2, 4]])
    mask = torch.tensor([[False, True, False, True], [False, True, True, True]])
    expected = 0.0
    for b in range(2):
        for p in range(1, 4):  # the prediction of token p comes from position p - 1
            if mask[b, p]:
                expected -= float(logits[b, p - 1].log_softmax(-1)[tokens[b, p]])
    assert float(_next_token_loss(logits, tokens, mask)) == pytest.approx(expected, rel=1e-5)


def test_a_fresh_transcoder_by_hand():
    """Decoder rows: seeded normal draws scaled to unit length; encoder: their transpose when
    d_in == d_out, else the next normal draws over sqrt(d_in); zero biases; TopK; the hooks, model
    name and BOS setting recorded."""
    tc = C.make_transcoder(5, 3, 7, 2, layer=4, model_name="m", seed=11)
    generator = torch.Generator().manual_seed(11)
    w_dec = torch.randn(7, 3, generator=generator)
    w_dec = w_dec / w_dec.norm(dim=1, keepdim=True)
    w_enc = torch.randn(5, 7, generator=generator) / 5**0.5
    assert torch.allclose(tc.W_dec, w_dec) and torch.allclose(tc.W_enc, w_enc)
    assert not tc.b_enc.any() and not tc.b_dec.any()
    square = C.make_transcoder(3, 3, 7, 2, layer=0, seed=11)
    assert torch.allclose(square.W_enc, square.W_dec.T)
    meta = tc.cfg.metadata
    assert (meta.hook_name, meta.hook_name_out) == (
        "blocks.4.ln2.hook_normalized",
        "blocks.4.hook_mlp_out",
    )
    assert meta.model_name == "m" and meta.prepend_bos is True
    assert tc.cfg.apply_b_dec_to_input is False
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    assert ((tc.encode(x) != 0).sum(-1) <= 2).all()
    assert C.make_transcoder(3, 3, 7, 1, layer=0).cfg.d_sae == 7  # k = 1 and k = d_sae are allowed
    assert C.make_transcoder(3, 3, 7, 7, layer=0).cfg.d_sae == 7
    one = C.make_transcoder(1, 1, 1, 1, layer=0)  # every size may be 1
    assert (one.cfg.d_in, one.cfg.d_out, one.cfg.d_sae) == (1, 1, 1)
    default = C.make_transcoder(5, 3, 7, 2, layer=4)  # defaults: no model name, seed 0
    assert default.cfg.metadata.model_name == ""
    assert torch.equal(default.W_dec, C.make_transcoder(5, 3, 7, 2, layer=4, seed=0).W_dec)
    assert not torch.equal(default.W_dec, C.make_transcoder(5, 3, 7, 2, layer=4, seed=1).W_dec)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(d_in=0), "d_in must be a positive whole number, got 0"),
        (dict(d_out=True), "d_out must be a positive whole number, got True"),
        (dict(d_sae=2.0), "d_sae must be a positive whole number, got 2.0"),
        (dict(k=0), r"k must be a whole number of latents in 1..7 \(d_sae\), got 0"),
        (dict(k=8), r"in 1..7 \(d_sae\), got 8"),
        (dict(k=True), "got True"),
    ],
)
def test_a_transcoder_of_impossible_sizes_is_refused(kwargs, message):
    sizes = dict(d_in=3, d_out=3, d_sae=7, k=2) | kwargs
    with pytest.raises(ValueError, match=message):
        C.make_transcoder(**sizes, layer=0)


def test_pick_ablations_by_hand():
    """The hand graph has one latent: it is the top one at n_top = 1, and there is no other latent
    of its layer for the control; n_top below 1 is refused; a graph without latents gives none."""
    graph = hand_graph()
    assert C.pick_ablations(graph, 1) == ([2], [])
    with pytest.raises(ValueError, match="n_top must be at least 1, got 0"):
        C.pick_ablations(graph, 0)
    graph.nodes.loc[2, "kind"] = "error"
    assert C.pick_ablations(graph, 1) == ([], [])


def test_agreement_statistics_by_hand():
    """Pearson against numpy's, the slope through the origin, the median ratio over the nonzero
    predictions, and the bootstrap interval resampling whole prompts with the same generator."""
    frame = pd.DataFrame(
        dict(
            prompt=[0, 0, 1, 1, 2, 2],
            predicted=[1.0, 0.0, 2.0, -1.0, 3.0, 0.5],
            real=[1.5, 0.2, 1.0, -2.0, 2.0, 1.5],
        )
    )
    pred, real = frame["predicted"].to_numpy(), frame["real"].to_numpy()
    stats = C.agreement(frame, n_boot=50, seed=3)
    assert stats["pearson"] == pytest.approx(np.corrcoef(pred, real)[0, 1])
    assert stats["slope"] == pytest.approx((pred * real).sum() / (pred**2).sum())
    assert stats["median_ratio"] == pytest.approx(np.median([1.5, 0.5, 2.0, 2 / 3, 3.0]))
    rng = np.random.default_rng(3)
    groups = [np.array([0, 1]), np.array([2, 3]), np.array([4, 5])]
    boots = []
    for _ in range(50):
        rows = np.concatenate([groups[i] for i in rng.integers(0, 3, 3)])
        if pred[rows].std() > 0 and real[rows].std() > 0:
            boots.append(np.corrcoef(pred[rows], real[rows])[0, 1])
    assert [stats["r_low"], stats["r_high"]] == pytest.approx(np.quantile(boots, [0.05, 0.95]))
    zero = frame.assign(predicted=0.0)
    stats = C.agreement(zero, n_boot=5)
    assert np.isnan(stats["slope"]) and np.isnan(stats["median_ratio"]) and np.isnan(stats["r_low"])
