"""Steering: adding a multiple of a direction to the model's activation at a hook (the SAE
detached), in generated text (:func:`generate_steered`) and as a curve of log-probabilities
against the push (:func:`steering_curve`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch

from .. import features as F
from .checks import _check_direction, _check_tokens, _resid_pre_layer, _scored_mask, check_scale

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
