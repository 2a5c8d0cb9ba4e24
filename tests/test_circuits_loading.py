"""utils/circuits/loading.py: the preset's transcoders as SAELens ``Transcoder`` objects.

The conversion of Dunefsky et al.'s files is checked against their forward pass written out by
hand (``ReLU((x - b_dec) @ W_enc + b_enc) @ W_dec + b_dec_out``), on a case small enough to do in
one's head and on random weights; the gpt2-small path runs offline against the stand-in Hub
(tests/standin_hub.py) in a subprocess, because huggingface_hub reads ``HF_HOME`` at import.
Running this file as a script is the subprocess's side:
``python tests/test_circuits_loading.py standin|offline-empty`` prints one JSON line.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
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


def by_hand(state: dict, x):
    """Dunefsky et al.'s transcoder forward pass, in float64, straight from their state dict."""
    s = {name: tensor.double() for name, tensor in state.items()}
    acts = ((x.double() - s["b_dec"]) @ s["W_enc"] + s["b_enc"]).clamp(min=0)
    return acts @ s["W_dec"] + s["b_dec_out"]


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

from utils.circuits.loading import (  # noqa: E402
    DUNEFSKY_MODEL_KWARGS,
    PickledRecord,
    TranscoderFileError,
    load_transcoders,
    model_kwargs_for,
    read_checkpoint,
    transcoder_from_dunefsky,
)
from utils.circuits.loading import TRANSCODER_FILE as LOADER_FILE  # noqa: E402
from utils.presets import CircuitSizes, get_preset, scale_circuits, scale_preset  # noqa: E402


def random_state(d_in: int = 6, d_sae: int = 20, seed: int = 0) -> dict:
    """A Dunefsky-format state dict whose input bias is large enough to change which latents
    fire (a converter that forgot it would fail)."""
    g = torch.Generator().manual_seed(seed)
    return {
        "W_enc": torch.randn(d_in, d_sae, generator=g),
        "b_enc": torch.randn(d_sae, generator=g),
        "W_dec": torch.randn(d_sae, d_in, generator=g),
        "b_dec": 2 * torch.randn(d_in, generator=g),
        "b_dec_out": torch.randn(d_in, generator=g),
    }


def saved_and_read(tmp_path, state: dict, layer: int = 3, **cfg_overrides):
    w_enc = state.get("W_enc")
    d_in, d_sae = tuple(w_enc.shape) if w_enc is not None and w_enc.ndim == 2 else (6, 20)
    cfg = {**authors_cfg(layer, d_in, d_sae), **cfg_overrides}
    path = tmp_path / f"layer{layer}.pt"
    save_authors_checkpoint(path, state, **cfg)
    return read_checkpoint(path)


def test_a_case_worked_by_hand(tmp_path):
    # x - b_dec = [0, 2]; pre = [0, 2, 2] + b_enc = [0, 1, 2]; ReLU the same;
    # [0, 1, 2] @ W_dec = [2, 3]; + b_dec_out = [2.5, 2.5]. Without the input bias it would be
    # [2.5, 1.5]; with b_dec as the output bias [3, 3].
    state = {
        "W_enc": torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0]]),
        "b_enc": torch.tensor([0.0, -1.0, 0.0]),
        "W_dec": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        "b_dec": torch.tensor([1.0, 0.0]),
        "b_dec_out": torch.tensor([0.5, -0.5]),
    }
    transcoder = transcoder_from_dunefsky(saved_and_read(tmp_path, state), 3)
    with torch.no_grad():
        out = transcoder(torch.tensor([[1.0, 2.0]]))
        acts = transcoder.encode(torch.tensor([[1.0, 2.0]]))
    assert out.tolist() == [[2.5, 2.5]]
    assert acts.tolist() == [[0.0, 1.0, 2.0]]


def test_forward_matches_the_authors_formula_on_random_weights(tmp_path):
    state = random_state()
    transcoder = transcoder_from_dunefsky(saved_and_read(tmp_path, state), 3)
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = transcoder(x).double()
    expected = by_hand(state, x)
    assert (out - expected).abs().max() < 1e-5
    # the input bias matters here: some latent fires differently with and without it
    plain = (x @ state["W_enc"] + state["b_enc"]) > 0
    assert (plain != ((x - state["b_dec"]) @ state["W_enc"] + state["b_enc"] > 0)).any()


def test_the_converted_transcoder_says_where_it_reads_and_writes(tmp_path):
    transcoder = transcoder_from_dunefsky(
        saved_and_read(tmp_path, random_state()), 3, source="repo/file.pt"
    )
    meta = transcoder.cfg.metadata
    assert meta.hook_name == "blocks.3.ln2.hook_normalized"
    assert meta.hook_name_out == "blocks.3.hook_mlp_out"
    assert meta.model_from_pretrained_kwargs == {"center_writing_weights": True}
    assert meta.activation_fn == "relu" and meta.source == "repo/file.pt"
    assert meta.model_name == "gpt2-small"
    assert (transcoder.cfg.d_in, transcoder.cfg.d_sae, transcoder.cfg.d_out) == (6, 20, 6)
    assert transcoder.cfg.apply_b_dec_to_input is False
    assert not transcoder.training


@pytest.mark.parametrize("name", ["W_enc", "b_enc", "W_dec", "b_dec", "b_dec_out"])
def test_a_missing_tensor_is_named(tmp_path, name):
    state = random_state()
    del state[name]
    checkpoint = saved_and_read(tmp_path, state)
    with pytest.raises(TranscoderFileError, match=rf"lacks the tensor\(s\) \['{name}'\]"):
        transcoder_from_dunefsky(checkpoint, 3, source="some/file.pt")


@pytest.mark.parametrize(
    ("name", "shape", "expected"),
    [
        ("b_enc", (21,), r"\(20,\)"),
        ("W_dec", (20, 7), r"\(20, 6\)"),
        ("W_dec", (6, 20), r"\(20, 6\)"),  # transposed
        ("b_dec", (7,), r"\(6,\)"),
        ("b_dec_out", (6, 1), r"\(6,\)"),
    ],
)
def test_a_misshaped_tensor_is_named_with_the_shape_expected(tmp_path, name, shape, expected):
    state = random_state()
    state[name] = torch.zeros(shape)
    checkpoint = saved_and_read(tmp_path, state)
    with pytest.raises(TranscoderFileError, match=rf"some/file.pt: {name} has shape .*{expected}"):
        transcoder_from_dunefsky(checkpoint, 3, source="some/file.pt")


def test_a_one_dimensional_encoder_is_refused(tmp_path):
    state = random_state()
    state["W_enc"] = torch.zeros(6)
    checkpoint = saved_and_read(tmp_path, state)
    with pytest.raises(TranscoderFileError, match=r"W_enc must be \[d_in, d_sae\]"):
        transcoder_from_dunefsky(checkpoint, 3)


def test_a_file_for_another_layer_is_refused(tmp_path):
    checkpoint = saved_and_read(tmp_path, random_state(), layer=4)
    with pytest.raises(TranscoderFileError, match="not the layer-3 MLP transcoder.*hook_point"):
        transcoder_from_dunefsky(checkpoint, 3)


def test_a_cfg_that_disagrees_with_the_tensors_is_refused(tmp_path):
    checkpoint = saved_and_read(tmp_path, random_state(), d_sae=24)
    with pytest.raises(
        TranscoderFileError, match="cfg says d_sae=24 but its tensors give d_sae=20"
    ):
        transcoder_from_dunefsky(checkpoint, 3)


def test_each_hook_field_of_the_cfg_is_checked_on_its_own(tmp_path):
    """A cfg whose input hook, or whose output hook alone, names another layer is refused by
    that field; a plain dict cfg is read like the authors' config object."""
    for field_name, hook in (
        ("hook_point", "blocks.4.ln2.hook_normalized"),
        ("out_hook_point", "blocks.4.hook_mlp_out"),
    ):
        (tmp_path / field_name).mkdir()
        checkpoint = saved_and_read(tmp_path / field_name, random_state(), **{field_name: hook})
        with pytest.raises(TranscoderFileError, match=rf"its cfg has {field_name}='{hook}'"):
            transcoder_from_dunefsky(checkpoint, 3)
        as_dict = {"cfg": {field_name: hook}, "state_dict": random_state()}
        with pytest.raises(TranscoderFileError, match=rf"its cfg has {field_name}='{hook}'"):
            transcoder_from_dunefsky(as_dict, 3)


def test_a_checkpoint_without_cfg_takes_its_sizes_from_the_tensors():
    """No cfg at all (or one without d_out): d_in and d_sae from W_enc, d_out from W_dec, here
    narrower than d_in (5 against 6) so that no size can stand in for another."""
    state = random_state()
    g = torch.Generator().manual_seed(1)
    state["W_dec"], state["b_dec_out"] = (
        torch.randn(20, 5, generator=g),
        torch.randn(5, generator=g),
    )
    flat = {
        **state,
        "W_dec": torch.zeros(20),
    }  # a decoder of the wrong rank is named, not an IndexError
    with pytest.raises(TranscoderFileError, match=r"W_dec has shape \(20,\), expected \(20, 20\)"):
        transcoder_from_dunefsky({"state_dict": flat}, 3)
    for cfg in (None, {"d_in": 6}):
        checkpoint = {"state_dict": state} if cfg is None else {"cfg": cfg, "state_dict": state}
        transcoder = transcoder_from_dunefsky(checkpoint, 3)
        assert (transcoder.cfg.d_in, transcoder.cfg.d_sae, transcoder.cfg.d_out) == (6, 20, 5)
        assert transcoder.cfg.metadata.model_name == "gpt2-small"
        x = torch.randn(4, 6, generator=g)
        with torch.no_grad():
            assert (transcoder(x).double() - by_hand(state, x)).abs().max() < 1e-5


def test_the_cfg_s_model_name_is_kept_and_a_wrong_shape_is_spelled_out(tmp_path):
    checkpoint = saved_and_read(tmp_path, random_state(), model_name="gpt2-medium")
    meta = transcoder_from_dunefsky(checkpoint, 3).cfg.metadata
    assert meta.model_name == "gpt2-medium" and meta.prepend_bos is True
    state = random_state()
    state["W_dec"] = torch.zeros(20, 7)
    with pytest.raises(TranscoderFileError, match=r"expected \(20, 6\) \(d_sae=20 x d_out=6\)"):
        transcoder_from_dunefsky({"cfg": {"d_out": 6}, "state_dict": state}, 3)


def test_a_pickled_object_s_slots_and_dict_both_become_attributes(tmp_path):
    """pickle hands __setstate__ a (dict, slots) pair for a class with __slots__, a plain dict
    otherwise (two fields here, so a dict is not mistaken for the pair)."""
    import types

    module = types.ModuleType("slotted_records")
    sys.modules["slotted_records"] = module
    try:
        exec(
            "class Slotted:\n    __slots__ = ('a', '__dict__')\nclass Plain:\n    pass\n",
            module.__dict__,
        )
        slotted, plain = module.Slotted(), module.Plain()
        slotted.a, slotted.b = 1, 2
        plain.x, plain.y = 3, 4
        torch.save({"s": slotted, "p": plain}, tmp_path / "records.pt")
    finally:
        del sys.modules["slotted_records"]
    loaded = read_checkpoint(tmp_path / "records.pt")
    assert vars(loaded["s"]) == {"a": 1, "b": 2} and type(loaded["s"]).__name__ == "Slotted"
    assert vars(loaded["p"]) == {"x": 3, "y": 4}


def test_something_else_than_a_checkpoint_is_refused():
    """The error names the source (or 'the transcoder checkpoint' without one) and what it
    found: a dict's keys, or the type of anything else."""
    with pytest.raises(TranscoderFileError, match="expected a dict with 'cfg' and 'state_dict'"):
        transcoder_from_dunefsky({"W_enc": torch.zeros(2, 2)}, 3, source="x.pt")
    with pytest.raises(TranscoderFileError, match=r"^x\.pt is not .*found \['W_enc', 'cfg'\]$"):
        transcoder_from_dunefsky({"W_enc": torch.zeros(2, 2), "cfg": {}}, 3, source="x.pt")
    with pytest.raises(
        TranscoderFileError, match=r"^the transcoder checkpoint is not .*found list$"
    ):
        transcoder_from_dunefsky([torch.zeros(2, 2)], 3)


class SideEffect:
    """Unpickling one of these would call :func:`record_call` (a pickle's usual way to run code)."""

    calls: list = []

    def __reduce__(self):
        return (record_call, ("ran",))


def record_call(value):
    SideEffect.calls.append(value)
    return value


def test_reading_a_checkpoint_runs_nothing_from_it(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"cfg": SideEffect(), "state_dict": {}}, str(path))
    loaded = read_checkpoint(path)
    assert SideEffect.calls == []
    assert isinstance(loaded["cfg"], PickledRecord)
    assert loaded["cfg"].pickled_args == ("ran",)


def test_the_authors_config_is_read_as_a_record_with_its_fields(tmp_path):
    checkpoint = saved_and_read(tmp_path, random_state())
    cfg = checkpoint["cfg"]
    assert type(cfg).__name__ == "LanguageModelSAERunnerConfig"
    assert isinstance(cfg, PickledRecord)
    assert cfg.hook_point == "blocks.3.ln2.hook_normalized" and cfg.is_transcoder is True
    assert cfg.device == torch.device("cuda") and cfg.dtype is torch.float32
    assert "sae_training" not in sys.modules  # nothing was imported under the authors' names


def test_it_reads_ln2_normalized_and_writes_mlp_out_in_a_real_model(tmp_path):
    """Spliced into the tiny model by SAELens, the converted transcoder's output replaces
    ``hook_mlp_out`` with the authors' formula applied to the clean ``ln2.hook_normalized``."""
    from utils.loading import load_model

    model = load_model(get_preset("tiny"))
    state = random_state(d_in=model.cfg.d_model, d_sae=64, seed=2)
    state["W_dec"] /= 10
    transcoder = transcoder_from_dunefsky(saved_and_read(tmp_path, state, layer=1), 1)
    tokens = model.to_tokens("Return a new list containing the items of the iterable")
    with torch.no_grad():
        _, clean = model.run_with_cache(tokens)
        _, spliced = model.run_with_cache_with_saes(tokens, saes=[transcoder])
    expected = by_hand(state, clean["blocks.1.ln2.hook_normalized"][0])
    added = spliced["blocks.1.hook_resid_post"] - spliced["blocks.1.hook_resid_mid"]
    assert (added[0].double() - expected).abs().max() < 1e-4
    # hook_normalized is not the MLP's input (mlp.hook_in) in this unprocessed model: LayerNorm's
    # weight and bias come between them, so a transcoder reading the MLP's input would differ
    assert (by_hand(state, clean["blocks.1.mlp.hook_in"][0]) - expected).abs().max() > 1e-2


def test_the_loading_options_rest_on_what_weight_processing_does_to_the_two_hooks():
    """Why the converted transcoders ask for center_writing_weights only: on the tiny model
    (trained LayerNorm weights, so folding them changes the weights), ln2.hook_normalized is the
    same with and without processing, and hook_mlp_out loses only its mean over d_model."""
    from utils.loading import load_model

    tiny = get_preset("tiny")
    raw = load_model(tiny)
    assert not torch.allclose(raw.blocks[0].ln2.w, torch.ones_like(raw.blocks[0].ln2.w))
    tokens = raw.to_tokens("Return a new list containing the items of the iterable")
    with torch.no_grad():
        _, plain = raw.run_with_cache(tokens)
        for options in (
            {"center_writing_weights": True},
            {"fold_ln": True, **DUNEFSKY_MODEL_KWARGS},
        ):
            _, done = load_model(tiny, **options).run_with_cache(tokens)
            for layer in (0, 1):
                x = f"blocks.{layer}.ln2.hook_normalized"
                assert torch.allclose(done[x], plain[x], atol=1e-4), (options, x)
                y, y_raw = (
                    done[f"blocks.{layer}.hook_mlp_out"],
                    plain[f"blocks.{layer}.hook_mlp_out"],
                )
                assert y.mean(-1).abs().max() < 1e-5
                assert torch.allclose(y, y_raw - y_raw.mean(-1, keepdim=True), atol=1e-4)


def transcoder_with_options(options):
    from sae_lens.saes.transcoder import Transcoder, TranscoderConfig

    cfg = TranscoderConfig(d_in=4, d_sae=8, d_out=4, apply_b_dec_to_input=False)
    if options is not None:
        cfg.metadata.model_from_pretrained_kwargs = options
    return Transcoder(cfg)


def test_model_kwargs_for_one_set_of_transcoders():
    same = {0: transcoder_with_options({"center_writing_weights": True})}
    same[1] = transcoder_with_options({"center_writing_weights": True})
    assert model_kwargs_for(same) == {"center_writing_weights": True}
    assert model_kwargs_for({0: transcoder_with_options(None)}) == {}
    assert model_kwargs_for({}) == {}
    mixed = {0: transcoder_with_options(None), 3: transcoder_with_options({"fold_ln": True})}
    with pytest.raises(ValueError, match="different model loading options"):
        model_kwargs_for(mixed)


# The tiny preset: SAELens folders -----------------------------------------------------------------


def saved_transcoder(
    folder: Path, layer: int, d_in: int = 8, d_sae: int = 16, k: int | None = None
):
    """A random SAELens Transcoder for ``layer`` saved with ``save_model`` (TopK when ``k``)."""
    from sae_lens.saes.transcoder import Transcoder, TranscoderConfig

    cfg = TranscoderConfig(d_in=d_in, d_sae=d_sae, d_out=d_in, apply_b_dec_to_input=False)
    cfg.metadata.hook_name = f"blocks.{layer}.ln2.hook_normalized"
    cfg.metadata.hook_name_out = f"blocks.{layer}.hook_mlp_out"
    if k is not None:
        cfg.metadata.activation_fn = "topk"
        cfg.metadata.activation_fn_kwargs = {"k": k}
    torch.manual_seed(layer)
    transcoder = Transcoder(cfg)
    with torch.no_grad():
        transcoder.b_enc.normal_()
        transcoder.b_dec.normal_()
    transcoder.save_model(str(folder))
    return transcoder


def tiny_with(folder: Path):
    tiny = get_preset("tiny")
    return replace(tiny, circuits=replace(tiny.circuits, transcoder_path=folder))


def test_tiny_loads_every_layer_from_its_saelens_folders(tmp_path):
    relu = saved_transcoder(tmp_path / "b_layer_zero", 0)  # folder names do not matter
    saved_transcoder(tmp_path / "a_layer_one", 1, k=3)
    (tmp_path / "notes").mkdir()  # a folder without cfg.json is not a transcoder
    loaded = load_transcoders(tiny_with(tmp_path))
    assert list(loaded) == [0, 1]
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(loaded[0](x), relu(x))
        assert ((loaded[0].encode(x) > 0).sum(-1) > 3).any()  # ReLU: not capped at k
        assert ((loaded[1].encode(x) != 0).sum(-1) == 3).all()  # TopK restored from metadata
    assert not loaded[1].training


def test_tiny_loads_only_the_layers_asked_for(tmp_path):
    for layer in (0, 1):
        saved_transcoder(tmp_path / f"layer_{layer}", layer)
    assert list(load_transcoders(tiny_with(tmp_path), layers=[1])) == [1]
    with pytest.raises(ValueError, match=r"layer\(s\) \[5\].*it has layers \[0, 1\]"):
        load_transcoders(tiny_with(tmp_path), layers=[5])


def test_tiny_refuses_a_plain_sae_and_two_folders_for_one_layer(tmp_path):
    from sae_lens import StandardSAE, StandardSAEConfig

    sae = StandardSAE(StandardSAEConfig(d_in=8, d_sae=16))
    sae.cfg.metadata.hook_name = "blocks.0.hook_resid_pre"
    sae.save_model(str(tmp_path / "sae"))
    with pytest.raises(TranscoderFileError, match="StandardSAE, not a Transcoder"):
        load_transcoders(tiny_with(tmp_path), layers=[0])
    other = tmp_path.parent / (tmp_path.name + "_twice")
    saved_transcoder(other / "one", 0)
    saved_transcoder(other / "two", 0)
    with pytest.raises(TranscoderFileError, match="are both layer 0"):
        load_transcoders(tiny_with(other), layers=[0])


def test_a_missing_transcoder_folder_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m utils.tiny.build"):
        load_transcoders(tiny_with(tmp_path / "absent"))


def test_the_shipped_tiny_transcoders_load():
    folder = get_preset("tiny").circuits.transcoder_path
    if not folder.is_dir():
        pytest.skip(f"{folder} is not built yet (python -m utils.tiny.build)")
    loaded = load_transcoders(get_preset("tiny"))
    assert list(loaded) == list(get_preset("tiny").circuits.layers)
    for layer, transcoder in loaded.items():
        assert transcoder.cfg.metadata.hook_name == f"blocks.{layer}.ln2.hook_normalized"


def test_a_folder_that_names_its_layer_only_by_its_input_hook_loads(tmp_path):
    """hook_name_out missing: the layer comes from hook_name; a folder naming neither (or a hook
    that is not blocks.L....) is refused by name."""
    saved_transcoder(tmp_path / "one", 1)
    cfg_path = tmp_path / "one" / "cfg.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["metadata"]["hook_name_out"]
    cfg_path.write_text(json.dumps(cfg))
    assert list(load_transcoders(tiny_with(tmp_path), layers=[1])) == [1]
    for metadata in ({"hook_name": "hook_embed"}, None):
        other = (
            tmp_path.parent / f"{tmp_path.name}_{'no_metadata' if metadata is None else 'embed'}"
        )
        saved_transcoder(other / "x", 0)
        cfg = json.loads((other / "x" / "cfg.json").read_text())
        if metadata is None:
            del cfg["metadata"]
        else:
            cfg["metadata"] = metadata
        (other / "x" / "cfg.json").write_text(json.dumps(cfg))
        with pytest.raises(TranscoderFileError, match=r"names no layer.*blocks\.L"):
            load_transcoders(tiny_with(other), layers=[0])


def test_a_transcoder_s_layer_is_the_mlp_it_writes_to(tmp_path):
    """hook_name_out decides the layer when the input hook names another block (a transcoder
    reading block 0's residual stream to stand in for block 1's MLP is layer 1)."""
    saved_transcoder(tmp_path / "zero", 0)
    saved_transcoder(tmp_path / "one", 1)
    cfg_path = tmp_path / "one" / "cfg.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["metadata"]["hook_name"] = "blocks.0.hook_resid_post"
    cfg_path.write_text(json.dumps(cfg))
    assert list(load_transcoders(tiny_with(tmp_path))) == [0, 1]


def test_without_layers_the_preset_s_layers_are_loaded(tmp_path):
    for layer in (0, 1):
        saved_transcoder(tmp_path / f"layer_{layer}", layer)
    tiny = tiny_with(tmp_path)
    only_one = replace(tiny, circuits=replace(tiny.circuits, layers=(1,)))
    assert list(load_transcoders(only_one)) == [1]
    with pytest.raises(ValueError, match=rf"layer\(s\) \[5\] in {re.escape(str(tmp_path))}"):
        load_transcoders(tiny, layers=[5])
    with pytest.raises(ValueError, match=r"the preset 'tiny' names no transcoders"):
        load_transcoders(replace(tiny, circuits=None))


def test_loading_options_in_another_key_order_are_the_same_options():
    first = transcoder_with_options({"center_writing_weights": True, "fold_ln": False})
    second = transcoder_with_options({"fold_ln": False, "center_writing_weights": True})
    assert model_kwargs_for({0: first, 1: second}) == {
        "center_writing_weights": True,
        "fold_ln": False,
    }


# The gpt2-small preset -------------------------------------------------------------------------------


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
    quarter = scale_circuits(gpt2, 0.25)  # 12 * 0.25 = 3 graph layers, 30 * 0.25 = 7.5 prompts
    assert quarter.graph_layers == quarter.layers == (9, 10, 11)
    assert quarter.faithfulness_prompts == 8
    assert quarter.diagnosed_prompts == 8  # 30 * 0.25 = 7.5
    assert scale_circuits(gpt2, 0.0002).diagnosed_prompts == 1  # the floor
    assert quarter.graph_positions == 4
    assert quarter.ablated_per_prompt == 3  # 10 * 0.25 = 2.5 rounds to 2, below the floor of 3
    assert quarter.texts == 128  # 512 * 0.25
    assert scale_circuits(gpt2, 0.0002).texts == 16  # the floor
    # gpt2-small's demonstration layer (0) is not loaded at this scale: the first kept one is
    assert quarter.demo_layer == 9
    assert quarter.demo_tokens == 51_200  # 204,800 * 0.25
    assert scale_circuits(gpt2, 0.0002).demo_tokens == 4096  # the floor
    tiny = scale_circuits(get_preset("tiny").circuits, 0.0002)
    assert tiny.layers == tiny.graph_layers == (0, 1)  # at least 2 layers: a path between them
    assert tiny.faithfulness_prompts == 3
    assert tiny.demo_layer == 0  # tiny's demonstration layer is kept, so it stays
    assert scale_circuits(gpt2, 1) is gpt2
    one_layer = scale_circuits(CircuitSizes(graph_layers=(5,), layers=(5,)), 0.1)
    assert one_layer.graph_layers == (5,)


def test_tutorial_5_scores_on_as_many_texts_as_the_preset_samples():
    # the presets' comments say so: full-size runs read the same texts as tutorials 1 and 3
    for name in ("tiny", "gpt2-small"):
        preset = get_preset(name)
        assert preset.circuits.texts == preset.sample_texts


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
