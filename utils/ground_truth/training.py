"""Tutorial 4: training and scoring SAEs on synthetic data whose true features are known.

What SAELens 6.x provides is used as is (``SyntheticModel``, ``SyntheticSAERunner``,
``eval_sae_on_synthetic_data``); this module adds what the tutorial needs around it:

- :func:`train_on_synthetic`: the runner with its pitfalls handled (no wandb, nothing written to
  disk, no 500k-sample final evaluation, a dead-latent window that fits a short run), and the
  training batches of the last run replayed to the next run that would draw the very same ones;
- :func:`score_sae`: SAELens' evaluation on a fixed sample, flattened into one table row;
- :func:`random_decoder`: the chance-level baseline, drawn from its own generator;
- :func:`parent_children` (the hierarchy) and :func:`encode_in_batches`.

Shapes: ``N`` true features in ``d`` dimensions; an SAE has ``L`` latents; ``n`` samples.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from functools import partial
from typing import Any

import torch
from sae_lens import LoggingConfig
from sae_lens.saes.sae import TrainingSAE, TrainingSAEConfig
from sae_lens.synthetic import (
    SyntheticModel,
    SyntheticSAERunner,
    SyntheticSAERunnerConfig,
    eval_sae_on_synthetic_data,
)
from sae_lens.synthetic.training import SyntheticActivationIterator

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
    with (
        _trainer_progress_bar(show_progress),
        _replayed_training_batches(model, batch_size, device),
    ):
        return runner.run().sae


class _Stream:
    """The training batches one run drew from a synthetic model, with the CPU generator's state
    before and after each draw (5 KB each)."""

    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []
        self.before: list[torch.Tensor] = []
        self.after: list[torch.Tensor] = []


# model -> {batch_size: the last run's stream}: a notebook trains several SAEs in a row on one
# seed (the same data, different architectures), so the last stream is the one worth keeping.
_TRAINING_STREAMS: weakref.WeakKeyDictionary[SyntheticModel, dict[int, _Stream]] = (
    weakref.WeakKeyDictionary()
)


class _ReplayingIterator(SyntheticActivationIterator):
    """SAELens' iterator, except that batch ``i`` is the last run's batch ``i`` when the generator
    is in the state that run drew it from (the generator is then left as that draw left it), and
    what it hands out is recorded for the next run. From the first batch that differs it draws,
    as SAELens does."""

    def __init__(self, *args: Any, last: _Stream | None, record: _Stream, drop_last, **kwargs):
        super().__init__(*args, **kwargs)
        self.last, self.record, self.drop_last = last, record, drop_last

    def next_batch(self) -> torch.Tensor:
        i, state = len(self.record.batches), torch.get_rng_state()
        last = self.last
        if last is not None and i < len(last.batches) and torch.equal(state, last.before[i]):
            batch = last.batches[i]  # shared with the last stream, handed out as a copy
            torch.set_rng_state(last.after[i])
        else:
            if last is not None:  # diverged: its remaining batches are of no use
                self.last = None
                self.drop_last()
            batch = super().next_batch().clone()
        self.record.batches.append(batch)
        self.record.before.append(state)
        self.record.after.append(torch.get_rng_state())
        return batch.clone()


@contextlib.contextmanager
def _replayed_training_batches(
    model: SyntheticModel, batch_size: int, device: str
) -> Iterator[None]:
    """Give the runner's training loop the last run's batches where it would draw the very same
    ones: the same model and batch size, and the CPU generator in the state the last run drew each
    batch from (the same seed and an SAE initialised with the same draws). Drawing them is about a
    quarter of a small SAE's training time on a CPU; the SAE trained is the same (tests). Only the
    last stream is kept (``batch_size x hidden_dim`` floats a step), and only with
    ``device="cpu"``, where the batches come from the CPU generator."""
    if device != "cpu":
        yield
        return
    import sae_lens.synthetic.synthetic_sae_runner as runner_module

    streams = _TRAINING_STREAMS.setdefault(model, {})
    record = _Stream()
    iterator = partial(
        _ReplayingIterator,
        last=streams.get(batch_size),
        record=record,
        drop_last=lambda: streams.pop(batch_size, None),
    )
    original = runner_module.SyntheticActivationIterator
    runner_module.SyntheticActivationIterator = iterator
    try:
        yield
    finally:
        runner_module.SyntheticActivationIterator = original
    streams[batch_size] = record


class _ReplayedSample:
    """Stands in for a model's activation generator in ``eval_sae_on_synthetic_data``: hands out
    batches drawn once, in the order and sizes they were drawn."""

    def __init__(self, batches: list[torch.Tensor]):
        self.batches = batches
        self.next = 0

    def sample(self, batch_size: int) -> torch.Tensor:
        batch = self.batches[self.next]
        if batch.shape[0] != batch_size:
            raise ValueError(f"asked for {batch_size} samples, the replayed batch has {len(batch)}")
        self.next += 1
        return batch


# model -> {(num_samples, batch_size, seed): the evaluation sample's batches}
_EVALUATION_SAMPLES: weakref.WeakKeyDictionary[SyntheticModel, dict] = weakref.WeakKeyDictionary()


def _evaluation_sample(
    model: SyntheticModel, num_samples: int, batch_size: int, seed: int
) -> _ReplayedSample:
    """The true feature activations ``eval_sae_on_synthetic_data`` draws after
    ``torch.manual_seed(seed)``, batch by batch, drawn once per model and kept: every SAE scored
    on the same sample gets the very same batches, without drawing them again."""
    samples = _EVALUATION_SAMPLES.setdefault(model, {})
    key = (num_samples, batch_size, seed)
    if key not in samples:
        torch.manual_seed(seed)
        sizes = [
            min(batch_size, num_samples - start) for start in range(0, num_samples, batch_size)
        ]
        samples[key] = [model.activation_generator.sample(size) for size in sizes]
    return _ReplayedSample(samples[key])


def score_sae(
    sae: TrainingSAE[Any],
    model: SyntheticModel,
    *,
    num_samples: int,
    batch_size: int,
    seed: int = 0,
) -> dict[str, float]:
    """Score ``sae`` against the true features: one flat row (a dict) for a table.

    Runs ``eval_sae_on_synthetic_data`` on ``num_samples`` activations drawn after
    ``torch.manual_seed(seed)``, so every SAE scored with the same seed sees the same sample; the
    sample is drawn once per model, sizes and seed, and replayed for the next SAE.
    ``batch_size`` matters for BatchTopK and Matryoshka SAEs in training form: they choose their
    top ``k * batch_size`` activations per batch, so score them on their training batch size.

    Keys: ``mcc``, ``uniqueness``, ``l0``, ``true_l0``, ``explained_variance``, ``shrinkage``,
    ``dead_latents``, ``precision``, ``recall``, ``f1``.
    """
    result = eval_sae_on_synthetic_data(
        sae=sae,
        feature_dict=model.feature_dict,
        activations_generator=_evaluation_sample(model, num_samples, batch_size, seed),
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


def encode_in_batches(sae: TrainingSAE[Any], hidden: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``sae.encode`` over ``hidden`` ``[n, d]`` in batches of ``batch_size``: ``[n, L]``.

    In batches because BatchTopK-style SAEs in training form pick a batch-level top k.
    """
    with torch.no_grad():
        sae.eval()
        return torch.cat([sae.encode(chunk) for chunk in hidden.split(batch_size)])
