"""Fixtures shared by the unit tests: a small random model, a random SAE and a feature sample.

Sizes unlike GPT-2's (d_model 48, d_sae 200), fixed seeds, no downloads; builders in
``random_models.py``. ``import utils`` works because ``pyproject.toml`` puts the repository on
pytest's ``pythonpath``.
"""

from __future__ import annotations

import os

import pytest
from random_models import (
    SAMPLE_CONTEXT,
    SAMPLE_TEXTS,
    TRAINING_TEXTS,
    build_model,
    build_sae,
    build_tokenizer,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A random 2-layer ``HookedSAETransformer`` (d_model 48) with a 300-token BPE tokenizer."""
    return build_model(build_tokenizer(tmp_path_factory.mktemp("tokenizer")))


@pytest.fixture(scope="module")
def sae():
    """A random ``StandardSAE`` (d_in 48, d_sae 200) on ``blocks.1.hook_resid_pre``."""
    return build_sae()


@pytest.fixture(scope="module")
def sample(model, sae):
    """``collect_feature_stats`` of ``sae`` over ``SAMPLE_TEXTS`` (contexts of 24 tokens)."""
    from utils import features as F

    return F.collect_feature_stats(
        model, sae, SAMPLE_TEXTS, context_size=SAMPLE_CONTEXT, batch_size=2, progress=False
    )


@pytest.fixture(scope="module")
def dataset():
    """A ``datasets.Dataset`` of short Python snippets (a ``text`` column) to train on."""
    from datasets import Dataset

    return Dataset.from_dict({"text": TRAINING_TEXTS})


@pytest.fixture
def clean_env(monkeypatch):
    """``monkeypatch`` after removing every ``SAE_BOOK_*`` variable and the Hub's offline flags
    (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``), so a test sees the book's defaults whatever
    the shell set (``make test`` sets some of them)."""
    for name in list(os.environ):
        if name.startswith("SAE_BOOK_") or name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            monkeypatch.delenv(name)
    return monkeypatch
