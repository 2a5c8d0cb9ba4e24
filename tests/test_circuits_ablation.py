"""utils/circuits/ablation.py: total effects and the picked latents on the hand-made graph,
ablations the frozen model predicts exactly on a real graph, the residual share by hand, and the
agreement statistics by hand."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from circuit_fixtures import graph, lm, prompt, transcoders  # noqa: F401 (fixtures)
from circuit_helpers import K, hand_graph

from utils import circuits as C


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


def test_total_effects_by_hand():
    effects = C.total_effects(hand_graph())
    # l: 2 * (3 / 2) = 3; e: -1 directly plus 2 * 3/2 through l; r: 1; bias 0.5
    assert torch.allclose(effects, torch.tensor([0.5, 2.0, 3.0, 1.0, 0.0]), atol=1e-6)


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


def _where(graph, nodes):
    return [
        tuple(int(graph.nodes.at[int(i), c]) for c in ("layer", "position", "latent"))
        for i in nodes
    ]


def test_ablate_latents_runs_32_at_a_time_by_default(lm, transcoders, graph, monkeypatch):
    """The default batch holds 32 ablations: 33 latents take two runs of the model (32, then 1),
    and the changes do not depend on how they are batched (one at a time gives the same)."""
    latents = graph.index("latent").tolist()
    where = _where(graph, (latents * 33)[:33])
    one_by_one = C.ablate_latents(lm, transcoders, graph, where[:3], batch_size=1)
    sizes = []
    run = lm.run_with_hooks

    def counting(tokens, *args, **kwargs):
        sizes.append(tokens.shape[0])
        return run(tokens, *args, **kwargs)

    monkeypatch.setattr(lm, "run_with_hooks", counting)
    got = C.ablate_latents(lm, transcoders, graph, where)
    assert sizes == [32, 1] and got.shape == (33,)
    assert torch.allclose(got[:3], one_by_one, atol=1e-5)


def test_ablate_latents_of_no_latents_is_an_empty_tensor(lm, transcoders, graph):
    """No latents to ablate: an empty ``[0]`` tensor, as ``[len(latents)]`` says."""
    got = C.ablate_latents(lm, transcoders, graph, [])
    assert isinstance(got, torch.Tensor) and got.shape == (0,)


def test_freezing_attention_holds_every_pattern_at_its_clean_value(
    lm, transcoders, graph, monkeypatch
):
    """freeze=("attention",): in the ablated runs every attention pattern is the clean run's
    (read back after the ablation's hooks); left free, ablating a layer-0 latent at the first
    positions moves the layer-1 patterns, and so the changes of the target differ."""
    _, clean = lm.run_with_cache(graph.tokens[None])
    patterns = [f"blocks.{layer}.attn.hook_pattern" for layer in range(lm.cfg.n_layers)]
    early = [
        int(i)
        for i in graph.index("latent")
        if graph.nodes.at[int(i), "layer"] == 0 and graph.nodes.at[int(i), "position"] <= 2
    ][:4]
    assert len(early) == 4
    where = _where(graph, early)
    seen = {}
    run = lm.run_with_hooks

    def recording(tokens, fwd_hooks=(), **kwargs):
        def keep(x, hook):
            seen[hook.name] = x.clone()

        return run(tokens, fwd_hooks=list(fwd_hooks) + [(n, keep) for n in patterns], **kwargs)

    monkeypatch.setattr(lm, "run_with_hooks", recording)
    frozen = C.ablate_latents(lm, transcoders, graph, where, freeze=("attention",))
    for name in patterns:
        assert torch.allclose(seen[name], clean[name].expand(4, -1, -1, -1), atol=1e-6), name
    free = C.ablate_latents(lm, transcoders, graph, where)
    moved = seen[patterns[1]] - clean[patterns[1]]
    assert moved.abs().max() > 1e-4
    assert not torch.allclose(frozen, free, atol=1e-5)
