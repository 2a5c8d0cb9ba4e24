"""Unit tests for utils/interventions/attribution.py: next-token attribution, the ablations it
is compared with (against full forward passes), and the agreement between the two.

Random models of unusual sizes (d_model 48, d_sae 200), one with a final LayerNorm whose weights
are not all ones (tests/intervention_helpers.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from intervention_fixtures import attribution, contexts, model, tokenizer  # noqa: F401 (fixtures)
from random_models import D_SAE, HOOK

from utils import features as F
from utils import interventions as I


def test_attribution_shapes_and_zeros(attribution, sae):
    n, pos = attribution.tokens.shape
    assert attribution.attribution.shape == (n, pos, D_SAE)
    assert (attribution.attribution[attribution.feature_acts == 0] == 0).all()
    for i, target in enumerate(attribution.target_positions.tolist()):
        assert (attribution.attribution[i, target + 1 :] == 0).all()
    assert torch.allclose(attribution.probability, attribution.metric.exp())


def test_attribution_is_the_first_order_change(model, sae, attribution):
    """Shrink one active feature by a small fraction eps: the metric moves by -eps * attribution."""
    i = 0
    target = int(attribution.target_positions[i])
    attr = attribution.attribution[i, : target + 1]
    pos, f = divmod(int(attr.abs().argmax()), D_SAE)
    eps = 1e-3

    def shrink(acts, hook):
        acts = acts.clone()
        acts[0, pos, f] *= 1 - eps
        return acts

    tokens = attribution.tokens[i : i + 1]
    with model.saes(saes=[sae], use_error_term=True):
        logits = model.run_with_hooks(tokens, fwd_hooks=[(f"{HOOK}.hook_sae_acts_post", shrink)])
    moved = logits[0, target].log_softmax(-1)[tokens[0, target + 1]] - attribution.metric[i]
    assert math.isclose(moved.item(), -eps * attr[pos, f].item(), rel_tol=0.05, abs_tol=1e-7)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_attribution_in_batches_is_the_same(model, sae, attribution, batch_size):
    """Contexts do not interact: any batch size gives each context the same attribution."""
    n = attribution.tokens.shape[0]
    assert n > batch_size  # more than one batch, one of them partial
    batched = I.next_token_attribution(
        model, sae, attribution.tokens, attribution.target_positions, batch_size=batch_size
    )
    together = I.next_token_attribution(
        model, sae, attribution.tokens, attribution.target_positions, batch_size=n
    )
    for name in ("metric", "feature_acts", "attribution", "probability"):
        assert torch.allclose(getattr(batched, name), getattr(together, name), atol=1e-5), name
    with pytest.raises(ValueError, match="batch_size"):
        I.next_token_attribution(model, sae, attribution.tokens, [3] * n, batch_size=0)


def test_attribution_target_checks(model, sae, contexts):
    tokens, _ = contexts
    with pytest.raises(ValueError, match="target positions"):
        I.next_token_attribution(model, sae, tokens[:1], [tokens.shape[1] - 1])
    with pytest.raises(ValueError, match="1 contexts"):
        I.next_token_attribution(model, sae, tokens[:1], [1, 2])


def test_batched_ablations_match_single_ones(model, sae, attribution):
    tokens = attribution.tokens[0]
    target = int(attribution.target_positions[0])
    active = (attribution.feature_acts[0, : target + 1] > 0).nonzero()[:5]
    pairs = [tuple(map(int, p)) for p in active]
    together = I.ablation_effects(model, sae, tokens, target, pairs, batch_size=2)
    alone = torch.stack([I.ablation_effects(model, sae, tokens, target, [p])[0] for p in pairs])
    assert torch.allclose(together, alone, atol=1e-5)
    with pytest.raises(IndexError, match="position"):
        I.ablation_effects(model, sae, tokens, target, [(len(tokens), 0)])


def removed_by_hand(model, sae, tokens, target, pairs):
    """The change in log p(correct next token) at ``target`` when each (position, latent) pair is
    removed, computed with full forward passes of the model and a plain hook that subtracts
    ``a * W_dec[latent]`` at that position (no SAE attached, nothing shared with the module)."""
    tokens = tokens[None] if tokens.ndim == 1 else tokens
    correct = tokens[0, target + 1]
    clean = model(tokens)[0, target].log_softmax(-1)[correct]
    changes = []
    for pos, f in pairs:

        def subtract(acts, hook, pos=pos, f=f):
            acts = acts.clone()
            a = sae.encode(acts[:, pos])[:, f : f + 1]  # [1, 1]
            acts[:, pos] -= a * sae.W_dec[f]
            return acts

        logits = model.run_with_hooks(tokens, fwd_hooks=[(HOOK, subtract)])
        changes.append((logits[0, target].log_softmax(-1)[correct] - clean).item())
    return torch.tensor(changes)


def test_ablation_effects_against_full_forward_passes(model, sae, attribution):
    """Each pair's real change, sign included, equals the one computed by hand with full forward
    passes (the module starts at the SAE's layer from a cached residual)."""
    for i in range(2):
        tokens = attribution.tokens[i]
        target = int(attribution.target_positions[i])
        acts = attribution.feature_acts[i, : target + 1]
        active = (acts > 0).nonzero()
        # the strongest pairs at the target position and before it, and a few others
        order = acts[active[:, 0], active[:, 1]].argsort(descending=True)
        pairs = [tuple(map(int, active[j])) for j in order[:6]]
        pairs += [(target, int(f)) for f in (acts[target] > 0).nonzero()[:2, 0]]
        expected = removed_by_hand(model, sae, tokens, target, pairs)
        assert expected.abs().max() > 1e-3  # the test can see a sign
        actual = I.ablation_effects(model, sae, tokens, target, pairs, batch_size=3)
        assert torch.allclose(actual, expected, rtol=1e-3, atol=1e-5), (actual, expected)


def test_ablations_start_at_the_saes_layer(model, sae, attribution):
    """The ablations run from the SAE's layer on the cached residual: block 0 runs once (the
    clean pass), not once per batch, and the numbers equal full forward passes from the tokens."""
    tokens = attribution.tokens[1]
    target = int(attribution.target_positions[1])
    active = (attribution.feature_acts[1, : target + 1] > 0).nonzero()[:7]
    pairs = [tuple(map(int, p)) for p in active]
    calls = []
    handle = model.blocks[0].register_forward_hook(lambda *args: calls.append(1))
    try:
        fast = I.ablation_effects(model, sae, tokens, target, pairs, batch_size=3)
        assert len(calls) == 1
        calls.clear()
        full = I.ablation_effects(model, sae, tokens, target, pairs, batch_size=3, from_hook=False)
        assert len(calls) == 1 + 3  # the clean pass and three batches
    finally:
        handle.remove()
    assert torch.allclose(fast, full, atol=1e-5)
    assert torch.allclose(fast, removed_by_hand(model, sae, tokens, target, pairs), atol=1e-5)


def test_compare_attribution_with_ablation(model, sae, attribution):
    frame = I.compare_attribution_with_ablation(model, sae, attribution, n_top=3, n_random=2)
    assert set(frame["chosen"]) <= {"top", "random"}
    for i, group in frame.groupby("context"):
        top = group[group["chosen"] == "top"]
        rest = group[group["chosen"] == "random"]
        assert len(top) <= 3 and len(rest) <= 2
        if len(rest):
            assert top["predicted"].abs().min() >= rest["predicted"].abs().max()
        row = top.iloc[0]
        target = int(attribution.target_positions[i])
        expected = -attribution.attribution[i, int(row["position"]), int(row["latent"])].item()
        assert math.isclose(row["predicted"], expected, rel_tol=1e-6)
        real = I.ablation_effects(
            model, sae, attribution.tokens[i], target, [(int(row["position"]), int(row["latent"]))]
        )[0].item()
        assert math.isclose(row["actual"], real, rel_tol=1e-4, abs_tol=1e-6)
    assert (frame["share_of_norm"] > 0).all()


def test_compare_picks_the_top_pairs_up_to_the_target_position(model, sae, attribution):
    """The pairs chosen as "top" are the largest |attribution| among active pairs at positions
    0..target, the target position itself included (it usually holds the strongest ones)."""
    n_top = 4
    frame = I.compare_attribution_with_ablation(model, sae, attribution, n_top=n_top, n_random=1)
    seen_target = False
    for i, group in frame.groupby("context"):
        target = int(attribution.target_positions[i])
        attr = attribution.attribution[i].clone()  # [pos, d_sae]
        attr[attribution.feature_acts[i] == 0] = 0
        attr[target + 1 :] = 0
        flat = attr.abs().flatten().topk(n_top).indices
        expected = {divmod(int(j), attr.shape[1]) for j in flat}
        top = group[group["chosen"] == "top"]
        assert set(zip(top["position"], top["latent"])) == expected
        seen_target |= any(pos == target for pos, _ in expected)
    assert seen_target  # otherwise this test could not tell `: target + 1` from `: target`


def test_agreement():
    frame = pd.DataFrame({"predicted": [1.0, 2.0, -3.0, -0.5], "actual": [2.0, 4.0, -6.0, 3.0]})
    scores = I.agreement(frame)
    assert scores["sign_agreement"] == 0.75
    assert scores["spearman"] == pytest.approx(0.8)
    assert scores["n_pairs"] == 4
    with pytest.raises(ValueError, match="3 rows"):
        I.agreement(frame.head(2))


def test_top_pair_agreement_by_hand():
    frame = pd.DataFrame(
        {
            "context": [0, 0, 0, 1, 1],
            "position": [3, 5, 5, 2, 4],
            "latent": [7, 1, 2, 9, 9],
            "predicted": [0.1, -0.5, 0.2, 0.3, 0.2],
            "actual": [0.2, -0.9, 0.1, 0.1, -0.6],
            "probability": [0.4, 0.4, 0.4, 0.9, 0.9],
        }
    )
    table = I.top_pair_agreement(frame)
    assert table["predicted_top"].tolist() == [(5, 1), (2, 9)]
    assert table["actual_top"].tolist() == [(5, 1), (4, 9)]
    assert table["same"].tolist() == [True, False]
    assert table["probability"].tolist() == [0.4, 0.9]


# ---- edges the review's mutants found untested ---------------------------------------------------


def test_compare_random_pairs_come_from_the_rest_seeded_and_by_hand(model, sae, attribution):
    from dataclasses import replace

    frame = I.compare_attribution_with_ablation(model, sae, attribution, n_top=2, n_random=1000)
    for _, group in frame.groupby("context"):
        top = group[group["chosen"] == "top"]
        rest = group[group["chosen"] == "random"]
        assert len(rest) and not group.duplicated(["position", "latent"]).any()
        assert top["predicted"].abs().min() >= rest["predicted"].abs().max()
    # seeded: the defaults (20 top, 20 random, seed 0) give the same rows twice
    first = I.compare_attribution_with_ablation(model, sae, attribution)
    pd.testing.assert_frame_equal(
        first, I.compare_attribution_with_ablation(model, sae, attribution)
    )
    same = I.compare_attribution_with_ablation(model, sae, attribution, 20, 20, seed=0)
    pd.testing.assert_frame_equal(first, same)
    # share of norm by hand: activation * ||W_dec[f]|| / ||SAE input at that position||
    hook = F.sae_hook_name(sae)
    for row in first.head(5).itertuples():
        _, cache = model.run_with_cache(attribution.tokens[row.context : row.context + 1])
        x_norm = cache[hook][0, row.position].norm().item()
        by_hand = row.activation * sae.W_dec[row.latent].norm().item() / x_norm
        assert math.isclose(row.share_of_norm, by_hand, rel_tol=1e-4)
    # a context with no active latent is skipped, and the next one still counted
    silent = replace(attribution, feature_acts=attribution.feature_acts.clone())
    silent.feature_acts[0] = 0
    # ...and a context with a single active pair is kept, with that pair alone
    pos, f = (attribution.feature_acts[1] > 0).nonzero()[0].tolist()
    silent.feature_acts[1] = 0
    silent.feature_acts[1, pos, f] = attribution.feature_acts[1, pos, f]
    skipped = I.compare_attribution_with_ablation(model, sae, silent, n_top=2, n_random=1)
    assert 0 not in set(skipped["context"])
    one = skipped[skipped["context"] == 1]
    assert list(zip(one["position"], one["latent"])) == [(pos, f)]


def test_attribution_regime_boundaries_are_strict():
    frame = pd.DataFrame({"share_of_norm": [0.3, 0.31], "probability": [0.8, 0.81]})
    assert I.attribution_regime(frame).tolist() == ["neither", "both"]


def test_attribution_metric_by_hand_and_target_zero(model, sae, contexts):
    # the metric is log p(the next real token) at the target, from a plain spliced forward pass
    tokens, _ = contexts
    result = I.next_token_attribution(model, sae, tokens[:2], [0, 5])
    with model.saes(saes=[sae], use_error_term=True):
        logp = model(tokens[:2]).float().log_softmax(-1)
    by_hand = [logp[0, 0, tokens[0, 1]].item(), logp[1, 5, tokens[1, 6]].item()]
    assert result.metric.tolist() == pytest.approx(by_hand, rel=1e-4, abs=1e-5)


def test_top_pair_agreement_orders_contexts_and_takes_a_single_pair():
    frame = pd.DataFrame(
        {
            "context": [4, 1, 1],
            "position": [2, 0, 3],
            "latent": [5, 6, 7],
            "predicted": [0.3, 0.1, -0.4],
            "actual": [0.2, 0.5, 0.1],
            "probability": [0.7, 0.2, 0.2],
        }
    )
    table = I.top_pair_agreement(frame)
    assert table["context"].tolist() == [1, 4]
    assert table["predicted_top"].tolist() == [(3, 7), (2, 5)]
    assert table["actual_top"].tolist() == [(0, 6), (2, 5)]
    assert table["probability"].tolist() == [0.2, 0.7]


def test_agreement_edges_by_hand():
    # three rows are enough; a zero prediction counts as "not positive", like a negative one
    frame = pd.DataFrame({"predicted": [0.0, 0.5, 0.2], "actual": [-0.5, 0.5, 0.00005]})
    scores = I.agreement(frame)
    assert scores["n_pairs"] == 3
    assert scores["sign_agreement"] == 1.0  # the third is negligible (|actual| <= 1e-4)
    # effects below 1 still count, above the 1e-4 floor
    small = pd.DataFrame({"predicted": [0.3, -0.2, 0.1], "actual": [0.5, -0.4, -0.2]})
    assert I.agreement(small)["sign_agreement"] == pytest.approx(2 / 3)
    # no effect above the floor: no sign agreement to report
    tiny = pd.DataFrame({"predicted": [0.3, -0.2, 0.1], "actual": [1e-5, -1e-5, 0.0]})
    assert math.isnan(I.agreement(tiny)["sign_agreement"])


@pytest.mark.parametrize("cap", [0.5, 1.0, 2.0, 0.0, -1.0])
def test_unembed_gives_the_forward_logits_with_and_without_a_soft_cap(model, monkeypatch, cap):
    """The logits attribution differentiates are the forward pass's, soft cap included (Gemma 2's
    cap * tanh(logits / cap); a cap of 0 or below means none, as in TransformerLens)."""
    from utils.interventions.checks import _final_name, _unembed

    monkeypatch.setattr(model.cfg, "output_logits_soft_cap", cap)
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 6), generator=torch.Generator().manual_seed(3))
    logits, cache = model.run_with_cache(tokens, names_filter=_final_name(model))
    got = _unembed(model, cache[_final_name(model)])
    assert torch.allclose(got, logits, atol=1e-5)
    with torch.no_grad():
        uncapped = model.unembed(model.ln_final(cache[_final_name(model)]))
    assert uncapped.abs().max() > 3 * max(cap, 0.1)  # the cap, where there is one, does bite
    expected = cap * torch.tanh(uncapped / cap) if cap > 0 else uncapped
    assert torch.allclose(got, expected, atol=1e-5)


def test_unembed_without_a_soft_cap_setting_applies_none():
    """A config with no ``output_logits_soft_cap`` at all (older TransformerLens): no cap."""
    from types import SimpleNamespace

    from utils.interventions.checks import _unembed

    fake = SimpleNamespace(cfg=SimpleNamespace(normalization_type=None), unembed=lambda r: 10 * r)
    resid = torch.tensor([[[0.5, -2.0, 4.0]]])
    assert torch.equal(_unembed(fake, resid), 10 * resid)


# ---- edges the mutants of ablation_effects found untested ----------------------------------------


def test_ablation_effects_argument_checks_and_target_zero(model, sae, attribution):
    tokens = attribution.tokens[0]
    last = len(tokens) - 2
    with pytest.raises(ValueError, match=r"give one context \(\[pos\] or \[1, pos\]\), got \(2, "):
        I.ablation_effects(model, sae, attribution.tokens[:2], 0, [(0, 0)])
    for bad in (-1, last + 1, last + 2):
        with pytest.raises(ValueError, match=rf"target_position must be in 0\.\.{last}"):
            I.ablation_effects(model, sae, tokens, bad, [(0, 0)])
    # target position 0 (and the last allowed one) are fine: same as full forward passes
    for target in (0, last):
        acts = attribution.feature_acts[0, : target + 1]
        pairs = [tuple(map(int, p)) for p in (acts > 0).nonzero()[:3]] + [(0, 1)]
        actual = I.ablation_effects(model, sae, tokens, target, pairs)
        expected = removed_by_hand(model, sae, tokens, target, pairs)
        assert torch.allclose(actual, expected, rtol=1e-3, atol=1e-5), (actual, expected)


def test_ablation_effects_of_no_pairs_is_empty(model, sae, attribution):
    assert I.ablation_effects(model, sae, attribution.tokens[0], 3, []).shape == (0,)


def test_ablation_effects_default_batch_and_only_the_target_is_unembedded(model, sae, attribution):
    """17 pairs go 16 at a time by default (one clean pass, two batches of ablations), and every
    pass unembeds the target position alone."""
    tokens = attribution.tokens[0]
    target = int(attribution.target_positions[0])
    active = (attribution.feature_acts[0, : target + 1] > 0).nonzero()
    pairs = [tuple(map(int, active[j % len(active)])) for j in range(17)]
    calls, unembedded = [], []
    handles = [
        model.blocks[0].register_forward_hook(lambda *args: calls.append(1)),
        model.unembed.register_forward_hook(
            lambda module, args, out: unembedded.append(args[0].shape[1])
        ),
    ]
    try:
        actual = I.ablation_effects(model, sae, tokens, target, pairs, from_hook=False)
    finally:
        for handle in handles:
            handle.remove()
    assert len(calls) == 1 + 2
    assert unembedded == [1] * 3
    assert torch.allclose(actual, removed_by_hand(model, sae, tokens, target, pairs), atol=1e-5)
