"""Training an SAE with SAELens 6.x, and looking at the result (tutorial 2).

What lives here, and why it is not in the notebook:

* :class:`RecordingTrainingRunner` -- SAELens' own ``LanguageModelSAETrainingRunner`` that also
  keeps, every ``log_every`` steps, the metrics dictionary the trainer would send to Weights &
  Biases. SAELens 6.x has no callback or logging hook for this: its trainer only builds that
  dictionary when ``log_to_wandb`` is on. So the runner wraps the trainer's public ``step``
  method (documented as the seam for external coordinators) and calls the trainer's public
  ``build_train_step_log_dict`` after it. Training itself is untouched
  (``benchmarks/training_throughput.py`` measures that it costs nothing).
* :func:`training_curves_figure` -- the curves you would otherwise look at on wandb, in plotly.
* :func:`book_eval_config`, :func:`headline_metrics`, :func:`evaluate_sae` -- the evaluation of
  section 3 (``sae_lens.evals.run_evals``), flattened into one small dictionary per SAE, so that
  several SAEs can be compared on the same tokens; :func:`architecture_comparison_figure`.
* :func:`training_script` -- the notebook's configuration as a stand-alone script for a GPU.
* :func:`dead_latents` and the ``check_*`` functions for the tutorial's exercises.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner
from sae_lens.training.sae_trainer import SAETrainer

from .exercises import _NOT_DONE, _call  # the exercise checks' convention, one implementation

__all__ = [
    "DEFAULT_CURVES",
    "HEADLINE_METRICS",
    "RecordingTrainingRunner",
    "architecture_comparison_figure",
    "book_eval_config",
    "check_dead_latents",
    "check_expansion_config",
    "dead_latents",
    "evaluate_sae",
    "headline_metrics",
    "log_axis_ticks",
    "quiet_expected_training_messages",
    "training_curves_figure",
    "training_script",
]

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")  # one colour per run

# ---------------------------------------------------------------------------------------------
# Messages SAELens prints that are expected when following this book, and say nothing new.
# ---------------------------------------------------------------------------------------------

#: Start of the log lines SAELens writes whenever ``override_dataset``/``override_model`` is used,
#: which is exactly how the book passes its own model and data.
_EXPECTED_LOG_PREFIXES = (
    "You just passed in a dataset which will override",
    "You just passed in a model which will override",
)
#: Regexes of ``UserWarning``s that are expected with a small in-memory text dataset.
_EXPECTED_WARNINGS = (
    # Compares the number of *documents* with the number of *tokens*: always fires for text data.
    r"The training dataset contains fewer samples",
    # Advice to pre-tokenize big datasets (the notebook explains it in prose).
    r"Dataset is not tokenized\. Pre-tokenizing will improve performance",
)


class _DropExpectedLogLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(_EXPECTED_LOG_PREFIXES)


def quiet_expected_training_messages() -> None:
    """Hide the few SAELens messages that every run of this book's training cells triggers.

    Only the exact messages listed in ``_EXPECTED_LOG_PREFIXES`` / ``_EXPECTED_WARNINGS`` are
    hidden (the "you passed your own model/dataset" notices, the documents-vs-tokens warning,
    the advice to pre-tokenize); every other warning and error still shows. Safe to call twice.
    """
    sae_lens_logger = logging.getLogger("sae_lens")
    if not any(isinstance(f, _DropExpectedLogLines) for f in sae_lens_logger.filters):
        sae_lens_logger.addFilter(_DropExpectedLogLines())
    for pattern in _EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=UserWarning)


# ---------------------------------------------------------------------------------------------
# Training with curves, without wandb
# ---------------------------------------------------------------------------------------------


class RecordingTrainingRunner(LanguageModelSAETrainingRunner):
    """SAELens' ``LanguageModelSAETrainingRunner``, also recording the training metrics.

    Use it exactly like the SAELens runner::

        runner = RecordingTrainingRunner(cfg, override_dataset=dataset, override_model=model)
        sae = runner.run()
        runner.curves  # pandas DataFrame: step, tokens, losses/..., metrics/l0, ...

    Every ``log_every`` steps (default: ``cfg.logger.wandb_log_frequency``, the steps wandb
    would be sent) it stores the dictionary SAELens' trainer builds for wandb, whether or not
    wandb is on. Nothing else about training changes.
    """

    def __init__(
        self,
        cfg: LanguageModelSAERunnerConfig[Any],
        override_dataset: Any = None,
        override_model: Any = None,
        override_sae: Any = None,
        *,
        log_every: int | None = None,
    ) -> None:
        every = cfg.logger.wandb_log_frequency if log_every is None else log_every
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"log_every must be a positive number of steps, got {every!r}")
        self.log_every = every
        self.history: list[dict[str, float]] = []
        super().__init__(
            cfg,
            override_dataset=override_dataset,
            override_model=override_model,
            override_sae=override_sae,
        )

    def run_trainer_with_interruption_handling(self, trainer: SAETrainer[Any, Any]):
        # The one place SAELens' runner hands over the trainer it built: wrap its step, then train.
        self._attach_recorder(trainer)
        return super().run_trainer_with_interruption_handling(trainer)

    def _attach_recorder(self, trainer: SAETrainer[Any, Any]) -> None:
        every, history, train_step = self.log_every, self.history, trainer.step

        def step_and_record(batch: torch.Tensor) -> Any:
            output = train_step(batch)
            # fit() advances trainer.n_training_steps after step() returns: +1 = steps done.
            steps_done = trainer.n_training_steps + 1
            if steps_done % every == 0:
                log = trainer.build_train_step_log_dict(
                    output=output, n_training_samples=trainer.n_training_samples
                )
                history.append({"step": steps_done, "tokens": trainer.n_training_samples, **log})
            return output

        # An instance attribute shadows the method, so SAETrainer.fit() calls the wrapper.
        trainer.step = step_and_record  # type: ignore[method-assign]

    @property
    def curves(self) -> pd.DataFrame:
        """One row per recorded step: ``step``, ``tokens`` and the trainer's log keys.

        Keys are SAELens' wandb names, e.g. ``losses/overall_loss``, ``losses/mse_loss``,
        ``losses/l1_loss`` (Standard) or ``losses/auxiliary_reconstruction_loss`` (TopK),
        ``metrics/l0``, ``metrics/explained_variance``, ``sparsity/dead_features``,
        ``details/current_learning_rate``. They are computed on each training batch, in the
        SAE's input scale (after any ``normalize_activations``).
        """
        return pd.DataFrame(self.history)


#: The curves :func:`training_curves_figure` draws by default: (column, panel title).
DEFAULT_CURVES: tuple[tuple[str, str], ...] = (
    ("losses/overall_loss", "loss (total)"),
    ("losses/mse_loss", "reconstruction (MSE)"),
    ("metrics/l0", "L0 (active latents per token)"),
    ("metrics/explained_variance", "explained variance"),
)


def training_curves_figure(
    curves: pd.DataFrame | Mapping[str, pd.DataFrame],
    columns: Sequence[tuple[str, str]] = DEFAULT_CURVES,
    x: str = "tokens",
    title: str | None = "Training curves",
    log_y: Sequence[str] = ("metrics/l0",),
):
    """A plotly figure with one panel per metric, over training tokens (or steps).

    ``curves`` is :attr:`RecordingTrainingRunner.curves` (one run), or a mapping
    ``{label: curves}`` to overlay several runs (e.g. ``{"Standard": ..., "TopK": ...}``).
    ``columns`` are ``(column name, panel title)`` pairs; a column a run lacks is skipped for
    that run. ``x`` is ``"tokens"`` or ``"step"``. Panels whose column is in ``log_y`` get a log
    y axis (by default L0, which falls by orders of magnitude early in an L1 run).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .plots import TEMPLATE

    runs = {"": curves} if isinstance(curves, pd.DataFrame) else dict(curves)
    if not runs:
        raise ValueError("curves is empty: give a DataFrame or a non-empty {label: DataFrame}")
    if x not in ("tokens", "step"):
        raise ValueError(f"x must be 'tokens' or 'step', got {x!r}")
    for label, frame in runs.items():
        if x not in frame.columns:
            raise KeyError(f"run {label!r} has no {x!r} column; its columns: {list(frame.columns)}")
    known = {c for frame in runs.values() for c in frame.columns}
    panels = [(c, t) for c, t in columns if c in known]
    if not panels:
        raise KeyError(f"none of {[c for c, _ in columns]} is in the curves; known: {sorted(known)}")

    n_cols = 2 if len(panels) > 1 else 1
    n_rows = math.ceil(len(panels) / n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[t for _, t in panels])
    for i, (label, frame) in enumerate(runs.items()):
        for j, (column, _) in enumerate(panels):
            if column not in frame.columns:
                continue
            fig.add_trace(
                go.Scatter(
                    x=frame[x], y=frame[column], mode="lines", name=label or column,
                    legendgroup=label, showlegend=bool(label) and j == 0,
                    line={"color": _PALETTE[i % len(_PALETTE)]},
                ),
                row=j // n_cols + 1, col=j % n_cols + 1,
            )
    for j, (column, _) in enumerate(panels):
        if column in log_y:
            values = pd.concat([frame[column] for frame in runs.values() if column in frame.columns])
            ticks = log_axis_ticks(values)
            fig.update_yaxes(type="log", row=j // n_cols + 1, col=j % n_cols + 1,
                             **({"tickmode": "array", "tickvals": ticks} if ticks else {}))
    fig.update_xaxes(title_text=x)
    fig.update_layout(title=title, height=300 * n_rows, margin={"t": 70, "b": 40}, template=TEMPLATE)
    return fig


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

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
        raise KeyError("feature_metrics has no 'feature_density': set "
                       "compute_featurewise_density_statistics=True in the EvalConfig")
    density = torch.as_tensor(feature_metrics["feature_density"], dtype=torch.float64)
    dead = dead_latents(density)
    out["dead_latents"] = float(len(dead))
    out["dead_fraction"] = len(dead) / max(len(density), 1)
    return out


def book_eval_config(batch_size_prompts: int, n_batches: int, n_ce_batches: int):
    """The ``sae_lens.evals.EvalConfig`` this book evaluates with: CE loss, sparsity, variance, density.

    ``n_ce_batches`` batches for the CE-loss metrics (each costs three forward passes of the whole
    model: as is, with the SAE spliced in, zero-ablated) and ``n_batches`` for sparsity, variance
    and per-latent density, each of ``batch_size_prompts`` contexts. Leaves out what
    ``get_eval_everything_config`` adds on top (KL divergence, L2 norms, weight statistics).
    """
    from sae_lens.evals import EvalConfig

    for name, value in (("batch_size_prompts", batch_size_prompts), ("n_batches", n_batches),
                        ("n_ce_batches", n_ce_batches)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    return EvalConfig(
        batch_size_prompts=batch_size_prompts,
        n_eval_reconstruction_batches=n_ce_batches,
        compute_ce_loss=True,
        n_eval_sparsity_variance_batches=n_batches,
        compute_sparsity_metrics=True,
        compute_variance_metrics=True,
        compute_featurewise_density_statistics=True,
    )


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

    eval_config = book_eval_config(batch_size_prompts, n_batches,
                                   n_batches if n_ce_batches is None else n_ce_batches)
    store = ActivationsStore.from_sae(
        model, sae, dataset=dataset, streaming=False, context_size=context_size,
        store_batch_size_prompts=batch_size_prompts, device=str(sae.device),
    )
    all_metrics, feature_metrics = run_evals(
        sae=sae, activation_store=store, model=model,
        activation_scaler=ActivationScaler(), eval_config=eval_config,
    )
    metrics = headline_metrics(all_metrics, feature_metrics)
    metrics["eval_tokens"] = float(all_metrics["token_stats"]["total_tokens_eval_sparsity_variance"])
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


def log_axis_ticks(values: Sequence[float] | pd.Series, min_visible: int = 3) -> list[float]:
    """Round tick values for a log axis over ``values``: 1-10-100, else 1-2-5, else 1-2-...-9.

    Plotly's own log ticks label the minor steps with single digits ("100, 2, 5, 2, ..."), which
    reads badly; these are whole numbers. The coarsest sequence that puts at least ``min_visible``
    ticks inside the data's range wins (the finest one if none does). Ticks reach a decade beyond
    the data on both sides, since the axis is padded. ``[]`` if no value is positive.
    """
    positive = [float(v) for v in values if v == v and v > 0]  # v == v drops NaN
    if not positive:
        return []
    lo, hi = min(positive), max(positive)
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 2)
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [float(m * 10.0**e) for e in decades for m in mantissas]
        if sum(lo <= t <= hi for t in ticks) >= min_visible:
            break
    return ticks


def architecture_comparison_figure(table: pd.DataFrame, label: str = "architecture"):
    """Two scatter panels: explained variance vs L0, and CE loss recovered vs L0, one point per SAE.

    ``table`` has one row per SAE and columns ``label``, ``l0``, ``explained_variance`` and
    ``ce_loss_score`` (e.g. :func:`headline_metrics` rows). Up and to the left is better: the
    same reconstruction with fewer active latents.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from .plots import TEMPLATE

    needed = [label, "l0", "explained_variance", "ce_loss_score"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise KeyError(f"table lacks columns {missing}; it has {list(table.columns)}")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14, subplot_titles=(
        "explained variance vs L0", "CE loss recovered vs L0"))
    for i, row in enumerate(table.itertuples(index=False)):
        row = row._asdict()
        for col, metric in ((1, "explained_variance"), (2, "ce_loss_score")):
            fig.add_trace(go.Scatter(
                x=[row["l0"]], y=[row[metric]], mode="markers",  # named in the legend
                marker={"size": 12, "color": _PALETTE[i % len(_PALETTE)]},
                name=str(row[label]), legendgroup=str(row[label]), showlegend=col == 1,
                hovertemplate=f"{row[label]}<br>L0 %{{x:.1f}}<br>%{{y:.3f}}<extra></extra>",
            ), row=1, col=col)
    fig.update_xaxes(title_text="L0 (active latents per token)", range=[0, 1.15 * float(table["l0"].max())])
    fig.update_yaxes(title_text="explained variance", row=1, col=1)
    fig.update_yaxes(title_text="fraction of CE loss recovered", row=1, col=2)
    fig.update_layout(height=380, margin={"t": 60, "b": 40}, legend={"title": {"text": label}},
                      template=TEMPLATE)
    return fig


# ---------------------------------------------------------------------------------------------
# Scaling up: the notebook's configuration as a stand-alone script
# ---------------------------------------------------------------------------------------------

_SCRIPT_TEMPLATE = '''"""Train tutorial 2's {architecture} SAE on {model_name} ({hook}) with SAELens 6.x: {tokens:,} tokens.

Written by utils.training.training_script() from the book's "{preset}" preset. Needs the Hugging Face
Hub (model and streamed dataset) and, realistically, a GPU. Run:  python {filename}
"""
import torch
from sae_lens import (
    HookedSAETransformer,
    LanguageModelSAERunnerConfig,
    LanguageModelSAETrainingRunner,
    LoggingConfig,
    {sae_class},
)

DEVICE = "{device}"


def make_config(d_in: int) -> LanguageModelSAERunnerConfig:
    return LanguageModelSAERunnerConfig(
        sae={sae_class}(
{sae_fields}
        ),
        model_name="{model_name}",
        hook_name="{hook}",
        model_from_pretrained_kwargs={{}},  # the model below is loaded without weight processing
        dataset_path="{dataset_path}",
        streaming={streaming},
        context_size={context_size},
        exclude_special_tokens=True,
        training_tokens={tokens:_},
        train_batch_size_tokens={batch},
        lr={lr!r},
        lr_warm_up_steps={lr_warm_up_steps},
        n_batches_in_buffer={n_batches_in_buffer},  # buffer = n_batches_in_buffer x context_size tokens >= batch
        store_batch_size_prompts={store_batch_size_prompts},
        n_batches_for_norm_estimate={n_batches_for_norm_estimate},
        dead_feature_window={dead_feature_window},  # in steps; this run has {steps:,}
        device=DEVICE,
        autocast={autocast},  # bf16 SAE training: saves memory and time on GPUs with fast bf16 (Ampere or newer)
        logger=LoggingConfig(log_to_wandb={wandb}, wandb_project="sae-book"),
        output_path="{output_path}",  # the trained SAE (cfg.json + sae_weights.safetensors)
        checkpoint_path="checkpoints",
        n_checkpoints={n_checkpoints},
    )


if __name__ == "__main__":
    torch.manual_seed(0)
    model = HookedSAETransformer.from_pretrained_no_processing("{model_name}", device=DEVICE)
    cfg = make_config(d_in=model.cfg.d_model)
    sae = LanguageModelSAETrainingRunner(cfg, override_model=model).run()
    print("saved to", cfg.output_path, "| d_sae =", sae.cfg.d_sae)
'''


def training_script(
    preset: Any,
    architecture: str = "standard",
    device: str = "cuda",
    log_to_wandb: bool = True,
    autocast: bool = False,
    filename: str = "train_sae.py",
    n_checkpoints: int = 2,
) -> str:
    """Python source of a stand-alone script that trains the notebook's SAE for ``preset`` on ``device``.

    Same configuration as the notebook's cells (sizes from ``preset.training``, hook from
    ``preset.training_hook``, ``d_in`` from the loaded model), built by a ``make_config(d_in)``
    function; run as a script it loads the model, streams the dataset, saves the SAE to
    ``output_path`` and writes checkpoints. ``architecture`` is ``"standard"`` or
    ``"topk"``. Only meaningful for presets whose model and dataset are on the Hugging Face Hub.
    """
    if architecture not in ("standard", "topk"):
        raise ValueError(f"architecture must be 'standard' or 'topk', got {architecture!r}")
    if preset.dataset_path.startswith("bundled:"):
        raise ValueError(
            f"preset {preset.name!r} uses the book's bundled data ({preset.dataset_path}), which a "
            "stand-alone runner cannot stream; pick a preset whose dataset is on the Hugging Face Hub"
        )
    sizes = preset.training
    indent = " " * 12
    if architecture == "standard":
        sae_class = "StandardTrainingSAEConfig"
        fields = [f"d_sae={sizes.expansion_factor} * d_in,", f"l1_coefficient={sizes.l1_coefficient!r},",
                  f"l1_warm_up_steps={sizes.l1_warm_up_steps},"]
    else:
        sae_class = "TopKTrainingSAEConfig"
        fields = [f"d_sae={sizes.expansion_factor} * d_in,", f"k={sizes.topk_k},"]
    fields = ["d_in=d_in,", *fields, 'normalize_activations="expected_average_only_in",']
    return _SCRIPT_TEMPLATE.format(
        architecture="Standard (ReLU + L1)" if architecture == "standard" else "TopK",
        preset=preset.name, filename=filename, model_name=preset.model_name, hook=preset.training_hook,
        tokens=sizes.training_tokens, sae_class=sae_class,
        sae_fields="\n".join(indent + f for f in fields), dataset_path=preset.dataset_path,
        streaming=preset.dataset_streaming, context_size=sizes.context_size,
        batch=sizes.train_batch_size_tokens, lr=sizes.lr, lr_warm_up_steps=sizes.lr_warm_up_steps,
        n_batches_in_buffer=sizes.n_batches_in_buffer, store_batch_size_prompts=sizes.store_batch_size_prompts,
        n_batches_for_norm_estimate=sizes.n_batches_for_norm_estimate,
        dead_feature_window=sizes.dead_feature_window, steps=sizes.training_tokens // sizes.train_batch_size_tokens,
        device=device, autocast=autocast, wandb=log_to_wandb,
        output_path=f"{preset.model_name}_{preset.training_hook}_{architecture}".replace(".", "_"),
        n_checkpoints=n_checkpoints,
    )


# ---------------------------------------------------------------------------------------------
# Exercise checks. Same convention as utils/exercises.py (tutorial 1): a check prints what it
# found and returns True when the answer is right; an unfinished answer (None, or a function
# that returns None or raises NotImplementedError) prints a reminder and returns False, so the
# notebook still runs top to bottom; a wrong answer raises AssertionError with a hint.
# ---------------------------------------------------------------------------------------------


def check_dead_latents(
    find_dead_latents: Callable[[np.ndarray], Any] | None, feature_density: np.ndarray
) -> bool:
    """Check ``find_dead_latents(feature_density [d_sae]) -> indices of the dead latents``.

    Tried on the real density and on two small made-up ones (a latent firing once in a million
    tokens is alive).
    """
    cases = [
        np.asarray(feature_density, dtype=np.float64),
        np.array([0.0, 1e-6, 0.5, 0.0, 1.0]),
        np.array([0.2, 0.0, 3e-9]),
    ]
    for density in cases:
        got = _call(find_dead_latents, density)
        if got is None:
            print(_NOT_DONE)
            return False
        expected = dead_latents(density).tolist()
        got = sorted(int(i) for i in np.asarray(torch.as_tensor(got).cpu()).reshape(-1).tolist())
        more = "..." if len(expected) > 10 or len(got) > 10 else ""
        assert got == expected, (
            f"For a density over {len(density)} latents the dead ones are {expected[:10]}{more}; your "
            f"function returned {got[:10]}{more}. Hint: return the indices (not a mask) of the latents "
            "whose density is exactly 0."
        )
    n_dead = len(dead_latents(cases[0]))
    print(f"Correct: {n_dead} of {len(cases[0])} latents never fired on the evaluation sample.")
    return True


def check_expansion_config(cfg: Any, d_in: int, expansion_factor: int, k: int) -> bool:
    """Check the runner config of the expansion-factor exercise: a TopK SAE, ``d_sae`` =
    ``expansion_factor * d_in``, the same ``k``. ``cfg`` is a ``LanguageModelSAERunnerConfig``."""
    from sae_lens import TopKTrainingSAEConfig

    if cfg is None:
        print(_NOT_DONE)
        return False
    assert isinstance(cfg.sae, TopKTrainingSAEConfig), (
        f"cfg.sae should be a TopKTrainingSAEConfig, got {type(cfg.sae).__name__}")
    assert cfg.sae.d_in == d_in, f"cfg.sae.d_in should be the model's d_model ({d_in}), got {cfg.sae.d_in}"
    assert cfg.sae.d_sae == expansion_factor * d_in, (
        f"cfg.sae.d_sae should be {expansion_factor} x {d_in} = {expansion_factor * d_in}, got {cfg.sae.d_sae}")
    assert cfg.sae.k == k, f"keep k = {k} so that only the width changes, got {cfg.sae.k}"
    print(f"Config OK: TopK, d_sae = {cfg.sae.d_sae} ({expansion_factor} x d_in), k = {k}.")
    return True
