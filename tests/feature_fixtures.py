"""The fixture the tests of utils.features' samples share (tests/test_features_sample*.py): the toy
sample that ``feature_helpers.py`` describes, worked out by hand.

A test module imports it (pytest finds fixtures in a module's namespace)."""

from __future__ import annotations

import pytest
import torch
from feature_helpers import TOY_COUNTED, TOY_TOKENS, VOCAB, sample_by_hand


@pytest.fixture
def toy():
    dense = torch.zeros(2, 4, 3)
    dense[0, 1, 0], dense[0, 3, 0], dense[1, 2, 0] = 2.0, 4.0, 1.0
    dense[0, 2, 1], dense[1, 2, 1] = 3.0, 0.5
    dense[1, 1, 2] = 0.5
    return sample_by_hand(TOY_TOKENS, [4, 3], TOY_COUNTED, dense, VOCAB)
