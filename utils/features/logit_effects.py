"""A feature's effect on the output: its decoder direction read through the final normalisation's
weights and the unembedding (the "logit effects" of a feature dashboard). One home for the
computation: :func:`direct_logit_effects` for any directions, :func:`feature_logit_effects` for one
feature's promoted and suppressed tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from .checks import check_feature_index
from .sample import vocabulary_strings


def final_norm_direction(model: Any, direction: torch.Tensor) -> torch.Tensor:
    """The linear part of the model's final normalisation applied to residual directions
    ``[..., d_model]``: LayerNorm's centring and per-dimension weights (RMSNorm's weights alone),
    not its division by the norm."""
    from transformer_lens.components import LayerNorm, LayerNormPre, RMSNorm

    ln = getattr(model, "ln_final", None)
    if isinstance(ln, (LayerNorm, LayerNormPre)):
        direction = direction - direction.mean(-1, keepdim=True)
    if isinstance(ln, (LayerNorm, RMSNorm)):
        direction = direction * ln.w.to(direction.device, direction.dtype)
    return direction


def direct_logit_effects(model: Any, directions: torch.Tensor) -> torch.Tensor:
    """Each direction's direct effect on the logits, through :func:`final_norm_direction` and the
    unembedding: ``[..., d_model] -> [..., d_vocab]`` (float32, on the CPU)."""
    with torch.no_grad():
        if directions.shape[-1] != model.cfg.d_model:
            raise ValueError(
                f"directions have last dimension {directions.shape[-1]}, the model's d_model is "
                f"{model.cfg.d_model}"
            )
        directions = directions.to(model.W_U.device, model.W_U.dtype)
        return (final_norm_direction(model, directions) @ model.W_U).float().cpu()


def feature_logit_effects(
    model: Any, sae: Any, feature: int, k: int = 10, vocab: Sequence[str] | None = None
) -> pd.DataFrame:
    """The tokens a feature's decoder direction most promotes and suppresses (direct logit effect).

    Computes ``W_dec[feature] @ W_U``: the change in each token's logit if the feature's decoder
    direction were added straight into the final residual stream. The final LayerNorm's centring
    and per-dimension scale are applied first (its division by the norm is ignored), as in
    feature dashboards built from a model with the LayerNorm folded into ``W_U``. Only
    meaningful for SAEs on the residual stream (``d_in == d_model``).

    Returns ``k`` rows (rank 1 first) with columns ``promoted``, ``promoted_logit``,
    ``suppressed``, ``suppressed_logit``. ``vocab`` (token strings, e.g. ``sample.vocab``) saves
    decoding the vocabulary again.
    """
    with torch.no_grad():
        feature = check_feature_index(feature, sae.cfg.d_sae)
        if not 1 <= k <= model.cfg.d_vocab:
            raise ValueError(f"k must be between 1 and d_vocab={model.cfg.d_vocab}, got {k}")
        if sae.cfg.d_in != model.cfg.d_model:
            raise ValueError(
                f"The SAE's d_in ({sae.cfg.d_in}) is not the model's d_model ({model.cfg.d_model}): direct "
                "logit effects need an SAE on the residual stream."
            )
        logits = direct_logit_effects(model, sae.W_dec[feature])  # [d_vocab]
        vocab = vocabulary_strings(model) if vocab is None else vocab
        if len(vocab) != model.cfg.d_vocab:
            raise ValueError(
                f"vocab has {len(vocab)} strings but the model has d_vocab={model.cfg.d_vocab}"
            )
        top = logits.topk(k)
        bottom = logits.topk(k, largest=False)
        return pd.DataFrame(
            {
                "promoted": [vocab[i] for i in top.indices.tolist()],
                "promoted_logit": top.values.tolist(),
                "suppressed": [vocab[i] for i in bottom.indices.tolist()],
                "suppressed_logit": bottom.values.tolist(),
            },
            index=pd.RangeIndex(1, k + 1, name="rank"),
        )
