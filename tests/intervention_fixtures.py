"""The module-scoped fixtures every tests/test_interventions_*.py file shares: a random tokenizer,
the random model with a final LayerNorm whose weights are not all ones (built once per test module,
as before), and 12 sampled contexts of 4 tokens with their attribution.

A test module imports the fixtures it uses (pytest finds fixtures in a module's namespace);
``conftest.py``'s ``sae`` and ``sample`` are then built on this ``model``."""

from __future__ import annotations

import pytest
from intervention_helpers import build_model_with_final_ln_weights, contexts_attribution
from random_models import build_tokenizer

from utils import interventions as I


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return build_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def model(tokenizer):
    return build_model_with_final_ln_weights(tokenizer)


@pytest.fixture(scope="module")
def contexts(sample):
    return I.sample_contexts(sample, 12, 4)


@pytest.fixture(scope="module")
def attribution(model, sae, contexts):
    return contexts_attribution(model, sae, contexts)
