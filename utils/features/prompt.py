"""One prompt through the model and the SAE: activations at the hook (the book's one way to run the
model up to a hook, :func:`hook_activations`) and the SAE's features per token. How well the SAE
reconstructs them: :mod:`.reconstruction`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from .checks import (
    _check_last_dim,
    check_hook_name,
    check_prompt,
    hook_layer,
    sae_hook_name,
    sae_prepend_bos,
)


def hook_activations(
    model: Any,
    tokens: torch.Tensor,
    hook_name: str,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The model's activations at ``hook_name`` for ``tokens``.

    Runs the model only as far as it needs to (``stop_at_layer``), caching just that hook.

    Args:
        model: a TransformerLens ``HookedTransformer`` (e.g. SAELens' ``HookedSAETransformer``).
        tokens: ``[batch, pos]`` token ids (or ``[pos]``, treated as a batch of one).
        hook_name: e.g. ``sae.cfg.metadata.hook_name``.
        attention_mask: optional ``[batch, pos]``, 1 for real tokens and 0 for padding.

    Returns:
        ``[batch, pos, d_model]`` activations (``[batch, pos, ...]`` for non-residual hooks).
    """
    with torch.no_grad():
        check_hook_name(model, hook_name)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or tokens.shape[1] == 0:
            raise ValueError(
                f"tokens must have shape [batch, pos] with pos >= 1, got {tuple(tokens.shape)}"
            )
        layer = hook_layer(hook_name)
        # Blocks 0..layer are all that is needed for a hook inside block `layer` (and no unembedding).
        stop_at_layer = layer + 1 if layer is not None else None
        kwargs: dict[str, Any] = {}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask.to(model.cfg.device)
        _, cache = model.run_with_cache(
            tokens.to(model.cfg.device),
            names_filter=[hook_name],
            stop_at_layer=stop_at_layer,
            **kwargs,
        )
        return cache[hook_name]


@dataclass
class PromptFeatures:
    """A prompt encoded by an SAE.

    Attributes:
        str_tokens: the ``pos`` tokens as strings (with the BOS token if the SAE uses one).
        tokens: ``[pos]`` token ids.
        activations: ``[pos, d_in]`` model activations at the SAE's hook.
        feature_acts: ``[pos, d_sae]`` SAE feature activations (mostly zeros).
        reconstruction: ``[pos, d_in]`` the SAE's reconstruction of ``activations``.
        has_bos: whether position 0 is a BOS token.
    """

    str_tokens: list[str]
    tokens: torch.Tensor
    activations: torch.Tensor
    feature_acts: torch.Tensor
    reconstruction: torch.Tensor
    has_bos: bool


def encode_prompt(model: Any, sae: Any, prompt: str) -> PromptFeatures:
    """Run ``prompt`` through ``model`` up to the SAE's hook and encode it with ``sae``.

    Uses the SAE's metadata for the hook name and whether to prepend a BOS token.
    Returns a :class:`PromptFeatures` (shapes ``[pos, ...]``, batch dimension removed).
    """
    with torch.no_grad():
        check_prompt(prompt)
        hook_name = sae_hook_name(sae)
        prepend_bos = sae_prepend_bos(sae)
        tokens = model.to_tokens(prompt, prepend_bos=prepend_bos)
        acts = hook_activations(model, tokens, hook_name)[0]
        _check_last_dim(acts, sae.cfg.d_in, "the SAE's d_in", f"The activations at {hook_name}")
        feature_acts = sae.encode(acts.to(sae.device))
        reconstruction = sae.decode(feature_acts)
        return PromptFeatures(
            str_tokens=list(model.to_str_tokens(tokens[0])),
            tokens=tokens[0].cpu(),
            activations=acts.cpu(),
            feature_acts=feature_acts.cpu(),
            reconstruction=reconstruction.cpu(),
            has_bos=prepend_bos,
        )


def l0_per_token(feature_acts: torch.Tensor) -> torch.Tensor:
    """How many features are active (non-zero) at each token.

    Args:
        feature_acts: ``[..., d_sae]`` SAE feature activations.
    Returns:
        ``[...]`` integer counts (the L0 "norm" of each token's feature vector).
    """
    if feature_acts.ndim == 0:
        raise ValueError("feature_acts must have a last dimension of d_sae features, got a scalar")
    return (feature_acts != 0).sum(dim=-1)


def top_features_per_token(
    feature_acts: torch.Tensor,
    str_tokens: Sequence[str],
    k: int = 5,
    wide: bool = False,
) -> pd.DataFrame:
    """The ``k`` strongest features at each token, as a table.

    Args:
        feature_acts: ``[pos, d_sae]`` (or ``[1, pos, d_sae]``) SAE feature activations.
        str_tokens: the ``pos`` tokens as strings (``model.to_str_tokens``).
        k: how many features per token (1..d_sae).
        wide: ``False`` gives one row per (token, rank) with columns ``position, token, rank,
            feature, activation``; features that are not active are left out, so a token with
            fewer than ``k`` active features has fewer rows. ``True`` gives one row per token and
            one column per rank, each cell ``"feature (activation)"`` (blank if inactive).
    """
    if feature_acts.ndim == 3 and feature_acts.shape[0] == 1:
        feature_acts = feature_acts[0]
    if feature_acts.ndim != 2:
        raise ValueError(
            f"feature_acts must have shape [pos, d_sae] (or [1, pos, d_sae]), got {tuple(feature_acts.shape)}"
        )
    n_pos, d_sae = feature_acts.shape
    if len(str_tokens) != n_pos:
        raise ValueError(
            f"Got {len(str_tokens)} token strings for {n_pos} positions of feature_acts: "
            "pass model.to_str_tokens(...) of the same tokens."
        )
    if not 1 <= k <= d_sae:
        raise ValueError(f"k must be between 1 and d_sae={d_sae}, got {k}")
    values, indices = feature_acts.detach().float().cpu().topk(k, dim=-1)
    rows = []
    for pos in range(n_pos):
        for rank in range(k):
            value = values[pos, rank].item()
            if value == 0:
                continue
            rows.append(
                {
                    "position": pos,
                    "token": str_tokens[pos],
                    "rank": rank + 1,
                    "feature": indices[pos, rank].item(),
                    "activation": value,
                }
            )
    table = pd.DataFrame(rows, columns=["position", "token", "rank", "feature", "activation"])
    if not wide:
        return table
    wide_table = pd.DataFrame(
        {"position": range(n_pos), "token": [repr(t) for t in str_tokens]}
    ).set_index(["position", "token"])
    for rank in range(1, k + 1):
        column = [""] * n_pos
        for row in table[table["rank"] == rank].itertuples():
            column[row.position] = f"{row.feature} ({row.activation:.2f})"
        wide_table[f"top {rank}"] = column
    return wide_table
