"""utils/circuits/loading.py on the tiny preset: its transcoders are SAELens folders, one per
layer, found by what their cfg.json says (folder names do not matter), TopK restored from the
metadata; a folder that is not a transcoder, two folders for one layer or none at all are refused
by name. The converter of Dunefsky et al.'s checkpoints is tested in test_circuits_checkpoints.py,
the gpt2-small preset's Hub path in test_circuits_hub.py."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
import torch
from circuit_loading_helpers import saved_transcoder, tiny_with

from utils.circuits.loading import TranscoderFileError, load_transcoders
from utils.presets import get_preset


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
