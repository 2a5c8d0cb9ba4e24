"""Tests for utils/evaluation.py: the flattened run_evals numbers, dead latents, evaluate_sae."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from random_models import D_SAE, TRAIN_CONTEXT, make_cfg, train

from utils import evaluation as E
from utils.training import RecordingTrainingRunner

# Expected with a small text dataset (quiet_expected_training_messages hides them in notebooks).
pytestmark = [
    pytest.mark.filterwarnings("ignore:The training dataset contains fewer samples"),
    pytest.mark.filterwarnings("ignore:Dataset is not tokenized"),
]


def fake_eval_output(density):
    all_metrics = {
        "sparsity": {"l0": 12.0, "l1": 3.0},
        "reconstruction_quality": {"explained_variance": 0.8, "mse": 0.1},
        "model_performance_preservation": {
            "ce_loss_score": 0.9,
            "ce_loss_without_sae": 2.0,
            "ce_loss_with_sae": 2.5,
            "ce_loss_with_ablation": 7.0,
        },
    }
    return all_metrics, {"feature_density": density}


def test_headline_metrics_flattens_and_counts_dead():
    density = [0.0] * 3 + [0.01] * (D_SAE - 3)
    out = E.headline_metrics(*fake_eval_output(density))
    assert out["l0"] == 12.0 and out["ce_loss_zero_ablation"] == 7.0
    assert out["dead_latents"] == 3 and out["dead_fraction"] == pytest.approx(3 / D_SAE)


def test_headline_metrics_errors():
    all_metrics, features = fake_eval_output([0.1])
    del all_metrics["model_performance_preservation"]
    with pytest.raises(KeyError, match="book_eval_config"):
        E.headline_metrics(all_metrics, features)
    with pytest.raises(KeyError, match="feature_density"):
        E.headline_metrics(fake_eval_output([0.1])[0], {})


def test_evaluate_sae_on_a_trained_sae(model, dataset):
    _, sae = train(RecordingTrainingRunner, make_cfg("standard", steps=6), model, dataset)
    metrics, density = E.evaluate_sae(sae, model, dataset, n_batches=2, batch_size_prompts=4)
    assert density.shape == (D_SAE,)
    assert ((density >= 0) & (density <= 1)).all()
    assert metrics["eval_tokens"] == 2 * 4 * TRAIN_CONTEXT
    assert 0 <= metrics["l0"] <= D_SAE
    assert metrics["explained_variance"] <= 1
    assert metrics["dead_latents"] == int((density == 0).sum())
    again, _ = E.evaluate_sae(sae, model, dataset, n_batches=2, batch_size_prompts=4)
    assert again == metrics  # a fresh store each call: the same tokens, the same numbers
    fewer_ce, _ = E.evaluate_sae(
        sae, model, dataset, n_batches=2, batch_size_prompts=4, n_ce_batches=1
    )
    assert fewer_ce["eval_tokens"] == metrics["eval_tokens"]
    assert set(fewer_ce) == set(metrics)
    with pytest.raises(ValueError, match="n_batches"):
        E.evaluate_sae(sae, model, dataset, n_batches=0, batch_size_prompts=4)


def test_dead_latents():
    assert E.dead_latents([0.0, 0.5, 0.0, 1e-9]).tolist() == [0, 2]
    assert E.dead_latents(np.ones(D_SAE) * 0.1).tolist() == []
    assert E.dead_latents(torch.zeros(D_SAE)).dtype == torch.int64
    with pytest.raises(ValueError, match="1-D"):
        E.dead_latents(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        E.dead_latents([0.1, 1.5])
