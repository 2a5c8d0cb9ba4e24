"""Tests for utils/training.py on a small random model and SAEs of unusual sizes (d_in 48, d_sae 200).

Nothing here downloads anything: the tokenizer is trained in a temporary folder and the model has
random weights (fixtures in conftest.py).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from random_models import BATCH_TOKENS, D_SAE, make_cfg, train

from utils import training as T

# Expected with a small text dataset (quiet_expected_training_messages hides them in notebooks).
pytestmark = [
    pytest.mark.filterwarnings("ignore:The training dataset contains fewer samples"),
    pytest.mark.filterwarnings("ignore:Dataset is not tokenized"),
]


@pytest.mark.parametrize("architecture", ["standard", "topk"])
def test_recording_runner_trains_exactly_like_the_bare_runner(model, dataset, architecture):
    from sae_lens import LanguageModelSAETrainingRunner

    T.quiet_expected_training_messages()
    _, bare = train(LanguageModelSAETrainingRunner, make_cfg(architecture), model, dataset)
    runner, recorded = train(T.RecordingTrainingRunner, make_cfg(architecture), model, dataset)
    assert torch.equal(bare.W_enc, recorded.W_enc)
    assert torch.equal(bare.W_dec, recorded.W_dec)


def test_recording_runner_records_every_log_frequency_steps(model, dataset):
    runner, sae = train(
        T.RecordingTrainingRunner, make_cfg("standard", steps=12, log_frequency=3), model, dataset
    )
    curves = runner.curves
    assert isinstance(curves, pd.DataFrame)
    assert curves["step"].tolist() == [3, 6, 9, 12]
    tokens = [3 * BATCH_TOKENS, 6 * BATCH_TOKENS, 9 * BATCH_TOKENS, 12 * BATCH_TOKENS]
    assert curves["tokens"].tolist() == tokens
    # the trainer's own count, passed on to build_train_step_log_dict
    assert curves["details/n_training_samples"].tolist() == tokens
    for column in (
        "losses/overall_loss",
        "losses/mse_loss",
        "losses/l1_loss",
        "metrics/l0",
        "metrics/explained_variance",
        "sparsity/dead_features",
        "details/current_learning_rate",
    ):
        assert column in curves.columns, column
    assert (curves["metrics/l0"] >= 0).all() and (curves["metrics/l0"] <= D_SAE).all()
    assert sae.cfg.d_sae == D_SAE


def test_recording_runner_log_every_overrides_and_topk_has_aux_loss(model, dataset):
    runner, _ = train(
        T.RecordingTrainingRunner, make_cfg("topk", steps=8), model, dataset, log_every=4
    )
    assert runner.curves["step"].tolist() == [4, 8]
    assert "losses/auxiliary_reconstruction_loss" in runner.curves.columns
    assert np.allclose(runner.curves["metrics/l0"], 8)  # TopK: exactly k active latents


def test_recording_runner_log_every_1_records_every_step(model, dataset):
    runner, _ = train(
        T.RecordingTrainingRunner, make_cfg("standard", steps=3), model, dataset, log_every=1
    )
    assert runner.curves["step"].tolist() == [1, 2, 3]


def test_recording_runner_trains_the_sae_it_is_given(model, dataset):
    from sae_lens import StandardTrainingSAE

    cfg = make_cfg("standard", steps=3)
    torch.manual_seed(1)
    given = StandardTrainingSAE(cfg.sae)
    runner, trained = train(
        T.RecordingTrainingRunner, cfg, model, dataset, override_sae=given, log_every=1
    )
    assert runner.sae is given and trained is given
    assert runner.curves["step"].tolist() == [1, 2, 3]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_recording_runner_rejects_bad_log_every(model, dataset, bad):
    with pytest.raises(ValueError, match="log_every"):
        T.RecordingTrainingRunner(
            make_cfg(), override_dataset=dataset, override_model=model, log_every=bad
        )


def test_quiet_expected_training_messages_hides_only_the_listed_ones(caplog):
    T.quiet_expected_training_messages()
    T.quiet_expected_training_messages()  # idempotent
    sae_lens_logger = logging.getLogger("sae_lens")
    assert sum(isinstance(f, T._DropExpectedLogLines) for f in sae_lens_logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger="sae_lens"):
        sae_lens_logger.warning(
            "You just passed in a dataset which will override the one specified"
        )
        sae_lens_logger.warning("Something else went wrong")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["Something else went wrong"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        T.quiet_expected_training_messages()
        warnings.warn(
            "The training dataset contains fewer samples (3) than ...", UserWarning, stacklevel=1
        )
        warnings.warn("an unrelated warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["an unrelated warning"]


def test_quiet_expected_training_messages_hides_only_user_warnings():
    """The same text in another category of warning is not one of the expected notices."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        T.quiet_expected_training_messages()
        warnings.warn(
            "The training dataset contains fewer samples (3) than ...", RuntimeWarning, stacklevel=1
        )
    assert [(w.category, str(w.message)) for w in caught] == [
        (RuntimeWarning, "The training dataset contains fewer samples (3) than ...")
    ]
