"""Unit tests for utils.features.prompt (one prompt: hook activations, its features, the top
features per token) and utils.features.reconstruction's metrics, on a random model (d_model 48)
and random SAEs (d_sae 200)."""

from __future__ import annotations

import pytest
import torch
from random_models import D_MODEL, D_SAE, HOOK, build_sae

from utils import features as F

# ---- one prompt -------------------------------------------------------------------------------


def test_hook_activations_shape_and_match_full_run(model):
    tokens = model.to_tokens("The capital of France is Paris")
    acts = F.hook_activations(model, tokens, HOOK)
    assert acts.shape == (1, tokens.shape[1], D_MODEL)
    _, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(acts, cache[HOOK])


def test_hook_activations_outside_the_blocks(model):
    tokens = model.to_tokens("Hello world")
    acts = F.hook_activations(
        model, tokens[0], "hook_embed"
    )  # a 1-D token tensor is a batch of one
    assert acts.shape == (1, tokens.shape[1], D_MODEL)
    with pytest.raises(ValueError, match="batch, pos"):
        F.hook_activations(model, torch.zeros(1, 0, dtype=torch.long), HOOK)


def test_hook_activations_stops_after_the_hooks_block_and_caches_only_it(model):
    """Only blocks 0..L run for a hook in block L (no later block, no final LayerNorm), and only
    the asked-for hook is cached (probe hooks see which hook points have hooks attached)."""
    seen: dict[str, list[str]] = {}

    def probe(acts, hook):
        seen[hook.name] = sorted(n for n, hp in model.hook_dict.items() if hp.fwd_hooks)

    probes = ["blocks.0.hook_resid_post", "blocks.1.hook_resid_pre", "ln_final.hook_normalized"]
    tokens = model.to_tokens("The capital of France is Paris")
    _, cache = model.run_with_cache(tokens)
    for hook_name, ran in [
        ("blocks.0.hook_resid_post", ["blocks.0.hook_resid_post"]),  # block 1 never runs
        (HOOK, ["blocks.0.hook_resid_post", HOOK]),  # blocks.1.hook_resid_pre: no final LayerNorm
    ]:
        seen.clear()
        with model.hooks(fwd_hooks=[(name, probe) for name in probes]):
            acts = F.hook_activations(model, tokens, hook_name)
        torch.testing.assert_close(acts, cache[hook_name])
        assert sorted(seen) == sorted(ran), hook_name
        assert seen["blocks.0.hook_resid_post"] == sorted(probes)  # no cache hook anywhere else


def test_hook_activations_passes_the_attention_mask(model):
    tokens = model.to_tokens("The capital of France is Paris")
    mask = torch.ones_like(tokens)
    mask[0, 1] = 0  # the first word is padding
    acts = F.hook_activations(model, tokens, HOOK, attention_mask=mask)
    _, by_hand = model.run_with_cache(tokens, attention_mask=mask)
    torch.testing.assert_close(acts, by_hand[HOOK])
    assert not torch.allclose(acts, F.hook_activations(model, tokens, HOOK))  # the mask matters


def test_encode_prompt_by_hand(model, sae):
    prompt = "The capital of France is Paris"
    enc = F.encode_prompt(model, sae, prompt)
    tokens = model.to_tokens(prompt, prepend_bos=True)
    assert enc.tokens.tolist() == tokens[0].tolist()
    _, cache = model.run_with_cache(tokens)
    torch.testing.assert_close(enc.activations, cache[HOOK][0])
    by_hand = torch.relu(cache[HOOK][0] @ sae.W_enc + sae.b_enc)
    torch.testing.assert_close(enc.feature_acts, by_hand)
    torch.testing.assert_close(enc.reconstruction, by_hand @ sae.W_dec + sae.b_dec)
    no_bos = F.encode_prompt(model, build_sae(prepend_bos=False), prompt)
    assert no_bos.tokens.tolist() == model.to_tokens(prompt, prepend_bos=False)[0].tolist()


def test_encode_prompt_names_the_hook_when_d_in_does_not_match(model):
    with pytest.raises(
        ValueError, match=r"The activations at blocks\.1\.hook_resid_pre has shape \(\d+, 48\)"
    ):
        F.encode_prompt(model, build_sae(d_in=D_MODEL * 2), "Hello world")


def test_encode_prompt_shapes(model, sae):
    enc = F.encode_prompt(model, sae, "The capital of France is Paris")
    n = len(enc.str_tokens)
    assert enc.str_tokens[0] == "<|endoftext|>" and enc.has_bos
    assert enc.activations.shape == (n, D_MODEL)
    assert enc.feature_acts.shape == (n, D_SAE)
    assert enc.reconstruction.shape == (n, D_MODEL)
    torch.testing.assert_close(enc.feature_acts, sae.encode(enc.activations))


def test_encode_prompt_without_bos(model):
    enc = F.encode_prompt(model, build_sae(prepend_bos=False), "Hello world")
    assert not enc.has_bos and enc.str_tokens[0] != "<|endoftext|>"


def test_l0_per_token():
    acts = torch.tensor([[0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert F.l0_per_token(acts).tolist() == [2, 0]
    assert F.l0_per_token(torch.zeros(2, 3, 7)).shape == (2, 3)
    with pytest.raises(ValueError):
        F.l0_per_token(torch.tensor(1.0))


def test_top_features_per_token_long_and_wide():
    acts = torch.zeros(3, 50)
    acts[0, 7], acts[0, 9] = 2.0, 1.0
    acts[1, 49] = 5.0
    table = F.top_features_per_token(acts, ["a", "b", "c"], k=2)
    assert list(table.columns) == ["position", "token", "rank", "feature", "activation"]
    assert table["feature"].tolist() == [7, 9, 49]  # inactive features are left out
    assert table["rank"].tolist() == [1, 2, 1]
    wide = F.top_features_per_token(acts[None], ["a", "b", "c"], k=2, wide=True)
    assert wide.shape == (3, 2)
    assert wide.iloc[0, 0] == "7 (2.00)" and wide.iloc[2, 0] == ""


def test_top_features_per_token_bad_input():
    with pytest.raises(ValueError, match="token strings"):
        F.top_features_per_token(torch.rand(3, 10), ["a", "b"], k=2)
    with pytest.raises(ValueError, match="between 1 and d_sae=10"):
        F.top_features_per_token(torch.rand(2, 10), ["a", "b"], k=11)
    with pytest.raises(ValueError, match="shape"):
        F.top_features_per_token(torch.rand(10), ["a"], k=1)


def test_top_features_per_token_by_hand():
    # position 0 ('a'): feature 1 = 3, feature 2 = -1 (non-zero, so active, as l0_per_token counts)
    # position 1 ('b'): feature 3 = 2, feature 0 = 1
    acts = torch.tensor([[0.0, 3.0, -1.0, 0.0], [1.0, 0.0, 0.0, 2.0]])
    every = F.top_features_per_token(acts, ["a", "b"], k=4)  # k = d_sae is allowed
    assert every.values.tolist() == [
        [0, "a", 1, 1, 3.0],
        [0, "a", 4, 2, -1.0],  # ranks 2 and 3 are zeros, left out; rank 4 is not
        [1, "b", 1, 3, 2.0],
        [1, "b", 2, 0, 1.0],
    ]
    first = F.top_features_per_token(acts, ["a", "b"], k=1)  # k = 1 is allowed
    assert first.values.tolist() == [[0, "a", 1, 1, 3.0], [1, "b", 1, 3, 2.0]]
    wide = F.top_features_per_token(acts, ["a", "b"], k=1, wide=True)
    assert wide.index.tolist() == [(0, "'a'"), (1, "'b'")]  # tokens shown with their quotes
    assert wide["top 1"].tolist() == ["1 (3.00)", "3 (2.00)"]
    # one position, as [1, d_sae] (not a batch of one) and as [1, 1, d_sae]
    assert F.top_features_per_token(acts[:1], ["a"], k=1).values.tolist() == [[0, "a", 1, 1, 3.0]]
    assert len(F.top_features_per_token(acts[None, :1], ["a"], k=1)) == 1
    with pytest.raises(ValueError, match=r"got \(2, 2, 4\)"):  # two prompts, not one
        F.top_features_per_token(torch.stack([acts, acts]), ["a", "b"], k=1)


def test_top_features_per_token_default_k_and_nothing_active():
    acts = torch.zeros(2, 8)
    acts[0, :6] = torch.arange(6, 0, -1).float()  # six active features at position 0
    assert F.top_features_per_token(acts, ["a", "b"])["feature"].tolist() == [0, 1, 2, 3, 4]
    empty = F.top_features_per_token(torch.zeros(2, 8), ["a", "b"], k=2)
    assert len(empty) == 0
    assert list(empty.columns) == ["position", "token", "rank", "feature", "activation"]


# ---- reconstruction metrics -------------------------------------------------------------------


def test_reconstruction_metrics_values():
    x = torch.randn(20, 6) + 3
    perfect = F.reconstruction_metrics(x, x.clone())
    assert perfect["mse"] == pytest.approx(0, abs=1e-9)
    assert perfect["explained_variance"] == pytest.approx(1)
    assert perfect["cosine_similarity"] == pytest.approx(1)
    mean_guess = F.reconstruction_metrics(x, x.mean(0).expand_as(x))
    assert mean_guess["explained_variance"] == pytest.approx(0, abs=1e-6)
    assert F.reconstruction_metrics(x, -x)["cosine_similarity"] == pytest.approx(-1)


def test_reconstruction_metrics_bad_shapes():
    with pytest.raises(ValueError, match="must match"):
        F.reconstruction_metrics(torch.zeros(4, 5), torch.zeros(4, 6))
    with pytest.raises(ValueError, match="at least two"):
        F.reconstruction_metrics(torch.zeros(1, 5), torch.zeros(1, 5))


def test_scalars_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="got a scalar"):
        F.l0_per_token(torch.tensor(1.0))
    with pytest.raises(ValueError, match="got a scalar"):
        F.reconstruction_metrics(torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="at least two activation vectors.*got 1"):  # one vector
        F.reconstruction_metrics(torch.ones(3), torch.ones(3))
