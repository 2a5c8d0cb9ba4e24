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


# ---- a feature sample small enough to work out by hand -------------------------------------------
#
# Two texts of ctx 4 over the vocabulary <bos>, ' a', ' be', ' cat' (id 0 is both BOS and padding):
#   text 0: <bos> ' a'   ' be'  ' a'      length 4
#   text 1: <bos> ' cat' ' a'   <pad>     length 3
# Counted: every real token but BOS, so 5 tokens: ' a' 3 times, ' be' once, ' cat' once.
# Three features, active only at counted positions (flat position = text * 4 + pos):
#   feature 0 on every ' a':        t0p1 = 2.0, t0p3 = 4.0, t1p2 = 1.0    fires 3, density 3/5
#   feature 1 on ' be' and one ' a': t0p2 = 3.0, t1p2 = 0.5                fires 2, density 2/5
#   feature 2 on ' cat':            t1p1 = 0.5                            fires 1, density 1/5
# Densities are over the 5 counted tokens: not over the 7 real tokens or the 8 positions.
VOCAB = ["<bos>", " a", " be", " cat"]
TOY_TOKENS = torch.tensor([[0, 1, 2, 1], [0, 3, 1, 0]])
TOY_COUNTED = torch.tensor([[False, True, True, True], [False, True, True, False]])


def sample_by_hand(tokens, lengths, counted, dense, vocab):
    """A FeatureSample stored from dense ``[n_texts, ctx, d_sae]`` activations (zero wherever a
    position is not counted), the way collect_feature_stats stores one: non-zeros sorted by
    feature, flat positions ``text * ctx + pos``."""
    n_texts, ctx, d_sae = dense.shape
    assert not dense[~counted].any()
    positions, values, offsets = [], [], [0]
    for f in range(d_sae):
        for t in range(n_texts):
            for p in range(ctx):
                if dense[t, p, f] != 0:
                    positions.append(t * ctx + p)
                    values.append(dense[t, p, f].item())
        offsets.append(len(positions))
    return F.FeatureSample(
        tokens=tokens,
        lengths=torch.tensor(lengths),
        counted=counted,
        l0=(dense != 0).sum(-1).int(),
        firing_counts=(dense != 0).sum((0, 1)),
        max_activation=dense.amax((0, 1)),
        mean_activation_vector=torch.zeros(2),
        metrics={},
        vocab=vocab,
        hook_name=HOOK,
        nz_positions=torch.tensor(positions, dtype=torch.int64),
        nz_values=torch.tensor(values, dtype=dense.dtype),
        feature_offsets=torch.tensor(offsets),
    )


@pytest.fixture
def toy():
    dense = torch.zeros(2, 4, 3)
    dense[0, 1, 0], dense[0, 3, 0], dense[1, 2, 0] = 2.0, 4.0, 1.0
    dense[0, 2, 1], dense[1, 2, 1] = 3.0, 0.5
    dense[1, 1, 2] = 0.5
    return sample_by_hand(TOY_TOKENS, [4, 3], TOY_COUNTED, dense, VOCAB)


def test_toy_sample_counts_and_densities_by_hand(toy):
    assert toy.n_tokens == 5
    assert toy.firing_counts.tolist() == [3, 2, 1]
    assert toy.density.tolist() == pytest.approx([3 / 5, 2 / 5, 1 / 5])
    assert toy.token_counts().to_dict() == {" a": 3, " be": 1, " cat": 1}
    assert toy.str_tokens(1) == ["<bos>", " cat", " a"]  # the padding is not a token of the text
    text, pos, value = toy.feature_activations(1)
    assert (text.tolist(), pos.tolist(), value.tolist()) == ([0, 1], [2, 2], [3.0, 0.5])
    assert toy.activation_grid(0).tolist() == [[0, 2, 0, 4], [0, 0, 1, 0]]
    assert toy.nz_token_ids.tolist() == [1, 1, 1, 2, 1, 3]  # ' a' ' a' ' a' | ' be' ' a' | ' cat'


def test_str_tokens_out_of_range_names_the_range(toy):
    with pytest.raises(IndexError, match=r"text_index 2 is out of range 0\.\.1"):
        toy.str_tokens(2)
    with pytest.raises(IndexError, match="out of range"):
        toy.str_tokens(-1)


def test_activation_grid_keeps_the_stored_values_exactly():
    """float64 activations come back as stored, not rounded through float32."""
    dense = torch.zeros(2, 4, 3, dtype=torch.float64)
    dense[0, 1, 0] = 0.1
    dense[1, 2, 2] = 1 + 1e-12
    grid = sample_by_hand(TOY_TOKENS, [4, 3], TOY_COUNTED, dense, VOCAB).activation_grid
    assert grid(0)[0, 1].item() == 0.1 and grid(0).dtype == torch.float64
    assert grid(2)[1, 2].item() == 1 + 1e-12


def test_features_for_token_by_hand(toy):
    # ' a' occurs 3 times. Feature 0 fires on all 3 and nowhere else: recall 1, precision 1,
    # F1 1, mean (2 + 4 + 1) / 3. Feature 1 fires on 1 of them, and on 1 of its 2 firings:
    # recall 1/3, precision 1/2, F1 = 2 (1/2)(1/3) / (1/2 + 1/3) = 2/5, mean 0.5.
    # Feature 2 never fires on ' a'.
    expected = pd.DataFrame(
        {
            "feature": [0, 1],
            "f1": [1.0, 2 / 5],
            "precision": [1.0, 1 / 2],
            "recall": [1.0, 1 / 3],
            "fires_on_token": [3, 1],
            "mean_activation": [7 / 3, 0.5],
        }
    )
    pd.testing.assert_frame_equal(F.features_for_token(toy, " a"), expected)
    assert F.features_for_token(toy, " a", k=1)["feature"].tolist() == [0]
    # ' be': feature 1 fires on its only occurrence: recall 1, precision 1/2, F1 2/3.
    b = F.features_for_token(toy, " be")
    assert b["feature"].tolist() == [1] and b["f1"].tolist() == pytest.approx([2 / 3])


def test_features_for_token_default_k_and_the_tokens_it_suggests():
    # 12 texts: text i holds token i + 1 (i + 1 times over, so the counts are all different) and
    # every feature fires on token 1: 12 candidates for the default k=10 to cut to 10.
    vocab = ["<bos>"] + [f" w{i}" for i in range(1, 13)]
    ctx = 13
    tokens = torch.zeros(12, ctx, dtype=torch.long)
    counted = torch.zeros(12, ctx, dtype=torch.bool)
    for i in range(12):
        tokens[i, 1 : i + 2] = i + 1
        counted[i, 1 : i + 2] = True
    dense = torch.zeros(12, ctx, 12)
    dense[0, 1, :] = torch.arange(1, 13).float()  # text 0 is ' w1' once
    sample = sample_by_hand(tokens, [i + 2 for i in range(12)], counted, dense, vocab)
    assert len(F.features_for_token(sample, " w1")) == 10
    with pytest.raises(KeyError, match="does not occur") as error:
        F.features_for_token(sample, " w13")
    # the 10 most common tokens, most common first: ' w12' (12 times) down to ' w3' (3 times)
    listed = ", ".join(repr(f" w{i}") for i in range(12, 2, -1))
    assert f"The most common ones are: {listed}." in str(error.value)


def test_choose_feature_thresholds_by_hand(toy):
    # fires 3, 2, 1; densities 3/5, 2/5, 1/5 (the toy sample above)
    # feature 0 is the most active but too dense for 1/2: feature 1 is next
    assert F.choose_feature(torch.tensor([1.0, 0.5, 0.0]), toy, min_fires=1, max_density=0.5) == 1
    # both thresholds are inclusive: feature 1 fired exactly 2 times, on exactly 2/5 of the tokens
    acts = torch.tensor([0.0, 1.0, 0.5])
    assert F.choose_feature(acts, toy, min_fires=2, max_density=1.0) == 1
    assert F.choose_feature(acts, toy, min_fires=1, max_density=0.4) == 1


def test_choose_feature_default_thresholds():
    # 400 counted tokens; feature 0 fires 20 times (density 0.05), feature 1 21 times (0.0525),
    # feature 2 19 times: with the defaults (20 fires, density 0.05) only feature 0 qualifies.
    ctx = 401
    tokens = torch.ones(1, ctx, dtype=torch.long)
    tokens[0, 0] = 0
    counted = tokens.bool()
    dense = torch.zeros(1, ctx, 3)
    for feature, fires in enumerate([20, 21, 19]):
        dense[0, 1 : fires + 1, feature] = 1.0
    sample = sample_by_hand(tokens, [ctx], counted, dense, ["<bos>", " a"])
    assert sample.density.tolist() == pytest.approx([0.05, 0.0525, 0.0475])
    assert F.choose_feature(torch.tensor([1.0, 2.0, 3.0]), sample) == 0


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


def test_scalars_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="got a scalar"):
        F.l0_per_token(torch.tensor(1.0))
    with pytest.raises(ValueError, match="got a scalar"):
        F.reconstruction_metrics(torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="at least two activation vectors.*got 1"):  # one vector
        F.reconstruction_metrics(torch.ones(3), torch.ones(3))


def test_final_norm_direction_by_hand():
    """Direction (1, 2, 3, 6): mean 3, centred (-2, -1, 0, 3); weights (1, 2, 3, 4)."""
    from types import SimpleNamespace

    from transformer_lens import HookedTransformerConfig
    from transformer_lens.components import LayerNorm, LayerNormPre, RMSNorm

    cfg = HookedTransformerConfig(n_layers=1, d_model=4, n_ctx=8, d_head=2, act_fn="relu")
    direction = torch.tensor([1.0, 2.0, 3.0, 6.0])
    layer_norm, rms_norm = LayerNorm(cfg), RMSNorm(cfg)
    with torch.no_grad():
        layer_norm.w.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        rms_norm.w.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    expected = {
        "LayerNorm": [-2.0, -2.0, 0.0, 12.0],  # centred, then weighted
        "LayerNormPre": [-2.0, -1.0, 0.0, 3.0],  # centred only
        "RMSNorm": [1.0, 4.0, 9.0, 24.0],  # weighted only
        "no final norm": [1.0, 2.0, 3.0, 6.0],  # a model without ln_final (normalization_type=None)
    }
    models = {
        "LayerNorm": SimpleNamespace(ln_final=layer_norm),
        "LayerNormPre": SimpleNamespace(ln_final=LayerNormPre(cfg)),
        "RMSNorm": SimpleNamespace(ln_final=rms_norm),
        "no final norm": SimpleNamespace(),
    }
    for name, model in models.items():
        assert F.final_norm_direction(model, direction).tolist() == expected[name], name
    # the weights are cast to the direction's dtype, not the direction promoted to theirs
    half = F.final_norm_direction(models["LayerNorm"], direction.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16 and half.tolist() == expected["LayerNorm"]


def test_splice_losses_table_by_hand():
    losses = F.SpliceLosses(original=2.0, sae=2.5, zero_ablated=6.0, mean_ablated=4.0, n_tokens=7)
    frame = losses.to_frame()
    assert frame.index.name == "condition"
    assert frame.index.tolist() == [
        "original model",
        "SAE spliced in",
        "zero-ablated",
        "mean-ablated",
    ]
    assert frame["ce_loss"].tolist() == [2.0, 2.5, 6.0, 4.0]
    assert frame["increase"].tolist() == [0.0, 0.5, 4.0, 2.0]
    assert losses.recovered_vs_zero == pytest.approx((6.0 - 2.5) / (6.0 - 2.0))
    assert losses.recovered_vs_mean == pytest.approx((4.0 - 2.5) / (4.0 - 2.0))


def test_position_masks_at_bos_and_padding_by_hand():
    # lengths 3 and 1 in a context of 4: real tokens first, then padding
    valid, counted = F.sample._position_masks(torch.tensor([3, 1]), 4, exclude_bos=True)
    assert valid.tolist() == [[True, True, True, False], [True, False, False, False]]
    assert counted.tolist() == [[False, True, True, False], [False, False, False, False]]
    valid, counted = F.sample._position_masks(torch.tensor([3, 1]), 4, exclude_bos=False)
    assert counted.tolist() == valid.tolist() == [[True, True, True, False], [True] + [False] * 3]


def test_top_activating_contexts_by_hand(toy):
    # feature 0: 4.0 at text 0 position 3, 2.0 at text 0 position 1, 1.0 at text 1 position 2
    table = F.top_activating_contexts(toy, 0, k=2, left=1, right=1)
    assert table.to_dict("records") == [
        {
            "text": 0,
            "position": 3,
            "token": " a",
            "activation": 4.0,
            "context_tokens": [" be", " a"],  # the text ends there: nothing on the right
            "context_activations": [0.0, 4.0],
            "highlight": 1,
        },
        {
            "text": 0,
            "position": 1,
            "token": " a",
            "activation": 2.0,
            "context_tokens": ["<bos>", " a", " be"],
            "context_activations": [0.0, 2.0, 0.0],
            "highlight": 1,
        },
    ]
    one_each = F.top_activating_contexts(toy, 0, k=10, left=0, right=5, one_per_text=True)
    assert one_each[["text", "position", "activation"]].values.tolist() == [
        [0, 3, 4.0],
        [1, 2, 1.0],
    ]
    # text 1 has 3 real tokens: the padding after position 2 is no part of its context
    assert one_each["context_tokens"].tolist() == [[" a"], [" a"]]
    assert one_each["context_activations"].tolist() == [[4.0], [1.0]]
    assert len(F.top_activating_contexts(toy, 0)) == 3  # every firing when k is larger
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        F.top_activating_contexts(toy, 0, k=0)
    with pytest.raises(ValueError, match="left=-1, right=0"):
        F.top_activating_contexts(toy, 0, left=-1, right=0)
    with pytest.raises(ValueError, match="left=0, right=-1"):
        F.top_activating_contexts(toy, 0, left=0, right=-1)


def test_feature_top_tokens_by_hand(toy):
    columns = ["token", "fires", "share_of_firings", "occurrences", "fires_per_occurrence"]
    # feature 1 fires once on ' be' (3.0; its one occurrence) and once on ' a' (0.5; 1 of 3):
    # equal fires, so the larger mean activation first
    table = F.feature_top_tokens(toy, 1)
    assert table[columns].values.tolist() == [[" be", 1, 0.5, 1, 1.0], [" a", 1, 0.5, 3, 1 / 3]]
    assert table["mean_activation"].tolist() == [3.0, 0.5]
    assert F.feature_top_tokens(toy, 1, k=1)["token"].tolist() == [" be"]
    only = F.feature_top_tokens(toy, 0)  # every ' a', 2.0, 4.0 and 1.0
    assert only[columns].values.tolist() == [[" a", 3, 1.0, 3, 1.0]]
    assert only["mean_activation"].tolist() == pytest.approx([7 / 3])


@pytest.fixture
def detectors():
    """The toy texts with three other features: 0 on every ' a' (share 1 of 3 firings), 1 on two
    ' a' and the ' be' (share 2/3 of 3), 2 on the ' cat' (share 1 of 1). Densities 3/5, 3/5, 1/5."""
    dense = torch.zeros(2, 4, 3)
    dense[0, 1, 0] = dense[0, 3, 0] = dense[1, 2, 0] = 1.0
    dense[0, 1, 1] = dense[0, 2, 1] = dense[0, 3, 1] = 1.0
    dense[1, 1, 2] = 1.0
    return sample_by_hand(TOY_TOKENS, [4, 3], TOY_COUNTED, dense, VOCAB)


def test_token_concentrated_features_by_hand(detectors):
    def chosen(**kwargs):
        frame = F.token_concentrated_features(detectors, **kwargs)
        return frame.values.tolist(), frame.attrs["eligible"].to_dict()

    rows, eligible = chosen(k=4, min_fires=1, max_density=1.0, min_letters=0)
    # shares 1 (3 fires), 1 (1 fire), 2/3: feature 1's top token ' a' is feature 0's already
    assert rows == [[0, " a", 1.0, 3, 0.6], [2, " cat", 1.0, 1, 0.2]]
    assert eligible == pytest.approx({0: 1.0, 1: 2 / 3, 2: 1.0})
    assert chosen(k=1, min_fires=1, max_density=1.0, min_letters=0)[0] == rows[:1]
    # ' cat' has 3 letters, ' a' one
    assert chosen(k=4, min_fires=1, max_density=1.0, min_letters=3)[0] == rows[1:]
    # the thresholds are inclusive: 3 fires, density 3/5 and 1/5
    rows_3, eligible_3 = chosen(k=4, min_fires=3, max_density=0.6, min_letters=0)
    assert rows_3 == rows[:1] and set(eligible_3) == {0, 1}
    assert set(chosen(k=4, min_fires=1, max_density=0.2, min_letters=0)[1]) == {2}
    # the defaults: 20 fires, so nothing here
    nothing = F.token_concentrated_features(detectors)
    assert list(nothing.columns) == [
        "feature",
        "top_token",
        "share_on_top_token",
        "fires",
        "density",
    ]
    assert len(nothing) == 0 and nothing.attrs["eligible"].name == "share_on_top_token"
    assert nothing.attrs["eligible"].dtype == float
    with pytest.raises(ValueError, match=r"in \(0, 1\], got 1.5"):
        F.token_concentrated_features(detectors, max_density=1.5)


def test_token_concentrated_features_defaults():
    """k=4, min_fires=20, max_density=0.05, min_letters=3 on 500 counted tokens: ' cat', ' dog',
    ' emu', ' fox', ' gnu' 20 times each, then ' zz' 400 times. Feature i < 5 fires on the 20 of
    animal i and on i of the ' zz' (share 20 / (20 + i), density at most 24/500); feature 5 on 20
    ' zz' (share 1, but 2 letters); feature 6 on one ' cat' only (too few fires)."""
    vocab = ["<bos>", " cat", " dog", " emu", " fox", " gnu", " zz"]
    ctx = 501
    tokens = torch.full((1, ctx), 6)
    tokens[0, 0] = 0
    for i in range(5):
        tokens[0, 1 + 20 * i : 21 + 20 * i] = i + 1
    dense = torch.zeros(1, ctx, 7)
    for i in range(5):
        dense[0, 1 + 20 * i : 21 + 20 * i, i] = 1.0
        dense[0, 101 : 101 + i, i] = 1.0
    dense[0, 200:220, 5] = 1.0
    dense[0, 1, 6] = 1.0
    sample = sample_by_hand(tokens, [ctx], tokens != 0, dense, vocab)
    frame = F.token_concentrated_features(sample)
    assert frame["feature"].tolist() == [0, 1, 2, 3]
    assert frame["top_token"].tolist() == [" cat", " dog", " emu", " fox"]
    assert frame["share_on_top_token"].tolist() == pytest.approx([1, 20 / 21, 20 / 22, 20 / 23])
    assert frame["fires"].tolist() == [20, 21, 22, 23]
    assert frame["density"].tolist() == pytest.approx([0.04, 0.042, 0.044, 0.046])
    assert sorted(frame.attrs["eligible"].index) == [0, 1, 2, 3, 4, 5]


def test_check_prompt_names_what_it_got():
    assert F.check_prompt("hi") == "hi"
    with pytest.raises(TypeError, match="prompt must be a string, got int"):
        F.check_prompt(5)


def test_sae_prepend_bos_reads_metadata():
    sae = build_sae()
    for value, expected in [(False, False), (True, True), (None, True), (0, False)]:
        sae.cfg.metadata.prepend_bos = value
        assert F.sae_prepend_bos(sae) is expected, value


def test_input_checks_say_what_was_wrong(model):
    with pytest.raises(ValueError, match=r"one integer, got a tensor of shape \(2,\)"):
        F.check_feature_index(torch.tensor([1, 2]), 200)
    with pytest.raises(TypeError, match="integer index, got True"):
        F.check_feature_index(True, 200)
    with pytest.raises(TypeError, match="integer index, got 1.5"):
        F.check_feature_index(1.5, 200)
    assert F.check_feature_index(2.0, 200) == 2 and F.check_feature_index(0, 1) == 0
    with pytest.raises(IndexError, match=r"Feature -1 is out of range.*d_sae=3.*0\.\.2"):
        F.check_feature_index(-1, 3)
    with pytest.raises(ValueError, match=r"x has shape \(\), but its last dimension must be w = 4"):
        F.checks._check_last_dim(torch.tensor(1.0), 4, "w", "x")
    with pytest.raises(
        ValueError, match=r"x has shape \(2, 3\), but its last dimension must be w = 4"
    ):
        F.checks._check_last_dim(torch.zeros(2, 3), 4, "w", "x")
    for shape in [(4,), (2, 4), (2, 3, 4)]:  # the right width passes, whatever comes before it
        F.checks._check_last_dim(torch.zeros(shape), 4, "w", "x")
    assert F.check_hook_name(model, HOOK) is None
    with pytest.raises(KeyError) as nothing_close:
        F.check_hook_name(model, "zzz")
    message = str(nothing_close.value)
    assert "no hook 'zzz'. Hook names look like" in message and "Close matches" not in message
    assert "layer in 0..1" in message and "list(model.hook_dict)" in message
    with pytest.raises(KeyError, match=r"Close matches: blocks\.1\.hook_resid_pre[,.]"):
        F.check_hook_name(model, "blocks.1.hook_resid_pree")


class CharModel:
    """A stand-in model whose tokenizer reads one printable character as one token (its code
    point) after an optional BOS (id 1): token ids a reader can write down."""

    def __init__(self, n_ctx=8, pad_token_id=7, n_tokenizer=3, d_vocab=5):
        from types import SimpleNamespace

        self.cfg = SimpleNamespace(n_ctx=n_ctx, d_vocab=d_vocab)
        self.tokenizer = type(
            "Tok", (), {"pad_token_id": pad_token_id, "__len__": lambda s: n_tokenizer}
        )()
        self.given: list[str] = []

    def to_tokens(self, text, prepend_bos=True, truncate=True):
        assert truncate is False  # tokenize_texts cuts the tokens itself
        self.given.append(text)
        return torch.tensor([[1] * prepend_bos + [ord(c) for c in text if c.isprintable()]])

    def to_str_tokens(self, ids):
        return [chr(i) for i in ids.tolist()]


def test_tokenize_texts_by_hand():
    m = CharModel()
    tokens, lengths = F.tokenize_texts(m, ["abc", "  ", "hello"], 4)  # blank text skipped
    assert tokens.tolist() == [[1, 97, 98, 99], [1, 104, 101, 108]]  # cut to 4 tokens
    assert lengths.tolist() == [4, 4]
    tokens, lengths = F.tokenize_texts(m, ["ab", "hello"], 8)
    assert tokens.tolist() == [[1, 97, 98, 7, 7, 7], [1, 104, 101, 108, 108, 111]]  # pad id 7
    assert lengths.tolist() == [3, 6]
    no_pad_id = CharModel(pad_token_id=None)
    assert F.tokenize_texts(no_pad_id, ["ab", "abc"], 8)[0].tolist() == [
        [1, 97, 98, 0],
        [1, 97, 98, 99],
    ]
    no_pad_attribute = CharModel()
    no_pad_attribute.tokenizer = object()  # a tokenizer with no pad_token_id at all: pad with 0
    assert F.tokenize_texts(no_pad_attribute, ["ab", "abc"], 8)[0].tolist()[0] == [1, 97, 98, 0]
    tokens, lengths = F.tokenize_texts(m, ["ab", "\u200b"], 2, prepend_bos=False)
    assert tokens.tolist() == [[97, 98]] and lengths.tolist() == [2]  # no token: skipped
    # a text that is only BOS once tokenized is skipped too
    assert F.tokenize_texts(m, ["\u200b", "ab"], 8)[0].tolist() == [[1, 97, 98]]
    assert F.tokenize_texts(m, ["ab"], 8)[0].shape == (1, 3)  # context_size = n_ctx is allowed
    m.given.clear()
    F.tokenize_texts(m, ["x" * 10_000], 3)  # a long document: only its first 3 * 64 characters
    assert m.given == ["x" * 192]


def test_tokenize_texts_refusals_say_why():
    m = CharModel()
    with pytest.raises(ValueError, match="at least 2 tokens, got 1"):
        F.tokenize_texts(m, ["abc"], 1)
    with pytest.raises(ValueError, match="context_size=9 is longer .* n_ctx=8"):
        F.tokenize_texts(m, ["abc"], 9)
    with pytest.raises(TypeError, match="must all be strings, got a int"):
        F.tokenize_texts(m, ["abc", 3], 4)
    with pytest.raises(ValueError, match="None of the texts has any tokens"):
        F.tokenize_texts(m, ["\u200b", " "], 4)


def test_vocabulary_strings_by_hand():
    # 3 ids the tokenizer decodes, 2 more rows of the unembedding that it does not
    assert F.vocabulary_strings(CharModel(n_tokenizer=3, d_vocab=5)) == [
        "\x00",
        "\x01",
        "\x02",
        "<3>",
        "<4>",
    ]
    assert F.vocabulary_strings(CharModel(n_tokenizer=4, d_vocab=2)) == ["\x00", "\x01"]


def test_density_of_one_counted_token_and_of_none():
    dense = torch.zeros(1, 2, 2)
    dense[0, 1, 0] = 3.0
    one = sample_by_hand(torch.tensor([[0, 1]]), [2], torch.tensor([[False, True]]), dense, VOCAB)
    assert one.n_tokens == 1 and one.density.tolist() == [1.0, 0.0]
    assert one.l0_values.tolist() == [1]
    none = sample_by_hand(
        torch.tensor([[0, 1]]), [2], torch.tensor([[False, False]]), torch.zeros(1, 2, 2), VOCAB
    )
    assert none.n_tokens == 0 and none.density.tolist() == [0.0, 0.0]


def one_firing_sample():
    """One text, <bos> ' a': feature 0 fires once (3.0) on the ' a', feature 1 never."""
    dense = torch.zeros(1, 2, 2)
    dense[0, 1, 0] = 3.0
    return sample_by_hand(torch.tensor([[0, 1]]), [2], torch.tensor([[False, True]]), dense, VOCAB)


def test_top_activating_contexts_edges_by_hand(toy):
    # k = 1, and no context on the right (right = 0 is allowed)
    first = F.top_activating_contexts(toy, 0, k=1, left=1, right=0)
    assert first[
        ["text", "position", "activation", "context_tokens", "highlight"]
    ].values.tolist() == [[0, 3, 4.0, [" be", " a"], 1]]
    single = F.top_activating_contexts(one_firing_sample(), 0)  # a feature that fired once
    assert single[["text", "position", "token", "activation"]].values.tolist() == [
        [0, 1, " a", 3.0]
    ]
    silent = F.top_activating_contexts(one_firing_sample(), 1)  # and one that never fired
    assert len(silent) == 0 and list(silent.columns) == list(single.columns)
    one = F.feature_top_tokens(one_firing_sample(), 0)
    assert one.values.tolist() == [[" a", 1, 1.0, 1, 1.0, 3.0]]
    none = F.feature_top_tokens(one_firing_sample(), 1)
    assert len(none) == 0 and list(none.columns) == list(one.columns)


def test_top_activating_contexts_defaults():
    # One text of 30 tokens (ids 1..29 after BOS). Feature 0 fires 0.1 * p at positions 1..11 and
    # 10 at position 15: 12 firings, the default k=10 keeps 10, the strongest first; its context
    # is 12 tokens on the left and 4 on the right (positions 3..19), the firing token 13th.
    tokens = torch.arange(30)[None]
    vocab = [f"t{i}" for i in range(30)]
    dense = torch.zeros(1, 30, 1)
    dense[0, 1:12, 0] = 0.1 * torch.arange(1, 12)
    dense[0, 15, 0] = 10.0
    sample = sample_by_hand(tokens, [30], tokens > 0, dense, vocab)
    table = F.top_activating_contexts(sample, 0)
    assert table["position"].tolist() == [15, 11, 10, 9, 8, 7, 6, 5, 4, 3]
    top = table.iloc[0]
    assert top["context_tokens"] == [f"t{i}" for i in range(3, 20)] and top["highlight"] == 12
    assert top["context_activations"][:9] == pytest.approx(
        [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]
    )
    assert top["context_activations"][9:] == [0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0]
    # feature_top_tokens' default k=10 too: it fired on 12 different tokens, once each
    tops = F.feature_top_tokens(sample, 0)
    assert tops["token"].tolist() == ["t15", "t11", "t10", "t9", "t8", "t7", "t6", "t5", "t4", "t3"]


def test_token_counts_most_common_first(toy):
    counts = toy.token_counts()
    assert counts.index[0] == " a" and counts.iloc[0] == 3 and counts.name == "count"
    assert counts.tolist() == [3, 1, 1]


def test_feature_top_tokens_counts_are_integers(toy):
    table = F.feature_top_tokens(toy, 1)
    assert table["occurrences"].tolist() == [1, 3] and table["occurrences"].dtype == int
    assert table["fires"].dtype == int


def test_token_concentrated_features_needs_a_firing():
    """A feature that never fired has no top token: min_fires=0 would make the silent feature 1
    eligible with a share of 0 / 0 and the vocabulary's last string as its top token."""
    with pytest.raises(ValueError, match="min_fires must be at least 1, got 0"):
        F.token_concentrated_features(one_firing_sample(), min_fires=0, max_density=1.0)
    rows = F.token_concentrated_features(
        one_firing_sample(), min_fires=1, max_density=1.0, min_letters=0
    )
    assert rows.values.tolist() == [[0, " a", 1.0, 1, 1.0]]


def test_sae_metadata_without_the_fields():
    """An SAE object whose metadata lacks the fields: no hook is an error that says so, no
    prepend_bos means True (SAELens' default)."""
    from types import SimpleNamespace

    bare = SimpleNamespace(cfg=SimpleNamespace(metadata=SimpleNamespace()))
    with pytest.raises(ValueError, match="names no hook"):
        F.sae_hook_name(bare)
    assert F.sae_prepend_bos(bare) is True
    empty = SimpleNamespace(cfg=SimpleNamespace(metadata=SimpleNamespace(hook_name="")))
    with pytest.raises(ValueError, match=r"sae\.cfg\.metadata\.hook_name is empty"):
        F.sae_hook_name(empty)


def test_tokenize_for_sae_marks_bos_only_when_there_is_one():
    m = CharModel()
    m.hook_dict = {HOOK: None}
    m.cfg.n_layers = 2
    hook, tokens, lengths, valid, counted = F.sample._tokenize_for_sae(
        m, build_sae(), ["ab", "cde"], 4, exclude_bos=True
    )
    assert hook == HOOK
    assert tokens.tolist() == [[1, 97, 98, 7], [1, 99, 100, 101]] and lengths.tolist() == [3, 4]
    assert valid.tolist() == [[True, True, True, False], [True] * 4]
    assert counted.tolist() == [[False, True, True, False], [False, True, True, True]]
    counted_bos = F.sample._tokenize_for_sae(m, build_sae(), ["ab", "cde"], 4, exclude_bos=False)[4]
    assert counted_bos.tolist() == valid.tolist()
    # an SAE trained without BOS: position 0 is a real token, counted even with exclude_bos
    _, tokens, _, valid, counted = F.sample._tokenize_for_sae(
        m, build_sae(prepend_bos=False), ["ab", "cde"], 4, exclude_bos=True
    )
    assert tokens.tolist() == [[97, 98, 7], [99, 100, 101]]
    assert counted.tolist() == valid.tolist() == [[True, True, False], [True, True, True]]
    with pytest.raises(KeyError, match="no hook 'blocks.5.hook_resid_pre'"):
        F.sample._tokenize_for_sae(m, build_sae(hook="blocks.5.hook_resid_pre"), ["ab"], 4, True)


def test_check_hook_name_lists_up_to_five_close_matches():
    m = CharModel()
    m.cfg.n_layers = 2
    m.hook_dict = dict.fromkeys(f"hook_{i}" for i in range(1, 8))  # 7 names, each as close
    with pytest.raises(KeyError) as seven:
        F.check_hook_name(m, "hook_")
    listed = str(seven.value).split("Close matches: ")[1].split(".")[0].split(", ")
    assert len(listed) == 5 and set(listed) <= set(m.hook_dict)
    # similarity 2 * 2 / 8 = 0.5 ('ab' shared): close enough (the cutoff is 0.5, inclusive)
    m.hook_dict = {"abxy": None}
    with pytest.raises(KeyError, match="Close matches: abxy."):
        F.check_hook_name(m, "abcd")
