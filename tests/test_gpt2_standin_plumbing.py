"""The ``gpt2-small`` preset's plumbing, offline, against the stand-in Hub (tests/standin_hub.py).

The stand-in has GPT-2's real tokenizer, repository ids, file formats and shapes, but random
weights: these tests assert plumbing only (things load, ids and shapes are GPT-2's, data streams,
training steps run), never quality. Each check runs in a subprocess started with the stand-in's
``HF_HOME`` and ``HF_HUB_OFFLINE=1``, because huggingface_hub and datasets read them at import.

Running this file as a script is the subprocess's side: ``python tests/test_gpt2_standin_plumbing.py
plumbing|offline-error`` prints one JSON line of findings.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from standin_hub import (  # noqa: E402
    run_worker_script,
    session_standin_hub,
    standin_env,
)

RESULT_PREFIX = "STANDIN-RESULT "


def run_worker(mode: str, env: dict[str, str], timeout: float = 300) -> dict:
    """Run this file as a script in ``env``; return the JSON it printed after RESULT_PREFIX, with
    its stderr under "stderr"."""
    result, stderr = run_worker_script(__file__, mode, env, RESULT_PREFIX, timeout)
    return {**result, "stderr": stderr}


# The tests (pytest's side) -----------------------------------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return session_standin_hub(tmp_path_factory)


@pytest.fixture(scope="module")
def plumbing(standin) -> dict:
    return run_worker("plumbing", standin_env(standin))


def test_plumbing_sae_loads_at_its_registry_id(plumbing):
    sae = plumbing["sae"]
    assert (sae["d_in"], sae["d_sae"]) == (768, 24576)
    assert sae["hook_name"] == "blocks.8.hook_resid_pre"
    assert sae["model_from_pretrained_kwargs"] == {"center_writing_weights": True}
    assert sae["neuronpedia_id"] == "gpt2-small/8-res-jb"


def test_plumbing_sae_has_its_neuronpedia_page(plumbing):
    """Tutorial 1 embeds the chosen latent's page: the URL has Neuronpedia's real form."""
    page = "https://www.neuronpedia.org/gpt2-small/8-res-jb/17?embed=true"
    assert plumbing["sae"]["embed_url"] == page
    assert plumbing["sae"]["view"].startswith(f'<iframe src="{page}"')


def test_plumbing_model_is_gpt2_small_with_its_tokenizer(plumbing):
    model = plumbing["model"]
    assert (model["n_layers"], model["d_model"], model["d_vocab"]) == (12, 768, 50257)
    assert model["hello_world"] == [15496, 995]  # GPT-2's real ids
    assert model["bos"] == 50256


def test_plumbing_heldout_text_is_not_training_text(plumbing):
    texts = plumbing["texts"]
    assert texts["heldout"] > 0 and texts["train"] > 0
    assert texts["overlap"] == 0


def test_plumbing_spliced_forward_pass(plumbing):
    spliced = plumbing["spliced"]
    assert spliced["logits_shape"][-1] == 50257
    assert spliced["acts_shape"][-1] == 24576
    # the stand-in SAE's threshold is calibrated to the registry's L0 (about 60), not half of 24576
    assert 10 < spliced["mean_l0"] < 300, spliced["mean_l0"]
    assert spliced["max_logit_diff_error_term"] < 1e-3  # use_error_term keeps the output exact


def test_plumbing_two_training_steps_stream_the_dataset(plumbing):
    training = plumbing["training"]
    assert training["steps"] == 2
    assert training["dataset_path"] == "monology/pile-uncopyrighted"
    assert training["streaming"] is True
    assert training["d_in"] == 768 and training["d_sae"] == 8 * 768
    assert training["finite"]


def test_plumbing_no_reader_facing_warning_on_sae_load(plumbing):
    assert "non-empty model_from_pretrained_kwargs" not in plumbing["stderr"]


def test_offline_with_an_empty_cache_says_how_to_switch(tmp_path):
    """Item 7: no Hub and nothing cached gives one message naming what and how to switch."""
    found = run_worker("offline-error", standin_env(tmp_path / "empty_hf_home"))
    assert set(found) - {"stderr"} == {"sae", "model", "texts"}
    for what, error in found.items():
        if what == "stderr":
            continue
        assert error["type"] == "HubUnavailableError", error
        message = error["message"]
        assert "needs the Hugging Face Hub" in message
        assert "SAE_BOOK_PRESET=tiny" in message and "unset SAE_BOOK_PRESET" in message
        assert error["chained"], "the original exception stays chained"
    assert "gpt2-small-res-jb" in found["sae"]["message"]
    assert "'gpt2-small'" in found["model"]["message"]
    assert "monology/pile-uncopyrighted" in found["texts"]["message"]


# The worker (the subprocess's side) --------------------------------------------------------------


def _plumbing() -> dict:
    import torch
    from sae_lens import LanguageModelSAETrainingRunner

    from utils.display import neuronpedia_url, neuronpedia_view
    from utils.loading import load_model, load_sae, load_texts, training_dataset
    from utils.presets import choose_preset
    from utils.training_config import runner_config, standard_sae_config

    preset = choose_preset(verbose=False)
    assert preset.name == "gpt2-small", preset.name
    out: dict = {}
    sae = load_sae(preset, "cpu")
    meta = sae.cfg.metadata
    out["sae"] = {
        "d_in": sae.cfg.d_in,
        "d_sae": sae.cfg.d_sae,
        "hook_name": meta.hook_name,
        "model_from_pretrained_kwargs": meta.model_from_pretrained_kwargs,
        "neuronpedia_id": meta.neuronpedia_id,
        "embed_url": neuronpedia_url(sae, 17, embed=True),
        "view": neuronpedia_view(sae, 17)._repr_html_(),
    }
    model = load_model(preset, "cpu", **meta.model_from_pretrained_kwargs)
    out["model"] = {
        "n_layers": model.cfg.n_layers,
        "d_model": model.cfg.d_model,
        "d_vocab": model.cfg.d_vocab,
        "hello_world": model.to_tokens("Hello world", prepend_bos=False)[0].tolist(),
        "bos": model.tokenizer.bos_token_id,
    }

    heldout = load_texts(preset, n=20, split="heldout")
    train = load_texts(preset, n=200, split="train")
    out["texts"] = {
        "heldout": len(heldout),
        "train": len(train),
        "overlap": len(set(heldout) & set(train)),
    }

    tokens = model.to_tokens(heldout[0])[:, :64]
    with torch.no_grad():
        logits, cache = model.run_with_cache_with_saes(tokens, saes=[sae])
        acts = cache[f"{preset.analysis_hook}.hook_sae_acts_post"]
        plain = model(tokens)
        sae.use_error_term = True
        exact = model.run_with_saes(tokens, saes=[sae])
        sae.use_error_term = False
    out["spliced"] = {
        "logits_shape": list(logits.shape),
        "acts_shape": list(acts.shape),
        "mean_l0": (acts[0, 1:] > 0).sum(-1).float().mean().item(),
        "max_logit_diff_error_term": (exact - plain).abs().max().item(),
    }

    # Two steps of tutorial 2's configuration, small batches so they take seconds on a CPU.
    train_model = load_model(preset, "cpu")
    d_in = train_model.cfg.d_model
    batch = 256
    cfg = runner_config(
        preset,
        standard_sae_config(preset, d_in),
        "cpu",
        training_tokens=2 * batch,
        train_batch_size_tokens=batch,
        store_batch_size_prompts=2,
        n_batches_in_buffer=2,
        n_batches_for_norm_estimate=1,
    )
    assert training_dataset(preset) is None  # the runner streams cfg.dataset_path itself
    runner = LanguageModelSAETrainingRunner(cfg, override_model=train_model)
    trained = runner.run()
    steps = cfg.training_tokens // cfg.train_batch_size_tokens
    out["training"] = {
        "steps": steps,
        "dataset_path": cfg.dataset_path,
        "streaming": cfg.streaming,
        "d_in": trained.cfg.d_in,
        "d_sae": trained.cfg.d_sae,
        "finite": bool(all(p.isfinite().all() for p in trained.parameters())),
    }
    return out


def _offline_error() -> dict:
    from utils.loading import load_model, load_sae, load_texts
    from utils.presets import get_preset

    preset = get_preset("gpt2-small")
    found = {}
    for what, load in [
        ("sae", lambda: load_sae(preset)),
        ("model", lambda: load_model(preset)),
        ("texts", lambda: load_texts(preset, n=2)),
    ]:
        try:
            load()
            found[what] = {"type": None, "message": "loaded", "chained": False}
        except Exception as error:
            found[what] = {
                "type": type(error).__name__,
                "message": str(error),
                "chained": error.__cause__ is not None,
            }
    return found


if __name__ == "__main__":
    workers = {"plumbing": _plumbing, "offline-error": _offline_error}
    if len(sys.argv) != 2 or sys.argv[1] not in workers:
        raise SystemExit(f"usage: python {Path(__file__).name} {'|'.join(workers)}")
    print(RESULT_PREFIX + json.dumps(workers[sys.argv[1]]()))
