"""Tests for utils/training.py on a small random model and SAEs of unusual sizes (d_in 48, d_sae 200).

Nothing here downloads anything: the tokenizer is trained in a temporary folder and the model has
random weights.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from random_models import D_MODEL, D_SAE, build_model, build_tokenizer  # also puts the repo on sys.path

from utils import training as T

# Expected with a small text dataset (utils.training.quiet_expected_training_messages hides them in notebooks).
pytestmark = [
    pytest.mark.filterwarnings("ignore:The training dataset contains fewer samples"),
    pytest.mark.filterwarnings("ignore:Dataset is not tokenized"),
]

CONTEXT = 16
BATCH_TOKENS = 64
TEXTS = [
    f"def function_{i}(x):\n    return x * {i} + len('{'abc' * (i % 5)}')  # number {i}" for i in range(120)
]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_model(build_tokenizer(tmp_path_factory.mktemp("tokenizer")))


@pytest.fixture(scope="module")
def dataset():
    from datasets import Dataset

    return Dataset.from_dict({"text": TEXTS})


def make_cfg(architecture: str = "standard", steps: int = 12, log_frequency: int = 3):
    from sae_lens import (
        LanguageModelSAERunnerConfig,
        LoggingConfig,
        StandardTrainingSAEConfig,
        TopKTrainingSAEConfig,
    )

    if architecture == "standard":
        sae = StandardTrainingSAEConfig(d_in=D_MODEL, d_sae=D_SAE, l1_coefficient=1.0, l1_warm_up_steps=2,
                                        normalize_activations="expected_average_only_in")
    else:
        sae = TopKTrainingSAEConfig(d_in=D_MODEL, d_sae=D_SAE, k=8, normalize_activations="expected_average_only_in")
    return LanguageModelSAERunnerConfig(
        sae=sae, model_name="random-test-model", hook_name="blocks.1.hook_resid_pre",
        dataset_path="in-memory", is_dataset_tokenized=False, streaming=False, context_size=CONTEXT,
        training_tokens=steps * BATCH_TOKENS, train_batch_size_tokens=BATCH_TOKENS, lr=1e-3,
        n_batches_in_buffer=8, store_batch_size_prompts=4, n_batches_for_norm_estimate=2,
        dead_feature_window=5, feature_sampling_window=5, device="cpu",
        logger=LoggingConfig(log_to_wandb=False, wandb_log_frequency=log_frequency),
        output_path=None, checkpoint_path=None, exclude_special_tokens=True, verbose=False,
    )


def train(runner_class, cfg, model, dataset, **kwargs):
    torch.manual_seed(0)
    runner = runner_class(cfg, override_dataset=dataset, override_model=model, **kwargs)
    return runner, runner.run()


# --------------------------------------------------------------------------------------------
# RecordingTrainingRunner
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["standard", "topk"])
def test_recording_runner_trains_exactly_like_the_bare_runner(model, dataset, architecture):
    from sae_lens import LanguageModelSAETrainingRunner

    T.quiet_expected_training_messages()
    _, bare = train(LanguageModelSAETrainingRunner, make_cfg(architecture), model, dataset)
    runner, recorded = train(T.RecordingTrainingRunner, make_cfg(architecture), model, dataset)
    assert torch.equal(bare.W_enc, recorded.W_enc)
    assert torch.equal(bare.W_dec, recorded.W_dec)


def test_recording_runner_records_every_log_frequency_steps(model, dataset):
    runner, sae = train(T.RecordingTrainingRunner, make_cfg("standard", steps=12, log_frequency=3), model, dataset)
    curves = runner.curves
    assert isinstance(curves, pd.DataFrame)
    assert curves["step"].tolist() == [3, 6, 9, 12]
    assert curves["tokens"].tolist() == [3 * BATCH_TOKENS, 6 * BATCH_TOKENS, 9 * BATCH_TOKENS, 12 * BATCH_TOKENS]
    for column in ("losses/overall_loss", "losses/mse_loss", "losses/l1_loss", "metrics/l0",
                   "metrics/explained_variance", "sparsity/dead_features", "details/current_learning_rate"):
        assert column in curves.columns, column
    assert (curves["metrics/l0"] >= 0).all() and (curves["metrics/l0"] <= D_SAE).all()
    assert sae.cfg.d_sae == D_SAE


def test_recording_runner_log_every_overrides_and_topk_has_aux_loss(model, dataset):
    runner, _ = train(T.RecordingTrainingRunner, make_cfg("topk", steps=8), model, dataset, log_every=4)
    assert runner.curves["step"].tolist() == [4, 8]
    assert "losses/auxiliary_reconstruction_loss" in runner.curves.columns
    assert np.allclose(runner.curves["metrics/l0"], 8)  # TopK: exactly k active latents


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_recording_runner_rejects_bad_log_every(model, dataset, bad):
    with pytest.raises(ValueError, match="log_every"):
        T.RecordingTrainingRunner(make_cfg(), override_dataset=dataset, override_model=model, log_every=bad)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def fake_curves(n: int = 5, with_l1: bool = True) -> pd.DataFrame:
    frame = pd.DataFrame({
        "step": np.arange(1, n + 1) * 10, "tokens": np.arange(1, n + 1) * 640,
        "losses/overall_loss": np.linspace(5, 1, n), "losses/mse_loss": np.linspace(4, 0.5, n),
        "metrics/l0": np.linspace(100, 20, n), "metrics/explained_variance": np.linspace(0.1, 0.9, n),
    })
    if with_l1:
        frame["losses/l1_loss"] = 1.0
    return frame


def test_training_curves_figure_one_run_and_overlay():
    fig = T.training_curves_figure(fake_curves())
    assert len(fig.data) == len(T.DEFAULT_CURVES)
    l0_panel = [c for c, _ in T.DEFAULT_CURVES].index("metrics/l0")
    assert fig.layout[f"yaxis{l0_panel + 1 if l0_panel else ''}"].type == "log"
    fig2 = T.training_curves_figure({"Standard": fake_curves(), "TopK": fake_curves(4)}, x="step")
    assert len(fig2.data) == 2 * len(T.DEFAULT_CURVES)
    assert {trace.name for trace in fig2.data} == {"Standard", "TopK"}


def test_log_axis_ticks_are_round_numbers_in_range():
    assert T.log_axis_ticks([35.0, 600.0]).count(100.0) == 1
    visible = [t for t in T.log_axis_ticks([35.0, 600.0]) if 35 <= t <= 600]
    assert visible == [50.0, 100.0, 200.0, 500.0]  # 1-2-5: powers of ten alone would give one tick
    visible = [t for t in T.log_axis_ticks([1.0, 5000.0]) if 1 <= t <= 5000]
    assert visible == [1.0, 10.0, 100.0, 1000.0]
    visible = [t for t in T.log_axis_ticks([31.0, 45.0, float("nan")]) if 31 <= t <= 45]
    assert visible == [40.0]  # a narrow range: the finest sequence
    assert T.log_axis_ticks([0.0, -1.0]) == []


def test_training_curves_figure_labels_the_log_axis_with_round_ticks():
    frame = fake_curves(6)
    frame["metrics/l0"] = [600.0, 300.0, 120.0, 60.0, 40.0, 36.0]
    fig = T.training_curves_figure(frame)
    l0_panel = [c for c, _ in T.DEFAULT_CURVES].index("metrics/l0")
    axis = fig.layout[f"yaxis{l0_panel + 1 if l0_panel else ''}"]
    assert axis.type == "log" and 100.0 in axis.tickvals and 200.0 in axis.tickvals


def test_training_curves_figure_errors():
    with pytest.raises(ValueError, match="empty"):
        T.training_curves_figure({})
    with pytest.raises(ValueError, match="x must be"):
        T.training_curves_figure(fake_curves(), x="epoch")
    with pytest.raises(KeyError, match="none of"):
        T.training_curves_figure(fake_curves(), columns=[("nope", "Nope")])
    with pytest.raises(KeyError, match="no 'tokens' column"):
        T.training_curves_figure(fake_curves().drop(columns="tokens"))


def test_architecture_comparison_figure():
    table = pd.DataFrame({"architecture": ["Standard", "TopK"], "l0": [50.0, 32.0],
                          "explained_variance": [0.8, 0.9], "ce_loss_score": [0.95, 0.98]})
    fig = T.architecture_comparison_figure(table)
    assert len(fig.data) == 4
    assert [t.name for t in fig.data if t.showlegend] == ["Standard", "TopK"]
    assert fig.layout.xaxis.range[0] == 0 and fig.layout.xaxis.range[1] > 50  # every point inside
    with pytest.raises(KeyError, match="ce_loss_score"):
        T.architecture_comparison_figure(table.drop(columns="ce_loss_score"))


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def fake_eval_output(density):
    all_metrics = {
        "sparsity": {"l0": 12.0, "l1": 3.0},
        "reconstruction_quality": {"explained_variance": 0.8, "mse": 0.1},
        "model_performance_preservation": {"ce_loss_score": 0.9, "ce_loss_without_sae": 2.0,
                                           "ce_loss_with_sae": 2.5, "ce_loss_with_ablation": 7.0},
    }
    return all_metrics, {"feature_density": density}


def test_headline_metrics_flattens_and_counts_dead():
    density = [0.0] * 3 + [0.01] * (D_SAE - 3)
    out = T.headline_metrics(*fake_eval_output(density))
    assert out["l0"] == 12.0 and out["ce_loss_zero_ablation"] == 7.0
    assert out["dead_latents"] == 3 and out["dead_fraction"] == pytest.approx(3 / D_SAE)


def test_headline_metrics_errors():
    all_metrics, features = fake_eval_output([0.1])
    del all_metrics["model_performance_preservation"]
    with pytest.raises(KeyError, match="book_eval_config"):
        T.headline_metrics(all_metrics, features)
    with pytest.raises(KeyError, match="feature_density"):
        T.headline_metrics(fake_eval_output([0.1])[0], {})


def test_evaluate_sae_on_a_trained_sae(model, dataset):
    _, sae = train(T.RecordingTrainingRunner, make_cfg("standard", steps=6), model, dataset)
    metrics, density = T.evaluate_sae(sae, model, dataset, n_batches=2, batch_size_prompts=4)
    assert density.shape == (D_SAE,)
    assert ((density >= 0) & (density <= 1)).all()
    assert metrics["eval_tokens"] == 2 * 4 * CONTEXT
    assert 0 <= metrics["l0"] <= D_SAE
    assert metrics["explained_variance"] <= 1
    assert metrics["dead_latents"] == int((density == 0).sum())
    again, _ = T.evaluate_sae(sae, model, dataset, n_batches=2, batch_size_prompts=4)
    assert again == metrics  # a fresh store each call: the same tokens, the same numbers
    fewer_ce, _ = T.evaluate_sae(sae, model, dataset, n_batches=2, batch_size_prompts=4, n_ce_batches=1)
    assert fewer_ce["eval_tokens"] == metrics["eval_tokens"]
    assert set(fewer_ce) == set(metrics)
    with pytest.raises(ValueError, match="n_batches"):
        T.evaluate_sae(sae, model, dataset, n_batches=0, batch_size_prompts=4)


def test_book_eval_config():
    cfg = T.book_eval_config(batch_size_prompts=8, n_batches=5, n_ce_batches=2)
    assert cfg.compute_ce_loss and cfg.compute_sparsity_metrics and cfg.compute_variance_metrics
    assert cfg.compute_featurewise_density_statistics and not cfg.compute_kl
    assert cfg.n_eval_reconstruction_batches == 2 and cfg.n_eval_sparsity_variance_batches == 5
    with pytest.raises(ValueError, match="n_ce_batches"):
        T.book_eval_config(batch_size_prompts=8, n_batches=5, n_ce_batches=0)


def test_dead_latents():
    assert T.dead_latents([0.0, 0.5, 0.0, 1e-9]).tolist() == [0, 2]
    assert T.dead_latents(np.ones(D_SAE) * 0.1).tolist() == []
    assert T.dead_latents(torch.zeros(D_SAE)).dtype == torch.int64
    with pytest.raises(ValueError, match="1-D"):
        T.dead_latents(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        T.dead_latents([0.1, 1.5])


# --------------------------------------------------------------------------------------------
# Exercise checks and message filtering
# --------------------------------------------------------------------------------------------


def test_check_dead_latents(capsys):
    density = np.array([0.0, 0.2, 0.0, 0.3])
    assert T.check_dead_latents(lambda d: np.flatnonzero(d == 0), density) is True
    assert T.check_dead_latents(None, density) is False

    def unfinished(d):
        raise NotImplementedError

    assert T.check_dead_latents(unfinished, density) is False
    with pytest.raises(AssertionError, match="Hint"):
        T.check_dead_latents(lambda d: np.flatnonzero(d < 1e-3), density)  # "rare" is not dead
    assert "Not answered yet" in capsys.readouterr().out


def test_check_expansion_config():
    from dataclasses import replace

    from sae_lens import TopKTrainingSAEConfig

    cfg = make_cfg("topk")
    cfg4 = replace(cfg, sae=TopKTrainingSAEConfig(d_in=D_MODEL, d_sae=4 * D_MODEL, k=8))
    assert T.check_expansion_config(cfg4, d_in=D_MODEL, expansion_factor=4, k=8) is True
    assert T.check_expansion_config(None, d_in=D_MODEL, expansion_factor=4, k=8) is False
    with pytest.raises(AssertionError, match="d_sae"):
        T.check_expansion_config(cfg, d_in=D_MODEL, expansion_factor=4, k=8)
    with pytest.raises(AssertionError, match="TopKTrainingSAEConfig"):
        T.check_expansion_config(make_cfg("standard"), d_in=D_MODEL, expansion_factor=4, k=8)


def test_quiet_expected_training_messages_hides_only_the_listed_ones(caplog):
    T.quiet_expected_training_messages()
    T.quiet_expected_training_messages()  # idempotent
    sae_lens_logger = logging.getLogger("sae_lens")
    assert sum(isinstance(f, T._DropExpectedLogLines) for f in sae_lens_logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger="sae_lens"):
        sae_lens_logger.warning("You just passed in a dataset which will override the one specified")
        sae_lens_logger.warning("Something else went wrong")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["Something else went wrong"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        T.quiet_expected_training_messages()
        warnings.warn("The training dataset contains fewer samples (3) than ...", UserWarning)
        warnings.warn("an unrelated warning", UserWarning)
    assert [str(w.message) for w in caught] == ["an unrelated warning"]


# --------------------------------------------------------------------------------------------
# The stand-alone training script
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ["standard", "topk"])
def test_training_script_builds_the_presets_config(architecture):
    from utils.presets import PRESETS

    preset = PRESETS["gpt2-small"]
    source = T.training_script(preset, architecture=architecture, device="cpu", log_to_wandb=False)
    namespace = {"__name__": "not_main"}  # defines make_config without training (nothing is downloaded)
    exec(compile(source, "train_sae.py", "exec"), namespace)
    cfg = namespace["make_config"](D_MODEL)
    sizes = preset.training
    assert cfg.sae.d_in == D_MODEL and cfg.sae.d_sae == sizes.expansion_factor * D_MODEL
    assert cfg.sae.architecture() == architecture
    assert cfg.hook_name == preset.training_hook and cfg.model_name == preset.model_name
    assert cfg.training_tokens == sizes.training_tokens
    assert cfg.train_batch_size_tokens == sizes.train_batch_size_tokens
    assert cfg.n_batches_in_buffer * cfg.context_size >= cfg.train_batch_size_tokens  # else SAELens raises
    assert cfg.device == "cpu" and cfg.logger.log_to_wandb is False


def test_training_script_errors():
    from utils.presets import PRESETS

    with pytest.raises(ValueError, match="bundled"):
        T.training_script(PRESETS["tiny"])
    with pytest.raises(ValueError, match="architecture"):
        T.training_script(PRESETS["gpt2-small"], architecture="gated")


@pytest.mark.parametrize("name", ["gpt2-small", "tiny"])
def test_training_sizes_fit_saelens(name):
    """Each preset's training sizes pass SAELens 6.x's own constraints (checked here, not at run time)."""
    from utils.presets import PRESETS

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
