"""Using SAE latents on the model: steering along a latent's decoder direction, ablating a latent,
and attributing a prediction to every latent at every position (tutorial 3). Vocabulary: a
*latent* is one unit of the SAE (``feature`` in argument and column names, as in SAELens); a
*feature* is what it represents.

Everything takes the model, the SAE and tensors as arguments, works for any sizes and raises a clear
error on bad input (a latent index out of range, a non-finite steering scale, a hook the model
lacks, an empty prompt).

Shapes use these names: ``batch``/``n`` contexts, ``pos``/``ctx`` tokens per context, ``d_in`` the
SAE's input width (the model's ``d_model``), ``d_sae`` the number of latents, ``d_vocab`` the
vocabulary, ``k`` tokens kept per latent.

Main entry points
-----------------
Choosing latents and contexts
    :func:`direction_concentration`, :func:`logit_effect_concentration`, :func:`pick_features`,
    :func:`sample_contexts`; the steering controls: :func:`steering_controls`
Steering (the SAE detached: a plain hook adds to the model's activation)
    :func:`unit_direction`, :func:`random_unit_direction`, :func:`promoted_token_ids`,
    :func:`steering_hooks`, :func:`generate_steered`, :func:`steering_curve`
Ablation (the SAE attached with its error term, so only the removed latent changes anything)
    :func:`ablate_feature` -> :class:`AblationEffect`
Attribution (gradient x activation, one backward pass) and its check against real ablations
    :func:`next_token_attribution` -> :class:`Attribution`, :func:`ablation_effects`,
    :func:`compare_attribution_with_ablation`, :func:`agreement`, :func:`top_pair_agreement`,
    :func:`attribution_regime`
Figures
    :func:`steering_spread_figure`, :func:`steering_gain_scatter`, :func:`attribution_scatter`
    (on :func:`signed_log` axes)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from . import features as F

Hook = Callable[[torch.Tensor, Any], torch.Tensor]


# --------------------------------------------------------------------------------------------
# Checking input
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Directions and the tokens they promote
# --------------------------------------------------------------------------------------------


def unit_direction(sae: Any, feature: int) -> torch.Tensor:
    """The feature's decoder row ``W_dec[feature]`` scaled to length 1: ``[d_in]``.

    Decoder rows have different norms, so steering along the unit direction (with the scale set
    by the activation's norm) makes one number mean the same push for every latent.
    """
    feature = F.check_feature_index(feature, sae.cfg.d_sae)
    row = sae.W_dec[feature].detach().float()
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


@torch.no_grad()
def direction_concentration(
    model: Any, directions: torch.Tensor, k: int = 10, chunk: int = 512
) -> torch.Tensor:
    """How concentrated each direction's direct logit effects are: ``[n, d_model] -> [n]``.

    The mean of the ``k`` largest logit effects (:func:`direct_logit_effects`), minus the mean
    over the vocabulary, in units of the effects' standard deviation. A direction that pushes a
    few tokens hard scores high; one that nudges thousands a little scores low. The score does
    not depend on the direction's length.
    """
    if directions.ndim != 2:
        raise ValueError(f"directions must be [n, d_model], got {tuple(directions.shape)}")
    if not 1 <= k <= model.cfg.d_vocab:
        raise ValueError(f"k must be between 1 and d_vocab={model.cfg.d_vocab}, got {k}")
    scores = []
    for start in range(0, len(directions), chunk):
        effects = direct_logit_effects(model, directions[start : start + chunk])  # [chunk, vocab]
        top = effects.topk(k, dim=-1).values.mean(-1)
        scores.append((top - effects.mean(-1)) / effects.std(-1))
    return torch.cat(scores) if scores else torch.zeros(0)


@torch.no_grad()
def logit_effect_concentration(
    model: Any,
    sae: Any,
    features: torch.Tensor | Sequence[int],
    k: int = 10,
    chunk: int = 512,
) -> torch.Tensor:
    """:func:`direction_concentration` of latents' decoder rows ``W_dec[features]``:
    ``[n_features]``."""
    features = torch.as_tensor(features, dtype=torch.long).flatten()
    for f in features.tolist():
        F.check_feature_index(f, sae.cfg.d_sae)
    rows = sae.W_dec[features.to(sae.W_dec.device)].detach()
    return direction_concentration(model, rows, k=k, chunk=chunk)


def _band(sample: F.FeatureSample, min_density: float, max_density: float) -> torch.Tensor:
    """``[n_candidates]`` latents whose density in ``sample`` lies in the range, in index order."""
    if not 0 <= min_density <= max_density <= 1:
        raise ValueError(
            f"need 0 <= min_density <= max_density <= 1, got {min_density} and {max_density}"
        )
    density = sample.density
    return ((density >= min_density) & (density <= max_density)).nonzero()[:, 0]


def pick_features(
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
    with columns ``feature``, ``density``, ``concentration``, best first.
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
            "feature": candidates[best].tolist(),
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
    """Directions to steer along beside the latents :func:`pick_features` chose, four controls of
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
    chosen = set(picked["feature"].tolist())
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
    ):  # pick_features' scores of the same band
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
    sample: F.FeatureSample, context_size: int, n: int, feature: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``n`` contexts of ``context_size`` tokens from the sample's texts, in sample order:
    ``(tokens [n, context_size], counted [n, context_size])``.

    Only texts with at least ``context_size`` real tokens are used (so no padding); with
    ``feature``, only those where that latent fires within the first ``context_size`` tokens.
    Raises ``ValueError`` if no text qualifies.
    """
    if not 2 <= context_size <= sample.context_size:
        raise ValueError(
            f"context_size must be in 2..{sample.context_size} (the sample's), got {context_size}"
        )
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    ok = sample.lengths >= context_size  # [n_texts]
    if feature is not None:
        text, pos, _ = sample.feature_activations(feature)
        fires = torch.zeros_like(ok)
        fires[text[pos < context_size]] = True
        ok &= fires
    chosen = ok.nonzero()[:n, 0]
    if len(chosen) == 0:
        what = f" where feature {feature} fires" if feature is not None else ""
        raise ValueError(f"No text of the sample has {context_size} tokens{what}.")
    return sample.tokens[chosen, :context_size], sample.counted[chosen, :context_size]


# --------------------------------------------------------------------------------------------
# Steering
# --------------------------------------------------------------------------------------------


def steering_hooks(
    model: Any, hook_name: str, direction: torch.Tensor, scale: float, start_position: int = 0
) -> list[tuple[str, Hook]]:
    """Forward hooks that add ``scale * ||x|| * direction`` to the activation ``x`` at
    ``hook_name``, at every position from ``start_position`` on (each position with its own norm).

    ``direction`` is ``[d_model]`` (use a unit vector, :func:`unit_direction`); ``scale`` is the
    push as a fraction of the activation's norm. ``start_position=1`` leaves a BOS token alone.
    Use with ``model.hooks(fwd_hooks=...)`` or ``model.run_with_hooks(..., fwd_hooks=...)``, with
    no SAE attached at ``hook_name``.
    """
    F.check_hook_name(model, hook_name)
    scale = check_scale(scale)
    direction = _check_direction(direction, model.cfg.d_model)
    if start_position < 0:
        raise ValueError(f"start_position must be >= 0, got {start_position}")

    def hook(acts: torch.Tensor, hook: Any) -> torch.Tensor:  # acts: [batch, pos, d_model]
        d = direction.to(acts.device, acts.dtype)
        push = scale * acts.norm(dim=-1, keepdim=True) * d  # [batch, pos, d_model]
        push[:, :start_position] = 0
        return acts + push

    return [(hook_name, hook)]


@torch.no_grad()
def generate_steered(
    model: Any,
    hook_name: str,
    prompt: str,
    direction: torch.Tensor,
    scales: Sequence[float],
    max_new_tokens: int = 20,
    prepend_bos: bool = True,
) -> pd.DataFrame:
    """Greedy continuations of ``prompt`` while steering along ``direction`` at each scale.

    Returns one row per scale with columns ``scale`` and ``continuation`` (the new text only).
    Greedy decoding makes the result the same on every run.
    """
    F.check_prompt(prompt)
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    tokens = model.to_tokens(prompt, prepend_bos=prepend_bos)
    rows = []
    for scale in scales:
        hooks = steering_hooks(model, hook_name, direction, scale, int(prepend_bos))
        with model.hooks(fwd_hooks=hooks):
            # No key-value cache: every step re-runs the whole text, so position 0 stays BOS.
            out = model.generate(
                tokens,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                use_past_kv_cache=False,
                verbose=False,
                stop_at_eos=False,
            )
        rows.append(
            {"scale": float(scale), "continuation": model.to_string(out[0, tokens.shape[1] :])}
        )
    return pd.DataFrame(rows)


def _scored_mask(tokens: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """Positions whose prediction can be scored: counted, and followed by a counted token."""
    scored = torch.zeros_like(counted)
    scored[:, :-1] = counted[:, :-1] & counted[:, 1:]
    return scored


@torch.no_grad()
def steering_curve(
    model: Any,
    hook_name: str,
    tokens: torch.Tensor,
    counted: torch.Tensor,
    direction: torch.Tensor,
    scales: Sequence[float],
    score_tokens: dict[str, torch.Tensor],
    start_position: int = 1,
    batch_size: int = 16,
    from_hook: bool = True,
) -> pd.DataFrame:
    """How steering along ``direction`` changes the log-probability of sets of tokens, and the loss.

    Args:
        tokens: ``[n, ctx]`` contexts (e.g. ``sample.tokens``).
        counted: ``[n, ctx]`` bool, the real (non-BOS, non-padding) positions (``sample.counted``).
        direction: ``[d_model]``, steered as in :func:`steering_hooks`.
        scales: the scales ``c`` (fractions of the activation's norm) to try; include 0.
        score_tokens: named sets of token ids (each ``[k]``) whose mean log-probability is
            measured, all in the same forward passes.
        from_hook: with ``hook_name`` a ``blocks.L.hook_resid_pre``, run blocks ``0..L-1`` once
            per batch (the push cannot change them) and start every scale's pass at block ``L``
            from that cached residual (TransformerLens' ``start_at_layer``); ``False``, or any
            other hook, runs every pass from the tokens. Same numbers either way
            (tests/test_interventions.py).

    Returns:
        One row per (scale, token set): ``scale``, ``scored`` (the set's name), ``logprob`` (mean
        over scored positions of the mean log-probability of the set's tokens), ``loss``
        (next-token cross-entropy at the same positions), and ``logprob_gain``/``loss_increase``
        relative to scale 0 (NaN if 0 is not among the scales).
    """
    tokens = _check_tokens(tokens)
    if counted.shape != tokens.shape:
        raise ValueError(f"counted has shape {tuple(counted.shape)}, tokens {tuple(tokens.shape)}")
    if not score_tokens:
        raise ValueError("score_tokens is empty: name at least one set of token ids to score")
    ids = {name: torch.as_tensor(v, dtype=torch.long).flatten() for name, v in score_tokens.items()}
    scored = _scored_mask(tokens, counted.bool())
    if not scored.any():
        raise ValueError("No position to score: the contexts need two real tokens in a row.")
    layer = _resid_pre_layer(hook_name) if from_hook else None
    starts = range(0, tokens.shape[0], batch_size)
    inputs = [tokens[start : start + batch_size].to(model.cfg.device) for start in starts]
    kwargs = {}
    if layer is not None:  # the residual entering block `layer`: [b, ctx, d_model] per batch
        inputs = [model(batch, stop_at_layer=layer) for batch in inputs]
        kwargs = {"start_at_layer": layer}
    rows = []
    for scale in scales:
        hooks = steering_hooks(model, hook_name, direction, scale, start_position)
        sum_lp = dict.fromkeys(ids, 0.0)
        sum_loss = 0.0
        n = 0
        for start, first in zip(starts, inputs):
            batch = tokens[start : start + batch_size].to(model.cfg.device)
            mask = scored[start : start + batch_size].to(model.cfg.device)
            logits = model.run_with_hooks(first, fwd_hooks=hooks, **kwargs)  # [b, ctx, d_vocab]
            picked = logits[mask].float().log_softmax(-1)  # [n_scored, d_vocab]
            next_ids = batch[:, 1:][mask[:, :-1]]
            for name, token_ids in ids.items():
                sum_lp[name] += picked[:, token_ids.to(picked.device)].mean(-1).sum().item()
            sum_loss += -picked.gather(1, next_ids[:, None]).sum().item()
            n += picked.shape[0]
        for name in ids:
            rows.append(
                {
                    "scale": float(scale),
                    "scored": name,
                    "logprob": sum_lp[name] / n,
                    "loss": sum_loss / n,
                }
            )
    frame = pd.DataFrame(rows)
    base = frame[frame["scale"] == 0].set_index("scored")
    nan = pd.Series(float("nan"), index=list(ids))
    lp0 = frame["scored"].map(base["logprob"] if len(base) else nan)
    loss0 = frame["scored"].map(base["loss"] if len(base) else nan)
    frame["logprob_gain"] = frame["logprob"] - lp0
    frame["loss_increase"] = frame["loss"] - loss0
    return frame


# --------------------------------------------------------------------------------------------
# Ablation, with the SAE's error term kept
# --------------------------------------------------------------------------------------------


def _acts_post_name(sae: Any) -> str:
    return F.sae_hook_name(sae) + ".hook_sae_acts_post"


@dataclass
class AblationEffect:
    """What removing one latent did at the positions where it fired.

    Attributes:
        feature: the latent removed.
        n_positions: predictions measured (positions where it fired, followed by a real token).
        loss_clean, loss_ablated: mean next-token cross-entropy there, before and after.
        logprob_change: ``[d_vocab]`` mean change of each token's log-probability there
            (ablated minus clean; negative: the latent was raising that token).
    """

    feature: int
    n_positions: int
    loss_clean: float
    loss_ablated: float
    logprob_change: torch.Tensor

    @property
    def loss_increase(self) -> float:
        return self.loss_ablated - self.loss_clean

    def tokens_losing_most(self, vocab: Sequence[str], k: int = 10) -> pd.DataFrame:
        """The ``k`` tokens whose log-probability fell most, with the change (rank 1 first)."""
        values, ids = self.logprob_change.topk(k, largest=False)
        return pd.DataFrame(
            {
                "token": [vocab[i] for i in ids.tolist()],
                "token_id": ids.tolist(),
                "logprob_change": values.tolist(),
            },
            index=pd.RangeIndex(1, k + 1, name="rank"),
        )


@torch.no_grad()
def ablate_feature(
    model: Any,
    sae: Any,
    tokens: torch.Tensor,
    counted: torch.Tensor,
    feature: int,
    batch_size: int = 16,
    direct_path: bool = True,
) -> AblationEffect:
    """Remove latent ``feature`` (set its activation to 0 everywhere) with the SAE spliced in and
    its error term kept, and measure the predictions at the positions where the latent fired.

    With ``use_error_term=True`` the spliced model computes exactly what the model does; setting
    one latent to zero then subtracts just its contribution ``a * W_dec[feature]`` from the
    activation, and nothing else changes.

    With ``direct_path=False`` the removed contribution is added back to the last residual stream
    (``blocks.{n_layers - 1}.hook_resid_post``, just before the final LayerNorm), so the removed
    vector's own path to the unembedding is left intact: what changes the logits is only how the
    blocks after the SAE's hook respond to the removal (the part of the effect that is not the
    direct path). Only for residual-stream hooks.

    Args:
        tokens: ``[n, ctx]`` contexts; ``counted``: ``[n, ctx]`` bool, the real positions.
    Raises ``ValueError`` if the latent never fires at a scored position of these contexts.
    """
    feature = F.check_feature_index(feature, sae.cfg.d_sae)
    tokens = _check_tokens(tokens)
    scored = _scored_mask(tokens, counted.bool())
    acts_name = _acts_post_name(sae)
    out_name = F.sae_hook_name(sae) + ".hook_sae_output"
    last_resid = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    if not direct_path and "hook_resid" not in F.sae_hook_name(sae):
        raise ValueError(
            f"direct_path=False needs an SAE on the residual stream; this one reads "
            f"{F.sae_hook_name(sae)}"
        )
    d_vocab = model.cfg.d_vocab
    change = torch.zeros(d_vocab, dtype=torch.float64)
    loss_clean = loss_ablated = 0.0
    n = 0
    store: dict[str, torch.Tensor] = {}

    def record(acts: torch.Tensor, hook: Any) -> torch.Tensor:
        store["fired"] = acts[..., feature] > 0
        return acts

    def remove(acts: torch.Tensor, hook: Any) -> torch.Tensor:
        acts = acts.clone()
        acts[..., feature] = 0
        return acts

    def keep(name: str):
        def hook(acts: torch.Tensor, hook: Any) -> torch.Tensor:
            store[name] = acts
            return acts

        return hook

    def restore(resid: torch.Tensor, hook: Any) -> torch.Tensor:
        return resid + (store["clean_out"] - store["ablated_out"])  # + a * W_dec[feature]

    clean_hooks = [(acts_name, record)]
    ablated_hooks = [(acts_name, remove)]
    if not direct_path:
        clean_hooks.append((out_name, keep("clean_out")))
        ablated_hooks += [(out_name, keep("ablated_out")), (last_resid, restore)]
    with model.saes(saes=[sae], use_error_term=True):
        for start in range(0, tokens.shape[0], batch_size):
            batch = tokens[start : start + batch_size].to(model.cfg.device)
            clean = model.run_with_hooks(batch, fwd_hooks=clean_hooks)
            mask = store["fired"] & scored[start : start + batch_size].to(batch.device)
            if not mask.any():
                continue
            ablated = model.run_with_hooks(batch, fwd_hooks=ablated_hooks)
            next_ids = batch[:, 1:][mask[:, :-1]][:, None]
            lp_clean = clean.float().log_softmax(-1)[mask]  # [n_fired, d_vocab]
            lp_ablated = ablated.float().log_softmax(-1)[mask]
            change += (lp_ablated - lp_clean).double().sum(0).cpu()
            loss_clean -= lp_clean.gather(1, next_ids).sum().item()
            loss_ablated -= lp_ablated.gather(1, next_ids).sum().item()
            n += int(mask.sum())
            store.clear()
    if n == 0:
        raise ValueError(
            f"Latent {feature} never fires at a scored position of these contexts: pass contexts "
            "where it fires (e.g. the sample's texts from sample.feature_activations(feature))."
        )
    return AblationEffect(feature, n, loss_clean / n, loss_ablated / n, (change / n).float())


# --------------------------------------------------------------------------------------------
# Attribution: gradient x activation
# --------------------------------------------------------------------------------------------


@dataclass
class Attribution:
    """Gradient x activation of a metric for every latent at every position.

    Attributes:
        tokens: ``[batch, pos]`` the contexts.
        target_positions: ``[batch]`` the position whose prediction the metric scores.
        metric: ``[batch]`` log-probability of the correct next token at the target position.
        feature_acts: ``[batch, pos, d_sae]`` the latents' activations.
        attribution: ``[batch, pos, d_sae]`` activation times the metric's gradient with respect
            to it: the first-order estimate of how much the metric would *drop* if the latent
            were removed at that position (so removing it changes the metric by about ``-attr``).
        probability: ``[batch]`` the model's probability of the correct next token.
    """

    tokens: torch.Tensor
    target_positions: torch.Tensor
    metric: torch.Tensor
    feature_acts: torch.Tensor
    attribution: torch.Tensor
    probability: torch.Tensor


def _correct_logprob(logits: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor):
    rows = torch.arange(tokens.shape[0], device=logits.device)
    # pick the target positions first: a log-softmax over every position would hold another
    # [batch, pos, d_vocab] tensor (1.6 GB for 64 GPT-2 contexts of 128 tokens)
    logp = logits[rows, positions].float().log_softmax(-1)  # [batch, d_vocab]
    return logp.gather(1, tokens[rows, positions + 1][:, None])[:, 0]  # [batch]


def next_token_attribution(
    model: Any,
    sae: Any,
    tokens: torch.Tensor,
    target_positions: torch.Tensor | Sequence[int],
    batch_size: int = 4,
) -> Attribution:
    """Attribute ``log p(correct next token)`` at each context's target position to every latent
    at every position, with one forward and one backward pass per batch of ``batch_size`` contexts.

    The SAE is spliced in with its error term, so the forward pass is the model's own. A hook
    returns the latents' activations as a fresh leaf tensor that requires a gradient; the sum of
    a batch's metrics is differentiated once (contexts do not interact, so each one's gradient is
    its own). Small batches keep memory down: the backward pass holds several ``[batch, pos,
    d_sae]`` tensors (on GPT-2 small, tutorial 3's peak fell from 7.2 to 4.8 GB when its 20
    contexts went 4 at a time instead of all at once).

    Args:
        tokens: ``[batch, pos]``; target_positions: ``[batch]``, each in ``0..pos-2``.
    """
    tokens = _check_tokens(tokens).to(model.cfg.device)
    positions = torch.as_tensor(target_positions, dtype=torch.long).flatten().to(tokens.device)
    if positions.shape[0] != tokens.shape[0]:
        raise ValueError(f"{positions.shape[0]} target positions for {tokens.shape[0]} contexts")
    if (positions < 0).any() or (positions > tokens.shape[1] - 2).any():
        raise ValueError(
            f"target positions must be in 0..{tokens.shape[1] - 2} (the next token must exist), "
            f"got {positions.tolist()}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    store: dict[str, torch.Tensor] = {}

    def leaf(acts: torch.Tensor, hook: Any) -> torch.Tensor:
        store["acts"] = acts.detach().requires_grad_(True)
        return store["acts"]

    metrics, feature_acts, attributions = [], [], []
    with torch.enable_grad(), model.saes(saes=[sae], use_error_term=True):
        for start in range(0, tokens.shape[0], batch_size):
            batch = tokens[start : start + batch_size]
            logits = model.run_with_hooks(batch, fwd_hooks=[(_acts_post_name(sae), leaf)])
            metric = _correct_logprob(logits, batch, positions[start : start + batch_size])
            metric.sum().backward()
            acts = store.pop("acts")
            metrics.append(metric.detach().cpu())
            feature_acts.append(acts.detach().cpu())
            attributions.append((acts * acts.grad).detach().cpu())
            del logits, metric, acts
    metric = torch.cat(metrics)
    return Attribution(
        tokens=tokens.cpu(),
        target_positions=positions.cpu(),
        metric=metric,
        feature_acts=torch.cat(feature_acts),
        attribution=torch.cat(attributions),
        probability=metric.exp(),
    )


def _resid_pre_layer(hook_name: str) -> int | None:
    """``L`` for ``blocks.L.hook_resid_pre``, else ``None``."""
    match = re.fullmatch(r"blocks\.(\d+)\.hook_resid_pre", hook_name)
    return int(match.group(1)) if match else None


@torch.no_grad()
def ablation_effects(
    model: Any,
    sae: Any,
    tokens: torch.Tensor,
    target_position: int,
    pairs: Sequence[tuple[int, int]],
    batch_size: int = 16,
    from_hook: bool = True,
) -> torch.Tensor:
    """The real change in ``log p(correct next token)`` at ``target_position`` when one latent is
    removed at one position, for each ``(position, latent)`` in ``pairs``: ``[n_pairs]``.

    One context (``tokens``: ``[pos]`` or ``[1, pos]``), the SAE spliced in with its error term;
    each pair is one row of a batch, ``batch_size`` rows (ablations) at a time.

    The blocks before the SAE's hook compute the same thing in every ablation, so with
    ``from_hook`` (and an SAE on ``blocks.L.hook_resid_pre``) the clean run caches the residual
    stream there and each batch of ablations starts at block ``L`` from it (TransformerLens'
    ``start_at_layer``) instead of re-running blocks ``0..L-1``; other hooks, or
    ``from_hook=False``, run every ablation from the tokens. Either way only the target position
    is unembedded. Same numbers as full forward passes (tests/test_interventions.py), less time
    (benchmarks/ablation_start_at_layer.py).
    """
    tokens = _check_tokens(tokens)
    if tokens.shape[0] != 1:
        raise ValueError(f"give one context ([pos] or [1, pos]), got {tuple(tokens.shape)}")
    if not 0 <= target_position <= tokens.shape[1] - 2:
        raise ValueError(f"target_position must be in 0..{tokens.shape[1] - 2}")
    for pos, f in pairs:
        F.check_feature_index(f, sae.cfg.d_sae)
        if not 0 <= pos < tokens.shape[1]:
            raise IndexError(f"position {pos} is not in 0..{tokens.shape[1] - 1}")
    tokens = tokens.to(model.cfg.device)
    acts_name = _acts_post_name(sae)
    layer = _resid_pre_layer(F.sae_hook_name(sae)) if from_hook else None
    store: dict[str, torch.Tensor] = {}
    final_name = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"

    def keep(name: str):
        def hook(acts: torch.Tensor, hook: Any) -> torch.Tensor:
            store[name] = acts.detach()
            return acts

        return hook

    correct = tokens[0, target_position + 1]

    def correct_logprob(input: torch.Tensor, hooks: list, **kwargs: Any) -> torch.Tensor:
        """``[batch]`` log p(correct token) at the target position. Only that position is
        unembedded: the other positions' logits (most of a pass's cost on a wide vocabulary)
        are never computed."""
        hooks = hooks + [(final_name, keep("final"))]
        model.run_with_hooks(input, return_type=None, fwd_hooks=hooks, **kwargs)
        final = store.pop("final")[:, target_position : target_position + 1]
        if model.cfg.normalization_type is not None:
            final = model.ln_final(final)
        logits = model.unembed(final)
        cap = getattr(model.cfg, "output_logits_soft_cap", -1.0)
        if cap is not None and cap > 0:  # as TransformerLens' forward does (Gemma 2)
            logits = cap * torch.tanh(logits / cap)
        return logits[:, 0].float().log_softmax(-1)[:, correct]

    with model.saes(saes=[sae], use_error_term=True):
        input_name = F.sae_hook_name(sae) + ".hook_sae_input"
        clean = correct_logprob(tokens, [(input_name, keep("resid"))])[0]
        changes = []
        for start in range(0, len(pairs), batch_size):
            chunk = torch.tensor(pairs[start : start + batch_size], dtype=torch.long)
            rows = torch.arange(len(chunk))

            def remove(acts: torch.Tensor, hook: Any, chunk=chunk, rows=rows) -> torch.Tensor:
                acts = acts.clone()
                acts[rows, chunk[:, 0], chunk[:, 1]] = 0
                return acts

            if layer is None:
                batch = tokens.expand(len(chunk), -1)
                changes.append(correct_logprob(batch, [(acts_name, remove)]) - clean)
            else:  # the SAE at block `layer`'s hook_resid_pre runs first, on the cached input
                resid = store["resid"].expand(len(chunk), -1, -1)
                lp = correct_logprob(resid, [(acts_name, remove)], start_at_layer=layer)
                changes.append(lp - clean)
    return torch.cat(changes).cpu() if changes else torch.zeros(0)


def compare_attribution_with_ablation(
    model: Any,
    sae: Any,
    attribution: Attribution,
    n_top: int = 20,
    n_random: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """Check gradient x activation against real ablations, context by context.

    For each context of ``attribution``: the ``n_top`` (position, feature) pairs with the largest
    ``|attribution|``, plus ``n_random`` other active pairs drawn at random (seeded), each ablated
    for real with :func:`ablation_effects`.

    Returns one row per pair: ``context``, ``position``, ``feature``, ``activation``,
    ``predicted`` (``-attribution``: the linear estimate of the change in log-probability),
    ``actual`` (the real change), ``chosen`` (``"top"`` or ``"random"``), ``probability`` (of the
    correct next token, clean) and ``share_of_norm`` (``activation * ||W_dec[f]||`` over the norm
    of the SAE's input at that position).
    """
    generator = torch.Generator().manual_seed(seed)
    norms = sae.W_dec.detach().float().norm(dim=-1).cpu()  # [d_sae]
    rows = []
    for i in range(attribution.tokens.shape[0]):
        target = int(attribution.target_positions[i])
        acts = attribution.feature_acts[i, : target + 1]  # later positions cannot matter
        attr = attribution.attribution[i, : target + 1]
        active = (acts > 0).nonzero()  # [n_active, 2]: (position, feature)
        if len(active) == 0:
            continue
        magnitude = attr[active[:, 0], active[:, 1]].abs()
        top = magnitude.argsort(descending=True)[:n_top]
        rest = magnitude.argsort(descending=True)[n_top:]
        rand = rest[torch.randperm(len(rest), generator=generator)[:n_random]]
        picks = [(int(j), "top") for j in top] + [(int(j), "random") for j in rand]
        pairs = [(int(active[j, 0]), int(active[j, 1])) for j, _ in picks]
        actual = ablation_effects(model, sae, attribution.tokens[i], target, pairs)
        x_norm = _input_norms(model, sae, attribution.tokens[i])
        for (_j, chosen), (pos, f), real in zip(picks, pairs, actual.tolist()):
            a = float(acts[pos, f])
            rows.append(
                {
                    "context": i,
                    "position": pos,
                    "feature": f,
                    "activation": a,
                    "predicted": -float(attr[pos, f]),
                    "actual": real,
                    "chosen": chosen,
                    "probability": float(attribution.probability[i]),
                    "share_of_norm": a * float(norms[f]) / float(x_norm[pos]),
                }
            )
    return pd.DataFrame(rows)


@torch.no_grad()
def _input_norms(model: Any, sae: Any, tokens: torch.Tensor) -> torch.Tensor:
    """``[pos]`` norms of the SAE's input activation for one context ``[pos]``."""
    acts = F.hook_activations(model, tokens[None], F.sae_hook_name(sae))[0]
    return acts.float().norm(dim=-1).cpu()


def agreement(frame: pd.DataFrame) -> dict[str, float]:
    """Spearman and Pearson correlation and sign agreement of ``predicted`` vs ``actual`` in a
    table from :func:`compare_attribution_with_ablation` (sign agreement over pairs whose real
    effect is not negligible, |actual| > 1e-4)."""
    if len(frame) < 3:
        raise ValueError(f"need at least 3 rows to correlate, got {len(frame)}")
    big = frame[frame["actual"].abs() > 1e-4]
    signs = (big["predicted"] > 0) == (big["actual"] > 0)
    return {
        "spearman": float(frame["predicted"].corr(frame["actual"], method="spearman")),
        "pearson": float(frame["predicted"].corr(frame["actual"])),
        "sign_agreement": float(signs.mean()) if len(big) else float("nan"),
        "n_pairs": float(len(frame)),
    }


def top_pair_agreement(frame: pd.DataFrame) -> pd.DataFrame:
    """Per context of a :func:`compare_attribution_with_ablation` table: the ablated pair with
    the largest ``|predicted|`` and the one with the largest ``|actual|``, and whether they are
    the same pair. Columns ``context``, ``probability``, ``predicted_top``, ``actual_top``
    (``(position, latent)`` tuples) and ``same``."""
    rows = []
    for context, group in frame.groupby("context", sort=True):
        pairs = list(zip(group["position"].astype(int), group["feature"].astype(int)))
        predicted = pairs[int(group["predicted"].abs().to_numpy().argmax())]
        actual = pairs[int(group["actual"].abs().to_numpy().argmax())]
        rows.append(
            {
                "context": context,
                "probability": float(group["probability"].iloc[0]),
                "predicted_top": predicted,
                "actual_top": actual,
                "same": predicted == actual,
            }
        )
    return pd.DataFrame(rows)


def attribution_regime(
    frame: pd.DataFrame, large_share: float = 0.3, confident: float = 0.8
) -> pd.Series:
    """Which regime each pair of a :func:`compare_attribution_with_ablation` table is in, where
    the linear estimate is expected to fail: ``"large share"`` (``share_of_norm >
    large_share``), ``"confident"`` (``probability > confident``), ``"both"`` or
    ``"neither"``."""
    large = frame["share_of_norm"] > large_share
    sure = frame["probability"] > confident
    labels = pd.Series("neither", index=frame.index)
    labels[large & ~sure] = f"share of norm > {large_share:g}"
    labels[sure & ~large] = f"p > {confident:g}"
    labels[large & sure] = "both"
    return labels


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def _palette(i: int) -> str:
    import plotly.colors

    colors = plotly.colors.qualitative.Plotly
    return colors[i % len(colors)]


def _transparent(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def steering_spread_figure(curves: pd.DataFrame, lines: str, title: str):
    """Log-probability gain against steering scale, with the spread of each control.

    ``curves`` has columns ``group``, ``direction``, ``scale`` and ``logprob_gain`` (one row per
    direction and scale). The directions of group ``lines`` are drawn one line each; every other
    group as its mean (a dashed line) inside a band from its lowest to its highest direction.
    """
    import plotly.graph_objects as go

    from .plots import TEMPLATE

    fig = go.Figure()
    for i, (group, rows) in enumerate(curves.groupby("group", sort=False)):
        color = _palette(i)
        if group == lines:
            for j, (name, line) in enumerate(rows.groupby("direction", sort=False)):
                fig.add_trace(
                    go.Scatter(
                        x=line["scale"],
                        y=line["logprob_gain"],
                        mode="lines+markers",
                        name=str(name),
                        line={"color": _palette(i + 4 + j)} if j else {"color": color},
                        hovertemplate="c=%{x}<br>gain %{y:.2f} nats<extra>"
                        + str(name)
                        + "</extra>",
                    )
                )
            continue
        stats = rows.groupby("scale")["logprob_gain"].agg(["mean", "min", "max"]).reset_index()
        fig.add_trace(
            go.Scatter(
                x=list(stats["scale"]) + list(stats["scale"])[::-1],
                y=list(stats["max"]) + list(stats["min"])[::-1],
                fill="toself",
                fillcolor=_transparent(color, 0.15),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=str(group),
            )
        )
        n = rows["direction"].nunique()
        fig.add_trace(
            go.Scatter(
                x=stats["scale"],
                y=stats["mean"],
                mode="lines+markers",
                name=f"{group} (mean, band: min-max of {n})",
                line={"color": color, "dash": "dash"},
                legendgroup=str(group),
                hovertemplate="c=%{x}<br>mean gain %{y:.2f} nats<extra>" + str(group) + "</extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        xaxis_title="steering scale c (fraction of the activation's norm)",
        yaxis_title="gain in mean log-prob of scored tokens (nats)",
        legend={"font": {"size": 11}},
    )
    return fig


def steering_gain_scatter(table: pd.DataFrame, title: str):
    """Each direction's gain at one scale against its concentration score, one colour per group.

    ``table`` has columns ``group``, ``direction``, ``concentration`` and ``logprob_gain``.
    """
    import plotly.graph_objects as go

    from .plots import TEMPLATE

    fig = go.Figure()
    for i, (group, rows) in enumerate(table.groupby("group", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=rows["concentration"],
                y=rows["logprob_gain"],
                mode="markers",
                name=str(group),
                marker={"color": _palette(i), "size": 8},
                customdata=rows[["direction"]].to_numpy(),
                hovertemplate="%{customdata[0]}<br>concentration %{x:.2f}<br>gain %{y:.2f} nats"
                "<extra></extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        xaxis_title="concentration of the direct logit effects (the rule's score)",
        yaxis_title="gain in mean log-prob of its own top tokens (nats)",
        legend={"font": {"size": 11}},
    )
    return fig


def signed_log(values: Any, linear_below: float) -> Any:
    """``sign(v) * log10(1 + |v| / linear_below)``: a symmetric log scale that keeps 0 at 0, is
    close to linear for ``|v|`` below ``linear_below`` and logarithmic above it (matplotlib calls
    this a "symlog" axis; plotly has none). Works on floats, numpy arrays and pandas series."""
    import numpy as np

    return np.sign(values) * np.log10(1 + np.abs(values) / linear_below)


def _signed_log_ticks(largest: float, linear_below: float) -> tuple[list[float], list[str]]:
    """Tick positions and labels for a :func:`signed_log` axis up to ``largest``: 0 and
    ``±10^e`` for every power of ten from ``linear_below`` up."""
    low = math.floor(math.log10(linear_below))
    high = math.ceil(math.log10(max(largest, linear_below)))
    powers = [10.0**e for e in range(low, high + 1)]
    values = [-p for p in reversed(powers)] + [0.0] + powers
    return [float(signed_log(v, linear_below)) for v in values], [f"{v:g}" for v in values]


def attribution_scatter(
    frame: pd.DataFrame, title: str, large_share: float = 0.3, confident: float = 0.8
):
    """Predicted (gradient x activation) against actual ablation effect, one colour per regime
    (:func:`attribution_regime`), with the line y = x, on signed-log axes (:func:`signed_log`)
    so that pairs with effects near zero spread out instead of piling on one dot. The linear
    part of the axes ends at the 5th percentile of the non-zero ``|effects|``."""
    import plotly.graph_objects as go

    from .plots import TEMPLATE

    values = pd.concat([frame["predicted"], frame["actual"]]).abs()
    nonzero = values[values > 0]
    linear_below = 10.0 ** math.floor(math.log10(nonzero.quantile(0.05))) if len(nonzero) else 1.0
    largest = float(values.max()) if len(values) else 1.0
    ticks, labels = _signed_log_ticks(largest, linear_below)
    edge = float(signed_log(largest, linear_below))
    regimes = attribution_regime(frame, large_share, confident)
    fig = go.Figure(
        go.Scatter(
            x=[-edge, edge],
            y=[-edge, edge],
            mode="lines",
            name="y = x",
            line={"color": "#999", "dash": "dot"},
        )
    )
    order = ["neither", f"share of norm > {large_share:g}", f"p > {confident:g}", "both"]
    for i, regime in enumerate(order):
        rows = frame[regimes == regime]
        if not len(rows):
            continue
        fig.add_trace(
            go.Scatter(
                x=signed_log(rows["actual"], linear_below),
                y=signed_log(rows["predicted"], linear_below),
                mode="markers",
                name=f"{regime} ({len(rows)})",
                marker={"color": _palette(i), "size": 6, "opacity": 0.7},
                customdata=rows[
                    ["feature", "position", "actual", "predicted", "probability", "share_of_norm"]
                ].to_numpy(),
                hovertemplate="latent %{customdata[0]} at position %{customdata[1]}<br>"
                "actual %{customdata[2]:.2g}, predicted %{customdata[3]:.2g}<br>"
                "p %{customdata[4]:.2f}, share of norm %{customdata[5]:.2f}<extra></extra>",
            )
        )
    axis = {"tickvals": ticks, "ticktext": labels, "zeroline": True}
    fig.update_layout(
        template=TEMPLATE,
        title=title,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        xaxis={**axis, "title": "actual change in log p(correct token) when ablated (nats)"},
        yaxis={**axis, "title": "predicted by gradient x activation (nats)"},
        legend={"font": {"size": 11}},
    )
    return fig
