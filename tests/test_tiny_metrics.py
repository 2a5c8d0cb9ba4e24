"""Unit tests of utils/tiny/build/metrics.py, fast enough for ``make mutation`` ("tiny-metrics").

Each function is checked against a computation written out here that shares none of its code:
hand-made token lists, SAELens' own packing of documents, logits turned into next-token losses by
hand, densities counted over the non-BOS tokens. The model and SAE are tests/conftest.py's small
random ones (not the bundled tiny model: tests/test_tiny.py re-measures the card's numbers with it).
"""

from __future__ import annotations

import copy
import math
import random
from types import SimpleNamespace

import pytest
import torch
from random_models import HOOK

from utils.tiny.build import metrics as M

pytestmark = [
    pytest.mark.filterwarnings("ignore:Dataset is not tokenized"),
    pytest.mark.filterwarnings("ignore:The training dataset contains fewer samples"),
]

N_CTX = 12  # tokens per packed context (the random model takes up to 32)
DOCUMENTS = [
    "The capital of France is Paris.",
    "def add(a, b): return a + b",
    "",  # skipped: no tokens, no separator
    "Hello world",
    "Paris is a city in France, and Rome is a city in Italy.",
    "import os\nprint(os.getcwd())",
]


def sae_lens_packing(token_docs, bos: int, n_ctx: int) -> list[list[int]]:
    """SAELens' layout of a text dataset (what ``ActivationsStore`` does): BOS at the start of each
    context, BOS between documents, the incomplete last context dropped."""
    from sae_lens.tokenization_and_batching import concat_and_batch_sequences

    docs = (torch.tensor(doc, dtype=torch.long) for doc in token_docs)
    packed = concat_and_batch_sequences(
        docs, n_ctx, begin_batch_token_id=bos, sequence_separator_token_id=bos
    )
    return [context.tolist() for context in packed]


def next_token_losses(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``[n, ctx - 1]``: minus the log-probability that the prediction at p gives token p + 1."""
    log_probs = logits[:, :-1].double().log_softmax(-1)
    return -log_probs.gather(-1, tokens[:, 1:, None])[..., 0]


@pytest.fixture(scope="module")
def bos(model) -> int:
    return model.tokenizer.bos_token_id


@pytest.fixture(scope="module")
def contexts(model, bos) -> torch.Tensor:
    """DOCUMENTS packed as SAELens packs them: 8 contexts of N_CTX tokens, 3 separators inside."""
    docs = [
        model.to_tokens(d, prepend_bos=False, truncate=False)[0].tolist() for d in DOCUMENTS if d
    ]
    packed = torch.tensor(sae_lens_packing(docs, bos, N_CTX))
    assert packed.shape == (8, N_CTX)
    assert (packed[:, 0] == bos).all() and int((packed[:, 1:] == bos).sum()) == 3
    return packed


@pytest.fixture(scope="module")
def eval_sae(sae):
    """The random SAE with a context size, 3 latents that never fire and 2 that always do."""
    sae = copy.deepcopy(sae)
    sae.cfg.metadata.context_size = N_CTX
    with torch.no_grad():
        sae.W_enc[:, :5] = 0.0
        sae.b_enc[:3] = -1.0  # dead
        sae.b_enc[3:5] = 1.0  # fire on every token
    return sae


# Tokenizing and packing -------------------------------------------------------------------------


class CharTokenizer:
    """One id per character (its code point); a fast tokenizer's call signature; adds BOS (id 1)
    unless ``add_special_tokens=False``; hands back tuples."""

    def __call__(self, texts, add_special_tokens=True):
        assert isinstance(texts, list)  # one batch call, as a fast tokenizer takes it
        prefix = (1,) if add_special_tokens else ()
        return {"input_ids": [prefix + tuple(ord(c) for c in text) for text in texts]}


def test_tokenize_documents_without_special_tokens():
    got = M.tokenize_documents(CharTokenizer(), ("ab", "", "c"))
    assert got == [[97, 98], [], [99]]
    assert all(type(ids) is list for ids in got)


def test_tokenize_documents_agrees_with_transformer_lens(model):
    """The ids SAELens' ActivationsStore gets for a document: ``to_tokens(prepend_bos=False)``."""
    got = M.tokenize_documents(model.tokenizer, DOCUMENTS)
    assert len(got) == len(DOCUMENTS) and got[2] == []
    for doc, ids in zip(DOCUMENTS, got):
        if doc:
            assert ids == model.to_tokens(doc, prepend_bos=False, truncate=False)[0].tolist()


def test_pack_documents_by_hand():
    bos = 99
    # BOS separates documents; a context that ends exactly at a document's end needs no separator
    # in the next one; a separator can be a context's last token; the partial tail is dropped.
    assert M.pack_documents([[1, 2, 3], [4, 5, 6]], bos, 4).tolist() == [
        [99, 1, 2, 3],
        [99, 4, 5, 6],
    ]
    assert M.pack_documents([[1, 2], [3, 4]], bos, 4).tolist() == [[99, 1, 2, 99]]
    assert M.pack_documents([[1, 2, 3, 4, 5, 6, 7]], bos, 3).tolist() == [
        [99, 1, 2],
        [99, 3, 4],
        [99, 5, 6],
    ]
    assert M.pack_documents([[5], [], [6], [7, 8]], bos, 6).tolist() == [[99, 5, 99, 6, 99, 7]]
    assert M.pack_documents(iter([[1, 2, 3]]), bos, 2).tolist() == [[99, 1], [99, 2], [99, 3]]
    packed = M.pack_documents([[1, 2, 3]], bos, 4)
    assert packed.dtype == torch.long and packed.shape == (1, 4)


def test_pack_documents_with_nothing_full_is_empty():
    for docs in ([], [[], []], [[1, 2]]):
        packed = M.pack_documents(docs, 0, 4)
        assert packed.shape == (0, 4) and packed.dtype == torch.long


def test_pack_documents_refuses_a_context_without_room_for_a_token():
    for n_ctx in (1, 0):
        with pytest.raises(ValueError, match="n_ctx must be at least 2"):
            M.pack_documents([], 0, n_ctx)  # no documents: a broken check cannot loop forever
    assert M.pack_documents([[1, 2]], 0, 2).tolist() == [[0, 1], [0, 2]]


def test_pack_documents_lays_tokens_out_as_sae_lens_does():
    rng = random.Random(0)
    for _ in range(200):
        n_ctx = rng.randint(2, 7)
        docs = [[rng.randint(1, 50) for _ in range(rng.randint(0, 9))] for _ in range(6)]
        expected = sae_lens_packing(docs, 0, n_ctx)
        assert M.pack_documents(docs, 0, n_ctx).tolist() == expected, (docs, n_ctx)


# Cross-entropies --------------------------------------------------------------------------------


def test_lm_cross_entropy_is_the_mean_over_every_prediction(model, contexts):
    batch = contexts[:5]
    with torch.no_grad():
        losses = next_token_losses(model(batch, return_type="logits"), batch)  # [5, N_CTX - 1]
    expected = losses.mean().item()
    assert M.lm_cross_entropy(model, batch) == pytest.approx(expected, rel=1e-5)
    # batches of 2, 2 and 1: every prediction weighs the same, not every batch
    assert M.lm_cross_entropy(model, batch, batch_size=2) == pytest.approx(expected, rel=1e-5)
    mean_of_batches = (losses[:2].mean() + losses[2:4].mean() + losses[4:].mean()).item() / 3
    assert mean_of_batches != pytest.approx(expected, rel=1e-5)  # the data can tell them apart


class DeviceModel:
    """Stands in for a model on ``device``: keeps the device of each batch it is handed and
    answers a loss of 1 per prediction (``[b, n_ctx - 1]``)."""

    def __init__(self, device: str):
        self.cfg = SimpleNamespace(device=device)
        self.devices: list[torch.device] = []

    def __call__(self, batch, return_type, loss_per_token):
        assert return_type == "loss" and loss_per_token
        self.devices.append(batch.device)
        return torch.ones(batch.shape[0], batch.shape[1] - 1)


def test_lm_cross_entropy_moves_each_batch_to_the_model_device():
    # "meta" exists on any machine: a batch left where it was (on the CPU) would show
    fake = DeviceModel("meta")
    contexts = torch.zeros(5, 4, dtype=torch.long)
    assert M.lm_cross_entropy(fake, contexts, batch_size=2) == 1.0
    assert [d.type for d in fake.devices] == ["meta"] * 3


def test_unigram_cross_entropy_by_hand():
    train = torch.tensor([[0, 1, 1, 2], [0, 1, 3, 3]])
    heldout = torch.tensor([[0, 2, 4], [4, 1, 0]])
    # training targets (first column left out): 1 1 2 1 3 3; counts + 1 over 5 ids: 1 4 2 3 1 (11)
    probs = [1 / 11, 4 / 11, 2 / 11, 3 / 11, 1 / 11]
    targets = [2, 4, 1, 0]  # held-out targets
    expected = -sum(math.log(probs[t]) for t in targets) / len(targets)
    assert M.unigram_cross_entropy(train, heldout, 5) == pytest.approx(expected, rel=1e-12)


def test_unigram_of_evenly_spread_targets_is_uniform():
    train = torch.tensor([[7, 0, 1, 2, 3], [7, 4, 5, 6, 7]])  # every id of 8 once as a target
    heldout = torch.tensor([[0, 3, 3, 5, 1]])
    assert M.unigram_cross_entropy(train, heldout, 8) == pytest.approx(3 * math.log(2))


def test_uniform_cross_entropy_is_log_of_the_vocabulary():
    assert M.uniform_cross_entropy(8) == pytest.approx(3 * math.log(2), rel=1e-12)
    assert M.uniform_cross_entropy(4096) == pytest.approx(-math.log(1 / 4096), rel=1e-12)
    assert M.uniform_cross_entropy(1) == 0.0


# The SAE spliced in -----------------------------------------------------------------------------


def test_ce_loss_recovered_by_hand(model, sae, contexts, bos):
    """Activations at every non-BOS position replaced (SAE, mean of those positions); zeros
    everywhere, BOS included; the loss of predictions made at non-BOS positions."""
    counted = contexts != bos
    with torch.no_grad():
        _, cache = model.run_with_cache(contexts, names_filter=[HOOK])
        acts = cache[HOOK]
        mean = acts[counted].double().mean(0).float()
        replaced = {
            "ce_clean": acts,
            "ce_with_sae": torch.where(counted[..., None], sae.decode(sae.encode(acts)), acts),
            "ce_zero_ablation": torch.zeros_like(acts),
            "ce_mean_ablation": torch.where(counted[..., None], mean.expand_as(acts), acts),
        }
        expected = {}
        for name, new in replaced.items():
            logits = model.run_with_hooks(contexts, fwd_hooks=[(HOOK, lambda a, hook, n=new: n)])
            expected[name] = next_token_losses(logits, contexts)[counted[:, :-1]].mean().item()
    clean, with_sae = expected["ce_clean"], expected["ce_with_sae"]
    zero, mean_ablated = expected["ce_zero_ablation"], expected["ce_mean_ablation"]
    expected["ce_loss_recovered_zero_ablation"] = (zero - with_sae) / (zero - clean)
    expected["ce_loss_recovered_mean_ablation"] = (mean_ablated - with_sae) / (mean_ablated - clean)

    got = M.ce_loss_recovered(model, sae, contexts, batch_size=3)
    assert set(got) == set(expected) | {"tokens"}
    assert got["tokens"] == int(counted[:, :-1].sum()) == 8 * (N_CTX - 2) - 3  # 3 separators
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-4), name
    assert len({round(v, 3) for v in expected.values()}) == len(expected)  # all different


def test_top_activations_by_hand(model, sae, contexts, bos):
    """Per latent, the largest activations over the non-BOS tokens and their flat positions."""
    k = 5
    with torch.no_grad():
        _, cache = model.run_with_cache(contexts, names_filter=[HOOK])
        acts = sae.encode(cache[HOOK])  # [n, N_CTX, d_sae]
    flat = acts.reshape(-1, sae.cfg.d_sae)  # row p: context p // N_CTX, token p % N_CTX
    is_bos = (contexts == bos).flatten()
    top_with_bos = flat.topk(k, dim=0).indices
    assert is_bos[top_with_bos].any()  # some latent's top tokens include a BOS, if left in
    masked = flat.masked_fill(is_bos[:, None], 0.0)
    top = masked.topk(k, dim=0)  # [k, d_sae]

    values, positions = M.top_activations(model, sae, contexts, k=k, batch_size=3)
    assert values.shape == positions.shape == (sae.cfg.d_sae, k)
    assert positions.dtype == torch.long
    torch.testing.assert_close(values, top.values.T, atol=1e-5, rtol=1e-5)
    # each position holds its value (ties at 0 may be broken either way)
    torch.testing.assert_close(masked.T.gather(1, positions), values, atol=1e-5, rtol=1e-5)
    assert all(len(set(row)) == k for row in positions.tolist())
    firing = values > 0
    assert not is_bos[positions[firing]].any()
    assert (positions[firing] == top.indices.T[firing]).all()
    assert (positions[firing] >= 3 * N_CTX).any()  # found in the second batch


def test_top_activations_with_more_slots_than_tokens(model, sae, contexts, bos):
    """Every token of 2 contexts (BOS at 0), then slots with a value below any activation."""
    few = contexts[:2]
    with torch.no_grad():
        _, cache = model.run_with_cache(few, names_filter=[HOOK])
        flat = sae.encode(cache[HOOK]).reshape(-1, sae.cfg.d_sae)
    flat[(few == bos).flatten()] = 0.0
    real = 2 * N_CTX
    values, positions = M.top_activations(model, sae, few, k=real + 3, batch_size=1)
    assert (positions[:, :real].sort(dim=1).values == torch.arange(real)).all()
    torch.testing.assert_close(flat.T.gather(1, positions[:, :real]), values[:, :real])
    assert (values[:, real:] < 0).all()
    # the empty slots hold the fill value -1 (below any activation: the encoders end in a ReLU)
    assert (values[:, real:] == -1.0).all()


def test_top_activations_default_keeps_30_per_latent(model, sae, contexts, bos):
    """Without ``k``: the 30 largest activations of each latent, out of 8 * N_CTX = 96 tokens."""
    assert contexts.numel() > 30
    with torch.no_grad():
        _, cache = model.run_with_cache(contexts, names_filter=[HOOK])
        flat = sae.encode(cache[HOOK]).reshape(-1, sae.cfg.d_sae)
    flat[(contexts == bos).flatten()] = 0.0
    expected = flat.topk(30, dim=0).values.T  # [d_sae, 30]
    values, positions = M.top_activations(model, sae, contexts)
    assert values.shape == positions.shape == (sae.cfg.d_sae, 30)
    torch.testing.assert_close(values, expected, atol=1e-5, rtol=1e-5)


# SAELens' evals ---------------------------------------------------------------------------------


def test_sae_lens_metrics_by_hand(model, eval_sae, contexts, bos):
    """On 2 full batches of 3 contexts (the last 2 of 8 left out): densities, L0, MSE and
    explained variance over the non-BOS tokens; the clean CE of the first batch's non-BOS
    predictions."""
    got = M.sae_lens_metrics(
        model, eval_sae, DOCUMENTS, batch_prompts=3, n_reconstruction_batches=1
    )
    used = contexts[:6]
    with torch.no_grad():
        _, cache = model.run_with_cache(used, names_filter=[HOOK])
        x = cache[HOOK][used != bos].double()  # [tokens, d_in]
        feats = eval_sae.encode(x.float()).double()
        x_hat = eval_sae.decode(feats.float()).double()
        first = contexts[:3]
        clean = next_token_losses(model(first), first)[first[:, :-1] != bos].mean().item()
    fires = feats > 0
    density = fires.double().mean(0)
    mse = (x - x_hat).pow(2).sum(-1).mean().item()
    variance = (x - x.mean(0)).pow(2).sum(-1).mean().item()

    assert got["tokens_sparsity_variance"] == 6 * N_CTX
    assert got["tokens_reconstruction"] == 3 * N_CTX
    torch.testing.assert_close(got["feature_density"].double(), density, atol=1e-6, rtol=0)
    assert got["dead_fraction"] == pytest.approx((density == 0).double().mean().item())
    assert got["dense_fraction"] == pytest.approx((density > 0.1).double().mean().item())
    assert 3 / 200 <= got["dead_fraction"] and 2 / 200 <= got["dense_fraction"] < 1
    assert got["l0"] == pytest.approx(fires.sum(-1).double().mean().item(), rel=1e-5)
    assert got["mse"] == pytest.approx(mse, rel=1e-4)
    assert got["explained_variance"] == pytest.approx(1 - mse / variance, rel=1e-4, abs=1e-4)
    assert got["ce_loss_without_sae"] == pytest.approx(clean, rel=1e-4)
    c, s, z = (got[f"ce_loss_{n}"] for n in ("without_sae", "with_sae", "zero_ablation"))
    assert got["ce_loss_score"] == pytest.approx((z - s) / (z - c), rel=1e-4)
    assert math.isfinite(got["kl_div_score"])


class FakeStores:
    """Stands in for ``sae_lens.ActivationsStore``: records how each store is made."""

    def __init__(self):
        self.made: list[dict] = []

    def from_sae(self, model, sae, **kwargs):
        self.made.append({"model": model, "sae": sae, **kwargs})
        return object()


SPARSITY = {
    "reconstruction_quality": {"explained_variance": 0.75, "mse": 2.5},
    "sparsity": {"l0": 12.0},
}
DENSITY = [0.0, 0.1, 0.25, 0.0, 0.05, 1.0, 0.0, 0.005]  # 3 of 8 dead, 2 of 8 above 0.1
RECONSTRUCTION = {
    "model_performance_preservation": {
        "ce_loss_score": 0.9,
        "ce_loss_without_sae": 2.0,
        "ce_loss_with_sae": 2.2,
        "ce_loss_with_ablation": 4.0,
    },
    "model_behavior_preservation": {"kl_div_score": 0.8},
}


@pytest.fixture()
def fake_evals(monkeypatch):
    """``run_evals`` replaced: the first call answers SPARSITY and DENSITY, the second
    RECONSTRUCTION; each call's arguments are kept."""
    import sae_lens
    import sae_lens.evals

    stores, calls = FakeStores(), []

    def run_evals(sae, store, model, scaler, cfg):
        calls.append({"sae": sae, "store": store, "model": model, "scaler": scaler, "cfg": cfg})
        if len(calls) == 1:
            return copy.deepcopy(SPARSITY), {"feature_density": list(DENSITY)}
        return copy.deepcopy(RECONSTRUCTION), {}

    monkeypatch.setattr(sae_lens, "ActivationsStore", stores)
    monkeypatch.setattr(sae_lens.evals, "run_evals", run_evals)
    return stores, calls


def test_sae_lens_metrics_asks_sae_lens_and_renames(model, eval_sae, fake_evals):
    stores, calls = fake_evals
    got = M.sae_lens_metrics(
        model,
        eval_sae,
        DOCUMENTS,
        batch_prompts=3,
        n_sparsity_batches=5,
        n_reconstruction_batches=4,
    )
    density = got.pop("feature_density")
    assert torch.equal(density, torch.tensor(DENSITY))
    assert got == {
        "explained_variance": 0.75,
        "mse": 2.5,
        "l0": 12.0,
        "dead_fraction": 3 / 8,
        "dense_fraction": 2 / 8,  # a density of exactly 0.1 is not above 0.1
        "tokens_sparsity_variance": 5 * 3 * N_CTX,
        "ce_loss_score": 0.9,
        "ce_loss_without_sae": 2.0,
        "ce_loss_with_sae": 2.2,
        "ce_loss_zero_ablation": 4.0,
        "kl_div_score": 0.8,
        "tokens_reconstruction": 4 * 3 * N_CTX,
    }
    sparsity, reconstruction = (call["cfg"] for call in calls)
    assert sparsity.batch_size_prompts == 3 and sparsity.n_eval_sparsity_variance_batches == 5
    assert sparsity.compute_sparsity_metrics and sparsity.compute_variance_metrics
    assert sparsity.compute_featurewise_density_statistics
    assert not (sparsity.compute_ce_loss or sparsity.compute_kl)
    assert reconstruction.batch_size_prompts == 3
    assert reconstruction.n_eval_reconstruction_batches == 4
    assert reconstruction.compute_ce_loss and reconstruction.compute_kl
    for call in calls:
        assert call["sae"] is eval_sae and call["model"] is model
        assert call["scaler"].scaling_factor is None and call["scaler"].whitening is None
    # a fresh store for each run, both reading DOCUMENTS in contexts of the SAE's size
    assert len(stores.made) == 2 and calls[0]["store"] is not calls[1]["store"]
    for made in stores.made:
        assert made["model"] is model and made["sae"] is eval_sae
        assert made["dataset"]["text"] == DOCUMENTS
        assert made["context_size"] == N_CTX and made["store_batch_size_prompts"] == 3
        assert made["streaming"] is False and made["device"] == model.cfg.device


def test_sae_lens_metrics_default_sparsity_batches_cover_the_documents_once(
    model, eval_sae, fake_evals
):
    stores, calls = fake_evals
    # DOCUMENTS pack into 8 contexts: 2 full batches of 3, 1 of 5, 8 of 1; at least 1 batch
    for batch_prompts, batches in ((3, 2), (5, 1), (1, 8), (9, 1)):
        calls.clear()
        got = M.sae_lens_metrics(
            model, eval_sae, DOCUMENTS, batch_prompts=batch_prompts, n_reconstruction_batches=0
        )
        assert len(calls) == 1  # no reconstruction run
        assert calls[0]["cfg"].n_eval_sparsity_variance_batches == batches
        assert got["tokens_sparsity_variance"] == batches * batch_prompts * N_CTX
        assert "ce_loss_score" not in got and "tokens_reconstruction" not in got
        assert "kl_div_score" not in got
