"""Tests for utils/ground_truth/metrics.py (tutorial 4): absorption, the absorption and detection
tables, and the absorption outcomes, on small synthetic models and hand-made firing patterns."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from ground_truth_helpers import N, one_torch_thread, outcome_table, perfect_sae, small_model
from sae_lens import StandardTrainingSAEConfig
from sae_lens.saes.standard_sae import StandardTrainingSAE
from sae_lens.synthetic import HierarchyConfig, SyntheticModel, SyntheticModelConfig

from utils.ground_truth import (
    OUTCOMES,
    absorption,
    absorption_outcomes,
    absorption_table,
    feature_detection_table,
    parent_children,
)


@pytest.fixture(autouse=True)
def one_thread():
    """Small SAEs train faster on one thread (as in the notebook), much faster on a busy CPU."""
    with one_torch_thread():
        yield


def bools(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.bool)


# absorption: the metric itself, on firing patterns whose answer is known
def test_absorption_is_one_when_a_child_silences_the_latent():
    parent = bools(1, 1, 1, 1, 0)
    child = bools(0, 0, 1, 1, 1)
    latent = bools(1, 1, 0, 0, 0)
    assert absorption(latent, parent, child) == pytest.approx(1.0)


def test_absorption_is_zero_when_the_latent_ignores_the_children():
    parent = bools(1, 1, 1, 1, 0)
    child = bools(0, 0, 1, 1, 1)
    latent = bools(1, 0, 1, 0, 1)  # half the time with and without a child
    assert absorption(latent, parent, child) == pytest.approx(0.0)


def test_absorption_counts_only_samples_where_the_parent_fires():
    parent = bools(1, 1, 1, 1, 0, 0)
    child = bools(0, 0, 1, 1, 1, 1)
    latent = bools(1, 1, 1, 0, 0, 0)  # 2/2 alone, 1/2 with a child; no parent: ignored
    assert absorption(latent, parent, child) == pytest.approx(0.5)


def test_absorption_is_nan_without_both_cases():
    parent = bools(1, 1, 0)
    assert math.isnan(absorption(bools(1, 1, 0), parent, bools(0, 0, 1)))  # never with a child
    assert math.isnan(absorption(bools(0, 0, 0), parent, bools(0, 1, 1)))  # silent when alone


def test_absorption_rejects_non_boolean_input():
    with pytest.raises(ValueError, match="boolean"):
        absorption(torch.ones(3), bools(1, 1, 1), bools(0, 1, 0))
    with pytest.raises(ValueError, match="same length"):
        absorption(bools(1, 1), bools(1, 1, 1), bools(0, 1, 0))


# tables, on an SAE that is the true dictionary
def test_tables_of_the_true_dictionary():
    model = small_model()
    sae = perfect_sae(model)
    torch.manual_seed(1)
    hidden, features = model.sample_with_features(2000)
    hidden = hidden - model.feature_dict.bias.detach()  # the perfect SAE has no decoder bias

    absorbed = absorption_table(sae, model, hidden, features, batch_size=500)
    assert len(absorbed) == 2
    assert (absorbed["parent_cos"] > 0.999).all()
    assert absorbed["parent_latent"].tolist() == absorbed["parent"].tolist()
    # the true parent direction's latent fires whenever the parent is active, child or not
    assert (absorbed["rate_alone"] > 0.9).all()
    assert absorbed["absorption"].abs().max() < 0.1

    detection = feature_detection_table(sae, model, hidden, features, batch_size=500)
    assert len(detection) == N
    assert (detection["latent"] == detection["feature"]).all()
    assert (detection["cos"] > 0.999).all()
    # the matched latent fires where its feature is active (bar interference from the others)
    assert detection["recall"].mean() > 0.95 and (detection["recall"] > 0.8).all()
    assert (detection["firing_rate"] > 0).all()

    with pytest.raises(ValueError, match="samples"):
        absorption_table(sae, model, hidden[:10], features, batch_size=500)
    with pytest.raises(ValueError, match="hidden has 10 samples"):
        feature_detection_table(sae, model, hidden[:10], features, batch_size=500)


# the survivors of issue 20: each number checked against a hand-worked case or SAELens' own code
def identity_sae(width: int) -> StandardTrainingSAE:
    """An SAE whose latent i fires, with activation x_i, exactly when x_i > 0."""
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=width, d_sae=width))
    sae.W_enc.data = torch.eye(width)
    sae.W_dec.data = torch.eye(width)
    sae.b_enc.data.zero_()
    sae.b_dec.data.zero_()
    return sae


def orthogonal_model(width: int) -> SimpleNamespace:
    """Stands in for a SyntheticModel whose true features are the standard basis."""
    return SimpleNamespace(feature_dict=SimpleNamespace(feature_vectors=torch.eye(width)))


def test_feature_detection_precision_and_recall_by_hand():
    # feature 0's latent fires on samples 0, 1, 2; feature 0 is active on samples 0 and 3:
    # one true positive, so precision 1/3 (of 3 firings) and recall 1/2 (of 2 activations)
    hidden = torch.tensor([[1.0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0]])
    features = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]])
    # feature 1: fires on 1 and 3, active on 1 and 3 (perfect); feature 2: never fires
    hidden[[1, 3], 1] = 1.0
    features[[1, 3], 1] = 2.0
    features[0, 2] = 1.0
    table = feature_detection_table(
        identity_sae(3), orthogonal_model(3), hidden, features, batch_size=2
    )
    assert table["precision"].tolist()[:2] == pytest.approx([1 / 3, 1.0])
    assert table["recall"].tolist() == pytest.approx([1 / 2, 1.0, 0.0])
    assert math.isnan(table["precision"][2])  # the latent never fires
    # magnitude: feature 0 has activation 1 where both are on; feature 1 is halved (1 vs 2)
    assert table["magnitude_ratio"].tolist()[:2] == pytest.approx([1.0, 0.5])


def test_absorption_is_nan_when_the_latent_fires_only_with_a_child():
    parent = bools(1, 1, 1, 1)
    child = bools(0, 0, 1, 1)
    latent = bools(0, 0, 1, 1)  # silent alone: the ratio has no denominator
    assert math.isnan(absorption(latent, parent, child))


def test_absorption_table_child_lean_and_carried_parent_by_hand():
    # A model of 8 features in 64 dimensions (nearly orthogonal); an SAE whose decoder is the
    # true dictionary except that each child's latent points at child + parent (absorbed).
    model = SyntheticModel(
        SyntheticModelConfig(
            num_features=8,
            hidden_dim=64,
            hierarchy=HierarchyConfig(total_root_nodes=2, branching_factor=3, max_depth=1),
            seed=0,
        )
    )
    true = model.feature_dict.feature_vectors.detach()
    true = true / true.norm(dim=1, keepdim=True)
    decoder = true.clone()
    families = parent_children(model)
    for parent, children in families.items():
        for child in children:
            decoder[child] = torch.nn.functional.normalize(true[child] + true[parent], dim=0)
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=64, d_sae=8))
    sae.W_dec.data = decoder
    sae.W_enc.data = torch.eye(64, 8)  # latent i reads input dimension i (scripted below)
    sae.b_enc.data.zero_()
    sae.b_dec.data.zero_()
    parent, children = next(iter(families.items()))
    child = children[0]
    # two samples: parent alone (its latent fires with the parent's magnitude 1), and parent
    # with a child, where only the child's latent fires, with activation sqrt(2 + 2 p.c)
    # = |p + c|, so it puts exactly p.(p + c) = 1 + p.c along the parent
    p_dot_c = float(true[parent] @ true[child])
    acts = torch.zeros(2, 8)
    acts[0, parent] = 1.0
    acts[1, child] = math.sqrt(2 + 2 * p_dot_c)
    features = torch.zeros(2, 8)
    features[:, parent] = 1.0
    features[1, child] = 1.0
    hidden = torch.zeros(2, 64)
    hidden[:, :8] = acts
    table = absorption_table(sae, model, hidden, features, batch_size=2)
    row = table.set_index("parent").loc[parent]
    lean = [
        float(true[parent] @ (true[c] + true[parent]) / (true[c] + true[parent]).norm())
        for c in children
    ]
    assert row["child_cos_to_parent"] == pytest.approx(sum(lean) / len(lean), abs=1e-5)
    assert row["parent_cos"] == pytest.approx(1.0, abs=1e-5)
    assert row["parent_cos_to_children"] == pytest.approx(
        float((true[children] @ true[parent]).mean()), abs=1e-5
    )
    assert row["rate_alone"] == 1.0 and row["rate_with_child"] == 0.0
    assert row["absorption"] == pytest.approx(1.0)
    assert row["carried_with_child"] == 1.0 and row["lost_with_child"] == 0.0
    assert row["carried_alone"] == 0.0  # the parent's own latent fired: nothing missed


def test_absorption_names_the_input_it_refuses():
    ok = bools(1, 1, 0)
    with pytest.raises(ValueError, match="latent_fires must be"):
        absorption(torch.ones(3), ok, ok)
    with pytest.raises(ValueError, match="parent_fires must be"):
        absorption(ok, torch.ones(3), ok)
    with pytest.raises(ValueError, match="child_fires must be"):
        absorption(ok, ok, torch.ones(3, 1).bool())


def test_absorption_needs_both_cases():
    parent = bools(1, 1, 1, 1)
    # no sample with a child: undefined; no sample without one: undefined too
    assert math.isnan(absorption(bools(1, 0, 1, 0), parent, bools(0, 0, 0, 0)))
    assert math.isnan(absorption(bools(1, 0, 1, 0), parent, bools(1, 1, 1, 1)))


# absorption_outcomes: numbers checked against the tables they summarise
def test_absorption_outcomes_are_means_over_parents_that_sum_to_one():
    tables = {
        ("TopK", 0): outcome_table([(0, 0.0, 0.5, 0.5), (1, 0.1, 0.6, 0.3), (2, 0.8, 0.1, 0.1)]),
        ("TopK", 1): outcome_table([(0, 1.0, 0.0, 0.0), (1, 0.0, 0.0, 1.0)]),
    }
    out = absorption_outcomes(tables).set_index("seed")
    fires, carried, lost = OUTCOMES.values()
    # seed 0: fires (0 + 0.1 + 0.8) / 3, carried (0.5 + 0.6 + 0.1) / 3, lost (0.5 + 0.3 + 0.1) / 3
    # (means, not medians: the three shares of a bar must add up to 1)
    assert out.loc[0, fires] == pytest.approx(0.3)
    assert out.loc[0, carried] == pytest.approx(0.4)
    assert out.loc[0, lost] == pytest.approx(0.3)
    assert out.loc[1, [fires, carried, lost]].tolist() == pytest.approx([0.5, 0.0, 0.5])
    assert (out["SAE"] == "TopK").all()


def test_absorption_outcomes_of_a_real_table_sum_to_one():
    model = small_model()
    torch.manual_seed(3)
    hidden, features = model.sample_with_features(2000)
    table = absorption_table(perfect_sae(model), model, hidden, features, batch_size=500)
    out = absorption_outcomes({("perfect", 0): table})
    assert out[list(OUTCOMES.values())].sum(axis=1).iloc[0] == pytest.approx(1.0)


def test_detection_table_unit_normalises_the_true_directions():
    # the true features are 3 x the standard basis: their unit directions are the basis, so the
    # table is the hand-worked one above (magnitude ratios 1 and 1/2), not 3 or 9 times it
    hidden = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 0]])
    features = torch.tensor([[1.0, 0, 0], [1, 2, 0], [0, 0, 0], [0, 2, 0]])
    model = SimpleNamespace(feature_dict=SimpleNamespace(feature_vectors=3 * torch.eye(3)))
    table = feature_detection_table(identity_sae(3), model, hidden, features, batch_size=2)
    assert table["cos"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert table["magnitude_ratio"].tolist()[:2] == pytest.approx([1.0, 0.5])


def scripted_sae(decoder: torch.Tensor, reads: list[int]) -> StandardTrainingSAE:
    """An SAE with decoder rows ``decoder`` [L, d] whose latent ``reads[i]`` fires, with
    activation x_i, exactly when input x_i > 0 (latents read by no input never fire)."""
    width, d = decoder.shape
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=d, d_sae=width))
    sae.W_enc.data = torch.zeros(d, width)
    for i, latent in enumerate(reads):
        sae.W_enc.data[i, latent] = 1.0
    sae.W_dec.data = decoder.clone()
    sae.b_enc.data.zero_()
    sae.b_dec.data.zero_()
    return sae


def test_feature_detection_table_with_a_rotated_decoder_by_hand():
    # The true features are the standard basis e0, e1, e2; 4 latents whose decoder rows are not
    # the true directions (nor in their order): the best latent of e0 is latent 2 (cos 0.8, not
    # latent 1's 0.6), of e1 latent 1 (cos 0.8), of e2 latent 0 (cos 1, but length 2).
    decoder = torch.tensor([[0.0, 0.0, 2.0], [0.6, 0.8, 0.0], [0.8, -0.6, 0.0], [-1.0, 0.0, 0.0]])
    sae = scripted_sae(decoder, reads=[2, 1, 0])  # input i: the activation of feature i's latent
    # along = W_dec[latent] . e_i: 0.8, 0.8 and 2; magnitudes below 1
    features = torch.tensor([[0.5, 0.0, 0.25], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0], [0.25, 0.0, 0.0]])
    hidden = torch.tensor([[0.5, 0.0, 0.5], [0.25, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    table = feature_detection_table(sae, orthogonal_model(3), hidden, features, batch_size=3)
    assert table["feature"].tolist() == [0, 1, 2]
    assert table["latent"].tolist() == [2, 1, 0]
    assert table["cos"].tolist() == pytest.approx([0.8, 0.8, 1.0], abs=1e-6)
    # active on 3, 1 and 1 of the 4 samples
    assert table["firing_rate"].tolist() == pytest.approx([3 / 4, 1 / 4, 1 / 4])
    # feature 0: latent fires on samples 0, 1 (both active), active also on 3
    # feature 1: fires on 1, 2, active on 1; feature 2: fires on 0, active on 0
    assert table["precision"].tolist() == pytest.approx([1.0, 1 / 2, 1.0])
    assert table["recall"].tolist() == pytest.approx([2 / 3, 1.0, 1.0])
    # activation x along / magnitude, averaged where both are on:
    # feature 0: (0.5 x 0.8 / 0.5 + 0.25 x 0.8 / 0.5) / 2 = (0.8 + 0.4) / 2;
    # feature 1: 0.5 x 0.8 / 0.5; feature 2: 0.5 x 2 / 0.25
    assert table["magnitude_ratio"].tolist() == pytest.approx([0.6, 0.8, 4.0], abs=1e-6)


def hierarchy_model(width: int, parent: int, children: list[int]) -> SimpleNamespace:
    """Stands in for a SyntheticModel whose true features are the standard basis, with one
    hierarchy: ``parent`` over ``children``."""

    def node(index: int, kids: list) -> SimpleNamespace:
        return SimpleNamespace(feature_index=index, children=kids)

    root = node(parent, [node(c, []) for c in children])
    return SimpleNamespace(
        feature_dict=SimpleNamespace(feature_vectors=torch.eye(width)),
        hierarchy=SimpleNamespace(roots=[root]),
    )


def test_absorption_table_carried_at_exactly_half_the_magnitude():
    # Parent 0 with children 1 and 2 (the standard basis). Latent 0 is e0; latent 1 (child 1's,
    # cos 1/sqrt(1.25) to e1 against 0.5/sqrt(1.25) to e0) puts exactly half its activation
    # along e0; latent 2 is e2.
    decoder = torch.tensor([[1.0, 0.0, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    sae = scripted_sae(decoder, reads=[0, 1, 2])
    model = hierarchy_model(3, parent=0, children=[1, 2])
    # sample 0: parent alone (magnitude 1), its latent fires;
    # sample 1: parent (magnitude 2) with child 1, only latent 1 fires, with activation 2:
    #   1 along e0, exactly CARRIED_FRACTION (0.5) x 2: carried;
    # sample 2: the same with activation 1: 0.5 along e0, below 0.5 x 2: lost
    features = torch.tensor([[1.0, 0.0, 0.0], [2.0, 1.0, 0.0], [2.0, 1.0, 0.0]])
    hidden = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 1.0, 0.0]])
    table = absorption_table(sae, model, hidden, features, batch_size=2)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["parent"] == 0 and row["parent_latent"] == 0
    assert row["rate_alone"] == 1.0 and row["rate_with_child"] == 0.0
    assert row["carried_with_child"] == 0.5 and row["lost_with_child"] == 0.5
    assert row["carried_alone"] == 0.0
