"""Attribution: gradient x activation of the correct next token's log-probability for every latent
at every position (:func:`next_token_attribution`), and its check against real ablations of
single (position, latent) pairs (:func:`ablation_effects`, :func:`compare_attribution_with_ablation`
and the summaries of that table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from .. import features as F
from .checks import _acts_post_name, _check_tokens, _final_name, _resid_pre_layer, _unembed


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
    is unembedded. Same numbers as full forward passes (tests/test_interventions_attribution.py),
    less time (benchmarks/ablation_start_at_layer.py).
    """
    with torch.no_grad():
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
        final_name = _final_name(model)

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
            logits = _unembed(model, final)
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

    For each context of ``attribution``: the ``n_top`` (position, latent) pairs with the largest
    ``|attribution|``, plus ``n_random`` other active pairs drawn at random (seeded), each ablated
    for real with :func:`ablation_effects`.

    Returns one row per pair: ``context``, ``position``, ``latent``, ``activation``,
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
        active = (acts > 0).nonzero()  # [n_active, 2]: (position, latent)
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
                    "latent": f,
                    "activation": a,
                    "predicted": -float(attr[pos, f]),
                    "actual": real,
                    "chosen": chosen,
                    "probability": float(attribution.probability[i]),
                    "share_of_norm": a * float(norms[f]) / float(x_norm[pos]),
                }
            )
    return pd.DataFrame(rows)


def _input_norms(model: Any, sae: Any, tokens: torch.Tensor) -> torch.Tensor:
    """``[pos]`` norms of the SAE's input activation for one context ``[pos]``."""
    with torch.no_grad():
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
        pairs = list(zip(group["position"].astype(int), group["latent"].astype(int)))
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
