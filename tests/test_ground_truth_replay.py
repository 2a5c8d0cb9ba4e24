"""train_on_synthetic replays the last run's training batches to a run that would draw the very
same ones (utils/ground_truth/training.py): tutorial 4 trains nine SAEs in a row on seed 0. A
replayed run must train the same SAE and leave torch's generator where a fresh run leaves it."""

from __future__ import annotations

import pytest
import torch
from ground_truth_helpers import D, N, one_torch_thread, small_model
from sae_lens import (
    BatchTopKTrainingSAEConfig,
    MatryoshkaBatchTopKTrainingSAEConfig,
    StandardTrainingSAEConfig,
    TopKTrainingSAEConfig,
)
from sae_lens.synthetic.training import SyntheticActivationIterator

import utils.ground_truth.training as G

BATCH, STEPS = 64, 30

CONFIGS = {  # the notebook's four architectures, at the small model's sizes
    "L1": lambda: StandardTrainingSAEConfig(d_in=D, d_sae=N, l1_coefficient=0.3),
    "TopK": lambda: TopKTrainingSAEConfig(d_in=D, d_sae=N, k=2),
    "BatchTopK": lambda: BatchTopKTrainingSAEConfig(d_in=D, d_sae=N, k=2),
    "Matryoshka": lambda: MatryoshkaBatchTopKTrainingSAEConfig(
        d_in=D, d_sae=N, k=2, matryoshka_widths=[8, N]
    ),
}


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


def train(model, name: str, seed: int = 0, batch_size: int = BATCH):
    return G.train_on_synthetic(
        model,
        CONFIGS[name](),
        training_samples=batch_size * STEPS,
        batch_size=batch_size,
        lr=3e-3,
        dead_feature_window=10,
        seed=seed,
        show_progress=False,
    )


def weights(sae) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in sae.state_dict().items()}


def run_in_order(model, runs, fresh: bool):
    """Train ``runs`` [(architecture, seed)] in order; ``fresh``: forget the last stream before
    each, as if there were no replay. Returns each SAE's weights and the generator's state
    after it."""
    out = []
    for name, seed in runs:
        if fresh:
            G._TRAINING_STREAMS.clear()
        sae = train(model, name, seed)
        out.append((weights(sae), torch.get_rng_state()))
    return out


def test_replayed_runs_train_the_same_saes_as_fresh_ones(monkeypatch):
    # The notebook's order: every architecture on seed 0, then seed 1, then back to seed 0.
    runs = [(name, 0) for name in CONFIGS] + [("TopK", 1), ("L1", 1), ("TopK", 0)]
    model = small_model()
    expected = run_in_order(model, runs, fresh=True)
    draws = []
    original = SyntheticActivationIterator.next_batch

    def counted(self):
        draws.append(1)
        return original(self)

    monkeypatch.setattr(SyntheticActivationIterator, "next_batch", counted)
    G._TRAINING_STREAMS.clear()
    got = run_in_order(model, runs, fresh=False)
    for (name, seed), (w, state), (w0, state0) in zip(runs, got, expected, strict=True):
        assert w.keys() == w0.keys()
        for key in w:
            assert torch.equal(w[key], w0[key]), (name, seed, key)
        assert torch.equal(state, state0), (name, seed)  # the generator as a fresh run left it
    # Drawn: the first seed-0 run, the first seed-1 run, the return to seed 0; the rest replayed.
    assert len(draws) == 3 * STEPS


def test_the_stream_is_kept_per_model_and_batch_size():
    model, other = small_model(), small_model(seed=1)
    G._TRAINING_STREAMS.clear()
    train(model, "TopK")
    stream = G._TRAINING_STREAMS[model][BATCH]
    assert len(stream.batches) == STEPS and stream.batches[0].shape == (BATCH, D)
    # another batch size has a stream of its own
    train(model, "TopK", batch_size=BATCH // 2)
    assert set(G._TRAINING_STREAMS[model]) == {BATCH, BATCH // 2}
    # elsewhere than on the CPU nothing is recorded
    with G._replayed_training_batches(model, 7, "meta"):
        pass
    assert set(G._TRAINING_STREAMS[model]) == {BATCH, BATCH // 2}
    # another model's run does not replay this one's batches (the same seed: the same states)
    on_other = weights(train(other, "TopK"))
    G._TRAINING_STREAMS.clear()
    assert all(torch.equal(v, on_other[k]) for k, v in weights(train(other, "TopK")).items())
