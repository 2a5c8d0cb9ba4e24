"""utils/circuits/loading.py on the gpt2-small preset: Dunefsky et al.'s transcoders downloaded
from the Hub and converted, the preset's circuit sizes at a scale, and the errors when the Hub
cannot be reached.

The gpt2-small path runs offline against the stand-in Hub (tests/standin_hub.py) in a subprocess,
because huggingface_hub reads ``HF_HOME`` at import. Running this file as a script is the
subprocess's side: ``python tests/test_circuits_hub.py standin|offline-empty`` prints one JSON
line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from standin_hub import (  # noqa: E402
    TRANSCODER_FILE,
    TRANSCODER_LAYERS,
    TRANSCODER_REPO,
    authors_cfg,
    run_worker_script,
    save_authors_checkpoint,
    session_standin_hub,
    standin_env,
)

RESULT_PREFIX = "TRANSCODER-RESULT "
STANDIN_SCALE = "0.0002"  # the stand-in notebooks' scale (tests/test_gpt2_standin_notebooks.py)


# The subprocess's side ---------------------------------------------------------------------------


def _standin() -> dict:
    import time

    import torch

    from utils.circuits.loading import load_transcoders, model_kwargs_for, read_checkpoint
    from utils.loading import load_model
    from utils.presets import choose_preset

    preset = choose_preset(verbose=False)
    start = time.perf_counter()
    transcoders = load_transcoders(preset)
    seconds = time.perf_counter() - start
    layer = min(transcoders)
    transcoder = transcoders[layer]
    meta = transcoder.cfg.metadata
    model = load_model(preset, "cpu", **model_kwargs_for(transcoders))
    tokens = model.to_tokens("The capital of France is Paris, and the capital of Italy is Rome")
    from huggingface_hub import hf_hub_download

    raw = read_checkpoint(hf_hub_download(TRANSCODER_REPO, TRANSCODER_FILE.format(layer=layer)))
    state = raw["state_dict"]
    with torch.no_grad():
        _, clean = model.run_with_cache(tokens)
        x = clean[meta.hook_name][0]
        expected = by_hand(state, x)
        converted = transcoder(x)
        _, spliced = model.run_with_cache_with_saes(tokens, saes=[transcoder])
        added = (
            spliced[f"blocks.{layer}.hook_resid_post"] - spliced[f"blocks.{layer}.hook_resid_mid"]
        )
        acts = transcoder.encode(x)
    return {
        "layers": sorted(transcoders),
        "preset_layers": list(preset.circuits.layers),
        "seconds": seconds,
        "shapes": {k: [t.cfg.d_in, t.cfg.d_sae, t.cfg.d_out] for k, t in transcoders.items()},
        "hooks": [meta.hook_name, meta.hook_name_out],
        "model_kwargs": meta.model_from_pretrained_kwargs,
        "source": meta.source,
        "forward_vs_hand": (converted.double() - expected).abs().max().item(),
        "spliced_vs_hand": (added[0].double() - expected).abs().max().item(),
        "output_scale": expected.abs().max().item(),
        "l0": (acts[1:] > 0).sum(-1).float().mean().item(),
    }


def _offline_empty() -> dict:
    from utils.circuits.loading import load_transcoders
    from utils.loading import HubUnavailableError
    from utils.presets import get_preset

    try:
        load_transcoders(get_preset("gpt2-small"), layers=[3])
    except HubUnavailableError as error:
        return {"error": type(error).__name__, "message": str(error)}
    return {"error": None}


def run_worker(mode: str, env: dict[str, str], timeout: float = 300) -> dict:
    """Run this file as a script in ``env``; return the JSON it printed after RESULT_PREFIX."""
    return run_worker_script(__file__, mode, env, RESULT_PREFIX, timeout)[0]


# The tests (pytest's side) -----------------------------------------------------------------------

import pytest  # noqa: E402
import torch  # noqa: E402
from circuit_loading_helpers import by_hand, random_state, saved_transcoder, tiny_with  # noqa: E402

from utils.circuits.loading import DUNEFSKY_MODEL_KWARGS, load_transcoders  # noqa: E402
from utils.circuits.loading import TRANSCODER_FILE as LOADER_FILE  # noqa: E402
from utils.presets import (  # noqa: E402
    TINY_ASSETS,
    CircuitSizes,
    get_preset,
    scale_circuits,
    scale_preset,
)


def test_a_hub_layer_gpt2_does_not_have_is_refused_before_any_download():
    with pytest.raises(ValueError, match=r"layer\(s\) \[12\] in pchlenski/gpt2-transcoders"):
        load_transcoders(get_preset("gpt2-small"), layers=[12])


def test_the_loader_and_the_stand_in_use_the_same_real_file_name():
    # each written from the authors' get_name(): "final_sparse_autoencoder_" + model + hook + d_sae
    assert LOADER_FILE == TRANSCODER_FILE
    assert TRANSCODER_FILE.format(layer=8) == (
        "final_sparse_autoencoder_gpt2-small_blocks.8.ln2.hook_normalized_24576.pt"
    )
    assert get_preset("gpt2-small").circuits.transcoder_repo == TRANSCODER_REPO
    assert DUNEFSKY_MODEL_KWARGS == {"center_writing_weights": True}


def test_the_stand_in_has_every_transcoder_a_scaled_run_loads():
    scaled = scale_preset(get_preset("gpt2-small"), float(STANDIN_SCALE)).circuits
    assert set(scaled.layers) <= set(TRANSCODER_LAYERS)
    assert set(scaled.graph_layers) <= set(scaled.layers)


def test_scale_circuits_by_hand():
    gpt2 = get_preset("gpt2-small").circuits
    half = scale_circuits(gpt2, 0.5)  # 4 * 0.5 = 2 graph layers, 7 * 0.5 = 3.5 prompts
    assert half.graph_layers == half.layers == (10, 11)  # the last ones; layer 0 is left out
    assert half.faithfulness_prompts == 4
    assert half.diagnosed_prompts == 1  # 2 * 0.5
    assert scale_circuits(gpt2, 0.0002).diagnosed_prompts == 1  # the floor
    assert scale_circuits(gpt2, 0.0002).faithfulness_prompts == 3  # the floor
    assert half.graph_positions == 2
    assert half.ablated_per_prompt == 5  # 10 * 0.5
    assert scale_circuits(gpt2, 0.0002).ablated_per_prompt == 3  # the floor
    assert scale_circuits(gpt2, 0.75).texts == 24  # 32 * 0.75
    assert half.texts == 16  # 32 * 0.5, and the floor
    assert scale_circuits(gpt2, 0.0002).texts == 16  # the floor
    # gpt2-small's demonstration layer (0) is not loaded at this scale: the first kept one is
    assert half.demo_layer == 10
    assert half.demo_tokens == 32_768  # 65,536 * 0.5
    assert scale_circuits(gpt2, 0.0002).demo_tokens == 4096  # the floor
    tiny = scale_circuits(get_preset("tiny").circuits, 0.0002)
    assert tiny.layers == tiny.graph_layers == (0, 1)  # at least 2 layers: a path between them
    assert tiny.faithfulness_prompts == 3
    assert tiny.demo_layer == 0  # tiny's demonstration layer is kept, so it stays
    assert scale_circuits(gpt2, 1) is gpt2
    one_layer = scale_circuits(CircuitSizes(graph_layers=(5,), layers=(5,)), 0.1)
    assert one_layer.graph_layers == (5,)


def test_tutorial_5_scores_on_texts_tutorials_1_and_3_sample():
    # the presets' comments say so: full-size runs read the first of the texts tutorials 1 and 3
    # sample (load_texts takes the first n): all of them on tiny, 32 of them on gpt2-small (CPU)
    tiny, gpt2 = get_preset("tiny"), get_preset("gpt2-small")
    assert tiny.circuits.texts == tiny.sample_texts
    assert gpt2.circuits.texts == 32 < gpt2.sample_texts


def test_tinys_loss_claim_is_the_target_and_holds_for_the_shipped_transcoders():
    # tutorial 5 asserts (assert_quality) that the transcoders recover at least min_recovered of
    # the zero-ablation loss; on tiny that is issue 32's target, below what the card measured
    card = json.loads((TINY_ASSETS / "card.json").read_text())["transcoders"]["losses"]
    by_hand = (card["zero_ablated"] - card["replaced"]) / (card["zero_ablated"] - card["clean"])
    assert by_hand == pytest.approx(card["recovered"], abs=1e-12)
    claim = get_preset("tiny").circuits.min_recovered
    assert 0.94 <= claim <= card["recovered"]
    # gpt2-small's floor is lower (not measured on real weights) but still a claim to fail
    assert 0.5 < get_preset("gpt2-small").circuits.min_recovered < claim


def test_every_preset_names_one_transcoder_source_and_graph_layers_it_replaces():
    for name in ("tiny", "gpt2-small"):
        circuits = get_preset(name).circuits
        assert (circuits.transcoder_path is None) != (circuits.transcoder_repo is None)
        assert set(circuits.graph_layers) <= set(circuits.layers)


def test_the_hub_path_downloads_each_layer_asked_for_and_converts_it(tmp_path, monkeypatch):
    """In this process, with huggingface_hub's download replaced by a recorder that hands back
    small authors' files: the repository and file name of each layer asked for, in layer order,
    each converted (its own weights, its source recorded); a layer GPT-2 small lacks is refused
    before any download."""
    import huggingface_hub

    states = {layer: random_state(seed=layer) for layer in (2, 7)}
    files = {}
    for layer, state in states.items():
        files[LOADER_FILE.format(layer=layer)] = tmp_path / f"layer{layer}.pt"
        save_authors_checkpoint(
            files[LOADER_FILE.format(layer=layer)], state, **authors_cfg(layer, 6, 20)
        )
    calls = []

    def download(repo_id, filename, *args, **kwargs):
        calls.append((repo_id, filename, args, kwargs))
        return str(files[filename])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    loaded = load_transcoders(get_preset("gpt2-small"), layers=[7, 2])
    assert list(loaded) == [2, 7]
    assert [(c[0], c[1]) for c in calls] == [
        ("pchlenski/gpt2-transcoders", LOADER_FILE.format(layer=7)),
        ("pchlenski/gpt2-transcoders", LOADER_FILE.format(layer=2)),
    ]
    assert all(c[2] == () and c[3] == {} for c in calls)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(3))
    for layer, state in states.items():
        with torch.no_grad():
            assert (loaded[layer](x).double() - by_hand(state, x)).abs().max() < 1e-5
        meta = loaded[layer].cfg.metadata
        assert meta.source == f"pchlenski/gpt2-transcoders/{LOADER_FILE.format(layer=layer)}"
        assert meta.hook_name == f"blocks.{layer}.ln2.hook_normalized"
    calls.clear()
    with pytest.raises(ValueError, match=r"layer\(s\) \[12\] in pchlenski/gpt2-transcoders"):
        load_transcoders(get_preset("gpt2-small"), layers=[2, 12])
    assert calls == []
    with pytest.raises(ValueError, match=r"it has layers \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11\]"):
        load_transcoders(get_preset("gpt2-small"), layers=[])


def test_the_device_asked_for_reaches_both_loaders(tmp_path, monkeypatch):
    """A CPU-only machine cannot tell "cpu" from no device by the result, so the loaders' calls
    are recorded: SAELens' load_from_disk (a local folder) and the Hub checkpoint's converter."""
    import huggingface_hub
    from sae_lens import SAE

    import utils.circuits.loading as loading

    seen = []
    load_from_disk = SAE.load_from_disk

    def recording_load(path, device=None, **kwargs):
        seen.append(("folder", device))
        return load_from_disk(path, device="cpu", **kwargs)

    convert = loading.transcoder_from_dunefsky

    def recording_convert(*args, device=None, **kwargs):
        seen.append(("hub", device))
        return convert(*args, device="cpu", **kwargs)

    monkeypatch.setattr(SAE, "load_from_disk", staticmethod(recording_load))
    monkeypatch.setattr(loading, "transcoder_from_dunefsky", recording_convert)
    saved_transcoder(tmp_path / "layer_1", 1)
    checkpoint = tmp_path / "hub.pt"
    save_authors_checkpoint(checkpoint, random_state(seed=1), **authors_cfg(4, 6, 20))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: str(checkpoint))
    load_transcoders(tiny_with(tmp_path), layers=[1], device="cpu")
    load_transcoders(get_preset("gpt2-small"), layers=[4], device="cpu")
    assert seen == [("folder", "cpu"), ("hub", "cpu")]


def test_a_hub_failure_names_the_layer_and_file_and_other_errors_pass(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from utils.loading import HubUnavailableError

    def offline(repo_id, filename, *args, **kwargs):
        raise LocalEntryNotFoundError("not in the cache")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(HubUnavailableError) as caught:
        load_transcoders(get_preset("gpt2-small"), layers=[5])
    assert f"layer-5 transcoder pchlenski/gpt2-transcoders/{LOADER_FILE.format(layer=5)}" in str(
        caught.value
    )
    assert "SAE_BOOK_PRESET=tiny" in str(caught.value)

    def broken(repo_id, filename, *args, **kwargs):
        raise KeyError("something else")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", broken)
    with pytest.raises(KeyError, match="something else"):
        load_transcoders(get_preset("gpt2-small"), layers=[5])


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> dict:
    hf_home = session_standin_hub(tmp_path_factory)
    return run_worker("standin", standin_env(hf_home, SAE_BOOK_SCALE=STANDIN_SCALE))


def test_standin_gpt2_transcoders_load_as_saelens_transcoders(standin):
    assert standin["layers"] == standin["preset_layers"] == list(TRANSCODER_LAYERS)
    assert all(shape == [768, 24576, 768] for shape in standin["shapes"].values())
    layer = TRANSCODER_LAYERS[0]
    assert standin["hooks"] == [
        f"blocks.{layer}.ln2.hook_normalized",
        f"blocks.{layer}.hook_mlp_out",
    ]
    assert standin["model_kwargs"] == {"center_writing_weights": True}
    assert standin["source"] == f"{TRANSCODER_REPO}/{TRANSCODER_FILE.format(layer=layer)}"


def test_standin_gpt2_transcoder_matches_the_authors_formula_in_the_model(standin):
    """On GPT-2's own ln2.hook_normalized, alone and spliced in by SAELens at hook_mlp_out."""
    assert standin["output_scale"] > 0.1  # the comparison is not between zeros
    assert standin["forward_vs_hand"] < 1e-4
    assert standin["spliced_vs_hand"] < 1e-4
    assert 0 < standin["l0"] < 1000  # calibrated sparse: a reader's run does not run out of memory


def test_offline_with_an_empty_cache_says_how_to_switch(tmp_path):
    env = standin_env(tmp_path / "empty_hf_home")
    result = run_worker("offline-empty", env)
    assert result["error"] == "HubUnavailableError"
    assert "layer-3 transcoder pchlenski/gpt2-transcoders/" in result["message"]
    assert "HF_HUB_OFFLINE is set" in result["message"]
    assert "SAE_BOOK_PRESET=tiny" in result["message"]


if __name__ == "__main__":
    modes = {"standin": _standin, "offline-empty": _offline_empty}
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        raise SystemExit(f"usage: python {Path(__file__).name} {'|'.join(modes)}")
    print(RESULT_PREFIX + json.dumps(modes[sys.argv[1]]()))
