"""How well an SAE reconstructs activations: the book's one implementation of MSE, cosine
similarity and explained variance (three ways), as running sums over batches
(:class:`ReconstructionSums`) or on one tensor (:func:`reconstruction_metrics`). Tutorial 1's
prompt and feature sample, and :mod:`utils.evaluation`, all take their numbers from here.

Explained variance, for ``n`` activation vectors ``x`` of width ``d_in`` and reconstructions
``x_hat``:

- ``explained_variance``, the ratio of averages (the book's, and SAELens' since its PR 443):
  ``1 - mean ||x - x_hat||^2 / mean ||x - mean(x)||^2``;
- ``explained_variance_legacy``, the average of per-token ratios (SAELens' ``legacy``, SAEBench,
  Neuronpedia): ``1 - mean(||x - x_hat||^2 / ||x - batch mean(x)||^2)``, each token's denominator
  about the mean of the batch it came in;
- ``explained_variance_about_zero``: ``1 - mean ||x - x_hat||^2 / mean ||x||^2``.
"""

from __future__ import annotations

import torch


class ReconstructionSums:
    """Running sums over batches of ``[n, d_in]`` activations and their reconstructions, from which
    :meth:`result` gives every reconstruction metric over all the vectors added."""

    def __init__(self) -> None:
        self.n = 0
        self.d_in: int | None = None
        self.sum_x: torch.Tensor | None = None  # [d_in]
        self.sum_sq = 0.0  # sum of ||x||^2
        self.sum_resid = 0.0  # sum of ||x - x_hat||^2
        self.sum_cos = 0.0  # sum of cos(x, x_hat)
        self.n_legacy = 0  # vectors in batches of two or more (a per-token ratio needs a mean)
        self.sum_token_ratios = 0.0

    def add(self, x: torch.Tensor, x_hat: torch.Tensor) -> None:
        """Add a batch: ``x`` and ``x_hat`` both ``[n, d_in]`` (``n`` may be 0)."""
        if x.shape != x_hat.shape or x.ndim != 2:
            raise ValueError(
                f"x and x_hat must both be [n, d_in]; got {tuple(x.shape)} and {tuple(x_hat.shape)}"
            )
        if self.d_in is not None and x.shape[1] != self.d_in:
            raise ValueError(f"this batch has d_in={x.shape[1]}, earlier ones {self.d_in}")
        self.d_in = x.shape[1]
        x = x.detach().double()
        x_hat = x_hat.detach().double()
        resid = (x - x_hat).pow(2).sum(-1)  # [n]
        if x.shape[0] >= 2:
            about_batch_mean = (x - x.mean(0)).pow(2).sum(-1)  # [n]
            self.sum_token_ratios += (resid / about_batch_mean).sum().item()
            self.n_legacy += x.shape[0]
        batch_sum = x.sum(0).cpu()
        self.sum_x = batch_sum if self.sum_x is None else self.sum_x + batch_sum
        self.sum_sq += x.pow(2).sum().item()
        self.sum_resid += resid.sum().item()
        self.sum_cos += torch.nn.functional.cosine_similarity(x, x_hat, dim=-1).sum().item()
        self.n += x.shape[0]

    @property
    def mean(self) -> torch.Tensor:
        """``[d_in]`` the mean of the vectors added (float64)."""
        if self.sum_x is None or self.n == 0:
            raise ValueError("No activation vectors were added.")
        return self.sum_x / self.n

    def result(self) -> dict[str, float]:
        """``mse`` (per element), ``cosine_similarity`` (mean over vectors), the three explained
        variances (module docstring; NaN with fewer than two vectors, or where the denominator is
        0) and ``n_tokens``."""
        if self.n == 0 or self.sum_x is None or self.d_in is None:
            raise ValueError("No activation vectors were added.")
        mean_sq = self.sum_sq / self.n
        variance = mean_sq - self.mean.pow(2).sum().item()
        resid = self.sum_resid / self.n

        def explained(denominator: float) -> float:
            if self.n < 2 or denominator <= 0:
                return float("nan")
            return 1 - resid / denominator

        legacy = 1 - self.sum_token_ratios / self.n_legacy if self.n_legacy else float("nan")
        return {
            "mse": resid / self.d_in,
            "cosine_similarity": self.sum_cos / self.n,
            "explained_variance": explained(variance),
            "explained_variance_legacy": legacy,
            "explained_variance_about_zero": explained(mean_sq),
            "n_tokens": float(self.n),
        }


def reconstruction_metrics(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, float]:
    """How well ``x_hat`` reconstructs ``x``, as one batch.

    Args:
        x: ``[..., d_in]`` activations (at least two vectors).
        x_hat: ``[..., d_in]`` their reconstructions, same shape.

    Returns:
        ``mse``: mean squared error over every element (the seed tutorial's number);
        ``explained_variance``: 1 - E||x - x_hat||^2 / E||x - mean(x)||^2 (1 is perfect, 0 is no
        better than always predicting the mean vector, negative is worse);
        ``cosine_similarity``: mean over vectors of cos(x, x_hat) (1 means same direction).
    """
    if x.shape != x_hat.shape:
        raise ValueError(
            f"x has shape {tuple(x.shape)} but x_hat has shape {tuple(x_hat.shape)}: they must match."
        )
    if x.ndim == 0:
        raise ValueError("x must have a last dimension d_in, got a scalar")
    x2, x_hat2 = x.reshape(-1, x.shape[-1]), x_hat.reshape(-1, x.shape[-1])
    if x2.shape[0] < 2:
        raise ValueError(
            f"Need at least two activation vectors to measure variance, got {x2.shape[0]}."
        )
    sums = ReconstructionSums()
    sums.add(x2, x_hat2)
    result = sums.result()
    return {name: result[name] for name in ("mse", "explained_variance", "cosine_similarity")}
