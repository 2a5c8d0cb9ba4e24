"""Evaluating an SAE: the three explained variances in circulation, and ``run_evals``' numbers.

:func:`explained_variances` and :func:`sample_explained_variances` give, on the same tokens,
the three figures published under the name "explained variance" (tutorial 1, section 8), all
computed by :class:`utils.features.ReconstructionSums`:

- ``explained_variance``: the ratio of averages, 1 - E||x - x_hat||^2 / E||x - E[x]||^2 (the
  book's, and SAELens' ``explained_variance`` since its PR 443);
- ``explained_variance_legacy``: the average over tokens of the per-token ratio
  1 - ||x - x_hat||^2 / ||x - mean||^2, with the mean taken over each batch (SAELens'
  ``explained_variance_legacy``; what the SAEBench paper and Neuronpedia report);
- ``explained_variance_about_zero``: 1 - E||x - x_hat||^2 / E||x||^2, variance about zero
  instead of about the mean: roughly what SAELens' ``explained_variance`` read between PR 443
  and 6.45.1 (PR 665), inflated wherever the activations have a large mean.

:func:`evaluate_sae` runs ``sae_lens.evals.run_evals`` with the book's ``EvalConfig``
(:func:`utils.training_config.book_eval_config`) on a fresh ``ActivationsStore``, so that several SAEs
are compared on the same tokens; :func:`headline_metrics` flattens ``run_evals``' nested output
into the numbers the book reports (:data:`METRIC_LABELS` says which figure each one is);
:func:`dead_latents` finds the latents that never fired and :func:`dead_fraction` their share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from .features.reconstruction import ReconstructionSums
from .training_config import book_eval_config

__all__ = [
    "EXPLAINED_VARIANCES",
    "HEADLINE_METRICS",
    "METRIC_LABELS",
    "dead_fraction",
    "dead_latents",
    "evaluate_sae",
    "explained_variances",
    "headline_metrics",
    "label",
    "labelled",
    "sample_explained_variances",
]

#: (key in ``run_evals``' nested output, name in :func:`headline_metrics`).
HEADLINE_METRICS: tuple[tuple[str, str, str], ...] = (
    ("sparsity", "l0", "l0"),
    ("reconstruction_quality", "explained_variance", "explained_variance"),
    ("reconstruction_quality", "explained_variance_legacy", "explained_variance_legacy"),
    ("reconstruction_quality", "mse", "mse"),
    ("model_performance_preservation", "ce_loss_score", "ce_loss_score"),
    ("model_performance_preservation", "ce_loss_without_sae", "ce_loss_without_sae"),
    ("model_performance_preservation", "ce_loss_with_sae", "ce_loss_with_sae"),
    ("model_performance_preservation", "ce_loss_with_ablation", "ce_loss_zero_ablation"),
)


#: What each explained variance and MSE is, for tables a reader compares with published numbers.
METRIC_LABELS: dict[str, str] = {  # each at most 50 characters: pandas cuts longer ones
    "explained_variance": "explained_variance (ratio of averages: book's)",
    "explained_variance_legacy": "explained_variance_legacy (SAEBench, Neuronpedia)",
    "explained_variance_about_zero": "EV about zero (inflated: SAELens < 6.45.1)",
    "mse": "mse (summed over d_in, mean over tokens)",
}

#: The keys of :func:`explained_variances`, in the order the book shows them.
EXPLAINED_VARIANCES = (
    "explained_variance",
    "explained_variance_legacy",
    "explained_variance_about_zero",
)


def label(name: str) -> str:
    """The label of a metric in :data:`METRIC_LABELS` (which figure it is), else ``name``."""
    return METRIC_LABELS.get(name, name)


def labelled(metrics: Mapping[str, float]) -> dict[str, float]:
    """``metrics`` with the keys in :data:`METRIC_LABELS` replaced by their labels (order kept)."""
    return {label(name): value for name, value in metrics.items()}


_VARIANCE_KEYS = (*EXPLAINED_VARIANCES, "n_tokens")


def _explained_variances(sums: ReconstructionSums) -> dict[str, float]:
    if sums.n < 2:
        raise ValueError(f"Need at least two activation vectors, got {sums.n}.")
    result = sums.result()
    return {name: result[name] for name in _VARIANCE_KEYS}


def explained_variances(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, float]:
    """The three explained variances (module docstring) of ``x_hat`` against ``x``.

    Args:
        x, x_hat: ``[n, d_in]`` activations and their reconstructions (``n >= 2``), one batch:
            the legacy figure's per-token denominators use the mean over these ``n`` vectors.

    Returns:
        ``explained_variance``, ``explained_variance_legacy``, ``explained_variance_about_zero``
        and ``n_tokens``.
    """
    if x.shape != x_hat.shape or x.ndim != 2:
        raise ValueError(
            f"x and x_hat must both be [n, d_in]; got {tuple(x.shape)} and {tuple(x_hat.shape)}"
        )
    sums = ReconstructionSums()
    sums.add(x, x_hat)
    return _explained_variances(sums)


def sample_explained_variances(
    model: Any, sae: Any, sample: Any, batch_size: int = 16
) -> dict[str, float]:
    """The three explained variances over the counted tokens of a ``FeatureSample``.

    Runs the sample's texts (``sample.tokens``) through ``model`` up to the SAE's hook again, in
    batches of ``batch_size`` texts, and reconstructs them with ``sae``. As in SAELens'
    ``run_evals``, the legacy figure's per-token denominator uses the mean over each batch's
    counted tokens. The ratio of averages equals ``sample.metrics["explained_variance"]`` for the
    same SAE (up to float rounding).
    """
    with torch.no_grad():
        from .features import hook_activations

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if sample.d_sae != sae.cfg.d_sae:
            raise ValueError(
                f"The sample has {sample.d_sae} latents but the SAE has d_sae={sae.cfg.d_sae}: "
                "collect the sample with this SAE."
            )
        sums = ReconstructionSums()
        n_texts, ctx = sample.tokens.shape
        valid = torch.arange(ctx)[None, :] < sample.lengths[:, None]
        for start in range(0, n_texts, batch_size):
            batch = slice(start, start + batch_size)
            acts = hook_activations(
                model, sample.tokens[batch], sample.hook_name, attention_mask=valid[batch].long()
            )
            x = acts[sample.counted[batch].to(acts.device)].to(sae.device, sae.dtype)
            if x.shape[0] < 2:
                continue
            sums.add(x, sae.decode(sae.encode(x)))
        return _explained_variances(sums)


def headline_metrics(
    all_metrics: Mapping[str, Mapping[str, Any]], feature_metrics: Mapping[str, Any]
) -> dict[str, float]:
    """The numbers this book reports, from the two dictionaries ``run_evals`` returns.

    Returns ``l0``, ``explained_variance`` (ratio of averages), ``explained_variance_legacy``
    (mean of per-token ratios), ``mse`` (squared error summed over ``d_in``, averaged over
    tokens: ``d_in`` times tutorial 1's per-element MSE), ``ce_loss_score`` (fraction of the CE loss
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
    out["dead_latents"] = float(len(dead_latents(density)))
    out["dead_fraction"] = dead_fraction(density)
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


def dead_fraction(feature_density: torch.Tensor | np.ndarray | Sequence[float]) -> float:
    """The share of latents that are dead (:func:`dead_latents`) on the sample ``feature_density``
    ([d_sae]) was measured on; 0 for an empty density."""
    density = torch.as_tensor(np.asarray(feature_density), dtype=torch.float64)
    return len(dead_latents(density)) / max(len(density), 1)
