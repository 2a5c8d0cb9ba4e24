"""Unit tests for utils.interventions on random models of unusual sizes (d_model 48, d_sae 200),
one of them with a final LayerNorm whose weights are not all ones."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from random_models import (
    D_MODEL,
    D_SAE,
    HOOK,
    build_model,
    build_sae,
    build_tokenizer,
)

from utils import features as F
from utils import interventions as I
from utils.interventions import checks, choosing, figures

CTX = 24


def build_model_with_final_ln_weights(tokenizer, seed: int = 0):
    """A random model whose final LayerNorm has weights far from 1 (some negative) and no biases,
    so anything that ignores ``ln_final.w`` picks the wrong tokens."""
    model = build_model(tokenizer, seed=seed)
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        model.ln_final.w.copy_(torch.randn(D_MODEL, generator=generator) * 2)
        model.ln_final.b.zero_()
        model.b_U.zero_()
    return model


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return build_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_model_with_final_ln_weights(tokenizer)


# `sae` and `sample` are tests/conftest.py's; `sample` is built on the `model` above.


@pytest.fixture(scope="module")
def contexts(sample):
    return I.sample_contexts(sample, 12, 4)


def firing_feature(sample) -> int:
    return int(sample.firing_counts.argmax())


# ---- input checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_scale_is_refused(model, bad):
    with pytest.raises(ValueError, match="finite"):
        I.steering_hooks(model, HOOK, I.random_unit_direction(D_MODEL, 0), bad)


def test_scale_must_be_a_number():
    with pytest.raises(TypeError, match="number"):
        I.check_scale("half")


def test_feature_out_of_range(sae):
    with pytest.raises(IndexError, match=f"0..{D_SAE - 1}"):
        I.unit_direction(sae, D_SAE)
    with pytest.raises(IndexError, match="out of range"):
        I.unit_direction(sae, -1)


def test_hook_the_model_lacks(model):
    with pytest.raises(KeyError, match="blocks.7.hook_resid_pre"):
        I.steering_hooks(model, "blocks.7.hook_resid_pre", I.random_unit_direction(D_MODEL, 0), 1.0)


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt(model, prompt):
    with pytest.raises(ValueError, match="empty"):
        I.generate_steered(model, HOOK, prompt, I.random_unit_direction(D_MODEL, 0), [0.0])


def test_direction_of_the_wrong_width(model):
    with pytest.raises(ValueError, match=r"\[d_in\] = \[48\]"):
        I.steering_hooks(model, HOOK, torch.ones(D_MODEL + 1), 1.0)


# ---- directions and logit effects ------------------------------------------------------------


def test_unit_direction_is_the_normalised_decoder_row(sae):
    d = I.unit_direction(sae, 3)
    assert d.shape == (D_MODEL,)
    assert math.isclose(d.norm().item(), 1.0, rel_tol=1e-5)
    assert torch.allclose(d * sae.W_dec[3].norm(), sae.W_dec[3].detach(), atol=1e-6)


def test_random_directions_are_seeded():
    assert torch.equal(I.random_unit_direction(D_MODEL, 1), I.random_unit_direction(D_MODEL, 1))
    assert not torch.equal(I.random_unit_direction(D_MODEL, 1), I.random_unit_direction(D_MODEL, 2))


def test_promoted_tokens_use_the_final_layernorm_weights(model, tokenizer):
    """Steered hard enough, the residual stream is the direction: the model's own top next tokens
    are then the direction's promoted tokens, which only holds if ln_final.w is accounted for."""
    direction = I.random_unit_direction(D_MODEL, 5)
    promoted = I.promoted_token_ids(model, direction, k=5)
    naive = (direction @ model.W_U.detach()).topk(5).indices
    assert set(naive.tolist()) != set(promoted.tolist())  # the weights matter for this model
    tokens = model.to_tokens("Hello world")
    logits = model.run_with_hooks(tokens, fwd_hooks=I.steering_hooks(model, HOOK, direction, 1e4))
    assert logits[0, -1].topk(5).indices.tolist() == promoted.tolist()


def test_logit_effect_concentration_ranks_a_spiky_feature_first(model, sae):
    spiky = build_sae()
    with torch.no_grad():  # feature 7 writes the direction whose direct effect is one token's
        target = torch.linalg.lstsq(
            (F.final_norm_direction(model, torch.eye(D_MODEL)) @ model.W_U).T,
            torch.nn.functional.one_hot(torch.tensor(11), model.cfg.d_vocab).float()[:, None],
        ).solution[:, 0]
        spiky.W_dec[7] = target / target.norm()
    scores = I.logit_effect_concentration(model, spiky, torch.arange(20), k=1)
    assert scores.shape == (20,)
    assert int(scores.argmax()) == 7


def test_pick_latents_respects_the_density_range(model, sae, sample):
    lo, hi = 0.01, 0.5
    table = I.pick_latents(model, sae, sample, n=3, min_density=lo, max_density=hi)
    assert len(table) == 3
    assert table["density"].between(lo, hi).all()
    assert table["concentration"].is_monotonic_decreasing
    in_range = ((sample.density >= lo) & (sample.density <= hi)).nonzero()[:, 0]
    best = I.logit_effect_concentration(model, sae, in_range).max().item()
    assert math.isclose(table["concentration"].iloc[0], best, rel_tol=1e-5)
    with pytest.raises(ValueError, match="Only"):
        I.pick_latents(model, sae, sample, n=D_SAE, min_density=lo, max_density=hi)


def concentration_by_hand(model, direction, k):
    """The rule's score computed from the model's weights directly: the direct logit effects
    through the final LayerNorm's centring and weights (this model has no other normalisation
    parameters), then (mean of the top k - mean) / std."""
    centred = direction - direction.mean()
    effects = (centred * model.ln_final.w.detach()) @ model.W_U.detach()
    return ((effects.topk(k).values.mean() - effects.mean()) / effects.std()).item()


def test_direction_concentration_by_hand(model):
    directions = torch.stack([I.random_unit_direction(D_MODEL, s) for s in range(5)])
    scores = I.direction_concentration(model, directions, k=4, chunk=2)
    for d, score in zip(directions, scores.tolist()):
        assert math.isclose(score, concentration_by_hand(model, d, 4), rel_tol=1e-4)
    # a direction's length does not change its score
    assert torch.allclose(I.direction_concentration(model, 3 * directions, k=4), scores)


def test_steering_controls(model, sae, sample):
    lo, hi, n = 0.01, 0.5, 3
    picked = I.pick_latents(model, sae, sample, n=2, min_density=lo, max_density=hi, k=4)
    controls = I.steering_controls(model, sae, sample, picked, lo, hi, k=4, n=n, seed=5)
    table = controls.table
    groups = [I.RANDOM, I.RANDOM_PICKED, I.MEDIAN_LATENTS, I.RUNNERS_UP]
    assert table["group"].tolist() == [g for g in groups for _ in range(n)]
    assert controls.directions.shape == (4 * n, D_MODEL)
    assert torch.allclose(controls.directions.norm(dim=-1), torch.ones(4 * n), atol=1e-5)
    for row, d in zip(table.itertuples(), controls.directions):
        assert math.isclose(row.concentration, concentration_by_hand(model, d, 4), rel_tol=1e-4)

    # the random draws: seeds 5, 6, ...; as many as match the picked latents' selection ratio
    in_band = ((sample.density >= lo) & (sample.density <= hi)).nonzero()[:, 0]
    assert controls.n_candidates == len(in_band)
    wanted = math.ceil(n * len(in_band) / 2)
    assert controls.n_draws == min(max(wanted, I.MIN_RANDOM_DRAWS), I.MAX_RANDOM_DRAWS)
    draws = [I.random_unit_direction(D_MODEL, 5 + i) for i in range(controls.n_draws)]
    for i in range(n):
        assert torch.equal(controls.directions[i], draws[i])
    by_hand = torch.tensor([concentration_by_hand(model, d, 4) for d in draws])
    best = set(by_hand.topk(n).indices.tolist())
    assert {int(name.split()[1]) for name in table["name"][n : 2 * n]} == best

    # the latents: in the band, never the picked ones; runners-up ranked right after them
    others = [int(f) for f in in_band if int(f) not in set(picked["latent"])]
    score = {f: concentration_by_hand(model, sae.W_dec[f].detach(), 4) for f in others}
    ranked = sorted(others, key=score.get, reverse=True)
    runners = [int(name.split()[1]) for name in table["name"][3 * n :]]
    assert runners == ranked[:n]
    median = torch.tensor(list(score.values())).median().item()
    near = sorted((f for f in others if f not in runners), key=lambda f: abs(score[f] - median))
    assert [int(name.split()[1]) for name in table["name"][2 * n : 3 * n]] == near[:n]
    # pick_latents' scores are reused, not recomputed: the same table without them
    picked_plain = pd.DataFrame(picked.to_dict())
    assert not picked_plain.attrs
    again = I.steering_controls(model, sae, sample, picked_plain, lo, hi, k=4, n=n, seed=5)
    pd.testing.assert_frame_equal(again.table, table)
    with pytest.raises(ValueError, match="controls need"):
        I.steering_controls(model, sae, sample, picked, lo, hi, n=len(in_band))


def test_sample_contexts(sample):
    tokens, counted = I.sample_contexts(sample, 12, 100)
    assert tokens.shape[1] == 12 and counted.shape == tokens.shape
    assert (sample.lengths >= 12).sum() == tokens.shape[0]
    f = firing_feature(sample)
    tokens, _ = I.sample_contexts(sample, 12, 100, latent=f)
    grid = sample.activation_grid(f)[:, :12]
    firing_texts = [
        t for t in range(sample.n_texts) if sample.lengths[t] >= 12 and grid[t].gt(0).any()
    ]
    assert torch.equal(tokens, sample.tokens[firing_texts, :12])
    with pytest.raises(ValueError, match="context_size"):
        I.sample_contexts(sample, CTX + 1, 3)


# ---- steering ------------------------------------------------------------------------------------


def test_scored_mask_by_hand():
    """A prediction is scored when its position is counted and so is the next token: worked out
    by hand for BOS, three real tokens and two of padding, and for a gap in the middle."""
    counted = torch.tensor(
        [[False, True, True, True, False, False], [True, True, False, True, True, False]]
    )
    expected = torch.tensor(
        [[False, True, True, False, False, False], [True, False, False, True, False, False]]
    )
    tokens = torch.zeros(counted.shape, dtype=torch.long)
    assert torch.equal(checks._scored_mask(tokens, counted), expected)


def test_steering_hook_adds_a_fraction_of_each_norm(model):
    direction = I.random_unit_direction(D_MODEL, 0)
    [(name, hook)] = I.steering_hooks(model, HOOK, direction, 0.5, start_position=1)
    assert name == HOOK
    acts = torch.randn(2, 5, D_MODEL) * torch.arange(1, 6)[:, None]
    out = hook(acts.clone(), None)
    assert torch.equal(out[:, 0], acts[:, 0])  # the first position is left alone
    expected = acts[:, 1:] + 0.5 * acts[:, 1:].norm(dim=-1, keepdim=True) * direction
    assert torch.allclose(out[:, 1:], expected, atol=1e-5)


def test_generation_at_scale_zero_is_the_models(model):
    tokens = model.to_tokens("Hello world")
    plain = model.generate(
        tokens,
        max_new_tokens=5,
        do_sample=False,
        use_past_kv_cache=False,
        verbose=False,
        stop_at_eos=False,
    )
    table = I.generate_steered(
        model,
        HOOK,
        "Hello world",
        I.random_unit_direction(D_MODEL, 0),
        [0.0, 1e3],
        max_new_tokens=5,
    )
    assert list(table["scale"]) == [0.0, 1e3]
    assert table["continuation"].iloc[0] == model.to_string(plain[0, tokens.shape[1] :])
    assert table["continuation"].iloc[0] != table["continuation"].iloc[1]


def test_steering_curve(model, contexts):
    tokens, counted = contexts
    direction = I.random_unit_direction(D_MODEL, 3)
    own = I.promoted_token_ids(model, direction, 5)
    frame = I.steering_curve(
        model,
        HOOK,
        tokens,
        counted,
        direction,
        [0.0, 1.0, 100.0],
        {"own": own, "other": torch.tensor([0, 1])},
        batch_size=3,
    )
    assert len(frame) == 6 and set(frame["scored"]) == {"own", "other"}
    at_zero = frame[frame["scale"] == 0]
    assert (at_zero["logprob_gain"] == 0).all() and (at_zero["loss_increase"] == 0).all()
    # scale 0 scores the model itself: compare with a plain forward pass
    logp = model(tokens).log_softmax(-1)
    scored = counted[:, :-1] & counted[:, 1:]
    expected = logp[:, :-1][scored][:, own].mean().item()
    assert math.isclose(at_zero.set_index("scored").loc["own", "logprob"], expected, rel_tol=1e-4)
    # ... and the loss with torch's own cross-entropy over the same positions
    logits = model(tokens)[:, :-1][scored]  # [n_scored, d_vocab]
    loss = torch.nn.functional.cross_entropy(logits, tokens[:, 1:][scored]).item()
    assert math.isclose(at_zero["loss"].iloc[0], loss, rel_tol=1e-4)
    steered = frame[frame["scale"] == 100.0]
    assert list(steered["loss_increase"]) == pytest.approx(list(steered["loss"] - loss), rel=1e-4)
    # pushed 100 times its norm, the residual stream is the direction: its tokens win
    big = frame[(frame["scale"] == 100.0) & (frame["scored"] == "own")]
    assert big["logprob_gain"].iloc[0] > 1.0
    with pytest.raises(ValueError, match="score_tokens"):
        I.steering_curve(model, HOOK, tokens, counted, direction, [0.0], {})


def test_steering_curve_starts_at_the_hooks_layer(model, contexts):
    """Steering at blocks.1.hook_resid_pre: block 0 runs once per batch (the push cannot change
    it), not once per batch and scale, and the numbers equal passes from the tokens. Some
    positions are left out of `counted` so the scored mask is not everything."""
    tokens, counted = contexts
    counted = counted.clone()
    counted[0, 5:] = False
    direction = I.random_unit_direction(D_MODEL, 4)
    scored = {"own": I.promoted_token_ids(model, direction, 5), "other": torch.tensor([2, 7])}
    calls = []
    handle = model.blocks[0].register_forward_hook(lambda *args: calls.append(1))
    try:
        args = (model, HOOK, tokens, counted, direction, [0.0, 0.5, 3.0], scored)
        fast = I.steering_curve(*args, batch_size=3)  # 4 contexts: 2 batches
        assert len(calls) == 2
        calls.clear()
        full = I.steering_curve(*args, batch_size=3, from_hook=False)
        assert len(calls) == 2 * 3
    finally:
        handle.remove()
    assert fast["scale"].tolist() == full["scale"].tolist()
    assert fast["scored"].tolist() == full["scored"].tolist()
    for column in ("logprob", "loss", "logprob_gain", "loss_increase"):
        assert fast[column].tolist() == pytest.approx(full[column].tolist(), abs=1e-5), column
    assert fast["logprob_gain"].abs().max() > 0.01  # the push changed something to compare


# ---- ablation ------------------------------------------------------------------------------------


def test_ablation_subtracts_only_the_features_contribution(model, sae, sample):
    """With the error term kept, ablating feature f is x -> x - a_f W_dec[f]: compare with a plain
    hook that does exactly that (no SAE attached)."""
    f = firing_feature(sample)
    tokens, counted = I.sample_contexts(sample, 12, 4, latent=f)
    effect = I.ablate_latent(model, sae, tokens, counted, f, batch_size=3)

    def subtract(acts, hook):
        a = sae.encode(acts)[..., f : f + 1]
        return acts - a * sae.W_dec[f]

    x = F.hook_activations(model, tokens, HOOK)
    fired = sae.encode(x)[..., f] > 0
    scored = torch.zeros_like(counted)
    scored[:, :-1] = counted[:, :-1] & counted[:, 1:]
    mask = fired & scored
    assert effect.n_positions == int(mask.sum())
    clean = model(tokens).log_softmax(-1)
    ablated = model.run_with_hooks(tokens, fwd_hooks=[(HOOK, subtract)]).log_softmax(-1)
    next_ids = tokens[:, 1:][mask[:, :-1]][:, None]
    assert math.isclose(
        effect.loss_clean, -clean[mask].gather(1, next_ids).mean().item(), rel_tol=1e-4
    )
    assert math.isclose(
        effect.loss_ablated, -ablated[mask].gather(1, next_ids).mean().item(), rel_tol=1e-4
    )
    ce_clean = -clean[mask].gather(1, next_ids).mean().item()
    ce_ablated = -ablated[mask].gather(1, next_ids).mean().item()
    assert math.isclose(effect.loss_increase, ce_ablated - ce_clean, rel_tol=1e-3, abs_tol=1e-6)
    change = (ablated[mask] - clean[mask]).mean(0)
    assert torch.allclose(effect.logprob_change, change, atol=1e-4)
    table = effect.tokens_losing_most([str(i) for i in range(model.cfg.d_vocab)], k=4)
    assert table["logprob_change"].is_monotonic_increasing
    assert table["token_id"].tolist() == change.topk(4, largest=False).indices.tolist()


def test_ablation_without_the_direct_path(model, tokenizer, sae, sample):
    """direct_path=False: a plain-hook computation (subtract a * W_dec[f] at the hook, add the same
    vector back to the last residual stream) gives the same change; and in a model whose block
    after the hook writes nothing, nothing but the direct path is left, so the change is zero."""
    f = firing_feature(sample)
    tokens, counted = I.sample_contexts(sample, 12, 4, latent=f)
    effect = I.ablate_latent(model, sae, tokens, counted, f, batch_size=3, direct_path=False)
    full = I.ablate_latent(model, sae, tokens, counted, f, batch_size=3)
    contribution = sae.encode(F.hook_activations(model, tokens, HOOK))[..., f, None] * sae.W_dec[f]
    hooks = [
        (HOOK, lambda acts, hook: acts - contribution),
        ("blocks.1.hook_resid_post", lambda resid, hook: resid + contribution),
    ]
    x = F.hook_activations(model, tokens, HOOK)
    scored = counted[:, :-1] & counted[:, 1:]
    mask = (sae.encode(x)[..., f] > 0) & torch.cat([scored, torch.zeros_like(counted[:, :1])], 1)
    clean = model(tokens).log_softmax(-1)[mask]
    ablated = model.run_with_hooks(tokens, fwd_hooks=hooks).log_softmax(-1)[mask]
    assert torch.allclose(effect.logprob_change, (ablated - clean).mean(0), atol=1e-4)
    assert effect.n_positions == full.n_positions
    assert not torch.allclose(effect.logprob_change, full.logprob_change, atol=1e-3)

    silent_block = build_model_with_final_ln_weights(tokenizer)
    with torch.no_grad():
        for name in ("W_O", "b_O"):
            getattr(silent_block.blocks[1].attn, name).zero_()
        for name in ("W_out", "b_out"):
            getattr(silent_block.blocks[1].mlp, name).zero_()
    only_direct = I.ablate_latent(silent_block, sae, tokens, counted, f, direct_path=False)
    assert only_direct.logprob_change.abs().max() < 1e-5
    assert math.isclose(only_direct.loss_increase, 0.0, abs_tol=1e-6)
    assert I.ablate_latent(silent_block, sae, tokens, counted, f).logprob_change.abs().max() > 1e-3


def test_loss_increase_is_ablated_minus_clean():
    effect = I.AblationEffect(0, 1, loss_clean=2.0, loss_ablated=2.5, logprob_change=torch.zeros(3))
    assert effect.loss_increase == 0.5


def test_ablating_a_silent_feature_is_an_error(model, sae, sample, contexts):
    silent = int((sample.firing_counts == 0).nonzero()[0, 0])
    tokens, counted = contexts
    x = F.hook_activations(model, tokens, HOOK)
    assert not (sae.encode(x)[..., silent] > 0).any()
    with pytest.raises(ValueError, match="never fires"):
        I.ablate_latent(model, sae, tokens, counted, silent)
    with pytest.raises(IndexError):
        I.ablate_latent(model, sae, tokens, counted, D_SAE + 3)


# ---- attribution ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def attribution(model, sae, contexts):
    tokens, _ = contexts
    return I.next_token_attribution(model, sae, tokens, [10, 6, 10, 3][: len(tokens)])


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


def test_attribution_regime_and_signed_log():
    frame = pd.DataFrame(
        {"share_of_norm": [0.1, 0.5, 0.1, 0.5], "probability": [0.5, 0.5, 0.9, 0.9]}
    )
    assert I.attribution_regime(frame).tolist() == [
        "neither",
        "share of norm > 0.3",
        "p > 0.8",
        "both",
    ]
    # sign(v) log10(1 + |v| / t), by hand for t = 0.01
    values = I.signed_log(pd.Series([0.0, 0.09, -0.99, 9.99]), 0.01)
    assert values.tolist() == pytest.approx([0.0, 1.0, -2.0, 3.0])
    ticks, labels = figures._signed_log_ticks(2.0, 0.1)
    assert labels == ["-10", "-1", "-0.1", "0", "0.1", "1", "10"]
    assert ticks[3] == 0 and ticks[4] == pytest.approx(math.log10(2))


def test_figures(attribution, model, sae):
    frame = I.compare_attribution_with_ablation(model, sae, attribution, n_top=2, n_random=1)
    fig = I.attribution_scatter(frame, "t")
    assert sum(len(trace.x) for trace in fig.data[1:]) == len(frame)
    regimes = set(I.attribution_regime(frame))
    assert [t.name.split(" (")[0] for t in fig.data[1:]] == [
        r for r in ["neither", "share of norm > 0.3", "p > 0.8", "both"] if r in regimes
    ]
    curves = pd.DataFrame(
        {
            "group": ["picked"] * 4 + ["control"] * 4,
            "direction": ["a", "a", "b", "b", "c", "c", "d", "d"],
            "scale": [0, 1] * 4,
            "logprob_gain": [0, 3, 0, 2, 0, 1, 0, 0.5],
        }
    )
    fig = I.steering_spread_figure(curves, "picked", "t")
    assert [t.name for t in fig.data[:2]] == ["a", "b"]
    band, mean = fig.data[2:]
    assert list(band.y) == [0, 1, 0.5, 0]  # highest along c, then lowest back
    assert list(mean.y) == [0, 0.75]
    points = curves.assign(concentration=1.0)
    assert [t.name for t in I.steering_gain_scatter(points, "t").data] == ["picked", "control"]


# ---- the presets' sizes for tutorial 3 ----------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny", "gpt2-small"])
def test_preset_intervention_sizes(name):
    """What tutorial 3's cells rely on: scale 0 (the baseline) and 0.5 (the scale its table reads)
    among the steering scales, contexts no longer than the sample's, a sensible density range."""
    from utils.presets import InterventionSizes, get_preset

    preset = get_preset(name)
    sizes = preset.interventions
    assert isinstance(sizes, InterventionSizes)
    assert 0.0 in sizes.steering_scales and 0.5 in sizes.steering_scales
    assert list(sizes.steering_scales) == sorted(sizes.steering_scales)
    assert 0 < sizes.min_density < sizes.max_density < 1
    assert 2 <= sizes.context_size <= preset.sample_context
    assert min(sizes.n_latents, sizes.top_tokens, sizes.random_directions, sizes.batch_size) >= 1
    assert sizes.attribution_top >= 1 and sizes.attribution_random >= 1


# ---- edges the review's mutants found untested -----------------------------------------------


def test_density_band_edges(sample):
    # both ends are inclusive: a zero lower end and an empty-width band are valid ranges
    density = sample.density
    assert torch.equal(choosing._band(sample, 0.0, 1.0), torch.arange(len(density)))
    some = float(density[density > 0][0])
    assert torch.equal(choosing._band(sample, some, some), (density == some).nonzero()[:, 0])
    with pytest.raises(ValueError, match="got 0.5 and 0.1"):
        choosing._band(sample, 0.5, 0.1)
    with pytest.raises(ValueError, match="got -0.1 and 0.1"):
        choosing._band(sample, -0.1, 0.1)


def test_steering_controls_defaults_sizes_and_the_cache(model, sae, sample, monkeypatch):
    lo, hi = 0.01, 0.5
    picked = I.pick_latents(model, sae, sample, n=2, min_density=lo, max_density=hi)
    # one direction per control is allowed; the defaults are k = 10 and seed 0
    one = I.steering_controls(model, sae, sample, picked, lo, hi, n=1)
    explicit = I.steering_controls(model, sae, sample, picked, lo, hi, k=10, n=1, seed=0)
    pd.testing.assert_frame_equal(one.table, explicit.table)
    assert torch.equal(one.directions[0], I.random_unit_direction(D_MODEL, 0))
    # a small band draws the floor of MIN_RANDOM_DRAWS, not n * band / picked
    in_band = choosing._band(sample, lo, hi)
    assert math.ceil(1 * len(in_band) / 2) < I.MIN_RANDOM_DRAWS
    assert one.n_draws == I.MIN_RANDOM_DRAWS
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        I.steering_controls(model, sae, sample, picked, lo, hi, n=0)
    # exactly 2n latents besides the picked ones is enough, 2n - 2 is not
    n_picked = 2 if (len(in_band) - 2) % 2 == 0 else 3
    picked_even = I.pick_latents(model, sae, sample, n=n_picked, min_density=lo, max_density=hi)
    others = len(in_band) - n_picked
    assert others % 2 == 0 and others >= 4
    I.steering_controls(model, sae, sample, picked_even, lo, hi, n=others // 2)
    with pytest.raises(ValueError, match=f"holds {others} latents besides the picked ones"):
        I.steering_controls(model, sae, sample, picked_even, lo, hi, n=others // 2 + 1)
    # pick_latents' scores of the same band are reused (no latent scored again)...
    scored = []
    real = I.logit_effect_concentration
    monkeypatch.setattr(
        choosing, "logit_effect_concentration", lambda *a, **kw: scored.append(1) or real(*a, **kw)
    )
    I.steering_controls(model, sae, sample, picked, lo, hi, n=1)
    assert scored == []
    # ...and only those: another k or another band is scored afresh
    I.steering_controls(model, sae, sample, picked, lo, hi, k=5, n=1)
    assert scored == [1]
    I.steering_controls(model, sae, sample, picked, lo, hi * 0.99, n=1)
    assert scored == [1, 1]


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


def test_tokens_losing_most_by_hand():
    change = torch.tensor([0.5, -2.0, 0.0, -1.0, 3.0, -0.5, 1.0, -3.0, 0.2, -0.1, 0.4, 0.3])
    effect = I.AblationEffect(
        latent=0, n_positions=1, loss_clean=1.0, loss_ablated=1.0, logprob_change=change
    )
    vocab = [f"t{i}" for i in range(len(change))]
    table = effect.tokens_losing_most(vocab)
    assert len(table) == 10 and table.index.name == "rank"
    assert table.index.tolist() == list(range(1, 11))
    top3 = effect.tokens_losing_most(vocab, k=3)
    assert top3["token"].tolist() == ["t7", "t1", "t3"]
    assert top3["logprob_change"].tolist() == [-3.0, -2.0, -1.0]


def test_transparent_colour_by_hand():
    assert figures._transparent("#1f77b4", 0.15) == "rgba(31,119,180,0.15)"
    assert figures._transparent("#ff0a00", 1) == "rgba(255,10,0,1)"


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


def test_pick_latents_and_promoted_tokens_edges(model, sae, sample):
    lo, hi = 0.01, 0.5
    in_band = choosing._band(sample, lo, hi)
    assert len(I.pick_latents(model, sae, sample, n=1, min_density=lo, max_density=hi)) == 1
    every = I.pick_latents(model, sae, sample, n=len(in_band), min_density=lo, max_density=hi)
    assert sorted(every["latent"]) == in_band.tolist()
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        I.pick_latents(model, sae, sample, n=0, min_density=lo, max_density=hi)
    with pytest.raises(ValueError, match=r"got 0.1 and 1.5"):
        choosing._band(sample, 0.1, 1.5)
    direction = I.unit_direction(sae, int(in_band[0]))
    assert len(I.promoted_token_ids(model, direction)) == 10
    assert len(I.promoted_token_ids(model, direction, k=1)) == 1
    assert len(I.promoted_token_ids(model, direction, k=model.cfg.d_vocab)) == model.cfg.d_vocab
    with pytest.raises(ValueError, match=f"between 1 and d_vocab={model.cfg.d_vocab}, got 0"):
        I.promoted_token_ids(model, direction, k=0)


def test_steering_figures_carry_their_data():
    curves = pd.DataFrame(
        {
            "group": ["picked"] * 4 + ["control"] * 6,
            "direction": ["b", "b", "a", "a", "c", "c", "d", "d", "e", "e"],
            "scale": [0, 1] * 5,
            "logprob_gain": [0, 3, 0, 2, 0, 1, 0, 0.5, 0, 0.7],
        }
    )
    fig = I.steering_spread_figure(curves, "picked", "the title")
    assert fig.layout.title.text == "the title"
    assert "steering scale c" in fig.layout.xaxis.title.text
    assert "log-prob" in fig.layout.yaxis.title.text
    first, second, band, mean = fig.data
    assert (first.name, list(first.x), list(first.y)) == ("b", [0, 1], [0, 3])  # data order
    assert (second.name, list(second.y)) == ("a", [0, 2])
    assert "b" in first.hovertemplate
    assert list(band.x) == [0, 1, 1, 0] and list(band.y) == [0, 1, 0.5, 0]
    assert band.fill == "toself"
    assert list(mean.x) == [0, 1] and list(mean.y) == pytest.approx([0, 2.2 / 3])
    assert mean.name == "control (mean, band: min-max of 3)"
    points = pd.DataFrame(
        {
            "group": ["z", "z", "a"],
            "direction": ["latent 1", "latent 2", "random 0"],
            "concentration": [4.0, 3.5, 2.0],
            "logprob_gain": [1.5, 1.0, 0.2],
        }
    )
    scatter = I.steering_gain_scatter(points, "t").data
    assert [trace.name for trace in scatter] == ["z", "a"]
    assert list(scatter[0].x) == [4.0, 3.5] and list(scatter[0].y) == [1.5, 1.0]
    assert [row[0] for row in scatter[1].customdata] == ["random 0"]


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


def test_sample_contexts_edges(sample):
    longest = int(sample.lengths.max())
    assert longest <= sample.context_size
    tokens, counted = I.sample_contexts(sample, longest, 1)  # a text exactly that long counts
    assert tokens.shape == counted.shape == (1, longest)
    assert I.sample_contexts(sample, 2, 3)[0].shape == (3, 2)
    with pytest.raises(ValueError, match=r"context_size must be in 2\.\.\d+ .* got 1"):
        I.sample_contexts(sample, 1, 3)
    with pytest.raises(ValueError, match="n must be at least 1, got 0"):
        I.sample_contexts(sample, 4, 0)
    silent = int((sample.firing_counts == 0).nonzero()[0, 0])
    with pytest.raises(ValueError, match=f"has 4 tokens where latent {silent} fires"):
        I.sample_contexts(sample, 4, 2, latent=silent)


def test_steering_hooks_defaults_bounds_and_dtype(model):
    direction = I.random_unit_direction(D_MODEL, 3)
    ((name, hook),) = I.steering_hooks(model, HOOK, direction, 0.5)
    acts = torch.randn(2, 5, D_MODEL, dtype=torch.bfloat16)
    out = hook(acts, None)
    assert out.dtype == torch.bfloat16  # the direction is cast to the activations' dtype
    assert not torch.equal(out[:, 0], acts[:, 0])  # the default starts at position 0
    with pytest.raises(ValueError, match="start_position must be >= 0, got -1"):
        I.steering_hooks(model, HOOK, direction, 0.5, start_position=-1)
    for bad in (torch.zeros(D_MODEL), torch.full((D_MODEL,), float("nan"))):
        with pytest.raises(ValueError, match="finite, non-zero"):
            I.steering_hooks(model, HOOK, bad, 0.5)


def test_attribution_regime_boundaries_are_strict():
    frame = pd.DataFrame({"share_of_norm": [0.3, 0.31], "probability": [0.8, 0.81]})
    assert I.attribution_regime(frame).tolist() == ["neither", "both"]


def test_attribution_scatter_by_hand():
    frame = pd.DataFrame(
        {
            "latent": [1, 2, 3, 4],
            "position": [0, 1, 2, 3],
            "actual": [0.0, -0.02, 0.5, 2.0],
            "predicted": [0.001, -0.01, 0.4, 1.0],
            "probability": [0.5, 0.5, 0.9, 0.5],
            "share_of_norm": [0.1, 0.1, 0.1, 0.5],
        }
    )
    fig = I.attribution_scatter(frame, "the title", confident=0.8)
    # linear part: 10^floor(log10(5th percentile of the non-zero |values|)) = 0.001
    linear_below = 10.0 ** math.floor(
        math.log10(pd.Series([0.02, 0.5, 2, 0.001, 0.01, 0.4, 1]).quantile(0.05))
    )
    assert linear_below == 0.001
    edge = float(I.signed_log(2.0, linear_below))
    line, *points = fig.data
    assert line.name == "y = x" and list(line.x) == list(line.y) == [-edge, edge]
    names = {t.name: t for t in points}
    assert set(names) == {"neither (2)", "share of norm > 0.3 (1)", "p > 0.8 (1)"}
    neither = names["neither (2)"]
    assert list(neither.x) == pytest.approx(list(I.signed_log(pd.Series([0.0, -0.02]), 0.001)))
    assert list(neither.y) == pytest.approx(list(I.signed_log(pd.Series([0.001, -0.01]), 0.001)))
    assert [row[0] for row in neither.customdata] == [1, 2]
    ticks, labels = figures._signed_log_ticks(2.0, 0.001)
    assert list(fig.layout.xaxis.tickvals) == ticks and list(fig.layout.yaxis.ticktext) == labels
    assert fig.layout.xaxis.zeroline is True
    assert fig.layout.title.text == "the title"
    assert "actual change" in fig.layout.xaxis.title.text
    assert "predicted" in fig.layout.yaxis.title.text
    # no pair in a regime: no empty trace, and the later regimes still drawn
    only_both = frame.assign(probability=0.9, share_of_norm=0.5)
    assert [t.name for t in I.attribution_scatter(only_both, "t").data[1:]] == ["both (4)"]
    # all effects zero: the linear part is 1 (ticks at -1, 0, 1)
    zeros = frame.assign(actual=0.0, predicted=0.0)
    assert list(I.attribution_scatter(zeros, "t").layout.xaxis.ticktext) == ["-1", "0", "1"]


def test_attribution_metric_by_hand_and_target_zero(model, sae, contexts):
    # the metric is log p(the next real token) at the target, from a plain spliced forward pass
    tokens, _ = contexts
    result = I.next_token_attribution(model, sae, tokens[:2], [0, 5])
    with model.saes(saes=[sae], use_error_term=True):
        logp = model(tokens[:2]).float().log_softmax(-1)
    by_hand = [logp[0, 0, tokens[0, 1]].item(), logp[1, 5, tokens[1, 6]].item()]
    assert result.metric.tolist() == pytest.approx(by_hand, rel=1e-4, abs=1e-5)


def test_steering_curves_by_hand_and_in_shared_passes(model, contexts):
    """Three directions, each with its own token sets, steered in shared passes: every number
    equals one computed by hand from plain hooked passes from the tokens (steering_hooks), the
    unsteered pass runs once per batch of contexts, not once per direction, and the steered
    (direction, scale) pairs share passes (block 1, after the hook, counts the passes)."""
    tokens, counted = contexts
    counted = counted.clone()
    counted[1, 7:] = False
    directions = [I.random_unit_direction(D_MODEL, s) for s in (5, 6, 7)]
    sets = [
        {"own": I.promoted_token_ids(model, d, 4), "other": torch.tensor([3, 9])}
        for d in directions
    ]
    sets[2] = {"own": I.promoted_token_ids(model, directions[2], 2)}
    scales = [0.0, 0.5, -2.0]
    calls = []
    handle = model.blocks[1].register_forward_hook(lambda *args: calls.append(1))
    try:
        # 4 contexts, 12 rows a pass: 3 (direction, scale) pairs per pass, so one pass mixes
        # two directions; 6 pairs -> 2 passes, plus one unsteered pass
        frame = I.steering_curves(
            model, HOOK, tokens, counted, directions, scales, sets, batch_size=12
        )
        assert len(calls) == 1 + 2
    finally:
        handle.remove()
    scored = counted[:, :-1] & counted[:, 1:]
    for i, (direction, named) in enumerate(zip(directions, sets)):
        mine = frame[frame["direction"] == i]
        assert sorted(set(mine["scored"])) == sorted(named)
        for c in scales:
            with model.hooks(fwd_hooks=I.steering_hooks(model, HOOK, direction, c, 1)):
                logp = model(tokens).log_softmax(-1)[:, :-1][scored]  # [n_scored, d_vocab]
            loss = -logp.gather(1, tokens[:, 1:][scored][:, None]).mean().item()
            for name, ids in named.items():
                row = mine[(mine["scale"] == c) & (mine["scored"] == name)].iloc[0]
                assert row["logprob"] == pytest.approx(logp[:, ids].mean().item(), abs=1e-5)
                assert row["loss"] == pytest.approx(loss, abs=1e-5)
    gains = frame[frame["scale"] != 0]["logprob_gain"]
    assert gains.abs().min() > 1e-3  # every push moved something, so the comparison means it
    # one direction at a time (steering_curve) gives the same rows
    one = I.steering_curve(model, HOOK, tokens, counted, directions[1], scales, sets[1])
    assert one["logprob"].tolist() == pytest.approx(
        frame[frame["direction"] == 1]["logprob"].tolist(), abs=1e-5
    )
    with pytest.raises(ValueError, match="one dict of token sets per direction"):
        I.steering_curves(model, HOOK, tokens, counted, directions, scales, sets[:2])


# ---- reading the measurements (statistics) ----------------------------------------------------


def test_fit_line_by_hand():
    # the normal equations worked out by hand for x = 0, 1, 2, 3 (mean 1.5) and y (mean 4)
    x = [0.0, 1.0, 2.0, 3.0]
    y = [2.0, 2.0, 6.0, 6.0]
    line = I.fit_line(x, y)
    # slope = sum (x - 1.5)(y - 4) / sum (x - 1.5)^2 = 8 / 5
    assert line.slope == pytest.approx(1.6)
    assert line.intercept == pytest.approx(4 - 1.6 * 1.5)
    residuals = [yi - (1.6 * xi + 1.6) for xi, yi in zip(x, y)]  # 0.4, -1.2, 1.2, -0.4
    assert line.residual_std == pytest.approx(math.sqrt(sum(r * r for r in residuals) / 2))
    assert line(10.0) == pytest.approx(17.6) and line.n == 4
    with pytest.raises(ValueError, match="at least 3 points"):
        I.fit_line([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="every x is the same"):
        I.fit_line([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])


def test_mean_difference_against_scipy_and_by_hand():
    from scipy import stats

    a, b = [1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 1.0]
    gap, low, high, p = I.mean_difference(a, b)
    assert gap == pytest.approx(2.5 - 0.5)
    # Welch's test as scipy computes it, independently of the code under test
    assert p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    # by hand: variances of the means 1.6667 / 4 and 0.25 / 3; Welch-Satterthwaite dof
    va, vb = (5 / 3) / 4, 0.25 / 3
    dof = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    assert (low, high) == pytest.approx((2.0 - half, 2.0 + half))
    assert I.mean_difference(a, b, level=0.5)[2] < high  # a lower level, a narrower interval
    with pytest.raises(ValueError, match="at least 2 values"):
        I.mean_difference([1.0], [1.0, 2.0])


def test_ratio_by_regime_by_hand():
    # two regimes; "b" has one pair that alone sets its least-squares slope
    frame = pd.DataFrame(
        {
            "context": [0, 0, 1, 1, 2, 2, 2],
            "predicted": [1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 10.0],
            "actual": [1.0, 2.0, 1.0, 2.0, 2.0, 2.0, 100.0],
        }
    )
    regimes = pd.Series(["a", "a", "a", "a", "b", "b", "b"])
    table = I.ratio_by_regime(frame, regimes, n_boot=200)
    assert table.loc["a", "pairs"] == 4 and table.loc["a", "contexts"] == 2
    assert table.loc["a", "median ratio"] == 1.0 and table.loc["a", "slope"] == pytest.approx(1.0)
    assert table.loc["a", "low"] == table.loc["a", "high"] == 1.0  # every ratio is 1
    # b: ratios 2, 2, 10 -> median 2; slope (2 + 2 + 1000) / (1 + 1 + 100); without the largest
    # predicted pair, (2 + 2) / 2
    assert table.loc["b", "median ratio"] == 2.0
    assert table.loc["b", "slope"] == pytest.approx(1004 / 102)
    assert table.loc["b", "slope without largest"] == pytest.approx(2.0)
    # one context only: resampling contexts gives that context's median every time
    assert table.loc["b", "low"] == table.loc["b", "high"] == 2.0
    with pytest.raises(ValueError, match="regime labels"):
        I.ratio_by_regime(frame, regimes[:3])
    # a regime whose pairs are all predicted at 0 has no ratio: NaNs, not an error
    zero = frame.assign(predicted=[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 10.0])
    empty = I.ratio_by_regime(zero, regimes, n_boot=10).loc["a"]
    assert empty["pairs"] == 0 and empty[["median ratio", "low", "slope"]].isna().all()


def test_agreement_by_context_by_hand():
    frame = pd.DataFrame(
        {
            "context": [0, 0, 0, 0, 1, 1, 1, 1],
            "probability": [0.5] * 4 + [0.9] * 4,
            "chosen": ["top", "top", "top", "random"] * 2,
            "predicted": [3.0, 2.0, 1.0, 0.0, 3.0, 2.0, 1.0, 0.0],
            # context 0 ranks every pair right; context 1 reverses its top three
            "actual": [3.0, 2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 0.0],
        }
    )
    table = I.agreement_by_context(frame)
    assert table.loc[0, "spearman"] == pytest.approx(1.0)
    assert table.loc[0, "spearman, top pairs"] == pytest.approx(1.0)
    assert table.loc[1, "spearman, top pairs"] == pytest.approx(-1.0)
    # over all four pairs of context 1, ranks 4,3,2,1 vs 2,3,4,1: rho = 1 - 6*(4+0+4+0)/(4*15)
    assert table.loc[1, "spearman"] == pytest.approx(1 - 6 * 8 / 60)
    assert table.loc[1, "probability"] == 0.9


def test_gain_scatter_draws_the_line_and_marks_a_group():
    table = pd.DataFrame(
        {
            "group": ["picked", "band", "band", "band"],
            "direction": ["latent 1", "latent 2", "latent 3", "latent 4"],
            "concentration": [5.0, 1.0, 2.0, 3.0],
            "logprob_gain": [4.0, 1.0, 2.0, 3.0],
        }
    )
    line = I.fit_line([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    fig = I.steering_gain_scatter(table, "t", line=line, line_name="trend", marked="picked")
    traces = {trace.name: trace for trace in fig.data}
    assert list(traces["trend"].x) == [1.0, 5.0]
    assert list(traces["trend"].y) == pytest.approx([1.0, 5.0])
    assert traces["picked"].marker.symbol == "diamond"
    assert traces["band"].marker.symbol == "circle"
    assert "trend" not in {t.name for t in I.steering_gain_scatter(table, "t").data}
