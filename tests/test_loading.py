"""Tests for utils/loading.py.

Decoder-norm folding (tutorial 1, section 10): the folded SAE reconstructs exactly as the unfolded
one, and each latent's activation is multiplied by the norm of its decoder row. Checked against
the activations computed by hand from the unfolded weights, on the bundled tiny SAE and on a
random SAE of odd size.

What each loader asks the libraries for, on both preset shapes (gpt2-small's registry entries,
the tiny preset's bundled folders): the libraries' entry points are replaced by recording
stand-ins (tests/loading_fakes.py), and the recorded arguments are compared with the presets'
fields written out by hand. No download. The Hub failures these loaders report are in
tests/test_hub_failures.py.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from loading_fakes import (
    GPT2_DATASET,
    GPT2_HELDOUT_SPLIT,
    GPT2_MODEL,
    GPT2_RELEASE,
    GPT2_SAE_ID,
    SAELENS_KWARGS_WARNING,
    TINY_MODEL_FOLDER,
    TINY_SAE_FOLDER,
    FakeModel,
    Recorder,
    Stream,
    install_corpus,
    install_load_dataset,
    install_load_tiny_model,
    install_sae_lens,
)
from random_models import build_sae

from utils.loading import load_model, load_sae, load_texts, training_dataset
from utils.presets import get_preset


def by_hand(sae, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A standard (ReLU) SAE's latents and reconstruction from its weights, with no SAELens code."""
    W_enc, b_enc = sae.W_enc.detach().double(), sae.b_enc.detach().double()
    W_dec, b_dec = sae.W_dec.detach().double(), sae.b_dec.detach().double()
    acts = torch.relu((x.double() - b_dec) @ W_enc + b_enc)
    return acts, acts @ W_dec + b_dec


def check_folding(unfolded, folded, x: torch.Tensor) -> torch.Tensor:
    """Assert what folding promises for ``x`` [n, d_in]; return the decoder norms."""
    norms = unfolded.W_dec.detach().double().norm(dim=-1)  # [d_sae], before folding
    acts, recons = by_hand(unfolded, x)
    with torch.no_grad():
        folded_acts = folded.encode(x).double()
        folded_recons = folded.decode(folded.encode(x)).double()
    assert (acts > 0).any(dim=0).float().mean() > 0.3, "the test needs many active latents"
    torch.testing.assert_close(folded_acts, acts * norms, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(folded_recons, recons, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(
        folded.W_dec.detach().double().norm(dim=-1), torch.ones_like(norms), rtol=0, atol=1e-5
    )
    return norms


def test_folding_the_tiny_sae():
    preset = get_preset("tiny")
    unfolded = load_sae(preset)
    folded = load_sae(preset, fold_W_dec_norm=True)
    x = torch.randn(64, unfolded.cfg.d_in, generator=torch.Generator().manual_seed(0))
    norms = check_folding(unfolded, folded, x)
    # the bundled SAE's rows are far from unit norm, so folding visibly changes activations
    assert norms.min() > 1.1 and norms.max() > 2.0, (norms.min(), norms.max())


def test_folding_a_random_sae_of_odd_size():
    sae = build_sae(d_in=7, d_sae=13, seed=3)
    generator = torch.Generator().manual_seed(1)
    with (
        torch.no_grad()
    ):  # rows of norms between 0.3 and 3, and an encoder bias that lets some fire
        sae.W_dec.mul_(0.3 + 2.7 * torch.rand(13, 1, generator=generator))
        sae.b_enc.copy_(torch.randn(13, generator=generator) * 0.3)
    folded = copy.deepcopy(sae)
    folded.fold_W_dec_norm()
    x = torch.randn(50, 7, generator=generator) * 2
    norms = check_folding(sae, folded, x)
    assert norms.max() / norms.min() > 2


def test_folding_changes_values_but_not_rankings_within_a_latent():
    """What tutorial 1 says a reader may compare across the two: a latent's top contexts."""
    preset = get_preset("tiny")
    unfolded, folded = load_sae(preset), load_sae(preset, fold_W_dec_norm=True)
    x = torch.randn(200, unfolded.cfg.d_in, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = unfolded.encode(x), folded.encode(x)
    assert not torch.allclose(a, b)
    for latent in range(0, a.shape[1], 97):
        assert torch.equal(a[:, latent] > 0, b[:, latent] > 0)
        assert a[:, latent].argmax() == b[:, latent].argmax()


# ---- what each loader asks the libraries for (recording stand-ins, no download) ----------------


@pytest.mark.parametrize(
    "kwargs, device, fold",
    [({}, "cpu", False), ({"device": "cuda:7", "fold_W_dec_norm": True}, "cuda:7", True)],
)
def test_load_sae_asks_the_registry_for_the_presets_entry(monkeypatch, kwargs, device, fold):
    sae = object()
    fakes = install_sae_lens(monkeypatch, from_pretrained=Recorder(result=sae))
    assert load_sae(get_preset("gpt2-small"), **kwargs) is sae
    assert fakes.from_pretrained.calls == [
        (
            (GPT2_RELEASE, GPT2_SAE_ID),
            {"device": device, "fold_W_dec_norm": fold},
        )
    ]
    assert fakes.load_from_disk.calls == []


@pytest.mark.parametrize(
    "kwargs, device, fold",
    [({}, "cpu", False), ({"device": "cuda:7", "fold_W_dec_norm": True}, "cuda:7", True)],
)
def test_load_sae_reads_the_tiny_presets_folder(monkeypatch, kwargs, device, fold):
    sae = object()
    fakes = install_sae_lens(monkeypatch, load_from_disk=Recorder(result=sae))
    assert load_sae(get_preset("tiny"), **kwargs) is sae
    [(args, passed)] = fakes.load_from_disk.calls
    assert args == (str(TINY_SAE_FOLDER),) and isinstance(args[0], str)  # SAELens wants a str
    assert passed == {"device": device, "fold_W_dec_norm": fold}
    assert fakes.from_pretrained.calls == []


def test_load_sae_checks_the_tiny_folder_first(monkeypatch, tmp_path):
    """A missing bundled SAE folder is reported by the book's check, before SAELens reads it."""
    import dataclasses

    fakes = install_sae_lens(monkeypatch)
    preset = dataclasses.replace(get_preset("tiny"), sae_path=tmp_path / "gone")
    with pytest.raises(FileNotFoundError, match="gone"):
        load_sae(preset)
    assert fakes.load_from_disk.calls == []


def test_load_sae_hides_only_saelens_model_kwargs_warning(monkeypatch):
    """SAELens' advice to load the model with the SAE's kwargs (followed by load_model) is hidden;
    any other warning, and the same words as another category, still reach the reader."""
    other = "This SAE's dtype is float16"
    install_sae_lens(
        monkeypatch,
        from_pretrained=Recorder(
            result=object(),
            warn=[
                (SAELENS_KWARGS_WARNING, UserWarning),
                (other, UserWarning),
                (SAELENS_KWARGS_WARNING, FutureWarning),
            ],
        ),
    )
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        load_sae(get_preset("gpt2-small"))
        # the filter ends with the call: the same warning afterwards is shown
        warnings.warn(SAELENS_KWARGS_WARNING, UserWarning, stacklevel=1)
    assert [(str(w.message), w.category) for w in shown] == [
        (other, UserWarning),
        (SAELENS_KWARGS_WARNING, FutureWarning),
        (SAELENS_KWARGS_WARNING, UserWarning),
    ]


@pytest.mark.parametrize("kwargs", [{}, {"center_writing_weights": True, "fold_ln": False}])
def test_load_model_asks_transformer_lens_for_the_presets_model(monkeypatch, kwargs):
    model = FakeModel()
    fakes = install_sae_lens(monkeypatch, from_pretrained_no_processing=Recorder(result=model))
    tiny = install_load_tiny_model(monkeypatch)
    assert load_model(get_preset("gpt2-small"), device="cuda:7", **kwargs) is model
    assert fakes.from_pretrained_no_processing.calls == [
        ((GPT2_MODEL,), {"device": "cuda:7", **kwargs})
    ]
    assert model.eval_calls == 1  # in eval mode (no dropout) before anyone runs it
    assert tiny.calls == []


def test_load_model_default_device_is_the_cpu(monkeypatch):
    fakes = install_sae_lens(monkeypatch)
    load_model(get_preset("gpt2-small"))
    assert fakes.from_pretrained_no_processing.calls == [((GPT2_MODEL,), {"device": "cpu"})]
    tiny = install_load_tiny_model(monkeypatch)
    load_model(get_preset("tiny"))
    assert tiny.calls == [((TINY_MODEL_FOLDER,), {"device": "cpu"})]


@pytest.mark.parametrize("kwargs", [{}, {"center_writing_weights": True}])
def test_load_model_reads_the_tiny_presets_folder(monkeypatch, kwargs):
    model = FakeModel()
    fakes = install_sae_lens(monkeypatch)
    tiny = install_load_tiny_model(monkeypatch, Recorder(result=model))
    assert load_model(get_preset("tiny"), device="cuda:7", **kwargs) is model
    assert tiny.calls == [((TINY_MODEL_FOLDER,), {"device": "cuda:7", **kwargs})]
    assert model.eval_calls == 1
    assert fakes.from_pretrained_no_processing.calls == []


CORPUS = {"train": ["t0", "t1", "t2"], "heldout": ["h0", "h1", "h2", "h3"]}


@pytest.mark.parametrize(
    "n, split, expected",
    [
        (None, "heldout", ["h0", "h1", "h2", "h3"]),
        (2, "heldout", ["h0", "h1"]),
        (1, "train", ["t0"]),
        (10, "train", ["t0", "t1", "t2"]),  # fewer documents than asked for: all of them
        (None, "train", ["t0", "t1", "t2"]),
    ],
)
def test_load_texts_reads_the_bundled_corpus(monkeypatch, n, split, expected):
    install_corpus(monkeypatch, **CORPUS)
    datasets_fake = install_load_dataset(monkeypatch)
    if split == "heldout":  # the default split
        texts = load_texts(get_preset("tiny"), n)
        assert texts == load_texts(get_preset("tiny"), n, split="heldout")
    else:
        texts = load_texts(get_preset("tiny"), n, split=split)
    assert texts == expected and type(texts) is list
    assert datasets_fake.calls == []


@pytest.mark.parametrize("split, hub_split", [("heldout", GPT2_HELDOUT_SPLIT), ("train", "train")])
def test_load_texts_streams_the_hub_datasets_split(monkeypatch, split, hub_split):
    stream = Stream(["d0", "d1", "d2", "d3", "d4"])
    fake = install_load_dataset(monkeypatch, stream)
    assert load_texts(get_preset("gpt2-small"), 3, split=split) == ["d0", "d1", "d2"]
    assert fake.calls == [((GPT2_DATASET,), {"split": hub_split, "streaming": True})]
    assert stream.read == 3  # a stream is read no further than asked
    one = Stream(["e0", "e1"])
    install_load_dataset(monkeypatch, one)
    assert load_texts(get_preset("gpt2-small"), 1) == ["e0"] and one.read == 1
    assert load_texts(get_preset("gpt2-small"), 9) == ["e0", "e1"]  # a short split: all of it


@pytest.mark.parametrize(
    "preset, n, split, message",
    [
        ("tiny", 2, "test", "split must be 'heldout' or 'train', got 'test'"),
        ("gpt2-small", 2, "validation", "split must be 'heldout' or 'train', got 'validation'"),
        ("tiny", 0, "heldout", "n must be a positive number of documents (or None for all), got 0"),
        (
            "gpt2-small",
            -1,
            "train",
            "n must be a positive number of documents (or None for all), got -1",
        ),
        (
            "gpt2-small",
            None,
            "heldout",
            "monology/pile-uncopyrighted is streamed: give n, the number of documents to read",
        ),
    ],
)
def test_load_texts_refuses_what_it_cannot_read(monkeypatch, preset, n, split, message):
    install_corpus(monkeypatch, **CORPUS)
    fake = install_load_dataset(monkeypatch, Stream(["d0"]))
    with pytest.raises(ValueError) as raised:
        load_texts(get_preset(preset), n, split=split)
    assert str(raised.value) == message
    assert fake.calls == []  # refused before anything is downloaded


def test_training_dataset_is_the_bundled_train_split_or_none(monkeypatch):
    install_corpus(monkeypatch, **CORPUS)
    fake = install_load_dataset(monkeypatch, Stream(["d0"]))
    dataset = training_dataset(get_preset("tiny"))
    assert dataset.column_names == ["text"] and dataset["text"] == ["t0", "t1", "t2"]
    assert training_dataset(get_preset("gpt2-small")) is None  # SAELens streams it itself
    assert fake.calls == []


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
