"""Helpers shared by the tests of utils/circuits/loading.py (tests/test_circuits_checkpoints.py,
test_circuits_loading.py, test_circuits_hub.py): Dunefsky et al.'s transcoder forward pass written
out by hand, a random state dict in their format, and a random SAELens transcoder saved in a
folder that a copy of the tiny preset reads."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from utils.presets import get_preset


def by_hand(state: dict, x):
    """Dunefsky et al.'s transcoder forward pass, in float64, straight from their state dict."""
    s = {name: tensor.double() for name, tensor in state.items()}
    acts = ((x.double() - s["b_dec"]) @ s["W_enc"] + s["b_enc"]).clamp(min=0)
    return acts @ s["W_dec"] + s["b_dec_out"]


def random_state(d_in: int = 6, d_sae: int = 20, seed: int = 0) -> dict:
    """A Dunefsky-format state dict whose input bias is large enough to change which latents
    fire (a converter that forgot it would fail)."""
    g = torch.Generator().manual_seed(seed)
    return {
        "W_enc": torch.randn(d_in, d_sae, generator=g),
        "b_enc": torch.randn(d_sae, generator=g),
        "W_dec": torch.randn(d_sae, d_in, generator=g),
        "b_dec": 2 * torch.randn(d_in, generator=g),
        "b_dec_out": torch.randn(d_in, generator=g),
    }


def saved_transcoder(
    folder: Path, layer: int, d_in: int = 8, d_sae: int = 16, k: int | None = None
):
    """A random SAELens Transcoder for ``layer`` saved with ``save_model`` (TopK when ``k``)."""
    from sae_lens.saes.transcoder import Transcoder, TranscoderConfig

    cfg = TranscoderConfig(d_in=d_in, d_sae=d_sae, d_out=d_in, apply_b_dec_to_input=False)
    cfg.metadata.hook_name = f"blocks.{layer}.ln2.hook_normalized"
    cfg.metadata.hook_name_out = f"blocks.{layer}.hook_mlp_out"
    if k is not None:
        cfg.metadata.activation_fn = "topk"
        cfg.metadata.activation_fn_kwargs = {"k": k}
    torch.manual_seed(layer)
    transcoder = Transcoder(cfg)
    with torch.no_grad():
        transcoder.b_enc.normal_()
        transcoder.b_dec.normal_()
    transcoder.save_model(str(folder))
    return transcoder


def tiny_with(folder: Path):
    tiny = get_preset("tiny")
    return replace(tiny, circuits=replace(tiny.circuits, transcoder_path=folder))
