"""Directions in the model's activation space and the tokens they promote: a latent's unit decoder
row, seeded random directions, and how concentrated a direction's direct logit effects are (the
score tutorial 3 picks latents by)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .. import features as F


def unit_direction(sae: Any, latent: int) -> torch.Tensor:
    """The latent's decoder row ``W_dec[latent]`` scaled to length 1: ``[d_in]``.

    Decoder rows have different norms, so steering along the unit direction (with the scale set
    by the activation's norm) makes one number mean the same push for every latent.
    """
    latent = F.check_feature_index(latent, sae.cfg.d_sae)
    row = sae.W_dec[latent].detach().float()
    return row / row.norm()


def random_unit_direction(d_in: int, seed: int) -> torch.Tensor:
    """A random direction of length 1, ``[d_in]``, the same for the same ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(d_in, generator=generator)
    return direction / direction.norm()


# One home for the direct logit effects: utils.features (re-exported here for tutorial 3's readers)
direct_logit_effects = F.direct_logit_effects


def promoted_token_ids(model: Any, direction: torch.Tensor, k: int = 10) -> torch.Tensor:
    """The ``k`` token ids whose logits ``direction`` raises most directly: ``[k]``, largest
    first."""
    if not 1 <= k <= model.cfg.d_vocab:
        raise ValueError(f"k must be between 1 and d_vocab={model.cfg.d_vocab}, got {k}")
    return direct_logit_effects(model, direction).topk(k).indices


def direction_concentration(
    model: Any, directions: torch.Tensor, k: int = 10, chunk: int = 512
) -> torch.Tensor:
    """How concentrated each direction's direct logit effects are: ``[n, d_model] -> [n]``.

    The mean of the ``k`` largest logit effects (:func:`direct_logit_effects`), minus the mean
    over the vocabulary, in units of the effects' standard deviation. A direction that pushes a
    few tokens hard scores high; one that nudges thousands a little scores low. The score does
    not depend on the direction's length.
    """
    with torch.no_grad():
        if directions.ndim != 2:
            raise ValueError(f"directions must be [n, d_model], got {tuple(directions.shape)}")
        if not 1 <= k <= model.cfg.d_vocab:
            raise ValueError(f"k must be between 1 and d_vocab={model.cfg.d_vocab}, got {k}")
        scores = []
        for start in range(0, len(directions), chunk):
            effects = direct_logit_effects(
                model, directions[start : start + chunk]
            )  # [chunk, vocab]
            top = effects.topk(k, dim=-1).values.mean(-1)
            scores.append((top - effects.mean(-1)) / effects.std(-1))
        return torch.cat(scores) if scores else torch.zeros(0)


def logit_effect_concentration(
    model: Any,
    sae: Any,
    latents: torch.Tensor | Sequence[int],
    k: int = 10,
    chunk: int = 512,
) -> torch.Tensor:
    """:func:`direction_concentration` of latents' decoder rows ``W_dec[latents]``:
    ``[n_latents]``."""
    with torch.no_grad():
        latents = torch.as_tensor(latents, dtype=torch.long).flatten()
        for f in latents.tolist():
            F.check_feature_index(f, sae.cfg.d_sae)
        rows = sae.W_dec[latents.to(sae.W_dec.device)].detach()
        return direction_concentration(model, rows, k=k, chunk=chunk)
