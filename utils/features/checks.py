"""Checking input: the hook an SAE reads, feature indices, prompts and tensor widths.

Every function of :mod:`utils.features` checks its arguments with these and raises a
``ValueError`` (or ``TypeError``) that says what was expected.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import torch


def sae_hook_name(sae: Any) -> str:
    """The model hook an SAE reads, from ``sae.cfg.metadata.hook_name`` (SAELens 6.x).

    Raises ``ValueError`` when the SAE's metadata does not name one (an SAE built by hand, not
    loaded with ``SAE.from_pretrained``/``SAE.load_from_disk`` or trained by SAELens).
    """
    hook_name = getattr(sae.cfg.metadata, "hook_name", None)
    if not hook_name:
        raise ValueError(
            "This SAE's metadata names no hook (sae.cfg.metadata.hook_name is empty). Load the SAE "
            "with SAE.from_pretrained / SAE.load_from_disk, or set sae.cfg.metadata.hook_name to the "
            "model hook it reads, e.g. 'blocks.8.hook_resid_pre'."
        )
    return hook_name


def sae_prepend_bos(sae: Any) -> bool:
    """Whether the SAE was trained on text that starts with a BOS token (default ``True``)."""
    value = getattr(sae.cfg.metadata, "prepend_bos", None)
    return True if value is None else bool(value)


def check_hook_name(model: Any, hook_name: str) -> None:
    """Raise ``KeyError`` if ``model`` has no hook called ``hook_name``, naming the close ones."""
    if hook_name in model.hook_dict:
        return
    close = difflib.get_close_matches(hook_name, list(model.hook_dict), n=5, cutoff=0.5)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    raise KeyError(
        f"The model has no hook {hook_name!r}.{hint} Hook names look like "
        f"'blocks.<layer>.hook_resid_pre' with layer in 0..{model.cfg.n_layers - 1}; "
        "list them all with list(model.hook_dict)."
    )


def check_feature_index(feature: int, d_sae: int) -> int:
    """Return ``feature`` as an ``int`` if ``0 <= feature < d_sae``; otherwise raise ``IndexError``."""
    if isinstance(feature, torch.Tensor):
        if feature.numel() != 1:
            raise ValueError(
                f"feature must be one integer, got a tensor of shape {tuple(feature.shape)}"
            )
        feature = feature.item()
    if isinstance(feature, bool) or not float(feature).is_integer():
        raise TypeError(f"feature must be an integer index, got {feature!r}")
    feature = int(feature)
    if not 0 <= feature < d_sae:
        raise IndexError(
            f"Feature {feature} is out of range: this SAE has d_sae={d_sae} features, "
            f"numbered 0..{d_sae - 1}."
        )
    return feature


def check_prompt(prompt: str) -> str:
    """Return ``prompt`` if it is a non-empty string; otherwise raise ``TypeError``/``ValueError``."""
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ValueError("The prompt is empty: give at least one word of text.")
    return prompt


def _check_last_dim(tensor: torch.Tensor, size: int, what: str, name: str) -> None:
    if tensor.ndim == 0 or tensor.shape[-1] != size:
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)}, but its last dimension must be {what} = {size}."
        )


def hook_layer(hook_name: str) -> int | None:
    """The block a hook belongs to: ``L`` for ``blocks.L.<anything>``, ``None`` for a hook outside
    the blocks (``hook_embed``, ``ln_final.hook_normalized``). The book's one reading of it."""
    match = re.match(r"blocks\.(\d+)\.", hook_name)
    return int(match.group(1)) if match else None


def resid_pre_layer(hook_name: str) -> int | None:
    """``L`` when ``hook_name`` is ``blocks.L.hook_resid_pre`` (the residual stream entering block
    ``L``, where a run can start with TransformerLens' ``start_at_layer=L``), else ``None``."""
    layer = hook_layer(hook_name)
    return layer if hook_name == f"blocks.{layer}.hook_resid_pre" else None
