"""Evaluating a trained SAE (tutorial 2, section 3), in one small dictionary per SAE.

:func:`evaluate_sae` runs ``sae_lens.evals.run_evals`` with the book's ``EvalConfig``
(:func:`utils.training_config.book_eval_config`) on a fresh ``ActivationsStore``, so that several SAEs
are compared on the same tokens; :func:`headline_metrics` flattens ``run_evals``' nested output
into the numbers the book reports; :func:`dead_latents` finds the latents that never fired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .training_config import book_eval_config

__all__ = ["HEADLINE_METRICS", "dead_latents", "evaluate_sae", "headline_metrics"]

#: (key in ``run_evals``' nested output, name in :func:`headline_metrics`).
HEADLINE_METRICS: tuple[tuple[str, str, str], ...] = (
    ("sparsity", "l0", "l0"),
    ("reconstruction_quality", "explained_variance", "explained_variance"),
    ("reconstruction_quality", "mse", "mse"),
    ("model_performance_preservation", "ce_loss_score", "ce_loss_score"),
    ("model_performance_preservation", "ce_loss_without_sae", "ce_loss_without_sae"),
    ("model_performance_preservation", "ce_loss_with_sae", "ce_loss_with_sae"),
    ("model_performance_preservation", "ce_loss_with_ablation", "ce_loss_zero_ablation"),
)


def headline_metrics(
    all_metrics: Mapping[str, Mapping[str, Any]], feature_metrics: Mapping[str, Any]
) -> dict[str, float]:
    """The numbers this book reports, from the two dictionaries ``run_evals`` returns.

    Returns ``l0``, ``explained_variance``, ``mse``, ``ce_loss_score`` (fraction of the CE loss
    recovered, relative to zero-ablating the hook), the three CE losses, and -- from the
    per-latent ``feature_density`` -- ``dead_latents`` (count that never fired on the evaluation
    sample) and ``dead_fraction``. Needs ``run_evals`` to have computed sparsity, variance and
    CE metrics and feature density (:func:`book_eval_config` and ``get_eval_everything_config``
    both ask for them).
    """
    out: dict[str, float] = {}
    for group, key, name in HEADLINE_METRICS:
        try:
            out[name] = float(all_metrics[group][key])
        except KeyError as err:
            raise KeyError(
                f"run_evals output has no {group}/{key}: evaluate with book_eval_config() or "
                "get_eval_everything_config() (compute_ce_loss, compute_sparsity_metrics and "
                "compute_variance_metrics all True)"
            ) from err
    if "feature_density" not in feature_metrics:
        raise KeyError(
            "feature_metrics has no 'feature_density': set "
            "compute_featurewise_density_statistics=True in the EvalConfig"
        )
    density = torch.as_tensor(feature_metrics["feature_density"], dtype=torch.float64)
    dead = dead_latents(density)
    out["dead_latents"] = float(len(dead))
    out["dead_fraction"] = len(dead) / max(len(density), 1)
    return out


def evaluate_sae(
    sae: Any,
    model: Any,
    dataset: Any,
    n_batches: int,
    batch_size_prompts: int,
    n_ce_batches: int | None = None,
    context_size: int | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """Evaluate ``sae`` with ``sae_lens.evals.run_evals`` on ``dataset``; return the headline numbers.

    A fresh ``ActivationsStore`` is built for every call, so every SAE evaluated on the same
    ``dataset`` (a ``datasets.Dataset`` with a ``text`` column, or tokens) sees the same tokens:
    ``n_ce_batches`` (default ``n_batches``) batches of ``batch_size_prompts`` contexts of
    ``context_size`` tokens (default: the SAE's training context) for the CE-loss metrics, then
    the next ``n_batches`` batches for sparsity, variance and density (see
    :func:`book_eval_config`; SAELens' store carries on where the CE batches stopped, and starts
    the dataset over if it runs out). Special tokens (BOS) are left out of every metric.

    Returns ``(metrics, feature_density)``: ``metrics`` as in :func:`headline_metrics` plus
    ``eval_tokens`` (tokens read for the sparsity/variance metrics, BOS included), and
    ``feature_density``, a ``[d_sae]`` array: the fraction of evaluation tokens on which each
    latent fired.
    """
    from sae_lens import ActivationsStore
    from sae_lens.evals import run_evals
    from sae_lens.training.activation_scaler import ActivationScaler

    eval_config = book_eval_config(
        batch_size_prompts, n_batches, n_batches if n_ce_batches is None else n_ce_batches
    )
    store = ActivationsStore.from_sae(
        model,
        sae,
        dataset=dataset,
        streaming=False,
        context_size=context_size,
        store_batch_size_prompts=batch_size_prompts,
        device=str(sae.device),
    )
    all_metrics, feature_metrics = run_evals(
        sae=sae,
        activation_store=store,
        model=model,
        activation_scaler=ActivationScaler(),
        eval_config=eval_config,
    )
    metrics = headline_metrics(all_metrics, feature_metrics)
    metrics["eval_tokens"] = float(
        all_metrics["token_stats"]["total_tokens_eval_sparsity_variance"]
    )
    return metrics, np.asarray(feature_metrics["feature_density"], dtype=np.float64)


def dead_latents(feature_density: torch.Tensor | np.ndarray | Sequence[float]) -> torch.Tensor:
    """Indices (sorted, int64) of the latents whose density is exactly zero.

    ``feature_density`` is ``[d_sae]``: the fraction of tokens on which each latent fired on
    some sample (``run_evals``' ``feature_metrics["feature_density"]``). "Dead" is only ever
    relative to that sample: a latent that fires once in a million tokens looks dead on 100k.
    """
    density = torch.as_tensor(np.asarray(feature_density), dtype=torch.float64)
    if density.ndim != 1:
        raise ValueError(f"feature_density must be 1-D [d_sae], got shape {tuple(density.shape)}")
    if bool((density < 0).any()) or bool((density > 1).any()):
        raise ValueError("feature_density holds fractions of tokens, so values must lie in [0, 1]")
    return torch.nonzero(density == 0).flatten().to(torch.int64)
