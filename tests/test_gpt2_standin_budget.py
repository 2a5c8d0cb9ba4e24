"""SAE_BOOK_SCALE: the one mechanism that makes the tutorials' runs small for the stand-in tests
(utils/presets.py). Fast unit tests, no models."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
from scipy import stats

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
    # GPT-2 small's 10 M tokens are not a whole number of 4096-token batches (2441.4): recomputed,
    # they would become 2441 x 4096 = 9,998,336; scale 1 must leave the preset as it is.
    assert scale_training(PRESETS["gpt2-small"].training, 1) == PRESETS["gpt2-small"].training
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
    # 2 x 2048 / (2 x 128) = 16 batches, a whole number of them: SAELens takes counts as ints
    assert small.n_batches_in_buffer == 16
    assert all(type(getattr(small, f.name)) is type(getattr(tight, f.name)) for f in fields(small))


# What tutorial 3 picks and how it measures: a scaled run measures the same things, less often.
MEASURED_THE_SAME = (
    "n_latents",
    "min_density",
    "max_density",
    "top_tokens",
    "steering_scales",
    "generation_scales",
    "context_size",
    "batch_size",
)
# The bars tutorial 3 sets on the attribution-vs-ablation comparison (its cell t3-36 asserts
# them with assert_quality): over each context's top pairs alone (by |attribution|), the median
# per-context Spearman of estimate against real ablation is above TOP_PAIRS_SPEARMAN, and the
# estimate's top pair is the real top pair in more than TOP_PAIR_FOUND of the contexts.
TOP_PAIRS_SPEARMAN, TOP_PAIR_FOUND = 0.5, 0.5


def chance_of_top_pairs_spearman(sizes: InterventionSizes) -> float:
    """Probability that rankings unrelated to the real effects pass the Spearman bar: each
    context's Spearman over its ``attribution_top`` pairs is above the bar with probability q
    (one-sided t approximation), and the median over the contexts needs half of them there."""
    n, r = sizes.attribution_top, TOP_PAIRS_SPEARMAN
    q = stats.t.sf(r * math.sqrt((n - 2) / (1 - r * r)), n - 2)
    contexts = sizes.attribution_contexts
    return stats.binom.sf(math.ceil(contexts / 2) - 1, contexts, q)


def chance_of_finding_the_top_pair(sizes: InterventionSizes) -> float:
    """Probability that an estimate unrelated to the real effects names the real top pair in
    more than TOP_PAIR_FOUND of the contexts: one chance in (top + random pairs) per context."""
    contexts = sizes.attribution_contexts
    q = 1 / (sizes.attribution_top + sizes.attribution_random)
    needed = math.floor(TOP_PAIR_FOUND * contexts) + 1
    return stats.binom.sf(needed - 1, contexts, q)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_tutorial_3s_attribution_bars_are_not_passed_by_chance(name):
    """At each preset's own sizes, an attribution unrelated to the real ablations would pass
    neither bar (p < 1%): the claims can fail."""
    sizes = PRESETS[name].interventions
    assert chance_of_top_pairs_spearman(sizes) < 0.01
    assert chance_of_finding_the_top_pair(sizes) < 0.01


def test_the_chance_levels_by_hand():
    """The two chance levels against numbers worked by hand."""
    one = InterventionSizes(attribution_contexts=1, attribution_top=20, attribution_random=20)
    # one context, 20 pairs: t = 0.5 x sqrt(18 / 0.75) = 2.449 on 18 degrees of freedom
    assert chance_of_top_pairs_spearman(one) == pytest.approx(0.0124, abs=5e-4)
    assert chance_of_finding_the_top_pair(one) == pytest.approx(1 / 40)
    three = InterventionSizes(attribution_contexts=3, attribution_top=2, attribution_random=2)
    # more than half of 3 contexts = 2 or 3 of them, each with probability 1/4
    assert chance_of_finding_the_top_pair(three) == pytest.approx(3 * 3 / 64 + 1 / 64)


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("scale", [1e-6, 2e-4, 0.1, 0.5])
def test_scaled_interventions_shrink_counts_only(name, scale):
    full = PRESETS[name].interventions
    small = scale_interventions(full, scale)
    for field in fields(InterventionSizes):
        value, before = getattr(small, field.name), getattr(full, field.name)
        if field.name in MEASURED_THE_SAME:
            assert value == before, field.name
        else:  # a count: smaller or equal, never zero
            assert 1 <= value <= before, field.name
    assert scale_interventions(full, 1) == full
    # GPT-2 small's attribution comparison ablates 800 pairs; scaled for the stand-in, 20
    if name == "gpt2-small" and scale == 2e-4:
        pairs = small.attribution_contexts * (small.attribution_top + small.attribution_random)
        assert pairs == 20


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_smallest_scaled_run_still_supports_tutorial_3s_claims(name):
    """What the floors exist for, at a scale where every one of them binds."""
    small = scale_preset(PRESETS[name], 1e-9)
    sizes = small.interventions
    # The attribution bars are measured, not decided, at this scale (2 contexts of 5 top pairs
    # pass them by chance: the stand-in runs with SAE_BOOK_QUALITY_CHECKS=warn); what the floors
    # keep is that each measure exists: a rank correlation over a context's top pairs (three or
    # more), a top pair among others, and "most contexts" over more than one.
    assert sizes.attribution_top >= 3 and sizes.attribution_random >= 1
    assert sizes.attribution_contexts >= 2
    assert chance_of_finding_the_top_pair(sizes) < 0.5
    # Each steering control shows a spread: at least two directions, not one draw.
    assert sizes.random_directions >= 2
    # Curves and ablation effects are means over contexts, not one context's accident.
    assert sizes.steering_contexts >= 2 and sizes.ablation_contexts >= 2
    # The sample holds as many texts as any measurement asks for (sample_contexts takes "up to n").
    asked = (sizes.steering_contexts, sizes.ablation_contexts, sizes.attribution_contexts)
    assert small.sample_texts >= max(asked)
    # A steered generation shows a phrase, not a token or two.
    assert sizes.max_new_tokens >= 5


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
