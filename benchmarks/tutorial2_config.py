"""Tutorial 2's training configuration, for the benchmarks that must train exactly what it trains.

The notebook builds this configuration in its own cells (the configuration is what it teaches);
the functions below build the same objects from the same preset fields. If you change the
notebook's configuration cells, change these too.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.presets import Preset  # noqa: E402


def standard_sae_config(preset: Preset, d_in: int, **overrides: Any):
    """The notebook's ``StandardTrainingSAEConfig`` (ReLU + L1), with optional field overrides."""
    from sae_lens import StandardTrainingSAEConfig

    sizes = preset.training
    fields = dict(
        d_in=d_in,
        d_sae=sizes.expansion_factor * d_in,
        l1_coefficient=sizes.l1_coefficient,
        l1_warm_up_steps=sizes.l1_warm_up_steps,
        normalize_activations="expected_average_only_in",
    )
    return StandardTrainingSAEConfig(**{**fields, **overrides})


def topk_sae_config(preset: Preset, d_in: int, **overrides: Any):
    """The notebook's ``TopKTrainingSAEConfig``, with optional field overrides."""
    from sae_lens import TopKTrainingSAEConfig

    sizes = preset.training
    fields = dict(
        d_in=d_in,
        d_sae=sizes.expansion_factor * d_in,
        k=sizes.topk_k,
        normalize_activations="expected_average_only_in",
    )
    return TopKTrainingSAEConfig(**{**fields, **overrides})


def runner_config(preset: Preset, sae_cfg: Any, device: str, **overrides: Any):
    """The notebook's ``LanguageModelSAERunnerConfig`` around ``sae_cfg``; ``overrides`` replace fields."""
    from sae_lens import LanguageModelSAERunnerConfig, LoggingConfig

    sizes = preset.training
    cfg = LanguageModelSAERunnerConfig(
        sae=sae_cfg,
        model_name=preset.model_name,
        hook_name=preset.training_hook,
        model_from_pretrained_kwargs={},
        dataset_path=preset.dataset_path,
        streaming=preset.dataset_streaming,
        context_size=sizes.context_size,
        exclude_special_tokens=True,
        training_tokens=sizes.training_tokens,
        train_batch_size_tokens=sizes.train_batch_size_tokens,
        lr=sizes.lr,
        lr_warm_up_steps=sizes.lr_warm_up_steps,
        n_batches_in_buffer=sizes.n_batches_in_buffer,
        store_batch_size_prompts=sizes.store_batch_size_prompts,
        n_batches_for_norm_estimate=sizes.n_batches_for_norm_estimate,
        dead_feature_window=sizes.dead_feature_window,
        device=device,
        logger=LoggingConfig(log_to_wandb=False),
        output_path=None,
        checkpoint_path=None,
        verbose=False,
    )
    return replace(cfg, **overrides) if overrides else cfg
