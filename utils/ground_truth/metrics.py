"""Tutorial 4's metrics against the ground truth: feature absorption per parent feature of a
hierarchy (SAELens has no metric for it) and each true feature's best latent as a detector.

Shapes: ``N`` true features in ``d`` dimensions; an SAE has ``L`` latents; ``n`` samples.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from sae_lens.saes.sae import TrainingSAE
from sae_lens.synthetic import SyntheticModel
from sae_lens.util import cosine_similarities

from .training import encode_in_batches, parent_children


def _unit_true_directions(
    model: SyntheticModel, hidden: torch.Tensor, features: torch.Tensor
) -> torch.Tensor:
    """The model's true feature directions, unit length [N, d], after checking that ``hidden``
    and ``features`` hold the same samples (a clear error if not)."""
    if hidden.shape[0] != features.shape[0]:
        raise ValueError(
            f"hidden has {hidden.shape[0]} samples but features has "
            f"{features.shape[0]}: pass one sample and its true activations."
        )
    true_dirs = model.feature_dict.feature_vectors.detach()
    return true_dirs / true_dirs.norm(dim=1, keepdim=True)


def absorption(
    latent_fires: torch.Tensor, parent_fires: torch.Tensor, child_fires: torch.Tensor
) -> float:
    """Feature absorption of one parent feature by its children, from firing patterns ``[n]``.

    ``latent_fires``: the parent's latent fired; ``parent_fires``: the parent feature was active;
    ``child_fires``: at least one of its children was active (booleans, one per sample).

    Returns ``1 - P(latent fires | parent and a child) / P(latent fires | parent, no child)``:
    0 when the latent fires as often with a child as without one, 1 when a child's presence
    silences it (its children's latents took the parent's direction over), negative when it
    fires more with a child. NaN when either case never occurs or the latent never fires
    without a child.
    """
    for name, tensor in (
        ("latent_fires", latent_fires),
        ("parent_fires", parent_fires),
        ("child_fires", child_fires),
    ):
        if tensor.dtype != torch.bool or tensor.ndim != 1:
            raise ValueError(
                f"{name} must be a 1-D boolean tensor, got {tensor.dtype} "
                f"with shape {tuple(tensor.shape)}."
            )
    if not latent_fires.shape == parent_fires.shape == child_fires.shape:
        raise ValueError("latent_fires, parent_fires and child_fires must have the same length.")
    with_child = parent_fires & child_fires
    alone = parent_fires & ~child_fires
    if with_child.sum() == 0 or alone.sum() == 0:
        return float("nan")
    rate_with_child = latent_fires[with_child].float().mean()
    rate_alone = latent_fires[alone].float().mean()
    if rate_alone == 0:
        return float("nan")
    return float(1 - rate_with_child / rate_alone)


# A missed parent counts as absorbed (rather than simply lost) when the latents that do fire
# still put at least this fraction of the parent's magnitude along the parent's direction.
CARRIED_FRACTION = 0.5


def absorption_table(
    sae: TrainingSAE[Any],
    model: SyntheticModel,
    hidden: torch.Tensor,
    features: torch.Tensor,
    *,
    batch_size: int,
) -> pd.DataFrame:
    """Feature absorption per parent feature of ``model``'s hierarchy, for one SAE.

    ``hidden`` ``[n, d]`` and ``features`` ``[n, N]`` are a sample and its true feature
    activations (``model.sample_with_features(n)``). A parent's latent is the latent whose decoder
    direction is most similar to the parent's true direction; likewise each child's.

    One row per parent:

    - ``parent``, ``parent_latent``, ``parent_cos`` (that latent's cosine to the parent's
      direction);
    - ``rate_alone`` and ``rate_with_child``: how often the latent fires when the parent is
      active without / with one of its children; ``absorption``: see :func:`absorption`;
    - ``carried_with_child`` and ``lost_with_child``: of the samples where the parent is active
      with a child, the fraction where the parent's latent is silent *and* the latents that fire
      reconstruct at least ``CARRIED_FRACTION`` of the parent's magnitude along its direction
      (absorbed: another latent carries the parent, as in Chanin et al.'s metric), and the
      fraction where it is silent and they do not (the parent is simply missing, e.g. crowded
      out of TopK's k slots); ``carried_alone`` is the first for samples without a child;
    - ``child_cos_to_parent``: the mean cosine between the children's latents and the
      *parent's* direction (the true children are nearly orthogonal to it, so a large value
      means the children's latents absorbed part of the parent);
    - ``parent_cos_to_children``: the mean cosine between the parent's latent and its
      children's directions (a large value: the parent's latent took part of its children).
    """
    with torch.no_grad():
        true_dirs = _unit_true_directions(model, hidden, features)
        decoder = sae.W_dec.detach()
        cos = cosine_similarities(true_dirs, decoder)  # [N, L]
        best_latent = cos.argmax(dim=1)  # [N]
        acts = encode_in_batches(sae, hidden, batch_size)  # [n, L]
        fires = acts > 0
        active = features > 0  # [n, N]
        rows = []
        for parent, children in parent_children(model).items():
            latent = int(best_latent[parent])
            parent_on = active[:, parent]
            child_on = active[:, children].any(dim=1)
            with_child = parent_on & child_on
            alone = parent_on & ~child_on
            # what the firing latents put along the parent's direction, against its magnitude
            along_parent = acts @ (decoder @ true_dirs[parent])  # [n]
            carried = along_parent >= CARRIED_FRACTION * features[:, parent]
            silent = ~fires[:, latent]
            child_latents = best_latent[children]
            rows.append(
                {
                    "parent": parent,
                    "parent_latent": latent,
                    "parent_cos": float(cos[parent, latent]),
                    "rate_alone": float(fires[alone, latent].float().mean()),
                    "rate_with_child": float(fires[with_child, latent].float().mean()),
                    "absorption": absorption(fires[:, latent], parent_on, child_on),
                    "carried_with_child": float((silent & carried)[with_child].float().mean()),
                    "lost_with_child": float((silent & ~carried)[with_child].float().mean()),
                    "carried_alone": float((silent & carried)[alone].float().mean()),
                    "child_cos_to_parent": float(cos[parent, child_latents].mean()),
                    "parent_cos_to_children": float(cos[children, latent].mean()),
                }
            )
        return pd.DataFrame(rows)


def feature_detection_table(
    sae: TrainingSAE[Any],
    model: SyntheticModel,
    hidden: torch.Tensor,
    features: torch.Tensor,
    *,
    batch_size: int,
) -> pd.DataFrame:
    """Each true feature's best latent (by decoder cosine), scored as a detector of the feature.

    ``hidden`` ``[n, d]``, ``features`` ``[n, N]`` as in :func:`absorption_table`. One row per
    true feature: ``feature``, ``firing_rate`` (in the sample), ``latent``, ``cos``,
    ``precision`` (of the samples where the latent fires, the fraction with the feature active),
    ``recall`` (of the samples with the feature active, the fraction where the latent fires) and
    ``magnitude_ratio``: on the samples where both are on, the mean of the latent's contribution
    along the feature's unit direction (activation times ``W_dec[latent] . f``) divided by the
    feature's true magnitude (below 1: the latent shrinks the feature). NaN where undefined.
    """
    with torch.no_grad():
        true_dirs = _unit_true_directions(model, hidden, features)
        decoder = sae.W_dec.detach()
        cos = cosine_similarities(true_dirs, decoder)
        best_cos, best_latent = cos.max(dim=1)  # [N]
        acts = encode_in_batches(sae, hidden, batch_size)[:, best_latent]  # [n, N]
        fires = (acts > 0).float()
        active = (features > 0).float()  # [n, N]
        true_pos = (fires * active).sum(dim=0)
        precision = true_pos / fires.sum(dim=0)  # NaN where the latent never fires
        recall = true_pos / active.sum(dim=0)
        along = (decoder[best_latent] * true_dirs).sum(dim=1)  # [N]: W_dec[latent] . f
        both = fires * active
        ratio = torch.where(both > 0, acts * along / features.clamp(min=1e-12), 0.0)
        magnitude_ratio = ratio.sum(dim=0) / both.sum(dim=0)  # NaN where never both on
        columns = {
            "firing_rate": active.mean(dim=0),
            "latent": best_latent,
            "cos": best_cos,
            "precision": precision,
            "recall": recall,
            "magnitude_ratio": magnitude_ratio,
        }
        return pd.DataFrame(
            {
                "feature": range(features.shape[1]),
                **{name: values.cpu().numpy() for name, values in columns.items()},
            }
        )


#: What happens to a parent on the samples where it is active together with a child, in
#: :func:`absorption_table`'s columns: the three fractions sum to 1 for every parent.
OUTCOMES = {
    "rate_with_child": "parent's latent fires",
    "carried_with_child": "silent, carried by other latents",
    "lost_with_child": "silent and lost",
}


def absorption_outcomes(tables: dict[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """Per SAE and seed, what happens to the parents on their samples with a child.

    ``tables`` maps ``(SAE name, seed)`` to that SAE's :func:`absorption_table`. One row per
    key: ``SAE``, ``seed`` and the mean over parents of each of :data:`OUTCOMES`'s columns,
    named by its label (the three sum to 1: on each such sample the parent's latent fires, or
    it is silent and the latents that fire carry the parent, or it is silent and they do not).
    """
    rows = []
    for (name, seed), table in tables.items():
        means = table[list(OUTCOMES)].mean()
        rows.append({"SAE": name, "seed": seed, **{OUTCOMES[c]: means[c] for c in OUTCOMES}})
    return pd.DataFrame(rows)
