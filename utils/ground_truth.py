"""Tutorial 4: SAEs trained on synthetic data whose true features are known (sae_lens.synthetic).

What SAELens 6.x provides is used as is (``SyntheticModel``, ``SyntheticSAERunner``,
``eval_sae_on_synthetic_data``); this module adds what the tutorial needs around it:

- :func:`train_on_synthetic`: the runner with its pitfalls handled (no wandb, nothing written to
  disk, no 500k-sample final evaluation, a dead-latent window that fits a short run);
- :func:`score_sae`: SAELens' evaluation on a fixed sample, flattened into one table row;
- :func:`random_decoder`: the chance-level baseline, drawn from its own generator;
- :func:`absorption` and :func:`absorption_table`: feature absorption per parent feature of a
  hierarchy (SAELens has no metric for it);
- :func:`feature_detection_table`: each true feature's best latent, as a detector of that feature.

Shapes: ``N`` true features in ``d`` dimensions; an SAE has ``L`` latents; ``n`` samples.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Any

import pandas as pd
import torch
from sae_lens import LoggingConfig
from sae_lens.saes.sae import TrainingSAE, TrainingSAEConfig
from sae_lens.synthetic import (
    SyntheticModel,
    SyntheticSAERunner,
    SyntheticSAERunnerConfig,
    eval_sae_on_synthetic_data,
)
from sae_lens.util import cosine_similarities

# Added to a seed for the random baseline's generator, so that it never draws the true features:
# with ``seed=s`` and no orthogonalisation, the synthetic model's features are exactly
# ``torch.manual_seed(s); torch.randn(N, d)`` normalised, and a "random" decoder drawn the same
# way would score a perfect MCC.
BASELINE_SEED_OFFSET = 1_000_003


@contextlib.contextmanager
def _trainer_progress_bar(show: bool) -> Iterator[None]:
    """Hide the trainer's own tqdm bar when ``show`` is False (a sweep shows one bar of its own)."""
    if show:
        yield
        return
    import sae_lens.training.sae_trainer as trainer_module

    original = trainer_module.tqdm
    trainer_module.tqdm = partial(original, disable=True)
    try:
        yield
    finally:
        trainer_module.tqdm = original


def train_on_synthetic(
    model: SyntheticModel,
    sae_cfg: TrainingSAEConfig,
    *,
    training_samples: int,
    batch_size: int,
    lr: float,
    dead_feature_window: int,
    seed: int = 0,
    device: str = "cpu",
    show_progress: bool = True,
) -> TrainingSAE[Any]:
    """Train one SAE on ``model``'s activations with ``SyntheticSAERunner``; return it.

    Unlike SAELens' defaults (and ``train_toy_sae``), the run logs nothing to wandb, writes no
    ``output/`` or ``checkpoints/`` folder, skips the 500k-sample final evaluation (score with
    :func:`score_sae`), and uses ``dead_feature_window`` (in steps): ``train_toy_sae`` hard-codes
    1000 steps, longer than a short run, so TopK's dead-latent revival would never start.
    ``seed`` seeds torch before the SAE is built, so the same call gives the same SAE.
    """
    if sae_cfg.d_in != model.cfg.hidden_dim:
        raise ValueError(
            f"sae_cfg.d_in is {sae_cfg.d_in} but the synthetic model's hidden_dim is "
            f"{model.cfg.hidden_dim}: build the SAE config with d_in=model.cfg.hidden_dim."
        )
    steps = training_samples // batch_size
    if steps < 1:
        raise ValueError(
            f"training_samples ({training_samples}) must be at least batch_size ({batch_size})."
        )
    if not 0 < dead_feature_window < steps:
        raise ValueError(
            f"dead_feature_window is {dead_feature_window} steps; it must be between 1 and the "
            f"run's {steps} steps, or no latent is ever found dead (and none is revived)."
        )
    cfg = SyntheticSAERunnerConfig(
        synthetic_model=model.cfg,
        sae=sae_cfg,
        training_samples=training_samples,
        batch_size=batch_size,
        lr=lr,
        device=device,
        dead_feature_window=dead_feature_window,
        feature_sampling_window=dead_feature_window,
        n_batches_for_norm_estimate=10,
        checkpoint_path=None,
        output_path=None,
        run_final_eval=False,
        eval_samples=0,
        logger=LoggingConfig(log_to_wandb=False),
    )
    torch.manual_seed(seed)
    runner = SyntheticSAERunner(cfg, override_synthetic_model=model)
    with _trainer_progress_bar(show_progress):
        return runner.run().sae


def score_sae(
    sae: TrainingSAE[Any],
    model: SyntheticModel,
    *,
    num_samples: int,
    batch_size: int,
    seed: int = 0,
) -> dict[str, float]:
    """Score ``sae`` against the true features: one flat row (a dict) for a table.

    Runs ``eval_sae_on_synthetic_data`` on ``num_samples`` fresh activations drawn after
    ``torch.manual_seed(seed)``, so every SAE scored with the same seed sees the same sample.
    ``batch_size`` matters for BatchTopK and Matryoshka SAEs in training form: they choose their
    top ``k * batch_size`` activations per batch, so score them on their training batch size.

    Keys: ``mcc``, ``uniqueness``, ``l0``, ``true_l0``, ``explained_variance``, ``shrinkage``,
    ``dead_latents``, ``precision``, ``recall``, ``f1``.
    """
    torch.manual_seed(seed)
    result = eval_sae_on_synthetic_data(
        sae=sae,
        feature_dict=model.feature_dict,
        activations_generator=model.activation_generator,
        num_samples=num_samples,
        batch_size=batch_size,
    )
    return {
        "mcc": result.mcc,
        "uniqueness": result.uniqueness,
        "l0": result.sae_l0,
        "true_l0": result.true_l0,
        "explained_variance": result.explained_variance,
        "shrinkage": result.shrinkage,
        "dead_latents": result.dead_latents,
        "precision": result.classification.precision,
        "recall": result.classification.recall,
        "f1": result.classification.f1_score,
    }


def random_decoder(num_latents: int, hidden_dim: int, *, seed: int = 0) -> torch.Tensor:
    """A decoder of random unit directions, ``[num_latents, hidden_dim]``: chance level for MCC.

    Drawn from its own ``torch.Generator`` (seeded with ``seed + BASELINE_SEED_OFFSET``), never
    from the global generator: see ``BASELINE_SEED_OFFSET``.
    """
    if num_latents < 1 or hidden_dim < 1:
        raise ValueError(
            f"num_latents ({num_latents}) and hidden_dim ({hidden_dim}) must be positive."
        )
    generator = torch.Generator().manual_seed(seed + BASELINE_SEED_OFFSET)
    directions = torch.randn(num_latents, hidden_dim, generator=generator)
    return directions / directions.norm(dim=1, keepdim=True)


def parent_children(model: SyntheticModel) -> dict[int, list[int]]:
    """The hierarchy as ``{parent feature index: [child feature indices]}`` (parents with children).

    Raises ``ValueError`` when the model was built without a hierarchy.
    """
    if model.hierarchy is None:
        raise ValueError(
            "This synthetic model has no hierarchy: build it with "
            "SyntheticModelConfig(hierarchy=HierarchyConfig(...))."
        )
    pairs: dict[int, list[int]] = {}

    def visit(node: Any) -> None:
        children = [c.feature_index for c in node.children if c.feature_index is not None]
        if node.feature_index is not None and children:
            pairs[node.feature_index] = children
        for child in node.children:
            visit(child)

    for root in model.hierarchy.roots:
        visit(root)
    return pairs


@torch.no_grad()
def encode_in_batches(sae: TrainingSAE[Any], hidden: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``sae.encode`` over ``hidden`` ``[n, d]`` in batches of ``batch_size``: ``[n, L]``.

    In batches because BatchTopK-style SAEs in training form pick a batch-level top k.
    """
    sae.eval()
    return torch.cat([sae.encode(chunk) for chunk in hidden.split(batch_size)])


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


@torch.no_grad()
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
    if hidden.shape[0] != features.shape[0]:
        raise ValueError(
            f"hidden has {hidden.shape[0]} samples but features has "
            f"{features.shape[0]}: pass one sample and its true activations."
        )
    true_dirs = model.feature_dict.feature_vectors.detach()
    true_dirs = true_dirs / true_dirs.norm(dim=1, keepdim=True)
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


@torch.no_grad()
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
    if hidden.shape[0] != features.shape[0]:
        raise ValueError(
            f"hidden has {hidden.shape[0]} samples but features has "
            f"{features.shape[0]}: pass one sample and its true activations."
        )
    true_dirs = model.feature_dict.feature_vectors.detach()
    true_dirs = true_dirs / true_dirs.norm(dim=1, keepdim=True)
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
