"""Unit tests for utils.features on a random model (d_model 48) and random SAEs (d_sae 200)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from random_models import (
    D_MODEL,
    D_SAE,
    HOOK,
    SAMPLE_TEXTS,
    build_sae,
)

from utils import features as F

CTX = 24


def identity_sae(d_in: int = D_MODEL, d_sae: int = D_SAE):
    """An SAE that reconstructs its input exactly: features relu(x) and relu(-x), decoded back."""
    sae = build_sae(d_in=d_in, d_sae=d_sae)
    with torch.no_grad():
        eye = torch.eye(d_in)
        sae.W_enc.zero_()
        sae.W_dec.zero_()
        sae.b_enc.zero_()
        sae.b_dec.zero_()
        sae.W_enc[:, :d_in] = eye
        sae.W_enc[:, d_in : 2 * d_in] = -eye
        sae.W_dec[:d_in] = eye
        sae.W_dec[d_in : 2 * d_in] = -eye
    return sae


# ---- input checks -----------------------------------------------------------------------------


def test_sae_hook_name_reads_metadata():
    assert F.sae_hook_name(build_sae(hook="blocks.0.hook_resid_pre")) == "blocks.0.hook_resid_pre"


def test_sae_hook_name_missing_raises():
    sae = build_sae()
    sae.cfg.metadata.hook_name = None
    with pytest.raises(ValueError, match="names no hook"):
        F.sae_hook_name(sae)


def test_unknown_hook_raises_with_close_matches(model):
    with pytest.raises(KeyError, match=r"blocks\.1\.hook_resid_pre"):
        F.check_hook_name(model, "blocks.1.hook_resid_pree")
    with pytest.raises(KeyError, match=r"0\.\.1"):
        F.check_hook_name(model, "blocks.7.hook_resid_pre")


def test_feature_index_range():
    assert F.check_feature_index(199, 200) == 199
    assert F.check_feature_index(torch.tensor(3), 200) == 3
    with pytest.raises(IndexError, match=r"d_sae=200.*0\.\.199"):
        F.check_feature_index(200, 200)
    with pytest.raises(IndexError):
        F.check_feature_index(-1, 200)
    with pytest.raises(TypeError):
        F.check_feature_index(1.5, 200)


def test_empty_prompt_raises(model, sae):
    with pytest.raises(ValueError, match="empty"):
        F.encode_prompt(model, sae, "   ")


def test_sae_on_a_hook_the_model_lacks(model):
    with pytest.raises(KeyError, match="no hook"):
        F.encode_prompt(model, build_sae(hook="blocks.5.hook_resid_pre"), "hello")


def test_sae_with_wrong_width(model):
    with pytest.raises(ValueError, match="d_in"):
        F.encode_prompt(model, build_sae(d_in=D_MODEL + 1), "hello")


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


# ---- a sample ---------------------------------------------------------------------------------


def test_tokenize_texts_skips_empty_and_pads(model):
    tokens, lengths = F.tokenize_texts(
        model, ["Hello world", "", "The capital of France is Paris. " * 5], 16
    )
    assert tokens.shape == (2, 16)
    assert lengths[1] == 16 and lengths[0] < 16
    assert (tokens[:, 0] == model.tokenizer.bos_token_id).all()


def test_tokenize_texts_bad_input(model):
    with pytest.raises(TypeError, match="list of strings"):
        F.tokenize_texts(model, "just one string", 8)
    with pytest.raises(ValueError, match="n_ctx"):
        F.tokenize_texts(model, ["hi"], 10_000)
    with pytest.raises(ValueError, match="non-empty"):
        F.tokenize_texts(model, ["", "  "], 8)


def test_sample_matches_dense_computation(model, sae, sample):
    """The sparse, batched statistics equal a dense computation on the same tokens."""
    acts = F.hook_activations(model, sample.tokens, HOOK)
    feature_acts = sae.encode(acts)
    counted = sample.counted
    assert not counted[:, 0].any()  # BOS excluded
    assert counted.sum() == (sample.lengths - 1).sum()
    dense = feature_acts * counted[..., None]
    assert torch.equal(sample.l0, F.l0_per_token(dense).int())
    assert torch.equal(sample.firing_counts, (dense != 0).sum((0, 1)))
    torch.testing.assert_close(sample.max_activation, dense.amax((0, 1)))
    for feature in (0, 5, D_SAE - 1):
        torch.testing.assert_close(sample.activation_grid(feature), dense[..., feature])
    metrics = F.reconstruction_metrics(acts[counted], sae.decode(feature_acts)[counted])
    for key, value in metrics.items():
        assert sample.metrics[key] == pytest.approx(value, rel=1e-4)
    torch.testing.assert_close(sample.mean_activation_vector, acts[counted].mean(0))


def test_sample_properties(sample):
    assert sample.d_sae == D_SAE
    assert sample.density.shape == (D_SAE,)
    assert ((sample.density >= 0) & (sample.density <= 1)).all()
    assert sample.l0_values.shape == (sample.n_tokens,)
    assert sample.str_tokens(0)[0] == "<|endoftext|>"
    assert sample.token_counts().sum() == sample.n_tokens
    with pytest.raises(IndexError):
        sample.str_tokens(sample.n_texts)
    with pytest.raises(IndexError, match="d_sae=200"):
        sample.feature_activations(D_SAE)


def test_sample_can_keep_bos(model, sae):
    kept = F.collect_feature_stats(model, sae, SAMPLE_TEXTS, CTX, exclude_bos=False, progress=False)
    assert kept.counted[:, 0].all()


def test_top_activating_contexts(sample):
    feature = int(sample.firing_counts.argmax())
    table = F.top_activating_contexts(sample, feature, k=3, left=2, right=1)
    assert len(table) == 3
    assert table["activation"].is_monotonic_decreasing
    top = table.iloc[0]
    assert top["activation"] == pytest.approx(sample.max_activation[feature].item())
    assert top["context_tokens"][top["highlight"]] == top["token"]
    assert top["context_activations"][top["highlight"]] == pytest.approx(top["activation"])
    assert len(top["context_tokens"]) <= 4
    one_each = F.top_activating_contexts(sample, feature, k=10, one_per_text=True)
    assert one_each["text"].is_unique


def test_top_activating_contexts_for_a_silent_feature(model):
    silent = build_sae()
    with torch.no_grad():
        silent.b_enc[3] = -1e6
    sample = F.collect_feature_stats(model, silent, SAMPLE_TEXTS, CTX, progress=False)
    assert len(F.top_activating_contexts(sample, 3)) == 0
    assert len(F.feature_top_tokens(sample, 3)) == 0


def test_feature_top_tokens(sample):
    feature = int(sample.firing_counts.argmax())
    table = F.feature_top_tokens(sample, feature, k=5)
    assert table["fires"].is_monotonic_decreasing
    assert (table["fires"] <= table["occurrences"]).all()
    full = F.feature_top_tokens(sample, feature, k=10_000)
    assert full["fires"].sum() == sample.firing_counts[feature]


def test_features_for_token(sample):
    token = sample.token_counts().index[0]
    table = F.features_for_token(sample, token, k=5)
    assert list(table.columns)[:4] == ["feature", "f1", "precision", "recall"]
    assert ((table["precision"] <= 1) & (table["recall"] <= 1)).all()
    assert table["f1"].is_monotonic_decreasing
    with pytest.raises(KeyError, match="does not occur"):
        F.features_for_token(sample, "no such token here")


def test_choose_feature(sample):
    acts = torch.zeros(D_SAE)
    busy = int(sample.firing_counts.argmax())
    acts[busy] = 1.0
    assert F.choose_feature(acts, sample, min_fires=1, max_density=1.0) == busy
    with pytest.raises(ValueError, match="No active feature"):
        F.choose_feature(acts, sample, min_fires=10_000)
    with pytest.raises(ValueError, match="shape"):
        F.choose_feature(torch.zeros(D_SAE + 1), sample)


def test_choose_feature_prefers_the_last_position(sample):
    order = torch.argsort(sample.firing_counts, descending=True)
    first_choice, fallback = int(order[0]), int(order[1])
    acts = torch.zeros(3, D_SAE)
    acts[0, fallback] = 5.0
    assert F.choose_feature(acts, sample, min_fires=1, max_density=1.0) == fallback
    acts[2, first_choice] = 0.1
    assert F.choose_feature(acts, sample, min_fires=1, max_density=1.0) == first_choice


# ---- logit effects ----------------------------------------------------------------------------


def logit_effects_by_hand(model, sae, feature: int):
    """What a feature's decoder row does to each logit, computed here from its definition: centred
    and scaled like the final LayerNorm does (its division by the norm left out), then W_U."""
    direction = sae.W_dec[feature]
    return ((direction - direction.mean()) * model.ln_final.w) @ model.W_U  # [d_vocab]


def test_the_random_models_final_layernorm_scale_matters(model, sae):
    """Else the tests below could not tell a direction with the scale from one without it."""
    direction = sae.W_dec[4] - sae.W_dec[4].mean()
    unscaled = direction @ model.W_U
    assert not torch.allclose(model.ln_final.w, torch.ones(D_MODEL))
    assert (
        logit_effects_by_hand(model, sae, 4).topk(6).indices.tolist()
        != unscaled.topk(6).indices.tolist()
    )


@pytest.mark.parametrize("feature", [4, 117])
def test_feature_logit_effects(model, sae, feature):
    table = F.feature_logit_effects(model, sae, feature, k=6)
    logits = logit_effects_by_hand(model, sae, feature)
    top, bottom = logits.topk(6), logits.topk(6, largest=False)
    vocab = F.vocabulary_strings(model)
    assert list(table.columns) == ["promoted", "promoted_logit", "suppressed", "suppressed_logit"]
    assert table.index.tolist() == [1, 2, 3, 4, 5, 6]  # rank 1 first
    assert table["promoted"].tolist() == [vocab[i] for i in top.indices.tolist()]
    assert table["promoted_logit"].tolist() == pytest.approx(top.values.tolist(), rel=1e-5)
    assert table["suppressed"].tolist() == [vocab[i] for i in bottom.indices.tolist()]
    assert table["suppressed_logit"].tolist() == pytest.approx(bottom.values.tolist(), rel=1e-5)


def test_direct_logit_effects_of_several_directions(model, sae):
    """The one function behind every logit effect (tutorials 1 and 3): rows as computed by hand."""
    effects = F.direct_logit_effects(model, sae.W_dec[[4, 117]])
    assert effects.shape == (2, model.cfg.d_vocab)
    for row, feature in zip(effects, [4, 117]):
        torch.testing.assert_close(row, logit_effects_by_hand(model, sae, feature).float())
    with pytest.raises(ValueError, match="d_model"):
        F.direct_logit_effects(model, torch.zeros(3))


def test_feature_logit_effects_with_a_given_vocab(model, sae, sample):
    given = F.feature_logit_effects(model, sae, 4, k=3, vocab=sample.vocab)
    pd.testing.assert_frame_equal(given, F.feature_logit_effects(model, sae, 4, k=3))
    with pytest.raises(ValueError, match="d_vocab"):
        F.feature_logit_effects(model, sae, 4, vocab=["a", "b"])


def test_feature_logit_effects_bad_input(model, sae):
    with pytest.raises(IndexError):
        F.feature_logit_effects(model, sae, D_SAE)
    with pytest.raises(ValueError, match="d_model"):
        F.feature_logit_effects(model, build_sae(d_in=D_MODEL * 2), 0)


# ---- splicing ---------------------------------------------------------------------------------


def test_splice_losses_with_a_perfect_sae(model):
    losses = F.splice_losses(model, identity_sae(), SAMPLE_TEXTS, CTX, progress=False)
    assert losses.sae == pytest.approx(losses.original, abs=1e-4)
    assert losses.recovered_vs_zero == pytest.approx(1, abs=1e-3)
    assert losses.n_tokens > 0
    frame = losses.to_frame()
    assert list(frame.index) == ["original model", "SAE spliced in", "zero-ablated", "mean-ablated"]
    assert frame.loc["original model", "increase"] == 0


def test_splice_losses_with_a_zero_sae_equals_zero_ablation(model):
    dead = build_sae()
    with torch.no_grad():
        dead.W_dec.zero_()
        dead.b_dec.zero_()
    losses = F.splice_losses(model, dead, SAMPLE_TEXTS, CTX, progress=False)
    assert losses.sae == pytest.approx(losses.zero_ablated, abs=1e-5)
    assert losses.recovered_vs_zero == pytest.approx(0, abs=1e-3)


def test_splice_losses_mean_ablation_uses_the_given_vector(model, sae, sample):
    given = F.splice_losses(
        model, sae, SAMPLE_TEXTS, CTX, mean_activation=sample.mean_activation_vector, progress=False
    )
    computed = F.splice_losses(model, sae, SAMPLE_TEXTS, CTX, progress=False)
    assert given.mean_ablated == pytest.approx(computed.mean_ablated, rel=1e-5)
    zero_mean = F.splice_losses(
        model, sae, SAMPLE_TEXTS, CTX, mean_activation=torch.zeros(D_MODEL), progress=False
    )
    assert zero_mean.mean_ablated == pytest.approx(zero_mean.zero_ablated, rel=1e-6)
    with pytest.raises(ValueError, match="mean_activation"):
        F.splice_losses(
            model, sae, SAMPLE_TEXTS, CTX, mean_activation=torch.zeros(D_MODEL + 2), progress=False
        )


def test_splice_losses_matches_run_with_saes_without_bos_exclusion(model, sae):
    """With BOS included, the SAE condition equals SAELens' own splice (run_with_saes)."""
    text = ["The capital of France is Paris. The capital of Italy is Rome."]
    losses = F.splice_losses(model, sae, text, CTX, exclude_bos=False, progress=False)
    tokens, _ = F.tokenize_texts(model, text, CTX)
    per_token = model.run_with_saes(tokens, saes=[sae], return_type="loss", loss_per_token=True)
    assert losses.sae == pytest.approx(per_token.mean().item(), rel=1e-5)


@pytest.mark.parametrize(
    ("original", "spliced", "ablated", "recovered"),
    [
        (2.0, 2.0, 6.0, 1.0),  # the SAE loses nothing
        (2.0, 4.0, 6.0, 0.5),  # it wins back half of the 4 nats that ablating costs
        (2.0, 6.0, 6.0, 0.0),  # no better than ablating
        (3.0, 8.0, 5.0, -1.5),  # worse than ablating: (5 - 8) / (5 - 3)
    ],
)
def test_loss_recovered_by_hand(original, spliced, ablated, recovered):
    assert F.loss_recovered(original, spliced, ablated) == pytest.approx(recovered)
    assert math.isnan(F.loss_recovered(2.0, 3.0, 2.0))  # no gap to recover


def test_recovered_is_nan_when_ablation_changes_nothing():
    losses = F.SpliceLosses(original=2.0, sae=2.0, zero_ablated=2.0, mean_ablated=3.0, n_tokens=5)
    assert math.isnan(losses.recovered_vs_zero)
    assert losses.recovered_vs_mean == pytest.approx(1.0)
