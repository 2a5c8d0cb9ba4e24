"""The bundled tiny model, tokenizer and SAE: they load offline, meet their targets, and fail clearly.

The metric tests re-measure the card's numbers on the held-out split (about 120k tokens); the
whole file takes well under a minute on two CPU cores.
"""

from __future__ import annotations

import os

from utils.environment import OFFLINE_ENV

# the offline defaults, before huggingface_hub and datasets are imported (they read them then)
os.environ.update({**OFFLINE_ENV, **os.environ})

import dataclasses
import shutil
import socket
from pathlib import Path

import pytest
import torch

from utils.loading import load_model, load_sae, load_texts, training_dataset
from utils.presets import PRESETS
from utils.tiny import (
    ASSETS,
    REBUILD_HINT,
    check_asset_folder,
    load_tiny_model,
    load_tiny_tokenizer,
    read_card,
)
from utils.tiny.build.metrics import (
    ce_loss_recovered,
    lm_cross_entropy,
    pack_documents,
    sae_lens_metrics,
    tokenize_documents,
    uniform_cross_entropy,
    unigram_cross_entropy,
)
from utils.tiny.corpus import load_corpus

TINY = PRESETS["tiny"]
HOOK = "blocks.1.hook_resid_pre"

# Targets from the issue; the card must meet them and re-measurement must agree with the card.
MIN_EXPLAINED_VARIANCE = 0.8
L0_RANGE = (5, 60)
MAX_DEAD_FRACTION = 0.10
MIN_CE_RECOVERED = 0.8
MIN_MARGIN_OVER_UNIGRAM = 1.5
CE_CONTEXTS = 128  # 16k tokens: CE recovered to within about 0.01 of the whole split, quickly


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def sae():
    return load_sae(TINY, "cpu")


@pytest.fixture(scope="module")
def model(sae):
    return load_model(TINY, "cpu", **sae.cfg.metadata.model_from_pretrained_kwargs)


@pytest.fixture(scope="module")
def card():
    return read_card()


@pytest.fixture(scope="module")
def heldout_contexts(model):
    tokens = tokenize_documents(model.tokenizer, load_corpus().heldout)
    return pack_documents(tokens, model.tokenizer.bos_token_id, model.cfg.n_ctx)


@pytest.fixture(scope="module")
def measured_sparsity(model, sae):
    """SAELens' explained variance, L0 and dead fraction on the whole held-out split (the card's sample)."""
    metrics = sae_lens_metrics(model, sae, load_corpus().heldout, n_reconstruction_batches=0)
    metrics.pop("feature_density")
    return metrics


@pytest.fixture(scope="module")
def measured_ce(model, sae, heldout_contexts):
    """CE loss recovered on the first CE_CONTEXTS held-out contexts (the card uses all of them)."""
    return ce_loss_recovered(model, sae, heldout_contexts[:CE_CONTEXTS])


# Loading ----------------------------------------------------------------------------------------


def test_assets_load_offline_through_the_preset(no_network):
    from sae_lens import SAE, HookedSAETransformer

    sae = load_sae(TINY, "cpu")
    model = load_model(TINY, "cpu", **sae.cfg.metadata.model_from_pretrained_kwargs)
    assert isinstance(sae, SAE)
    assert isinstance(model, HookedSAETransformer)
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in sae.parameters())
    assert model.cfg.d_model == sae.cfg.d_in
    assert sae.cfg.d_sae == 8 * sae.cfg.d_in


def test_sae_metadata_describes_the_tiny_model(sae):
    meta = sae.cfg.metadata
    assert meta.hook_name == HOOK == TINY.analysis_hook
    assert meta.model_name == "sae-book-tiny" == TINY.model_name
    assert meta.context_size == 128
    assert meta.prepend_bos is True
    assert meta.model_from_pretrained_kwargs == {}
    assert sae.cfg.normalize_activations == "none"  # works on raw activations


def test_tokenizer_has_bos_and_behaves_like_gpt2_in_transformer_lens(model):
    tokenizer = load_tiny_tokenizer(ASSETS / "tokenizer")
    assert len(tokenizer) == 4096
    assert tokenizer.bos_token == "<|endoftext|>"
    text = "def f(x):\n    return x"
    with_bos = model.to_tokens(text)
    without = model.to_tokens(text, prepend_bos=False)
    assert with_bos[0, 0].item() == tokenizer.bos_token_id
    assert without[0, 0].item() != tokenizer.bos_token_id
    assert torch.equal(with_bos[0, 1:], without[0])
    str_tokens = model.to_str_tokens(text)
    assert str_tokens[0] == "<|endoftext|>"
    assert "".join(str_tokens[1:]) == text
    assert model.to_string(without[0]) == text


def test_load_tiny_model_rejects_unknown_options():
    with pytest.raises(TypeError, match="center_writing_weights"):
        load_tiny_model(ASSETS / "model", device="cpu", n_devices=2)
    with pytest.raises(TypeError, match="True or False"):
        load_tiny_model(ASSETS / "model", device="cpu", center_unembed="yes")


def test_load_tiny_model_processes_weights_only_when_asked():
    from safetensors.torch import load_file

    stored = load_file(str(ASSETS / "model" / "model.safetensors"))["unembed.W_U"].float()
    plain = load_tiny_model(ASSETS / "model", device="cpu", **{})  # the SAE's metadata: no options
    assert torch.equal(plain.W_U, stored)
    centred = load_tiny_model(ASSETS / "model", device="cpu", center_unembed=True)
    assert not torch.allclose(centred.W_U, stored)
    assert torch.allclose(centred.W_U.mean(-1), torch.zeros(centred.cfg.d_model), atol=1e-5)


def test_texts_and_training_dataset_come_from_the_bundled_corpus():
    corpus = load_corpus()
    assert load_texts(TINY, 3) == corpus.heldout[:3]
    assert load_texts(TINY, 2, split="train") == corpus.train[:2]
    assert not set(corpus.heldout) & set(corpus.train)
    share = len(corpus.heldout) / (len(corpus.heldout) + len(corpus.train))
    assert 0.15 < share < 0.25
    dataset = training_dataset(TINY)
    assert dataset.column_names == ["text"] and len(dataset) == len(corpus.train)


def test_pack_documents_starts_every_context_with_bos_and_keeps_order():
    docs = [[5, 6, 7], [8], [], [9, 10, 11, 12, 13]]
    contexts = pack_documents(docs, bos_id=0, n_ctx=4)
    assert contexts.tolist() == [[0, 5, 6, 7], [0, 8, 0, 9], [0, 10, 11, 12]]
    with pytest.raises(ValueError, match="n_ctx"):
        pack_documents(docs, bos_id=0, n_ctx=1)


# Splicing the SAE in ---------------------------------------------------------------------------


def test_forward_pass_with_the_sae_spliced_in(model, sae):
    tokens = model.to_tokens("Return a new list containing the items of the sequence.")
    clean_logits = model(tokens)
    logits, cache = model.run_with_cache_with_saes(tokens, saes=[sae])
    acts = cache[f"{HOOK}.hook_sae_acts_post"]
    assert acts.shape == (1, tokens.shape[1], sae.cfg.d_sae)
    assert torch.isfinite(logits).all()
    assert (acts[0, 1:] > 0).sum(-1).float().mean() > 0  # latents fire
    exact = model.run_with_saes(tokens, saes=[sae], use_error_term=True)
    torch.testing.assert_close(exact, clean_logits, atol=1e-4, rtol=1e-4)


# The card's metrics, re-measured ----------------------------------------------------------------


def test_card_records_metrics_sizes_seeds_and_versions(card):
    for key in ("model", "sae", "corpus", "sizes_bytes", "seed", "versions", "features_named"):
        assert key in card
    assert card["sizes_bytes"]["total"] < 10 * 2**20
    assert len(card["features_named"]) == 3


def test_language_model_beats_baselines_on_heldout_text(model, card, heldout_contexts):
    train_tokens = tokenize_documents(model.tokenizer, load_corpus().train)
    train_contexts = pack_documents(train_tokens, model.tokenizer.bos_token_id, model.cfg.n_ctx)
    ce = lm_cross_entropy(model, heldout_contexts)
    unigram = unigram_cross_entropy(train_contexts, heldout_contexts, model.cfg.d_vocab)
    uniform = uniform_cross_entropy(model.cfg.d_vocab)
    assert ce < unigram - MIN_MARGIN_OVER_UNIGRAM < uniform
    recorded = card["model"]["metrics"]
    assert_agrees(card, ce, recorded["heldout_cross_entropy"], 0.02)
    assert_agrees(card, unigram, recorded["unigram_cross_entropy"], 0.02)


def test_sae_meets_targets_on_heldout_text(measured_sparsity, measured_ce):
    assert measured_sparsity["explained_variance"] >= MIN_EXPLAINED_VARIANCE
    assert L0_RANGE[0] <= measured_sparsity["l0"] <= L0_RANGE[1]
    assert measured_sparsity["dead_fraction"] < MAX_DEAD_FRACTION
    assert measured_sparsity["tokens_sparsity_variance"] >= 100_000
    ce = measured_ce
    assert ce["ce_clean"] < ce["ce_with_sae"] < ce["ce_mean_ablation"] < ce["ce_zero_ablation"]
    assert ce["ce_loss_recovered_zero_ablation"] >= MIN_CE_RECOVERED
    assert ce["ce_loss_recovered_mean_ablation"] >= MIN_CE_RECOVERED


def test_sae_metrics_agree_with_the_card(measured_sparsity, measured_ce, card):
    recorded = card["sae"]["metrics"]
    assert_agrees(
        card, measured_sparsity["explained_variance"], recorded["explained_variance"], 0.005
    )
    assert_agrees(card, measured_sparsity["l0"], recorded["l0"], 0.01 * recorded["l0"])
    assert_agrees(card, measured_sparsity["dead_fraction"], recorded["dead_fraction"], 0.005)
    # CE recovered is re-measured on a subset of the card's tokens, hence the looser tolerance.
    zero_ablation = measured_ce["ce_loss_recovered_zero_ablation"]
    assert_agrees(card, zero_ablation, recorded["ce_loss_score"], 0.03)  # sae_lens' own number
    assert_agrees(card, zero_ablation, recorded["ce_loss_recovered_zero_ablation"], 0.03)
    mean_ablation = measured_ce["ce_loss_recovered_mean_ablation"]
    assert_agrees(card, mean_ablation, recorded["ce_loss_recovered_mean_ablation"], 0.03)


def test_named_features_fire_on_what_the_card_says(model, sae, card, heldout_contexts):
    indices = [feature["index"] for feature in card["features_named"]]
    acts = []
    with torch.no_grad():
        for batch in heldout_contexts.split(64):
            _, cache = model.run_with_cache(batch, names_filter=[HOOK], stop_at_layer=2)
            chosen = sae.encode(cache[HOOK])[..., indices]
            chosen[batch == model.tokenizer.bos_token_id] = 0.0
            acts.append(chosen.reshape(-1, len(indices)))
    acts = torch.cat(acts)
    flat = heldout_contexts.flatten()
    for column, feature in enumerate(card["features_named"]):
        top = acts[:, column].topk(10)
        assert top.values[-1] > 0
        shown = [model.tokenizer.decode([t]) for t in flat[top.indices].tolist()]
        if feature["kind"] == "token":
            assert shown.count(feature["top_tokens"][0]) >= 8, (feature["label"], shown)
        assert shown == feature["top_tokens"][:10]


def assert_agrees(card: dict, measured: float, recorded: float, tolerance: float) -> None:
    """Re-measured values match the card (the corpus is the shipped one the card was built from)."""
    assert abs(measured - recorded) <= tolerance, (
        f"measured {measured:.4f}, card says {recorded:.4f}"
    )


# Missing or corrupt assets ----------------------------------------------------------------------


@pytest.fixture()
def broken_assets(tmp_path: Path) -> Path:
    copy = tmp_path / "assets"
    shutil.copytree(ASSETS, copy)
    return copy


def test_missing_asset_folder_names_the_folder_and_the_rebuild_command(tmp_path):
    missing = tmp_path / "nowhere" / "sae"
    with pytest.raises(FileNotFoundError) as error:
        check_asset_folder(missing)
    assert str(missing) in str(error.value) and REBUILD_HINT in str(error.value)
    preset = dataclasses.replace(TINY, sae_path=missing, model_path=tmp_path / "nowhere" / "model")
    with pytest.raises(FileNotFoundError, match="python -m utils.tiny.build"):
        load_sae(preset, "cpu")
    with pytest.raises(FileNotFoundError, match="python -m utils.tiny.build"):
        load_model(preset, "cpu")


@pytest.mark.parametrize(
    ("folder", "name"),
    [("sae", "sae_weights.safetensors"), ("model", "config.json"), ("tokenizer", "tokenizer.json")],
)
def test_missing_file_is_named(broken_assets, folder, name):
    (broken_assets / folder / name).unlink()
    with pytest.raises(FileNotFoundError) as error:
        check_asset_folder(broken_assets / folder)
    message = str(error.value)
    assert str(broken_assets / folder) in message and name in message and REBUILD_HINT in message


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("sae", "sae_weights.safetensors"),
        ("sae", "cfg.json"),
        ("model", "model.safetensors"),
        ("tokenizer", "tokenizer.json"),
    ],
)
def test_corrupt_file_is_named(broken_assets, folder, name):
    path = broken_assets / folder / name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # truncated
    with pytest.raises(ValueError) as error:
        check_asset_folder(broken_assets / folder)
    message = str(error.value)
    assert str(broken_assets / folder) in message and name in message and REBUILD_HINT in message


def test_loading_a_corrupt_model_fails_clearly(broken_assets):
    path = broken_assets / "model" / "model.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="python -m utils.tiny.build"):
        load_tiny_model(broken_assets / "model")


def test_the_prompt_is_in_domain_text():
    """Tutorial 1's prompt on tiny reads as whole words with the tiny tokenizer (a French sentence
    came out as ' F' 'r' 'ance' ...), and is not copied from the corpus."""
    tokenizer = load_tiny_tokenizer()
    words = TINY.prompt.split()
    n_tokens = len(tokenizer(TINY.prompt)["input_ids"])
    assert n_tokens / len(words) <= 1.5, (TINY.prompt, n_tokens)
    corpus = load_corpus()
    assert not any(TINY.prompt in document for document in corpus.train + corpus.heldout)
