"""utils/circuits/loading.py's converter of Dunefsky et al.'s transcoder checkpoints to SAELens
``Transcoder`` objects, and the model loading options the transcoders ask for.

The conversion is checked against their forward pass written out by hand
(``ReLU((x - b_dec) @ W_enc + b_enc) @ W_dec + b_dec_out``, ``circuit_loading_helpers.by_hand``),
on a case small enough to do in one's head, on random weights and spliced into the tiny model; a
checkpoint is read without running anything from it, and a malformed one is refused by name.
"""

from __future__ import annotations

import sys

import pytest
import torch
from circuit_loading_helpers import by_hand, random_state
from standin_hub import authors_cfg, save_authors_checkpoint

from utils.circuits.loading import (
    DUNEFSKY_MODEL_KWARGS,
    PickledRecord,
    TranscoderFileError,
    model_kwargs_for,
    read_checkpoint,
    transcoder_from_dunefsky,
)
from utils.presets import get_preset


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


def test_loading_options_in_another_key_order_are_the_same_options():
    first = transcoder_with_options({"center_writing_weights": True, "fold_ln": False})
    second = transcoder_with_options({"fold_ln": False, "center_writing_weights": True})
    assert model_kwargs_for({0: first, 1: second}) == {
        "center_writing_weights": True,
        "fold_ln": False,
    }
