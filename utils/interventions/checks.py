"""Argument checks and small shared pieces of tutorial 3's interventions: a steering scale, a batch
of tokens, a direction, the positions whose prediction can be scored, the names of the hooks
an attached SAE adds, and logits from the last residual stream at chosen positions only."""

from __future__ import annotations

import math
from typing import Any

import torch

from .. import features as F


def check_scale(scale: float, name: str = "scale") -> float:
    """Return ``scale`` as a float if it is a finite number; otherwise raise ``ValueError``."""
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {scale!r}") from None
    if not math.isfinite(value):
        raise ValueError(
            f"{name} must be a finite number (e.g. 0.5 for half the activation's norm), got {value}"
        )
    return value


def _check_tokens(tokens: torch.Tensor) -> torch.Tensor:
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ValueError(
            f"tokens must have shape [batch, pos] with pos >= 1, got {tuple(tokens.shape)}"
        )
    return tokens


def _check_direction(direction: torch.Tensor, d_in: int) -> torch.Tensor:
    if direction.ndim != 1 or direction.shape[0] != d_in:
        raise ValueError(
            f"direction must have shape [d_in] = [{d_in}], got {tuple(direction.shape)}"
        )
    if not torch.isfinite(direction).all() or direction.norm() == 0:
        raise ValueError("direction must be a finite, non-zero vector")
    return direction


def _scored_mask(tokens: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """Positions whose prediction can be scored: counted, and followed by a counted token."""
    scored = torch.zeros_like(counted)
    scored[:, :-1] = counted[:, :-1] & counted[:, 1:]
    return scored


def _acts_post_name(sae: Any) -> str:
    return F.sae_hook_name(sae) + ".hook_sae_acts_post"


# The block a run can start at for a hook, if any (its one home: utils.features.resid_pre_layer).
_resid_pre_layer = F.resid_pre_layer


def _final_name(model: Any) -> str:
    """The last residual stream, just before the final LayerNorm."""
    return f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"


def _unembed(model: Any, resid: torch.Tensor) -> torch.Tensor:
    """Logits from the last residual stream ``[batch, pos, d_model]`` as the model's forward
    computes them (final LayerNorm, unembedding, a soft cap where the model has one):
    ``[batch, pos, d_vocab]``. Each position is normalised on its own, so calling this on a few
    positions gives exactly those positions' logits, without computing the others'."""
    if model.cfg.normalization_type is not None:
        resid = model.ln_final(resid)
    logits = model.unembed(resid)
    cap = getattr(model.cfg, "output_logits_soft_cap", -1.0)
    if cap is not None and cap > 0:  # as TransformerLens' forward does (Gemma 2)
        logits = cap * torch.tanh(logits / cap)
    return logits
