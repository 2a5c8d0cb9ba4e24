"""Training an SAE with SAELens 6.x without Weights & Biases, and without its routine notices.

* :class:`RecordingTrainingRunner` -- SAELens' own ``LanguageModelSAETrainingRunner`` that also
  keeps, every ``log_every`` steps, the metrics dictionary the trainer would send to Weights &
  Biases. SAELens 6.x has no callback or logging hook for this: its trainer only builds that
  dictionary when ``log_to_wandb`` is on. So the runner wraps the trainer's public ``step``
  method (documented as the seam for external coordinators) and calls the trainer's public
  ``build_train_step_log_dict`` after it. Training itself is untouched
  (``benchmarks/training_throughput.py`` measures that it costs nothing).
* :func:`quiet_expected_training_messages` -- hides the few SAELens notices every run of the
  book's training cells prints.

The configuration of tutorial 2's runs is in :mod:`utils.training_config`, their evaluation in
:mod:`utils.evaluation`, their figures in :mod:`utils.plots`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pandas as pd
import torch
from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner
from sae_lens.training.sae_trainer import SAETrainer

__all__ = ["RecordingTrainingRunner", "quiet_expected_training_messages"]

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
