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
