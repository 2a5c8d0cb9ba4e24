"""Unit tests for utils/interventions/ablation.py: ablating one latent, with and without its
direct path to the logits, against plain hooks that do the same by hand.

Random models of unusual sizes (d_model 48, d_sae 200), one with a final LayerNorm whose weights
are not all ones (tests/intervention_helpers.py)."""

from __future__ import annotations

import math

import pytest
import torch
from intervention_fixtures import contexts, model, tokenizer  # noqa: F401 (fixtures)
from intervention_helpers import build_model_with_final_ln_weights, firing_feature
from random_models import D_SAE, HOOK, build_sae

from utils import features as F
from utils import interventions as I


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


# ---- edges the mutants of ablate_latent found untested -------------------------------------------


def ablation_by_hand(model, sae, tokens, counted, f):
    """(n_positions, loss_clean, loss_ablated, logprob_change) of removing latent ``f``: a plain
    hook subtracts ``a * W_dec[f]`` at the SAE's hook (no SAE attached); scored are the positions
    where ``f`` fires that are counted and followed by a counted token."""

    def subtract(acts, hook):
        return acts - sae.encode(acts)[..., f : f + 1] * sae.W_dec[f]

    x = F.hook_activations(model, tokens, HOOK)
    scored = torch.zeros_like(counted)
    scored[:, :-1] = counted[:, :-1] & counted[:, 1:]
    mask = (sae.encode(x)[..., f] > 0) & scored
    with torch.no_grad():
        clean = model(tokens).log_softmax(-1)[mask]
        ablated = model.run_with_hooks(tokens, fwd_hooks=[(HOOK, subtract)]).log_softmax(-1)[mask]
    next_ids = tokens[:, 1:][mask[:, :-1]][:, None]
    loss_clean = -clean.gather(1, next_ids).mean().item()
    loss_ablated = -ablated.gather(1, next_ids).mean().item()
    return int(mask.sum()), loss_clean, loss_ablated, (ablated - clean).mean(0)


def assert_matches_by_hand(effect, model, sae, tokens, counted, f):
    n, loss_clean, loss_ablated, change = ablation_by_hand(model, sae, tokens, counted, f)
    assert effect.latent == f
    assert effect.n_positions == n
    assert math.isclose(effect.loss_clean, loss_clean, rel_tol=1e-4)
    assert math.isclose(effect.loss_ablated, loss_ablated, rel_tol=1e-4)
    assert torch.allclose(effect.logprob_change, change, atol=1e-4)


def test_ablation_default_batches_cover_every_context(model, sae, sample):
    """More contexts than tokens per context and than the default batch of 16: every context
    counts, 16 at a time (two clean and two ablated passes for 17 contexts)."""
    f = firing_feature(sample)
    tokens, counted = I.sample_contexts(sample, 10, 4, latent=f)
    reps = -(-17 // len(tokens))
    tokens, counted = tokens.repeat(reps, 1)[:17], counted.repeat(reps, 1)[:17]
    assert tokens.shape[0] > tokens.shape[1]
    calls = []
    handle = model.blocks[0].register_forward_hook(lambda *args: calls.append(1))
    try:
        effect = I.ablate_latent(model, sae, tokens, counted, f)
    finally:
        handle.remove()
    assert len(calls) == 4
    assert_matches_by_hand(effect, model, sae, tokens, counted, f)


def test_ablation_skips_batches_where_the_latent_does_not_fire(model, sae, sample):
    """A batch with no scored firing position is skipped and the later ones still count; only
    counted positions followed by a counted token are scored."""
    f = firing_feature(sample)
    tokens, counted = I.sample_contexts(sample, 10, 3, latent=f)
    counted = counted.clone()
    counted[0] = False  # nothing scored in the first context
    counted[1, 6:] = False  # padding-like tail in the second
    effect = I.ablate_latent(model, sae, tokens, counted, f, batch_size=1)
    assert_matches_by_hand(effect, model, sae, tokens, counted, f)


def test_ablation_averages_in_float64(model, sae, sample):
    """The changes are summed in float64: the same context three times, one per batch, gives
    exactly the single context's mean change."""
    f = firing_feature(sample)
    tokens, counted = I.sample_contexts(sample, 10, 1, latent=f)
    single = I.ablate_latent(model, sae, tokens, counted, f)
    triple = I.ablate_latent(model, sae, tokens.repeat(3, 1), counted.repeat(3, 1), f, batch_size=1)
    assert triple.n_positions == 3 * single.n_positions
    assert torch.equal(triple.logprob_change, single.logprob_change)


def test_direct_path_false_needs_a_residual_stream_sae(model, sample):
    """Only direct_path=False needs the residual stream: an SAE on an MLP output is ablated
    with the default direct_path=True, and refused with direct_path=False."""
    hook = "blocks.0.hook_mlp_out"
    mlp_sae = build_sae(hook=hook, seed=3)
    tokens, counted = I.sample_contexts(sample, 10, 4)
    x = F.hook_activations(model, tokens, hook)
    scored = torch.zeros_like(counted)
    scored[:, :-1] = counted[:, :-1] & counted[:, 1:]
    f = int(((mlp_sae.encode(x) > 0) & scored[..., None]).sum((0, 1)).argmax())
    effect = I.ablate_latent(model, mlp_sae, tokens, counted, f)
    assert effect.latent == f and effect.n_positions > 0
    with pytest.raises(ValueError, match="residual stream"):
        I.ablate_latent(model, mlp_sae, tokens, counted, f, direct_path=False)
