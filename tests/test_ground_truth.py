"""Tests for utils/ground_truth/ (tutorial 4): small synthetic models, so they run in seconds."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from sae_lens import StandardTrainingSAEConfig, TopKTrainingSAEConfig
from sae_lens.saes.standard_sae import StandardTrainingSAE
from sae_lens.synthetic import (
    HierarchyConfig,
    SyntheticModel,
    SyntheticModelConfig,
    init_sae_to_match_feature_dict,
    mean_correlation_coefficient,
)

from utils.ground_truth import (
    OUTCOMES,
    absorption,
    absorption_distribution_figure,
    absorption_outcomes,
    absorption_outcomes_figure,
    absorption_table,
    detection_figure,
    feature_detection_table,
    firing_rate_figure,
    frontier_figure,
    pair_cosine_figure,
    parent_children,
    random_decoder,
    score_sae,
    seed_scatter_figure,
    seed_spread_figure,
    train_on_synthetic,
)

N, D = 32, 16


@pytest.fixture(autouse=True)
def one_thread():
    """Small SAEs train faster on one thread (as in the notebook), much faster on a busy CPU."""
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


# the random baseline
def test_random_decoder_is_unit_norm_reproducible_and_not_the_true_features():
    model = small_model(seed=0, hierarchy=False)
    decoder = random_decoder(N, D, seed=0)
    assert decoder.shape == (N, D)
    torch.testing.assert_close(decoder.norm(dim=1), torch.ones(N))
    torch.testing.assert_close(decoder, random_decoder(N, D, seed=0))
    true = model.feature_dict.feature_vectors.detach()
    # Drawn like the model's own features (global generator, same seed) it would score 1.0.
    assert mean_correlation_coefficient(decoder, true) < 0.8
    with pytest.raises(ValueError, match="positive"):
        random_decoder(0, D)


# the hierarchy
def test_parent_children_reads_the_hierarchy():
    pairs = parent_children(small_model())
    assert len(pairs) == 2
    assert all(len(children) == 3 for children in pairs.values())
    everything = [p for p in pairs] + [c for cs in pairs.values() for c in cs]
    assert len(set(everything)) == 8
    with pytest.raises(ValueError, match="no hierarchy"):
        parent_children(small_model(hierarchy=False))


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


def test_score_sae_is_reproducible_and_scores_the_true_dictionary_as_perfect():
    model = small_model()
    sae = perfect_sae(model)
    first = score_sae(sae, model, num_samples=1000, batch_size=500, seed=3)
    assert first == score_sae(sae, model, num_samples=1000, batch_size=500, seed=3)
    assert first["mcc"] == pytest.approx(1.0, abs=1e-5)
    assert first["uniqueness"] == pytest.approx(1.0)
    assert set(first) >= {
        "mcc",
        "l0",
        "explained_variance",
        "shrinkage",
        "dead_latents",
        "precision",
        "recall",
    }


# training
def test_train_on_synthetic_writes_nothing_and_is_reproducible(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = small_model()
    cfg = TopKTrainingSAEConfig(d_in=D, d_sae=N, k=2, rescale_acts_by_decoder_norm=False)

    def train():
        return train_on_synthetic(
            model,
            cfg,
            training_samples=128 * 60,
            batch_size=128,
            lr=3e-3,
            dead_feature_window=20,
            show_progress=False,
        )

    sae = train()
    assert sae.W_dec.shape == (N, D)
    assert list(tmp_path.iterdir()) == [], "the run wrote files (output/ or checkpoints/)"
    again = train()
    torch.testing.assert_close(sae.W_dec, again.W_dec)  # seeded: the same SAE


def test_train_on_synthetic_rejects_bad_input():
    model = small_model()
    with pytest.raises(ValueError, match="d_in"):
        train_on_synthetic(
            model,
            StandardTrainingSAEConfig(d_in=D + 1, d_sae=N),
            training_samples=1000,
            batch_size=100,
            lr=1e-3,
            dead_feature_window=5,
        )
    with pytest.raises(ValueError, match="dead_feature_window"):
        train_on_synthetic(
            model,
            StandardTrainingSAEConfig(d_in=D, d_sae=N),
            training_samples=1000,
            batch_size=100,
            lr=1e-3,
            dead_feature_window=1000,
        )


# the preset sizes tutorial 4 reads
@pytest.mark.parametrize("name", ["tiny", "gpt2-small"])
def test_preset_synthetic_sizes_fit_the_notebook(name):
    from utils.presets import PRESETS

    sizes = PRESETS[name].synthetic
    assert sizes is not None, f"preset {name} has no synthetic sizes (tutorial 4)"
    assert sizes.num_features > sizes.hidden_dim  # superposition
    assert sizes.num_features % 32 == 0  # the Matryoshka widths N/16 (or N/32), N/4, N
    # the first Matryoshka prefix has one latent per parent (tutorial 4 says so and asserts it)
    assert sizes.num_features // 16 == sizes.hierarchy_roots
    assert sizes.hierarchy_roots * (1 + sizes.hierarchy_branching) <= sizes.num_features
    assert 0 < sizes.dead_feature_window < sizes.training_samples // sizes.batch_size
    # the notebook reads these SAEs from the sweep it trains
    assert {sizes.l1_coefficient, sizes.weak_l1_coefficient} <= set(sizes.sweep_l1)
    assert sizes.weak_l1_coefficient < sizes.l1_coefficient
    assert sizes.k in sizes.sweep_k
    # the TopK sweep reaches past the best k, so that the frontier's peak is bracketed
    assert max(sizes.sweep_k) >= 4 * sizes.k
    assert sizes.eval_samples >= 10 * sizes.batch_size


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


def test_score_sae_precision_and_recall_of_latents_that_always_fire():
    # Every latent fires on every sample: each detects its feature with recall 1, and with
    # precision equal to that feature's firing rate (the model's firing probabilities).
    model = small_model(hierarchy=False)
    sae = perfect_sae(model)
    sae.b_enc.data.fill_(100.0)
    row = score_sae(sae, model, num_samples=4000, batch_size=1000, seed=0)
    expected_precision = model.activation_generator.firing_probabilities.mean().item()
    assert row["recall"] == pytest.approx(1.0)
    assert row["precision"] == pytest.approx(expected_precision, rel=0.1)
    assert row["precision"] < 0.5


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


def test_random_decoder_sizes_and_default_seed():
    # the smallest valid sizes work; zero is refused on either axis, naming both numbers
    assert random_decoder(1, 1).shape == (1, 1)
    torch.testing.assert_close(random_decoder(1, 3).norm(), torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"num_latents \(3\) and hidden_dim \(0\)"):
        random_decoder(3, 0)
    # the default seed is seed 0, and seeds give different decoders
    torch.testing.assert_close(random_decoder(N, D), random_decoder(N, D, seed=0))
    assert not torch.allclose(random_decoder(N, D, seed=0), random_decoder(N, D, seed=1))


def test_absorption_names_the_input_it_refuses():
    ok = bools(1, 1, 0)
    with pytest.raises(ValueError, match="latent_fires must be"):
        absorption(torch.ones(3), ok, ok)
    with pytest.raises(ValueError, match="parent_fires must be"):
        absorption(ok, torch.ones(3), ok)
    with pytest.raises(ValueError, match="child_fires must be"):
        absorption(ok, ok, torch.ones(3, 1).bool())


def test_score_sae_passes_its_sizes_and_seed_to_saelens(monkeypatch):
    import utils.ground_truth.training as G

    seen = {}
    result = SimpleNamespace(
        mcc=0.1, uniqueness=0.2, sae_l0=0.3, true_l0=0.4, explained_variance=0.5,
        shrinkage=0.6, dead_latents=7,
        classification=SimpleNamespace(precision=0.8, recall=0.9, f1_score=0.85),
    )  # fmt: skip

    def fake_eval(**kwargs):
        generator = kwargs.pop("activations_generator")
        seen.update(
            kwargs,
            batches=[len(b) for b in generator.batches],
            first=generator.sample(len(generator.batches[0])),
        )
        return result

    class Generator:  # each sample: the seed it was drawn after, and its batch size
        def sample(self, n):
            return torch.full((n, 1), float(torch.initial_seed()))

    monkeypatch.setattr(G, "eval_sae_on_synthetic_data", fake_eval)

    class Model:  # score_sae keeps the sample per model, so a model must be weakly referable
        feature_dict = "dict"
        activation_generator = Generator()

    model = Model()
    row = score_sae("sae", model, num_samples=123, batch_size=45)
    assert seen["batches"] == [45, 45, 33]  # drawn in the batches SAELens asks for
    assert (seen["first"] == 0).all()  # after torch.manual_seed(0)
    assert {k: seen[k] for k in ("sae", "feature_dict", "num_samples", "batch_size")} == {
        "sae": "sae", "feature_dict": "dict", "num_samples": 123, "batch_size": 45,
    }  # fmt: skip
    assert row == {
        "mcc": 0.1, "uniqueness": 0.2, "l0": 0.3, "true_l0": 0.4, "explained_variance": 0.5,
        "shrinkage": 0.6, "dead_latents": 7, "precision": 0.8, "recall": 0.9, "f1": 0.85,
    }  # fmt: skip
    score_sae("sae", model, num_samples=10, batch_size=10, seed=5)
    assert seen["batches"] == [10] and (seen["first"] == 5).all()


def test_score_sae_replays_exactly_the_sample_saelens_would_draw():
    # SAELens' own evaluation on the model's own generator, seeded as score_sae documents,
    # against score_sae (whose second call replays the sample drawn by its first)
    from sae_lens.synthetic import eval_sae_on_synthetic_data

    model = small_model()
    sae = perfect_sae(model)
    with torch.no_grad():
        sae.W_dec.add_(0.3 * torch.randn(N, D, generator=torch.Generator().manual_seed(1)))
    for seed in (2, 2, 7):
        row = score_sae(sae, model, num_samples=700, batch_size=256, seed=seed)
        torch.manual_seed(seed)
        direct = eval_sae_on_synthetic_data(
            sae=sae, feature_dict=model.feature_dict,
            activations_generator=model.activation_generator, num_samples=700, batch_size=256,
        )  # fmt: skip
        assert row["explained_variance"] == direct.explained_variance
        assert row["l0"] == direct.sae_l0 and row["true_l0"] == direct.true_l0
        assert row["recall"] == direct.classification.recall
    other = score_sae(sae, model, num_samples=700, batch_size=256, seed=3)
    assert other["explained_variance"] != row["explained_variance"]  # another sample


def test_random_decoder_draws_from_its_own_offset_generator():
    from utils.ground_truth import BASELINE_SEED_OFFSET

    assert BASELINE_SEED_OFFSET > 0
    for seed in (0, 3):
        rows = torch.randn(
            N, D, generator=torch.Generator().manual_seed(seed + BASELINE_SEED_OFFSET)
        )
        torch.testing.assert_close(
            random_decoder(N, D, seed=seed), rows / rows.norm(dim=1, keepdim=True)
        )


def test_train_on_synthetic_configures_the_runner(monkeypatch):
    # What reaches SyntheticSAERunner, field by field, against the arguments (no training).
    import utils.ground_truth.training as G

    seen = {}

    class FakeRunner:
        def __init__(self, cfg, override_synthetic_model=None):
            seen.update(cfg=cfg, model=override_synthetic_model, seed=torch.initial_seed())

        def run(self):
            import sae_lens.training.sae_trainer as trainer_module

            seen["tqdm_disabled"] = isinstance(trainer_module.tqdm, G.partial)
            return SimpleNamespace(sae="the sae")

    monkeypatch.setattr(G, "SyntheticSAERunner", FakeRunner)
    model = small_model()
    sae_cfg = StandardTrainingSAEConfig(d_in=D, d_sae=N)
    args = dict(training_samples=250, batch_size=100, lr=2e-3, device="meta")
    assert G.train_on_synthetic(model, sae_cfg, dead_feature_window=1, **args) == "the sae"
    cfg = seen["cfg"]
    assert seen["model"] is model and cfg.synthetic_model is model.cfg and cfg.sae is sae_cfg
    assert seen["seed"] == 0 and seen["tqdm_disabled"] is False
    assert (cfg.training_samples, cfg.batch_size, cfg.lr, cfg.device) == (250, 100, 2e-3, "meta")
    assert cfg.dead_feature_window == cfg.feature_sampling_window == 1
    assert cfg.n_batches_for_norm_estimate == 10
    assert cfg.checkpoint_path is None and cfg.output_path is None
    assert cfg.run_final_eval is False and cfg.eval_samples == 0
    assert cfg.logger.log_to_wandb is False
    G.train_on_synthetic(model, sae_cfg, dead_feature_window=1, seed=4, show_progress=False, **args)
    assert seen["seed"] == 4 and seen["tqdm_disabled"] is True
    # the bounds: 250 // 100 = 2 steps, so a window of 1 is the only one; 1 step is too few
    for window in (0, 2):
        with pytest.raises(
            ValueError, match=f"dead_feature_window is {window} steps.*run's 2 steps"
        ):
            G.train_on_synthetic(model, sae_cfg, dead_feature_window=window, **args)
    with pytest.raises(ValueError, match=r"training_samples \(99\) must be at least batch_size"):
        G.train_on_synthetic(
            model, sae_cfg, dead_feature_window=1, **(args | {"training_samples": 99})
        )
    with pytest.raises(ValueError, match="1 steps"):
        G.train_on_synthetic(
            model, sae_cfg, dead_feature_window=1, **(args | {"training_samples": 199})
        )


def test_absorption_needs_both_cases():
    parent = bools(1, 1, 1, 1)
    # no sample with a child: undefined; no sample without one: undefined too
    assert math.isnan(absorption(bools(1, 0, 1, 0), parent, bools(0, 0, 0, 0)))
    assert math.isnan(absorption(bools(1, 0, 1, 0), parent, bools(1, 1, 1, 1)))


# absorption_outcomes and the figures: numbers checked against the tables they summarise
def outcome_table(rows: list[tuple[int, float, float, float]]) -> pd.DataFrame:
    """An absorption_table's outcome columns: (parent, fires, carried, lost) per parent."""
    return pd.DataFrame(
        rows, columns=["parent", "rate_with_child", "carried_with_child", "lost_with_child"]
    ).assign(absorption=[0.5, -1.0][: len(rows)] + [0.0] * max(0, len(rows) - 2))


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


def test_seed_spread_figure_draws_each_saes_range_seeds_and_mean():
    frame = pd.DataFrame(
        {
            "SAE": ["A", "A", "A", "B", "B", "B"],
            "seed": [0, 1, 2] * 2,
            "mcc": [0.5, 0.9, 0.7, 0.2, 0.2, 0.5],
        }
    )
    fig = seed_spread_figure(frame, {"mcc": "MCC"}, "t")
    assert len(fig.data) == 2 * 3  # per SAE: a range line, the seeds, the mean
    line_a, seeds_a, mean_a, line_b, _, mean_b = fig.data
    assert list(line_a.x) == [0.5, 0.9] and list(line_b.x) == [0.2, 0.5]
    assert list(seeds_a.x) == [0.5, 0.9, 0.7]
    assert mean_a.x[0] == pytest.approx(0.7) and mean_b.x[0] == pytest.approx(0.3)
    assert set(mean_a.y) == {"A"} and line_a.line.color != line_b.line.color
    long = seed_spread_figure(frame, {"mcc": "children's latents: cos to parent"}, "t")
    assert long.layout.annotations[0].text == "children's latents:<br>cos to parent"


def test_absorption_outcomes_figure_stacks_the_means_over_seeds():
    fires, carried, lost = OUTCOMES.values()
    outcomes = pd.DataFrame(
        {
            "SAE": ["A", "A", "B"],
            "seed": [0, 1, 0],
            fires: [0.2, 0.4, 1.0],
            carried: [0.5, 0.3, 0.0],
            lost: [0.3, 0.3, 0.0],
        }
    )
    fig = absorption_outcomes_figure(outcomes)
    assert fig.layout.barmode == "stack"
    bars = {bar.name: list(bar.y) for bar in fig.data}
    assert bars[fires] == pytest.approx([0.3, 1.0])
    assert bars[carried] == pytest.approx([0.4, 0.0])
    assert bars[lost] == pytest.approx([0.3, 0.0])
    assert list(fig.data[0].x) == ["A", "B"]
    assert fig.data[0].customdata[0] == "0.20, 0.40"  # each seed in the hover text


def test_absorption_distribution_figure_has_every_parent_of_every_seed():
    tables = {
        ("A", 0): outcome_table([(0, 0.2, 0.5, 0.3), (1, 0.6, 0.1, 0.3)]),
        ("A", 1): outcome_table([(0, 1.0, 0.0, 0.0), (1, 0.0, 0.0, 1.0)]),
        ("B", 0): outcome_table([(0, 0.2, 0.5, 0.3), (1, 0.6, 0.1, 0.3)]),
    }
    fig = absorption_distribution_figure(tables)
    boxes = [(trace.name, list(trace.y)) for trace in fig.data]
    assert boxes[0] == ("A", [0.5, -1.0, 0.5, -1.0])  # firing-ratio absorption, 2 seeds
    assert boxes[1] == ("A", [0.5, 0.1, 0.0, 0.0])  # carried with a child
    assert boxes[2][0] == "B" and len(boxes[2][1]) == 2


def test_frontier_figure_one_line_per_architecture_sorted_by_l0():
    frontier = pd.DataFrame(
        {
            "SAE": ["L1", "L1", "TopK"],
            "L1 or k": [1.0, 0.1, 4],
            "l0": [3.0, 9.0, 4.0],
            "mcc": [0.7, 0.6, 0.9],
            "explained_variance": [0.5, 0.9, 0.8],
        }
    )
    fig = frontier_figure(
        frontier,
        {"mcc": "MCC", "explained_variance": "EV"},
        "t",
        true_l0=4.1,
        lines={"mcc": (0.3, "random")},
    )
    l1_mcc, l1_ev, topk_mcc, _ = fig.data
    assert list(l1_mcc.x) == [3.0, 9.0] and list(l1_mcc.y) == [0.7, 0.6]
    assert list(l1_ev.y) == [0.5, 0.9] and list(topk_mcc.y) == [0.9]
    vertical = [s.x0 for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1]
    assert vertical == [4.1, 4.1]  # the true L0, in each panel


def test_detection_and_simple_figures_show_every_feature():
    detection = pd.DataFrame(
        {
            "feature": [0, 1, 2],
            "firing_rate": [0.3, 0.1, 0.01],
            "latent": [5, 6, 7],
            "cos": [0.99, 0.6, 0.9],
            "precision": [1.0, 0.5, 0.9],
            "recall": [0.3, 0.9, 1.0],
            "role": ["parent", "child", "parent"],
        }
    )
    fig = detection_figure(detection, "t")
    parent_cos, parent_recall = fig.data[0], fig.data[1]
    assert list(parent_cos.y) == [0.99, 0.9] and list(parent_recall.y) == [0.3, 1.0]
    assert list(parent_recall.x) == [0.99, 0.9]
    rates = firing_rate_figure(torch.tensor([0.3, 0.1, 0.01]), ["parent", "child", "parent"])
    assert sorted(x for trace in rates.data for x in trace.x) == [0, 1, 2]
    unit = torch.eye(3)
    unit[2] = torch.tensor([1.0, 1.0, 0.0]) / 2**0.5  # cosines 0, 0.707, 0.707
    bars = pair_cosine_figure(unit, bins=4).data[0]
    assert sum(bars.y) == 3 and bars.y[0] == 1 and bars.y[-1] == 2
    with pytest.raises(ValueError, match="role has 2 entries for 3 features"):
        firing_rate_figure(torch.tensor([0.3, 0.1, 0.01]), ["parent", "child"])


def test_tutorial_4_reads_the_gpt2_small_comparison_from_its_results_file():
    # written by benchmarks/t4_matched_sparsity.py --preset gpt2-small; tutorial 4's section 5
    # reads it: TopK and BatchTopK at the preset's k, seeds 0-2, L0 at k
    import csv
    from pathlib import Path

    from utils.presets import PRESETS

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    with (path / "t4_matched_sparsity_gpt2-small.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    sizes = PRESETS["gpt2-small"].synthetic
    assert sorted((r["SAE"], int(r["seed"])) for r in rows) == sorted(
        (a, s) for a in ("TopK", "BatchTopK") for s in (0, 1, 2)
    )
    for row in rows:
        assert int(row["k"]) == sizes.k
        assert abs(float(row["l0"]) - sizes.k) < 0.5
        assert 0 < float(row["mcc"]) <= 1 and 0 < float(row["explained_variance"]) <= 1


def test_every_tutorial_4_figure_has_a_title_and_axis_titles():
    frame = pd.DataFrame({"SAE": ["A", "B"], "seed": [0, 0], "mcc": [0.5, 0.6], "l0": [1, 2]})
    tables = {("A", 0): outcome_table([(0, 0.2, 0.5, 0.3), (1, 0.6, 0.1, 0.3)])}
    frontier = frame.assign(**{"L1 or k": [1, 2]})
    detection = pd.DataFrame(
        {"feature": [0], "firing_rate": [0.3], "latent": [5], "cos": [0.9], "precision": [1.0],
         "recall": [0.3], "role": ["parent"]}
    )  # fmt: skip
    figures = [
        firing_rate_figure(torch.tensor([0.3, 0.1]), ["parent", "other"]),
        pair_cosine_figure(torch.eye(3)),
        detection_figure(detection, "t"),
        frontier_figure(frontier, {"mcc": "MCC"}, "t"),
        seed_spread_figure(frame, {"mcc": "MCC"}, "t"),
        seed_scatter_figure(frame, "l0", "mcc", "t"),
        absorption_distribution_figure(tables),
        absorption_outcomes_figure(absorption_outcomes(tables)),
    ]
    for fig in figures:
        assert fig.layout.title.text and fig.layout.template.layout.paper_bgcolor is not None
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text, fig.layout.title.text
