"""Tests for utils/training_config.py: tutorial 2's configurations, and the stand-alone script that
must build exactly the same run."""

from __future__ import annotations

import dataclasses

import pytest
from random_models import D_MODEL

from utils import training_config as C
from utils.presets import PRESETS

SAE_CONFIGS = {"standard": C.standard_sae_config, "topk": C.topk_sae_config}


@pytest.mark.parametrize("name", ["gpt2-small", "tiny"])
def test_runner_config_reads_every_number_from_the_preset(name):
    preset = PRESETS[name]
    sizes = preset.training
    cfg = C.runner_config(preset, C.standard_sae_config(preset, D_MODEL), "cpu")
    assert cfg.sae.d_in == D_MODEL and cfg.sae.d_sae == sizes.expansion_factor * D_MODEL
    assert cfg.sae.l1_coefficient == sizes.l1_coefficient
    assert cfg.sae.normalize_activations == "expected_average_only_in"
    assert (cfg.model_name, cfg.hook_name) == (preset.model_name, preset.training_hook)
    assert (cfg.dataset_path, cfg.streaming) == (preset.dataset_path, preset.dataset_streaming)
    assert cfg.training_tokens == sizes.training_tokens and cfg.lr == sizes.lr
    assert cfg.dead_feature_window == sizes.dead_feature_window
    assert cfg.dataset_trust_remote_code is False  # SAELens' default (True) logs an error
    assert cfg.logger.log_to_wandb is False and cfg.output_path is None
    topk = C.topk_sae_config(preset, D_MODEL)
    assert topk.k == sizes.topk_k and topk.d_sae == sizes.expansion_factor * D_MODEL


def test_runner_config_takes_each_size_from_the_preset_not_from_saelens_defaults():
    """Sizes no preset happens to share with SAELens' defaults, so a field left out shows."""
    preset = PRESETS["tiny"]
    odd = dict(
        context_size=33,
        train_batch_size_tokens=33 * 32,
        lr_warm_up_steps=7,
        n_batches_in_buffer=5,
        store_batch_size_prompts=3,
        n_batches_for_norm_estimate=9,
    )
    changed = dataclasses.replace(preset, training=dataclasses.replace(preset.training, **odd))
    cfg = C.runner_config(changed, C.standard_sae_config(changed, D_MODEL), "cpu")
    assert {name: getattr(cfg, name) for name in odd} == odd
    assert cfg.checkpoint_path is None and cfg.verbose is False and cfg.exclude_special_tokens


def test_overrides_replace_fields():
    preset = PRESETS["tiny"]
    sae = C.topk_sae_config(preset, D_MODEL, d_sae=2 * D_MODEL)
    assert sae.d_sae == 2 * D_MODEL and sae.k == preset.training.topk_k
    cfg = C.runner_config(preset, sae, "cpu", training_tokens=1234)
    assert cfg.training_tokens == 1234 and cfg.sae is sae


def test_book_eval_config():
    cfg = C.book_eval_config(batch_size_prompts=8, n_batches=5, n_ce_batches=2)
    assert cfg.compute_ce_loss and cfg.compute_sparsity_metrics and cfg.compute_variance_metrics
    assert cfg.compute_featurewise_density_statistics and not cfg.compute_kl
    assert cfg.n_eval_reconstruction_batches == 2 and cfg.n_eval_sparsity_variance_batches == 5
    assert cfg.batch_size_prompts == 8
    with pytest.raises(ValueError, match="n_ce_batches"):
        C.book_eval_config(batch_size_prompts=8, n_batches=5, n_ce_batches=0)
    one = C.book_eval_config(batch_size_prompts=1, n_batches=1, n_ce_batches=1)  # the least
    assert one.batch_size_prompts == 1
    assert one.n_eval_reconstruction_batches == 1 and one.n_eval_sparsity_variance_batches == 1


# ---- the stand-alone script ------------------------------------------------------------------


def fields(cfg) -> dict:
    """Every field of a runner config; the nested SAE and logging configs compare as dataclasses.

    SAELens appends a random id to ``checkpoint_path`` (``checkpoints/1a2b3c4d``): it is left out.
    """
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    if values["checkpoint_path"] is not None:
        values["checkpoint_path"] = values["checkpoint_path"].rsplit("/", 1)[0]
    return values


def script_config(architecture: str, d_in: int = D_MODEL, **options):
    """Run the generated script's configuration part (not its `__main__`: nothing downloads)."""
    source = C.training_script(
        PRESETS["gpt2-small"], architecture=architecture, device="cpu", **options
    )
    namespace = {"__name__": "train_sae"}
    exec(compile(source, "train_sae.py", "exec"), namespace)
    return namespace["make_config"](d_in)


@pytest.mark.parametrize("architecture", ["standard", "topk"])
@pytest.mark.parametrize(
    "options", [{}, {"log_to_wandb": False, "autocast": True, "n_checkpoints": 0}]
)
def test_training_script_builds_exactly_the_runner_config(architecture, options):
    preset = PRESETS["gpt2-small"]
    built = script_config(architecture, **options)
    overrides = C.script_overrides(preset, architecture, **options)
    expected = C.runner_config(
        preset, SAE_CONFIGS[architecture](preset, D_MODEL), "cpu", **overrides
    )
    differ = [
        f"{name}: script {value!r}, runner_config {fields(expected)[name]!r}"
        for name, value in fields(built).items()
        if value != fields(expected)[name]
    ]
    assert differ == []
    assert len(fields(built)) > 50  # every field of LanguageModelSAERunnerConfig was compared


def test_the_script_differs_from_the_notebook_only_where_a_script_must():
    overrides = C.script_overrides(PRESETS["gpt2-small"])
    assert set(overrides) == {
        "autocast",
        "logger",
        "output_path",
        "checkpoint_path",
        "n_checkpoints",
        "verbose",
    }


@pytest.mark.parametrize(
    ("architecture", "label", "other"),
    [("standard", "Standard", "TopK"), ("topk", "TopK", "Standard")],
)
def test_training_script_says_what_it_trains_and_how_to_run_it(architecture, label, other):
    preset = PRESETS["gpt2-small"]
    source = C.training_script(preset, architecture=architecture, filename="my_run.py")
    title = source.splitlines()[0]
    assert label in title and other not in title
    assert '"gpt2-small" preset' in source
    assert "Run:  python my_run.py\n" in source
    # the comment on dead_feature_window counts the steps as SAELens does
    steps = C.runner_config(
        preset, SAE_CONFIGS[architecture](preset, D_MODEL), "cpu"
    ).total_training_steps
    assert f"this run has {steps:,}\n" in source
    # consistent 4-space indentation, as ruff format writes it
    assert all((len(line) - len(line.lstrip(" "))) % 4 == 0 for line in source.splitlines())


def test_training_script_errors():
    with pytest.raises(ValueError, match="bundled"):
        C.training_script(PRESETS["tiny"])
    with pytest.raises(ValueError, match="architecture"):
        C.training_script(PRESETS["gpt2-small"], architecture="gated")


@pytest.mark.parametrize("name", ["gpt2-small", "tiny"])
def test_training_sizes_fit_saelens(name):
    """Each preset's training sizes pass SAELens 6.x's own constraints (checked here, not at run time)."""
    sizes = PRESETS[name].training
    steps = sizes.training_tokens // sizes.train_batch_size_tokens
    # The mixing buffer holds n_batches_in_buffer x context_size activations and must hold one batch.
    assert sizes.n_batches_in_buffer * sizes.context_size >= sizes.train_batch_size_tokens
    # Dead-latent bookkeeping (and TopK's revival loss) only starts once a window of steps has passed.
    assert 0 < sizes.dead_feature_window < steps
    assert 0 <= sizes.l1_warm_up_steps < steps and 0 <= sizes.lr_warm_up_steps < steps
    assert 0 < sizes.topk_k < sizes.expansion_factor * 64  # k is well below any preset's d_sae
    assert sizes.n_batches_for_norm_estimate >= 1 and sizes.eval_texts >= 1
    assert 1 <= sizes.eval_ce_batches <= sizes.eval_batches
