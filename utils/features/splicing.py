"""The SAE spliced into the model: next-token loss with the hook's activations left alone, replaced
by the SAE's reconstruction, zero-ablated and mean-ablated, and the share of the loss recovered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from .checks import _check_last_dim
from .prompt import hook_activations
from .sample import _tokenize_for_sae


def loss_recovered(original: float, spliced: float, ablated: float) -> float:
    """The share of the loss an ablation costs that the SAE wins back ("CE loss recovered"):
    ``(ablated - spliced) / (ablated - original)``. 1: the SAE loses nothing; 0: no better than
    the ablation; below 0: worse. NaN when the ablation costs nothing (no gap to recover).
    SAELens' ``ce_loss_score`` is this against zero-ablation."""
    if math.isclose(ablated, original):
        return float("nan")
    return (ablated - spliced) / (ablated - original)


@dataclass
class SpliceLosses:
    """Mean next-token cross-entropy (nats per token) on the same tokens under four conditions.

    ``original``: the model as it is. ``sae``: the activations at the SAE's hook replaced by the
    SAE's reconstruction. ``zero_ablated``: replaced by zeros. ``mean_ablated``: replaced by their
    mean over the data (one fixed vector). ``n_tokens``: the predictions averaged over.
    """

    original: float
    sae: float
    zero_ablated: float
    mean_ablated: float
    n_tokens: int

    @property
    def recovered_vs_zero(self) -> float:
        """Fraction of the loss gap between zero-ablation and the original that the SAE closes."""
        return loss_recovered(self.original, self.sae, self.zero_ablated)

    @property
    def recovered_vs_mean(self) -> float:
        """The same against mean-ablation: a stricter baseline, since the mean is a better guess than zero."""
        return loss_recovered(self.original, self.sae, self.mean_ablated)

    def to_frame(self) -> pd.DataFrame:
        """One row per condition: ``ce_loss`` and its increase over the original model."""
        names = ["original model", "SAE spliced in", "zero-ablated", "mean-ablated"]
        losses = [self.original, self.sae, self.zero_ablated, self.mean_ablated]
        return pd.DataFrame(
            {"ce_loss": losses, "increase": [loss - self.original for loss in losses]},
            index=pd.Index(names, name="condition"),
        )


def splice_losses(
    model: Any,
    sae: Any,
    texts: Sequence[str],
    context_size: int,
    batch_size: int = 16,
    mean_activation: torch.Tensor | None = None,
    exclude_bos: bool = True,
    progress: bool = True,
    zero_ablate_bos: bool = False,
) -> SpliceLosses:
    """Next-token loss of ``model`` on ``texts`` with the SAE's hook left alone, replaced by the
    SAE's reconstruction, zero-ablated and mean-ablated.

    The replacement happens at every counted position (real tokens; not BOS when ``exclude_bos``,
    because BOS activations are outliers the model relies on and SAEs are usually not asked to
    reconstruct). The loss is averaged over predictions made *at* those positions, so all four
    numbers are on the same tokens.

    The book's ablations replace exactly the positions the SAE replaces, so the baseline and the
    SAE are compared like for like. SAELens' ``run_evals`` zero-ablates *every* position, BOS
    included (while its SAE leaves BOS alone), a harsher baseline: ``zero_ablate_bos=True`` zeroes
    the BOS position too, which is SAELens' definition of zero-ablation, on the same tokens.

    Args:
        mean_activation: ``[d_in]`` the vector used by mean-ablation, e.g.
            ``sample.mean_activation_vector`` from :func:`collect_feature_stats`. If ``None`` it is
            the mean over the counted positions of ``texts``.
    """
    with torch.no_grad():
        hook_name, tokens, _, valid, counted = _tokenize_for_sae(
            model, sae, texts, context_size, exclude_bos
        )
        return spliced_losses(
            model,
            sae,
            tokens,
            counted,
            valid,
            batch_size=batch_size,
            mean_activation=mean_activation,
            zero_ablate_all=zero_ablate_bos,
            progress=progress,
        )


def spliced_losses(
    model: Any,
    sae: Any,
    tokens: torch.Tensor,
    counted: torch.Tensor,
    valid: torch.Tensor | None = None,
    batch_size: int = 16,
    mean_activation: torch.Tensor | None = None,
    zero_ablate_all: bool = False,
    progress: bool = True,
) -> SpliceLosses:
    """The four losses of :func:`splice_losses` on tokens already laid out, the book's one
    implementation of "the loss with the SAE spliced in".

    The rule: the SAE's reconstruction (or the mean, or zeros) replaces the activations at the
    ``counted`` positions (real tokens, never a BOS token); a prediction is scored when it is made
    at a counted position and the token it predicts is real (``valid``). So all four numbers are
    on the same tokens. Where BOS sits depends on the layout: at position 0 of each text
    (:func:`splice_losses`), or at the start of each packed context and between documents (the
    tiny model's evaluation, :func:`utils.tiny.build.metrics.ce_loss_recovered`, which passes
    ``counted = tokens != bos``).

    Args:
        tokens: ``[n, ctx]`` token ids; ``counted``: ``[n, ctx]`` bool, the positions replaced;
        valid: ``[n, ctx]`` bool, the real tokens (``False`` at padding; default: all real),
            also the attention mask.
        mean_activation: ``[d_in]``, the vector mean-ablation puts in; default the mean of the
            activations at the counted positions of ``tokens``.
        zero_ablate_all: zero every real position, BOS included (SAELens' zero-ablation), instead
            of the counted positions only.
    """
    with torch.no_grad():
        from tqdm.auto import tqdm

        from .checks import sae_hook_name

        hook_name = sae_hook_name(sae)
        valid = torch.ones_like(counted, dtype=torch.bool) if valid is None else valid.bool()
        counted = counted.bool()
        if tokens.ndim != 2 or counted.shape != tokens.shape or valid.shape != tokens.shape:
            raise ValueError(
                f"tokens, counted and valid must all be [n, ctx]; got {tuple(tokens.shape)}, "
                f"{tuple(counted.shape)} and {tuple(valid.shape)}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        # A prediction at position p is scored against token p + 1, so p + 1 must be a real token.
        scored = counted[:, :-1] & valid[:, 1:]
        if not scored.any():
            raise ValueError("The texts are too short: need at least two real tokens after BOS.")
        batches = [slice(s, s + batch_size) for s in range(0, tokens.shape[0], batch_size)]

        if mean_activation is None:
            total, count = None, 0
            for batch in batches:
                acts = hook_activations(
                    model, tokens[batch], hook_name, attention_mask=valid[batch].long()
                )
                picked = acts[counted[batch].to(acts.device)].double()
                total = picked.sum(0) if total is None else total + picked.sum(0)
                count += picked.shape[0]
            mean_activation = (total / count).float()
        _check_last_dim(mean_activation, sae.cfg.d_in, "the SAE's d_in", "mean_activation")

        def replace_with(make: Any, mask: torch.Tensor):
            def hook(acts: torch.Tensor, hook: Any) -> torch.Tensor:
                new = make(acts).to(acts.dtype)
                return torch.where(mask.to(acts.device)[..., None], new, acts)

            return hook

        def reconstruct(acts: torch.Tensor) -> torch.Tensor:
            return sae.decode(sae.encode(acts.to(sae.device, sae.dtype))).to(acts.device)

        conditions = {
            "original": None,
            "sae": reconstruct,
            "zero_ablated": torch.zeros_like,
            "mean_ablated": lambda acts: mean_activation.to(acts.device).expand_as(acts),
        }
        sums = dict.fromkeys(conditions, 0.0)
        n_scored = 0
        for batch in tqdm(batches, desc="Cross-entropy under 4 conditions", disable=not progress):
            batch_tokens = tokens[batch].to(model.cfg.device)
            mask = counted[batch]
            zero_mask = valid[batch] if zero_ablate_all else mask  # padding is never scored
            score_mask = scored[batch].to(model.cfg.device)
            n_scored += int(score_mask.sum().item())
            for name, make in conditions.items():
                where = zero_mask if name == "zero_ablated" else mask
                hooks = [] if make is None else [(hook_name, replace_with(make, where))]
                loss = model.run_with_hooks(
                    batch_tokens,
                    return_type="loss",
                    loss_per_token=True,
                    fwd_hooks=hooks,
                    attention_mask=valid[batch].long().to(model.cfg.device),
                )  # [batch, ctx - 1]
                sums[name] += loss[score_mask].double().sum().item()
        return SpliceLosses(
            **{name: total / n_scored for name, total in sums.items()}, n_tokens=n_scored
        )
