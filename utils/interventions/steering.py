"""Steering: adding a multiple of a direction to the model's activation at a hook (the SAE
detached), in generated text (:func:`generate_steered`) and as a curve of log-probabilities
against the push, for one direction (:func:`steering_curve`) or many in shared passes
(:func:`steering_curves`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch

from .. import features as F
from .checks import (
    _check_direction,
    _check_tokens,
    _final_name,
    _resid_pre_layer,
    _scored_mask,
    _unembed,
    check_scale,
)

Hook = Callable[[torch.Tensor, Any], torch.Tensor]


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
    with torch.no_grad():
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
    """How steering along ``direction`` changes the log-probability of sets of tokens, and the loss:
    :func:`steering_curves` for one direction (the same arguments, one of each).

    Args:
        tokens: ``[n, ctx]`` contexts (e.g. ``sample.tokens``).
        counted: ``[n, ctx]`` bool, the real (non-BOS, non-padding) positions (``sample.counted``).
        direction: ``[d_model]``, steered as in :func:`steering_hooks`.
        scales: the scales ``c`` (fractions of the activation's norm) to try; include 0.
        score_tokens: named sets of token ids (each ``[k]``) whose mean log-probability is
            measured, all in the same forward passes.

    Returns:
        One row per (scale, token set): ``scale``, ``scored`` (the set's name), ``logprob`` (mean
        over scored positions of the mean log-probability of the set's tokens), ``loss``
        (next-token cross-entropy at the same positions), and ``logprob_gain``/``loss_increase``
        relative to scale 0 (NaN if 0 is not among the scales).
    """
    with torch.no_grad():
        frame = steering_curves(
            model,
            hook_name,
            tokens,
            counted,
            [direction],
            scales,
            [score_tokens],
            start_position=start_position,
            batch_size=batch_size,
            from_hook=from_hook,
        )
        return frame.drop(columns="direction")


def steering_curves(
    model: Any,
    hook_name: str,
    tokens: torch.Tensor,
    counted: torch.Tensor,
    directions: Sequence[torch.Tensor] | torch.Tensor,
    scales: Sequence[float],
    score_tokens: Sequence[dict[str, torch.Tensor]],
    start_position: int = 1,
    batch_size: int = 16,
    from_hook: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """:func:`steering_curve` for many directions at once, in shared forward passes.

    Three savings, none of which changes a number (tests/test_interventions_steering.py):

    - scale 0 is the unsteered model whatever the direction: it runs once per batch of contexts,
      and every direction's token sets are scored on it;
    - with ``from_hook`` and ``hook_name`` a ``blocks.L.hook_resid_pre``, blocks ``0..L-1`` run
      once per batch of contexts (the push cannot change them) and every steered pass starts at
      block ``L`` from that cached residual (TransformerLens' ``start_at_layer``);
    - the steered passes stack (direction, scale) pairs along the batch dimension, each row with
      its own push, ``batch_size`` rows per pass (contexts times pairs).

    Args:
        directions: ``n_dir`` vectors ``[d_model]`` (or one ``[n_dir, d_model]`` tensor).
        score_tokens: one dict per direction, as :func:`steering_curve`'s ``score_tokens``.
        batch_size: rows per forward pass; contexts go ``min(batch_size, n)`` at a time and the
            (direction, scale) pairs ``batch_size // contexts`` at a time.
        progress: show a progress bar over the steered passes (tqdm).
        The rest as in :func:`steering_curve`.

    Returns:
        :func:`steering_curve`'s rows for every direction, with a column ``direction`` (its index
        in ``directions``), direction by direction.
    """
    with torch.no_grad():
        tokens = _check_tokens(tokens)
        if counted.shape != tokens.shape:
            raise ValueError(
                f"counted has shape {tuple(counted.shape)}, tokens {tuple(tokens.shape)}"
            )
        directions = [_check_direction(d, model.cfg.d_model) for d in directions]
        if len(directions) != len(score_tokens):
            raise ValueError(
                f"{len(directions)} directions but {len(score_tokens)} sets of score tokens: "
                "give one dict of token sets per direction"
            )
        if not directions:
            raise ValueError("directions is empty: give at least one direction to steer along")
        ids = []
        for sets in score_tokens:
            if not sets:
                raise ValueError(
                    "score_tokens is empty: name at least one set of token ids to score"
                )
            ids.append(
                {name: torch.as_tensor(v, dtype=torch.long).flatten() for name, v in sets.items()}
            )
        scales = [check_scale(c) for c in scales]
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if start_position < 0:
            raise ValueError(f"start_position must be >= 0, got {start_position}")
        F.check_hook_name(model, hook_name)
        scored = _scored_mask(tokens, counted.bool())
        if not scored.any():
            raise ValueError("No position to score: the contexts need two real tokens in a row.")
        device = model.cfg.device
        layer = _resid_pre_layer(hook_name) if from_hook else None
        kwargs = {"start_at_layer": layer} if layer is not None else {}
        unit = torch.stack(directions).float()  # [n_dir, d_model]
        # the steered (direction, scale) pairs; scale 0 is the model itself, run once
        pairs = [(i, c) for i in range(len(directions)) for c in scales if c != 0]
        n_contexts = min(batch_size, tokens.shape[0])
        per_pass = max(1, batch_size // n_contexts)
        n_batches = math.ceil(tokens.shape[0] / n_contexts)
        # sums over scored positions: log-prob per (direction, scale, set), loss per (direction, scale)
        sum_lp: dict[tuple[int, float, str], float] = {}
        sum_loss: dict[tuple[int, float], float] = {}
        n = 0
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_batches * math.ceil(len(pairs) / per_pass), desc="Steering")

        final_name = _final_name(model)
        store: dict[str, torch.Tensor] = {}

        def keep_final(resid: torch.Tensor, hook: Any) -> torch.Tensor:
            store["final"] = resid
            return resid

        def score(
            first: torch.Tensor, hooks: list, mask: torch.Tensor, next_ids: torch.Tensor, who
        ):
            """Run ``first`` (rows stacked by block of ``len(mask)`` contexts) with ``hooks`` and add
            its scored positions to the sums; ``who`` lists, per block, the (direction, scale) pairs
            it stands for. Only scored positions are unembedded, and log-probabilities are logits
            minus their logsumexp: no ``[rows, ctx, d_vocab]`` tensor, no log-softmax copy."""
            model.run_with_hooks(
                first, return_type=None, fwd_hooks=hooks + [(final_name, keep_final)], **kwargs
            )
            final = store.pop("final")  # [rows, ctx, d_model]
            b = mask.shape[0]
            for j, owners in enumerate(who):
                logits = _unembed(model, final[j * b : (j + 1) * b][mask][None])[0].float()
                lse = logits.logsumexp(-1)  # [n_scored]
                loss = (lse - logits.gather(1, next_ids[:, None])[:, 0]).sum().item()
                for i, c in owners:
                    sum_loss[i, c] = sum_loss.get((i, c), 0.0) + loss
                    for name, token_ids in ids[i].items():
                        chosen = logits[:, token_ids.to(logits.device)].mean(-1) - lse
                        sum_lp[i, c, name] = sum_lp.get((i, c, name), 0.0) + chosen.sum().item()

        for start in range(0, tokens.shape[0], n_contexts):
            batch = tokens[start : start + n_contexts].to(device)
            mask = scored[start : start + n_contexts].to(device)
            next_ids = batch[:, 1:][mask[:, :-1]]
            n += int(mask.sum())
            first = model(batch, stop_at_layer=layer) if layer is not None else batch
            if 0.0 in scales:  # the unsteered pass, scored for every direction
                score(first, [], mask, next_ids, [[(i, 0.0) for i in range(len(unit))]])
            for at in range(0, len(pairs), per_pass):
                chunk = pairs[at : at + per_pass]
                # [rows, 1, 1] scales and [rows, 1, d_model] directions, each pair's block of contexts
                c_rows = torch.tensor([c for _, c in chunk]).repeat_interleave(len(batch))
                d_rows = unit[[i for i, _ in chunk]].repeat_interleave(len(batch), dim=0)

                def push(
                    acts: torch.Tensor, hook: Any, c_rows=c_rows, d_rows=d_rows
                ) -> torch.Tensor:
                    c = c_rows.to(acts.device, acts.dtype)[:, None, None]
                    d = d_rows.to(acts.device, acts.dtype)[:, None, :]
                    added = c * acts.norm(dim=-1, keepdim=True) * d  # [rows, pos, d_model]
                    added[:, :start_position] = 0
                    return acts + added

                expand = (len(chunk),) + (1,) * (first.ndim - 1)
                score(
                    first.repeat(expand),
                    [(hook_name, push)],
                    mask,
                    next_ids,
                    [[pair] for pair in chunk],
                )
                if bar is not None:
                    bar.update()
        if bar is not None:
            bar.close()
        frames = []
        for i in range(len(unit)):
            frame = pd.DataFrame(
                [
                    {
                        "direction": i,
                        "scale": c,
                        "scored": name,
                        "logprob": sum_lp[i, c, name] / n,
                        "loss": sum_loss[i, c] / n,
                    }
                    for c in scales
                    for name in ids[i]
                ]
            )
            base = frame[frame["scale"] == 0].set_index("scored")
            nan = pd.Series(float("nan"), index=list(ids[i]))
            lp0 = frame["scored"].map(base["logprob"] if len(base) else nan)
            loss0 = frame["scored"].map(base["loss"] if len(base) else nan)
            frame["logprob_gain"] = frame["logprob"] - lp0
            frame["loss_increase"] = frame["loss"] - loss0
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)
