"""SAE_BOOK_SCALE: the one mechanism that makes the tutorials' runs small for the stand-in tests
(utils/presets.py). Fast unit tests, no models."""

from __future__ import annotations

from dataclasses import fields

import pytest
from random_models import REPO  # noqa: F401  (puts the repository on sys.path)

from utils.presets import (
    PRESETS,
    SCALE_ENV_VAR,
    InterventionSizes,
    TrainingSizes,
    choose_preset,
    scale_interventions,
    scale_preset,
    scale_training,
)

UNSCALED = ("context_size", "expansion_factor", "lr", "l1_coefficient", "topk_k")


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("scale", [1e-6, 2e-4, 0.01, 0.5])
def test_scaled_sizes_make_a_valid_smaller_run(name, scale):
    full = PRESETS[name].training
    small = scale_training(full, scale)
    steps = small.training_tokens // small.train_batch_size_tokens
    assert small.training_tokens % small.train_batch_size_tokens == 0
    assert steps >= 4
    assert small.train_batch_size_tokens % small.context_size == 0
    # SAELens trains from half its buffer; tutorial 2 asserts the same two facts
    buffer_tokens = small.n_batches_in_buffer * small.store_batch_size_prompts * small.context_size
    assert buffer_tokens // 2 >= small.train_batch_size_tokens
    assert small.n_batches_in_buffer * small.context_size >= small.train_batch_size_tokens
    assert 1 <= small.dead_feature_window < steps
    assert small.eval_texts >= 8 and small.eval_batches >= 1 and small.eval_ce_batches >= 1
    for field in fields(TrainingSizes):
        value, before = getattr(small, field.name), getattr(full, field.name)
        if field.name in UNSCALED:
            assert value == before, field.name
        else:
            assert value <= max(before, 2 * small.train_batch_size_tokens), field.name
    assert small.training_tokens < full.training_tokens


def test_scale_one_is_the_preset_and_bad_scales_are_refused():
    sizes = PRESETS["tiny"].training
    assert scale_training(sizes, 1) == sizes
    for bad in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match="in \\(0, 1\\]"):
            scale_training(sizes, bad)


def test_choose_preset_applies_the_environment_variable(monkeypatch, capsys):
    monkeypatch.setenv("SAE_BOOK_PRESET", "gpt2-small")
    monkeypatch.delenv(SCALE_ENV_VAR, raising=False)
    assert choose_preset(verbose=False) == PRESETS["gpt2-small"]
    monkeypatch.setenv(SCALE_ENV_VAR, "0.0002")
    preset = choose_preset()
    assert preset == scale_preset(PRESETS["gpt2-small"], 0.0002)
    assert preset.training == scale_training(PRESETS["gpt2-small"].training, 0.0002)
    assert preset.training.training_tokens < 10_000 < PRESETS["gpt2-small"].training.training_tokens
    assert preset.model_name == "gpt2-small" and preset.sae_id == PRESETS["gpt2-small"].sae_id
    assert f"run sizes scaled by 0.0002 ({SCALE_ENV_VAR})" in capsys.readouterr().out
    for bad in ("fast", "0", "2"):
        monkeypatch.setenv(SCALE_ENV_VAR, bad)
        with pytest.raises(ValueError, match=SCALE_ENV_VAR):
            choose_preset(verbose=False)


def test_a_small_buffer_grows_to_hold_a_batch():
    """Sizes whose buffer only just holds a batch: scaled, the buffer must still hold one."""
    from dataclasses import replace

    # 22 x 3 x 128 / 2 = 4224 tokens, just over one 4096-token batch; halved and rounded, the
    # buffer would hold 11 x 2 x 128 / 2 = 1408 tokens, under the 2048-token batch
    tight = replace(
        PRESETS["gpt2-small"].training, n_batches_in_buffer=22, store_batch_size_prompts=3
    )
    small = scale_training(tight, 0.5)
    buffer_tokens = small.n_batches_in_buffer * small.store_batch_size_prompts * small.context_size
    assert buffer_tokens // 2 >= small.train_batch_size_tokens == 2048


INTERVENTION_FLOORS = {
    "steering_contexts": 4,
    "ablation_contexts": 4,
    "attribution_contexts": 2,
    "attribution_top": 5,
    "attribution_random": 5,
    "random_directions": 1,
    "max_new_tokens": 8,
}


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("scale", [1e-6, 2e-4, 0.1, 0.5])
def test_scaled_interventions_shrink_counts_only(name, scale):
    full = PRESETS[name].interventions
    small = scale_interventions(full, scale)
    for field in fields(InterventionSizes):
        value, before = getattr(small, field.name), getattr(full, field.name)
        if field.name in INTERVENTION_FLOORS:
            assert min(before, INTERVENTION_FLOORS[field.name]) <= value <= before, field.name
        else:  # what the tutorial picks and how it measures does not change
            assert value == before, field.name
    assert scale_interventions(full, 1) == full
    # GPT-2 small's attribution comparison ablates 800 pairs; scaled for the stand-in, 20
    if name == "gpt2-small" and scale == 2e-4:
        pairs = small.attribution_contexts * (small.attribution_top + small.attribution_random)
        assert pairs == 20


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_scaled_preset_keeps_its_identity_and_a_usable_sample(name):
    full = PRESETS[name]
    small = scale_preset(full, 2e-4)
    assert small.sample_texts == min(full.sample_texts, 64)
    assert small.training == scale_training(full.training, 2e-4)
    assert small.interventions == scale_interventions(full.interventions, 2e-4)
    assert small.synthetic == full.synthetic
    for same in (
        "model_name",
        "analysis_hook",
        "training_hook",
        "sae_id",
        "dataset_path",
        "prompt",
    ):
        assert getattr(small, same) == getattr(full, same), same
    assert scale_preset(full, 1) is full
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        scale_preset(full, 0)
