"""Unit tests for utils.features.logit_effects (a direction's effect on the logits through the
final norm and the unembedding) on a random model (d_model 48) and random SAEs (d_sae 200)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from random_models import D_MODEL, D_SAE, build_sae

from utils import features as F


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


def test_direct_logit_effects_of_a_float64_direction(model, sae):
    """Cast to the unembedding's dtype first (float64 @ float32 would be refused)."""
    effects = F.direct_logit_effects(model, sae.W_dec[4].double())
    assert effects.dtype == torch.float32
    torch.testing.assert_close(effects, logit_effects_by_hand(model, sae, 4).float())


def test_feature_logit_effects_default_k_and_rank_index(model, sae):
    table = F.feature_logit_effects(model, sae, 4)  # k = 10 unless given
    assert table.index.tolist() == list(range(1, 11))
    assert table.index.name == "rank"
    top = logit_effects_by_hand(model, sae, 4).topk(10)
    vocab = F.vocabulary_strings(model)
    assert table["promoted"].tolist() == [vocab[i] for i in top.indices.tolist()]


def test_feature_logit_effects_k_bounds(model, sae):
    d_vocab = model.cfg.d_vocab
    logits = logit_effects_by_hand(model, sae, 4)
    one = F.feature_logit_effects(model, sae, 4, k=1)  # k = 1 is allowed
    assert one["promoted_logit"].tolist() == pytest.approx([logits.max().item()], rel=1e-5)
    assert one["suppressed_logit"].tolist() == pytest.approx([logits.min().item()], rel=1e-5)
    every = F.feature_logit_effects(model, sae, 4, k=d_vocab)  # k = d_vocab is allowed
    assert len(every) == d_vocab and every.index[-1] == d_vocab
    for k in [0, d_vocab + 1]:
        with pytest.raises(
            ValueError, match=rf"k must be between 1 and d_vocab={d_vocab}, got {k}"
        ):
            F.feature_logit_effects(model, sae, 4, k=k)
