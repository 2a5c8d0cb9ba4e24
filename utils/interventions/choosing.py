"""Choosing what tutorial 3 steers and where: latents picked by a rule (:func:`pick_latents`), the
controls that share that rule (:func:`steering_controls`) and contexts from a sample of latent activations
(:func:`sample_contexts`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from .. import features as F
from .directions import direction_concentration, logit_effect_concentration, random_unit_direction


def _band(sample: F.FeatureSample, min_density: float, max_density: float) -> torch.Tensor:
    """``[n_candidates]`` latents whose density in ``sample`` lies in the range, in index order."""
    if not 0 <= min_density <= max_density <= 1:
        raise ValueError(
            f"need 0 <= min_density <= max_density <= 1, got {min_density} and {max_density}"
        )
    density = sample.density
    return ((density >= min_density) & (density <= max_density)).nonzero()[:, 0]


def pick_latents(
    model: Any,
    sae: Any,
    sample: F.FeatureSample,
    n: int,
    min_density: float,
    max_density: float,
    k: int = 10,
) -> pd.DataFrame:
    """Latents worth steering, chosen by a rule instead of by hand.

    Among latents whose density in ``sample`` lies in ``[min_density, max_density]``, the ``n``
    whose logit effects are most concentrated (:func:`logit_effect_concentration`). Returns a table
    with columns ``latent``, ``density``, ``concentration``, best first.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    density = sample.density
    candidates = _band(sample, min_density, max_density)
    if len(candidates) < n:
        raise ValueError(
            f"Only {len(candidates)} latents have density in [{min_density}, {max_density}] "
            f"in the sample; asked for {n}. Widen the range or use a larger sample."
        )
    scores = logit_effect_concentration(model, sae, candidates, k=k)
    best = scores.topk(n).indices
    table = pd.DataFrame(
        {
            "latent": candidates[best].tolist(),
            "density": density[candidates[best]].tolist(),
            "concentration": scores[best].tolist(),
        }
    )
    # every candidate's score, so that steering_controls need not compute them again
    table.attrs["band_scores"] = (min_density, max_density, k, candidates, scores)
    return table


# Tutorial 3's steering controls. The notebook passes the preset's
# InterventionSizes.random_directions (8 on both presets; SAE_BOOK_SCALE lowers it to 2, still a
# spread); this default is for other callers.
CONTROL_DIRECTIONS = 8  # directions per control
MIN_RANDOM_DRAWS = 200  # the rule picks its random directions out of at least this many...
MAX_RANDOM_DRAWS = 20_000  # ...and at most this many (each draw costs a [d_model] @ W_U)


@dataclass
class SteeringControls:
    """The directions of the steering controls, one row each.

    Attributes:
        table: columns ``group`` (which control), ``name`` (``"latent 12"``, ``"random 7"``) and
            ``concentration`` (:func:`direction_concentration`), in the order of ``directions``.
        directions: ``[n_rows, d_in]`` unit vectors.
        n_candidates: latents in the density band (the pool the rule picked from).
        n_draws: random directions drawn (the pool the rule picked the random control from).
    """

    table: pd.DataFrame
    directions: torch.Tensor
    n_candidates: int
    n_draws: int


# The controls' names (the ``group`` column of SteeringControls.table)
RANDOM = "random"
RANDOM_PICKED = "random, rule-picked"
MEDIAN_LATENTS = "latents, median score"
RUNNERS_UP = "runners-up"


def steering_controls(
    model: Any,
    sae: Any,
    sample: F.FeatureSample,
    picked: pd.DataFrame,
    min_density: float,
    max_density: float,
    k: int = 10,
    n: int = CONTROL_DIRECTIONS,
    seed: int = 0,
) -> SteeringControls:
    """Directions to steer along beside the latents :func:`pick_latents` chose, four controls of
    ``n`` directions each (the ``group`` column):

    - ``RANDOM``: the first ``n`` of the random draws, not selected at all;
    - ``RANDOM_PICKED``: the ``n`` draws with the highest concentration, out of as many draws as
      give them the picked latents' selection ratio (``n`` of ``n * n_candidates / n_picked``
      draws, within ``MIN_RANDOM_DRAWS..MAX_RANDOM_DRAWS``): the rule applied to random
      directions;
    - ``MEDIAN_LATENTS``: the ``n`` latents of the density band, not picked, whose concentration
      is nearest the band's median;
    - ``RUNNERS_UP``: the band's latents ranked just after the picked ones.

    Random draw ``i`` is :func:`random_unit_direction` with seed ``seed + i``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    candidates = _band(sample, min_density, max_density)
    chosen = set(picked["latent"].tolist())
    others = torch.tensor([int(f) for f in candidates if int(f) not in chosen], dtype=torch.long)
    if len(others) < 2 * n:
        raise ValueError(
            f"The density band holds {len(others)} latents besides the picked ones; the controls "
            f"need {2 * n}. Widen the range or use a larger sample."
        )
    cached = picked.attrs.get("band_scores")
    if (
        cached is not None
        and cached[:3] == (min_density, max_density, k)
        and torch.equal(cached[3], candidates)
    ):  # pick_latents' scores of the same band
        scores = cached[4][~torch.isin(candidates, torch.tensor(sorted(chosen)))]
    else:
        scores = logit_effect_concentration(model, sae, others, k=k)
    ranked = scores.argsort(descending=True)
    runners_up = ranked[:n]
    median = scores.median()
    near_median = (scores - median).abs().argsort()
    near_median = near_median[~torch.isin(near_median, runners_up)][:n]

    wanted = math.ceil(n * len(candidates) / len(picked))
    n_draws = min(max(wanted, MIN_RANDOM_DRAWS, n), MAX_RANDOM_DRAWS)
    draws = torch.stack([random_unit_direction(sae.cfg.d_in, seed + i) for i in range(n_draws)])
    draw_scores = direction_concentration(model, draws, k=k)
    best = draw_scores.topk(n).indices

    unit_rows = sae.W_dec.detach().float().cpu()
    unit_rows = unit_rows / unit_rows.norm(dim=-1, keepdim=True)
    parts = [
        (RANDOM, [f"random {i}" for i in range(n)], draws[:n], draw_scores[:n]),
        (
            RANDOM_PICKED,
            [f"random {int(i)}" for i in best],
            draws[best],
            draw_scores[best],
        ),
        (
            MEDIAN_LATENTS,
            [f"latent {int(others[j])}" for j in near_median],
            unit_rows[others[near_median]],
            scores[near_median],
        ),
        (
            RUNNERS_UP,
            [f"latent {int(others[j])}" for j in runners_up],
            unit_rows[others[runners_up]],
            scores[runners_up],
        ),
    ]
    table = pd.DataFrame(
        [
            {"group": group, "name": name, "concentration": float(score)}
            for group, names, _, group_scores in parts
            for name, score in zip(names, group_scores)
        ]
    )
    directions = torch.cat([dirs for _, _, dirs, _ in parts])
    return SteeringControls(table, directions, len(candidates), n_draws)


def sample_contexts(
    sample: F.FeatureSample, context_size: int, n: int, latent: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``n`` contexts of ``context_size`` tokens from the sample's texts, in sample order:
    ``(tokens [n, context_size], counted [n, context_size])``.

    Only texts with at least ``context_size`` real tokens are used (so no padding); with
    ``latent``, only those where that latent fires within the first ``context_size`` tokens.
    Raises ``ValueError`` if no text qualifies.
    """
    if not 2 <= context_size <= sample.context_size:
        raise ValueError(
            f"context_size must be in 2..{sample.context_size} (the sample's), got {context_size}"
        )
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    ok = sample.lengths >= context_size  # [n_texts]
    if latent is not None:
        text, pos, _ = sample.feature_activations(latent)
        fires = torch.zeros_like(ok)
        fires[text[pos < context_size]] = True
        ok &= fires
    chosen = ok.nonzero()[:n, 0]
    if len(chosen) == 0:
        what = f" where latent {latent} fires" if latent is not None else ""
        raise ValueError(f"No text of the sample has {context_size} tokens{what}.")
    return sample.tokens[chosen, :context_size], sample.counted[chosen, :context_size]
