"""Tests for utils/ground_truth/training.py (tutorial 4): training and scoring SAEs on small
synthetic models, the random baseline, the hierarchy; and the sizes and results tutorial 4 reads."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from ground_truth_helpers import D, N, one_torch_thread, perfect_sae, small_model
from sae_lens import StandardTrainingSAEConfig, TopKTrainingSAEConfig
from sae_lens.synthetic import mean_correlation_coefficient

from utils.ground_truth import parent_children, random_decoder, score_sae, train_on_synthetic


@pytest.fixture(autouse=True)
def one_thread():
    """Small SAEs train faster on one thread (as in the notebook), much faster on a busy CPU."""
    with one_torch_thread():
        yield


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


# scoring, on an SAE that is the true dictionary
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


def test_random_decoder_sizes_and_default_seed():
    # the smallest valid sizes work; zero is refused on either axis, naming both numbers
    assert random_decoder(1, 1).shape == (1, 1)
    torch.testing.assert_close(random_decoder(1, 3).norm(), torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"num_latents \(3\) and hidden_dim \(0\)"):
        random_decoder(3, 0)
    # the default seed is seed 0, and seeds give different decoders
    torch.testing.assert_close(random_decoder(N, D), random_decoder(N, D, seed=0))
    assert not torch.allclose(random_decoder(N, D, seed=0), random_decoder(N, D, seed=1))


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


# the results file tutorial 4 reads
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


# the survivors of the mutation run of part t4: the replay of the last run's training batches
def test_replayed_sample_refuses_a_batch_of_another_size():
    import utils.ground_truth.training as G

    sample = G._ReplayedSample([torch.zeros(3, 1)])
    with pytest.raises(ValueError, match="asked for 4 samples, the replayed batch has 3"):
        sample.sample(4)


def replaying_iterator(monkeypatch, last):
    """A _ReplayingIterator without SAELens' set-up, whose own draws are 10, 11, ... (rows [2])."""
    import utils.ground_truth.training as G

    drawn = iter(range(10, 100))
    monkeypatch.setattr(
        G.SyntheticActivationIterator, "next_batch", lambda self: torch.full((2,), next(drawn))
    )
    dropped = []
    iterator = G._ReplayingIterator.__new__(G._ReplayingIterator)
    iterator.last, iterator.record = last, G._Stream()
    iterator.drop_last = lambda: dropped.append(True)
    return iterator, dropped


def test_replaying_iterator_replays_then_draws(monkeypatch):
    import utils.ground_truth.training as G

    torch.manual_seed(0)
    last = G._Stream()
    last.batches, last.before = [torch.full((2,), 1.0)], [torch.get_rng_state()]
    torch.manual_seed(1)
    last.after = [torch.get_rng_state()]
    torch.manual_seed(0)
    iterator, dropped = replaying_iterator(monkeypatch, last)
    first = iterator.next_batch()
    assert first.tolist() == [1.0, 1.0] and iterator.record.batches[0] is last.batches[0]
    assert torch.equal(torch.get_rng_state(), last.after[0])  # left as the last run's draw left it
    # the last run had one batch: the second is drawn, and the spent stream dropped
    assert dropped == []
    assert iterator.next_batch().tolist() == [10, 10] and dropped == [True]
    assert len(iterator.record.batches) == len(iterator.record.before) == 2


def test_replaying_iterator_drops_the_last_stream_once_when_it_diverges(monkeypatch):
    import utils.ground_truth.training as G

    torch.manual_seed(0)
    last = G._Stream()
    last.batches, last.before, last.after = [torch.ones(2)] * 2, [torch.get_rng_state()] * 2, []
    torch.manual_seed(5)  # another state: nothing to replay
    iterator, dropped = replaying_iterator(monkeypatch, last)
    assert [iterator.next_batch().tolist() for _ in range(3)] == [[10, 10], [11, 11], [12, 12]]
    assert dropped == [True] and iterator.last is None
    fresh, dropped = replaying_iterator(monkeypatch, None)  # nothing to drop on a first run
    fresh.next_batch()
    assert dropped == []


def test_train_on_synthetic_keeps_the_last_stream_per_batch_size():
    # two runs with the same seed and model but different batch sizes: the second must not be
    # handed the first's batches (its SAE is the one a fresh model gives)
    import utils.ground_truth.training as G

    cfg = StandardTrainingSAEConfig(d_in=D, d_sae=N)

    def train(model, batch_size):
        return train_on_synthetic(
            model, cfg, training_samples=batch_size * 6, batch_size=batch_size, lr=1e-3,
            dead_feature_window=2, show_progress=False,
        )  # fmt: skip

    model = small_model()
    train(model, 32)
    assert set(G._TRAINING_STREAMS[model]) == {32}
    assert G._TRAINING_STREAMS[model][32].batches[0].shape == (32, D)
    second = train(model, 64)
    assert set(G._TRAINING_STREAMS[model]) == {32, 64}
    torch.testing.assert_close(second.W_dec, train(small_model(), 64).W_dec)
