"""Helpers shared by the tests of utils/ground_truth/ (tests/test_ground_truth_*.py): small
synthetic models (32 features in 16 dimensions, so they run in seconds), an SAE that is their
true dictionary, and an absorption table's outcome columns written by hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import torch
from sae_lens import StandardTrainingSAEConfig
from sae_lens.saes.standard_sae import StandardTrainingSAE
from sae_lens.synthetic import (
    HierarchyConfig,
    SyntheticModel,
    SyntheticModelConfig,
    init_sae_to_match_feature_dict,
)

N, D = 32, 16


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for the duration (each test file's autouse ``one_thread`` fixture)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_model(seed: int = 0, hierarchy: bool = True) -> SyntheticModel:
    return SyntheticModel(
        SyntheticModelConfig(
            num_features=N,
            hidden_dim=D,
            hierarchy=HierarchyConfig(
                total_root_nodes=2, branching_factor=3, max_depth=1, compensate_probabilities=True
            )
            if hierarchy
            else None,
            seed=seed,
        )
    )


def perfect_sae(model: SyntheticModel) -> StandardTrainingSAE:
    """An SAE whose encoder and decoder are the true feature directions (zero biases)."""
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=D, d_sae=N, l1_coefficient=1.0))
    init_sae_to_match_feature_dict(sae, model.feature_dict)
    sae.b_enc.data.zero_()
    sae.b_dec.data.zero_()
    return sae


def outcome_table(rows: list[tuple[int, float, float, float]]) -> pd.DataFrame:
    """An absorption_table's outcome columns: (parent, fires, carried, lost) per parent."""
    return pd.DataFrame(
        rows, columns=["parent", "rate_with_child", "carried_with_child", "lost_with_child"]
    ).assign(absorption=[0.5, -1.0][: len(rows)] + [0.0] * max(0, len(rows) - 2))
