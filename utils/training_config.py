"""Tutorial 2's configurations, written once: the training run, its SAE, its evaluation, its script.

Tutorial 2's configuration cell, the benchmarks (``benchmarks/``) and the stand-alone script that
:func:`training_script` writes all build their configuration here, so they cannot drift apart:

* :func:`standard_sae_config` / :func:`topk_sae_config` -- the SAE block (ReLU + L1, or TopK);
* :func:`runner_config` -- the ``LanguageModelSAERunnerConfig`` around it;
* :func:`book_eval_config` -- the ``sae_lens.evals.EvalConfig`` the tutorial evaluates with;
* :func:`training_script` -- the same run as a Python script for a GPU machine (it does not import
  ``utils``, so it spells the configuration out; ``tests/test_training_config.py`` checks that it
  builds exactly :func:`runner_config`'s configuration, field by field).

Every number comes from the preset (``preset.training``), the hook from ``preset.training_hook``,
and ``d_in`` from the loaded model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sae_lens import (
    LanguageModelSAERunnerConfig,
    LoggingConfig,
    StandardTrainingSAEConfig,
    TopKTrainingSAEConfig,
)
from sae_lens.evals import EvalConfig

from .presets import Preset

__all__ = [
    "book_eval_config",
    "runner_config",
    "script_overrides",
    "standard_sae_config",
    "topk_sae_config",
    "training_script",
]


def standard_sae_config(preset: Preset, d_in: int, **overrides: Any) -> StandardTrainingSAEConfig:
    """The tutorial's ``StandardTrainingSAEConfig`` (ReLU + L1); ``overrides`` replace fields."""
    sizes = preset.training
    fields = dict(
        d_in=d_in,
        d_sae=sizes.expansion_factor * d_in,
        l1_coefficient=sizes.l1_coefficient,
        l1_warm_up_steps=sizes.l1_warm_up_steps,
        # inputs rescaled to an average norm of sqrt(d_in), so the L1 coefficient means the
        # same on any model; the factor is folded into the saved weights
        normalize_activations="expected_average_only_in",
    )
    return StandardTrainingSAEConfig(**{**fields, **overrides})


def topk_sae_config(preset: Preset, d_in: int, **overrides: Any) -> TopKTrainingSAEConfig:
    """The tutorial's ``TopKTrainingSAEConfig``; ``overrides`` replace fields."""
    sizes = preset.training
    fields = dict(
        d_in=d_in,
        d_sae=sizes.expansion_factor * d_in,
        k=sizes.topk_k,
        normalize_activations="expected_average_only_in",
    )
    return TopKTrainingSAEConfig(**{**fields, **overrides})


def runner_config(
    preset: Preset, sae_cfg: Any, device: str, **overrides: Any
) -> LanguageModelSAERunnerConfig[Any]:
    """The tutorial's ``LanguageModelSAERunnerConfig`` around ``sae_cfg``.

    ``overrides`` replace top-level fields (``dataclasses.replace``), e.g. ``training_tokens``.
    """
    sizes = preset.training
    cfg = LanguageModelSAERunnerConfig(
        sae=sae_cfg,
        # the model and where to read it
        model_name=preset.model_name,
        hook_name=preset.training_hook,
        # how the model was loaded (no weight processing), kept in the SAE's metadata
        model_from_pretrained_kwargs={},
        # the data
        dataset_path=preset.dataset_path,
        streaming=preset.dataset_streaming,
        # SAELens passes trust_remote_code=True to datasets.load_dataset by default; datasets 5.x
        # then logs an error ("trust_remote_code is not supported anymore") for every streamed
        # Hub dataset. No dataset this book reads runs code of its own.
        dataset_trust_remote_code=False,
        context_size=sizes.context_size,
        exclude_special_tokens=True,  # no BOS tokens: their activations are outliers
        # the budget and the optimiser
        training_tokens=sizes.training_tokens,
        train_batch_size_tokens=sizes.train_batch_size_tokens,
        lr=sizes.lr,
        lr_warm_up_steps=sizes.lr_warm_up_steps,
        # how activations are produced and shuffled
        n_batches_in_buffer=sizes.n_batches_in_buffer,
        store_batch_size_prompts=sizes.store_batch_size_prompts,
        n_batches_for_norm_estimate=sizes.n_batches_for_norm_estimate,
        # dead latents: not fired for this many steps
        dead_feature_window=sizes.dead_feature_window,
        # where things go
        device=device,
        logger=LoggingConfig(log_to_wandb=False),
        output_path=None,
        checkpoint_path=None,
        verbose=False,
    )
    return replace(cfg, **overrides) if overrides else cfg


def book_eval_config(batch_size_prompts: int, n_batches: int, n_ce_batches: int) -> EvalConfig:
    """The ``EvalConfig`` this book evaluates with: CE loss, sparsity, variance, density.

    ``n_ce_batches`` batches for the CE-loss metrics (each costs three forward passes of the whole
    model: as is, with the SAE spliced in, zero-ablated) and ``n_batches`` for sparsity, variance
    and per-latent density, each of ``batch_size_prompts`` contexts. Leaves out what
    ``get_eval_everything_config`` adds on top (KL divergence, L2 norms, weight statistics).
    """
    for name, value in (
        ("batch_size_prompts", batch_size_prompts),
        ("n_batches", n_batches),
        ("n_ce_batches", n_ce_batches),
    ):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    return EvalConfig(
        batch_size_prompts=batch_size_prompts,  # contexts per batch
        compute_ce_loss=True,  # CE loss with and without the SAE, and zero-ablated
        n_eval_reconstruction_batches=n_ce_batches,
        compute_sparsity_metrics=True,  # L0 (and L1)
        compute_variance_metrics=True,  # explained variance, MSE, cosine similarity
        compute_featurewise_density_statistics=True,  # per-latent firing frequency
        n_eval_sparsity_variance_batches=n_batches,
    )


# ---------------------------------------------------------------------------------------------
# Scaling up: the configuration as a stand-alone script
# ---------------------------------------------------------------------------------------------

_SCRIPT_TEMPLATE = '''"""Train tutorial 2's {architecture} SAE on {model_name} ({hook}) with SAELens 6.x: {tokens:,} tokens.

Written by utils.training_config.training_script() from the book's "{preset}" preset. Needs the
Hugging Face Hub (model and streamed dataset) and, realistically, a GPU. Run:  python {filename}
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
        dataset_trust_remote_code=False,  # datasets 5.x refuses remote code anyway, with an error log
        context_size={context_size},
        exclude_special_tokens=True,
        training_tokens={tokens:_},
        train_batch_size_tokens={batch},
        lr={lr!r},
        lr_warm_up_steps={lr_warm_up_steps},
        n_batches_in_buffer={n_batches_in_buffer},  # x context_size tokens >= one batch
        store_batch_size_prompts={store_batch_size_prompts},
        n_batches_for_norm_estimate={n_batches_for_norm_estimate},
        dead_feature_window={dead_feature_window},  # in steps; this run has {steps:,}
        device=DEVICE,
        autocast={autocast},  # bf16 SAE step: faster on GPUs with fast bf16 (Ampere or newer)
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


def script_overrides(
    preset: Preset,
    architecture: str = "standard",
    log_to_wandb: bool = True,
    autocast: bool = False,
    n_checkpoints: int = 2,
) -> dict[str, Any]:
    """The fields where :func:`training_script`'s run differs from :func:`runner_config`'s.

    A script run saves its SAE and checkpoints, may log to wandb, may use bf16, and prints
    SAELens' progress (``verbose``); everything else is the notebook's run.
    """
    return dict(
        autocast=autocast,
        logger=LoggingConfig(log_to_wandb=log_to_wandb, wandb_project="sae-book"),
        output_path=f"{preset.model_name}_{preset.training_hook}_{architecture}".replace(".", "_"),
        checkpoint_path="checkpoints",
        n_checkpoints=n_checkpoints,
        verbose=True,
    )


def training_script(
    preset: Preset,
    architecture: str = "standard",
    device: str = "cuda",
    log_to_wandb: bool = True,
    autocast: bool = False,
    filename: str = "train_sae.py",
    n_checkpoints: int = 2,
) -> str:
    """Python source of a stand-alone script that trains tutorial 2's SAE for ``preset``.

    Its ``make_config(d_in)`` returns ``runner_config(preset, <architecture>_sae_config(preset,
    d_in), device, **script_overrides(...))``; run as a script it loads the model, streams the
    dataset, saves the SAE to ``output_path`` and writes checkpoints. ``architecture`` is
    ``"standard"`` or ``"topk"``. Only for presets whose model and dataset are on the Hub.
    """
    if architecture not in ("standard", "topk"):
        raise ValueError(f"architecture must be 'standard' or 'topk', got {architecture!r}")
    if preset.dataset_path.startswith("bundled:"):
        raise ValueError(
            f"preset {preset.name!r} uses the book's bundled data ({preset.dataset_path}), which a "
            "stand-alone runner cannot stream; pick a preset whose dataset is on the Hugging Face Hub"
        )
    sizes = preset.training
    width = f"d_sae={sizes.expansion_factor} * d_in,"
    if architecture == "standard":
        sae_class = "StandardTrainingSAEConfig"
        fields = [
            width,
            f"l1_coefficient={sizes.l1_coefficient!r},",
            f"l1_warm_up_steps={sizes.l1_warm_up_steps},",
        ]
    else:
        sae_class = "TopKTrainingSAEConfig"
        fields = [width, f"k={sizes.topk_k},"]
    fields = ["d_in=d_in,", *fields, 'normalize_activations="expected_average_only_in",']
    overrides = script_overrides(preset, architecture, log_to_wandb, autocast, n_checkpoints)
    return _SCRIPT_TEMPLATE.format(
        architecture="Standard (ReLU + L1)" if architecture == "standard" else "TopK",
        preset=preset.name,
        filename=filename,
        model_name=preset.model_name,
        hook=preset.training_hook,
        tokens=sizes.training_tokens,
        sae_class=sae_class,
        sae_fields="\n".join(" " * 12 + f for f in fields),
        dataset_path=preset.dataset_path,
        streaming=preset.dataset_streaming,
        context_size=sizes.context_size,
        batch=sizes.train_batch_size_tokens,
        lr=sizes.lr,
        lr_warm_up_steps=sizes.lr_warm_up_steps,
        n_batches_in_buffer=sizes.n_batches_in_buffer,
        store_batch_size_prompts=sizes.store_batch_size_prompts,
        n_batches_for_norm_estimate=sizes.n_batches_for_norm_estimate,
        dead_feature_window=sizes.dead_feature_window,
        steps=sizes.training_tokens // sizes.train_batch_size_tokens,
        device=device,
        # the script's differences from the notebook's run, from the one place that lists them
        autocast=overrides["autocast"],
        wandb=overrides["logger"].log_to_wandb,
        output_path=overrides["output_path"],
        n_checkpoints=overrides["n_checkpoints"],
    )
