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
        "reconstruction_quality": {
            "explained_variance": 0.8,
            "explained_variance_legacy": 0.75,
            "mse": 0.1,
        },
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
    assert metrics["explained_variance"] <= 1 and metrics["explained_variance_legacy"] <= 1
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


# ---- the three explained variances (tutorial 1, section 8) ---------------------------------------

# Four tokens in two dimensions, worked by hand. Mean vector (2, 1/2); squared distances from it
# 17/4, 1/4, 17/4, 9/4 (mean 11/4); squared errors 1, 1/4, 0, 1 (mean 9/16); squared norms 0, 4, 16, 8
# (mean 7).
X = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0], [2.0, 2.0]])
X_HAT = X + torch.tensor([[1.0, 0.0], [0.0, 0.5], [0.0, 0.0], [0.0, 1.0]])


def test_explained_variances_by_hand():
    got = E.explained_variances(X, X_HAT)
    assert got["explained_variance"] == pytest.approx(1 - (9 / 16) / (11 / 4))  # 35/44
    per_token = [1 / (17 / 4), (1 / 4) / (1 / 4), 0 / (17 / 4), 1 / (9 / 4)]
    assert got["explained_variance_legacy"] == pytest.approx(1 - sum(per_token) / 4)
    assert got["explained_variance_about_zero"] == pytest.approx(1 - (9 / 16) / 7)  # 103/112
    assert got["n_tokens"] == 4


def test_explained_variance_matches_sae_lens():
    """The ratio of averages is SAELens' own run_evals figure (its ExplainedVarianceCalculator)."""
    from sae_lens.evals import ExplainedVarianceCalculator

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 9, generator=generator) * 2 + 5  # a large mean, as in a residual stream
    x_hat = x + torch.randn(300, 9, generator=generator)
    theirs = ExplainedVarianceCalculator()
    for batch in range(0, 300, 100):
        theirs.add_batch(sae_output=x_hat[batch : batch + 100], hidden_acts=x[batch : batch + 100])
    ours = E.explained_variances(x, x_hat)
    assert ours["explained_variance"] == pytest.approx(theirs.compute(), abs=1e-6)
    # with a large mean, variance about zero is inflated
    assert ours["explained_variance_about_zero"] > ours["explained_variance"] + 0.1


def test_legacy_explained_variance_is_sae_lens_formula():
    """SAELens' legacy formula (sae_lens/evals.py, one evaluation batch), written out here."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(40, 6, generator=generator)
    x_hat = x * 0.8 + 0.1 * torch.randn(40, 6, generator=generator)
    resid = (x - x_hat).pow(2).sum(dim=-1)
    batched_variance_sum = (x - x.mean(dim=0)).pow(2).sum(dim=-1)
    expected = (1 - resid / batched_variance_sum).mean().item()
    assert E.explained_variances(x, x_hat)["explained_variance_legacy"] == pytest.approx(expected)


def test_explained_variances_bad_input():
    with pytest.raises(ValueError, match=r"\[n, d_in\]"):
        E.explained_variances(X, X_HAT[:3])
    with pytest.raises(ValueError, match="two"):
        E.explained_variances(X[:1], X_HAT[:1])


def test_sample_explained_variances(model, sae, sample):
    """Against a plain loop: the model run in full, each batch of texts' counted tokens taken
    out, the legacy figure's mean taken per batch (as run_evals does)."""
    batch_size = 3
    got = E.sample_explained_variances(model, sae, sample, batch_size=batch_size)
    hook = sae.cfg.metadata.hook_name
    xs, x_hats, ratios = [], [], []
    for start in range(0, sample.n_texts, batch_size):
        rows = range(start, min(start + batch_size, sample.n_texts))
        batch_x = []
        for row in rows:
            n = int(sample.lengths[row])
            _, cache = model.run_with_cache(sample.tokens[row : row + 1, :n])
            batch_x.append(cache[hook][0][sample.counted[row, :n]])
        x = torch.cat(batch_x).double()
        with torch.no_grad():
            x_hat = sae.decode(sae.encode(x.float())).double()
        resid = (x - x_hat).pow(2).sum(-1)
        ratios.append(resid / (x - x.mean(0)).pow(2).sum(-1))
        xs.append(x)
        x_hats.append(x_hat)
    x, x_hat = torch.cat(xs), torch.cat(x_hats)
    assert got["n_tokens"] == sample.n_tokens == len(x)
    assert got["explained_variance_legacy"] == pytest.approx(1 - torch.cat(ratios).mean().item())
    resid = (x - x_hat).pow(2).sum(-1).mean().item()
    assert got["explained_variance"] == pytest.approx(
        1 - resid / (x - x.mean(0)).pow(2).sum(-1).mean().item()
    )
    assert got["explained_variance_about_zero"] == pytest.approx(
        1 - resid / x.pow(2).sum(-1).mean().item()
    )
    # and the book's own figure for the sample (collect_feature_stats' running sums)
    assert got["explained_variance"] == pytest.approx(sample.metrics["explained_variance"])
    # one batch of all the texts gives a different legacy figure: the batches matter
    whole = E.sample_explained_variances(model, sae, sample, batch_size=sample.n_texts)
    assert whole["explained_variance"] == pytest.approx(got["explained_variance"])
    assert whole["explained_variance_legacy"] != pytest.approx(got["explained_variance_legacy"])


def test_metric_labels_say_which_figure():
    shown = E.labelled({"explained_variance": 0.8, "explained_variance_legacy": 0.7, "l0": 3.0})
    assert list(shown.values()) == [0.8, 0.7, 3.0]
    labels = list(shown)
    assert "ratio of averages" in labels[0] and "Neuronpedia" in labels[1] and labels[2] == "l0"
    assert all(len(text) <= 50 for text in E.METRIC_LABELS.values())  # pandas' column width
    assert "summed over d_in" in E.label("mse")


def test_explained_variances_of_two_vectors_by_hand():
    # the smallest sample there is a variance of: x = (0, 0), (2, 0); x_hat = (1, 0), (1, 0)
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    got = E.explained_variances(x, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert got["explained_variance"] == pytest.approx(0.0)  # 1 - mse 1 / variance 1
    assert got["explained_variance_about_zero"] == pytest.approx(0.5)  # 1 - 1 / mean |x|^2 2
    with pytest.raises(ValueError, match="at least two activation vectors, got 1"):
        E.explained_variances(x[:1], x[:1])


def test_evaluate_sae_builds_its_store_and_config_from_its_arguments(monkeypatch):
    # What reaches SAELens, against the arguments (the store and run_evals are stand-ins).
    import sae_lens
    import sae_lens.evals

    seen = {}

    def from_sae(model, sae, **kwargs):
        seen["store"] = kwargs
        return "store"

    real_config = E.book_eval_config
    monkeypatch.setattr(
        E, "book_eval_config", lambda *a: seen.setdefault("config", a) and real_config(*a)
    )
    monkeypatch.setattr(sae_lens.ActivationsStore, "from_sae", staticmethod(from_sae))
    all_metrics, _ = fake_eval_output(None)
    all_metrics["token_stats"] = {"total_tokens_eval_sparsity_variance": 96}
    monkeypatch.setattr(
        sae_lens.evals,
        "run_evals",
        lambda **kw: (
            seen.setdefault("run_evals", kw)
            and (all_metrics, {"feature_density": torch.tensor([0.0, 0.5], dtype=torch.float32)})
        ),
    )
    sae = type("FakeSAE", (), {"device": torch.device("cpu")})()
    metrics, density = E.evaluate_sae(sae, "model", "data", n_batches=3, batch_size_prompts=5)
    assert seen["store"] == {
        "dataset": "data",
        "streaming": False,
        "context_size": None,
        "store_batch_size_prompts": 5,
        "device": "cpu",
    }
    assert seen["config"] == (5, 3, 3)  # the CE batches default to n_batches
    assert seen["run_evals"]["activation_store"] == "store"
    assert density.dtype == np.float64 and density.tolist() == [0.0, 0.5]
    assert metrics["eval_tokens"] == 96.0
    seen.clear()
    E.evaluate_sae(sae, "model", "data", n_batches=3, batch_size_prompts=5, n_ce_batches=1,
                   context_size=17)  # fmt: skip
    assert seen["config"] == (5, 3, 1) and seen["store"]["context_size"] == 17


def test_dead_latents_and_dead_fraction_edges():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):  # a negative fraction is refused too
        E.dead_latents([0.1, -0.5])
    one = E.headline_metrics(*fake_eval_output([0.0]))  # one latent, dead: all of them
    assert one["dead_latents"] == 1 and one["dead_fraction"] == 1.0


# ---- sample_explained_variances: batches, skipped batches, devices, padding ---------------------


def _explained_variances_by_hand(model, sae, sample, batch_size):
    """The three figures in plain torch: each text run alone (no padding), its counted tokens
    taken out, batches of ``batch_size`` texts with fewer than two counted tokens left out."""
    hook = sae.cfg.metadata.hook_name
    xs, x_hats, ratios = [], [], []
    for start in range(0, sample.n_texts, batch_size):
        batch_x = []
        for row in range(start, min(start + batch_size, sample.n_texts)):
            n = int(sample.lengths[row])
            _, cache = model.run_with_cache(sample.tokens[row : row + 1, :n])
            batch_x.append(cache[hook][0][sample.counted[row, :n]])
        x = torch.cat(batch_x).double()
        if len(x) < 2:
            continue
        with torch.no_grad():
            x_hat = sae.decode(sae.encode(x.float())).double()
        ratios.append((x - x_hat).pow(2).sum(-1) / (x - x.mean(0)).pow(2).sum(-1))
        xs.append(x)
        x_hats.append(x_hat)
    x, x_hat = torch.cat(xs), torch.cat(x_hats)
    resid = (x - x_hat).pow(2).sum(-1).mean().item()
    return {
        "explained_variance": 1 - resid / (x - x.mean(0)).pow(2).sum(-1).mean().item(),
        "explained_variance_legacy": 1 - torch.cat(ratios).mean().item(),
        "explained_variance_about_zero": 1 - resid / x.pow(2).sum(-1).mean().item(),
        "n_tokens": float(len(x)),
    }


def _collect(model, sae, texts):
    from random_models import SAMPLE_CONTEXT

    from utils import features as F

    return F.collect_feature_stats(
        model, sae, texts, context_size=SAMPLE_CONTEXT, batch_size=4, progress=False
    )


def _assert_matches(got, expected):
    assert got["n_tokens"] == expected["n_tokens"]
    for name in E.EXPLAINED_VARIANCES:
        assert got[name] == pytest.approx(expected[name], rel=1e-6), name


def test_sample_explained_variances_default_batches_are_16_texts(model, sae):
    # 18 texts: the default batches are texts 0-15 and 16-17 (the legacy figure shows the split)
    texts = [f"def add_{i}(a, b): return a + b * {i}  # Paris and Rome" for i in range(18)]
    many = _collect(model, sae, texts)
    assert many.n_texts == 18
    got = E.sample_explained_variances(model, sae, many)
    _assert_matches(got, _explained_variances_by_hand(model, sae, many, 16))
    other = _explained_variances_by_hand(model, sae, many, 17)
    assert got["explained_variance_legacy"] != pytest.approx(other["explained_variance_legacy"])


def test_sample_explained_variances_leaves_out_batches_of_fewer_than_two_tokens(model, sae):
    # One text per batch: "Hello" has one counted token (no batch mean: left out), "Paris" two.
    texts = ["The capital of France is Paris.", "Hello", "Paris", "Hello world", "Rome"]
    short = _collect(model, sae, texts)
    counted = short.counted.sum(1).tolist()
    assert counted[1] == 1 and counted[2] == 2
    got = E.sample_explained_variances(model, sae, short, batch_size=1)
    expected = _explained_variances_by_hand(model, sae, short, 1)
    assert expected["n_tokens"] == short.n_tokens - 1
    _assert_matches(got, expected)


def test_sample_explained_variances_rejects_a_batch_size_below_one(model, sae, sample):
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        E.sample_explained_variances(model, sae, sample, batch_size=0)


def test_sample_explained_variances_hands_the_sae_its_device_and_dtype(model, sae, sample):
    # A stand-in SAE on another device ("meta") and dtype: the activations must reach its
    # encode there, whatever the model's device and dtype.
    seen = []

    class Reached(Exception):
        pass

    class OtherDeviceSAE:
        cfg = sae.cfg
        device = torch.device("meta")
        dtype = torch.float64

        def encode(self, x):
            seen.append((x.device, x.dtype))
            raise Reached

        def decode(self, feature_acts):
            raise AssertionError("decode before encode")

    with pytest.raises(Reached):
        E.sample_explained_variances(model, OtherDeviceSAE(), sample, batch_size=2)
    assert seen == [(torch.device("meta"), torch.float64)]


def test_sample_explained_variances_attends_every_real_token_with_left_padding(
    model, sae, monkeypatch
):
    # A text starting with <|endoftext|> after its BOS: a left-padding model left to work out
    # its own attention mask would take both for padding; the sample's mask says they are real.
    texts = ["<|endoftext|>The capital of France is Paris.", "Hello world, Rome is a city."]
    short = _collect(model, sae, texts)
    expected = _explained_variances_by_hand(model, sae, short, 2)
    monkeypatch.setattr(model.tokenizer, "padding_side", "left")
    _assert_matches(E.sample_explained_variances(model, sae, short, batch_size=2), expected)
