"""Unit tests for utils.features.checks (the hook an SAE reads, argument checks) on a random
model (d_model 48) and random SAEs (d_sae 200), and for the checks encode_prompt runs first."""

from __future__ import annotations

import pytest
import torch
from feature_helpers import CharModel
from random_models import D_MODEL, HOOK, build_sae

from utils import features as F


def test_sae_hook_name_reads_metadata():
    assert F.sae_hook_name(build_sae(hook="blocks.0.hook_resid_pre")) == "blocks.0.hook_resid_pre"


def test_sae_hook_name_missing_raises():
    sae = build_sae()
    sae.cfg.metadata.hook_name = None
    with pytest.raises(ValueError, match="names no hook"):
        F.sae_hook_name(sae)


def test_unknown_hook_raises_with_close_matches(model):
    with pytest.raises(KeyError, match=r"blocks\.1\.hook_resid_pre"):
        F.check_hook_name(model, "blocks.1.hook_resid_pree")
    with pytest.raises(KeyError, match=r"0\.\.1"):
        F.check_hook_name(model, "blocks.7.hook_resid_pre")


def test_feature_index_range():
    assert F.check_feature_index(199, 200) == 199
    assert F.check_feature_index(torch.tensor(3), 200) == 3
    with pytest.raises(IndexError, match=r"d_sae=200.*0\.\.199"):
        F.check_feature_index(200, 200)
    with pytest.raises(IndexError):
        F.check_feature_index(-1, 200)
    with pytest.raises(TypeError):
        F.check_feature_index(1.5, 200)


def test_empty_prompt_raises(model, sae):
    with pytest.raises(ValueError, match="empty"):
        F.encode_prompt(model, sae, "   ")


def test_sae_on_a_hook_the_model_lacks(model):
    with pytest.raises(KeyError, match="no hook"):
        F.encode_prompt(model, build_sae(hook="blocks.5.hook_resid_pre"), "hello")


def test_sae_with_wrong_width(model):
    with pytest.raises(ValueError, match="d_in"):
        F.encode_prompt(model, build_sae(d_in=D_MODEL + 1), "hello")


def test_check_prompt_names_what_it_got():
    assert F.check_prompt("hi") == "hi"
    with pytest.raises(TypeError, match="prompt must be a string, got int"):
        F.check_prompt(5)


def test_sae_prepend_bos_reads_metadata():
    sae = build_sae()
    for value, expected in [(False, False), (True, True), (None, True), (0, False)]:
        sae.cfg.metadata.prepend_bos = value
        assert F.sae_prepend_bos(sae) is expected, value


def test_input_checks_say_what_was_wrong(model):
    with pytest.raises(ValueError, match=r"one integer, got a tensor of shape \(2,\)"):
        F.check_feature_index(torch.tensor([1, 2]), 200)
    with pytest.raises(TypeError, match="integer index, got True"):
        F.check_feature_index(True, 200)
    with pytest.raises(TypeError, match="integer index, got 1.5"):
        F.check_feature_index(1.5, 200)
    assert F.check_feature_index(2.0, 200) == 2 and F.check_feature_index(0, 1) == 0
    with pytest.raises(IndexError, match=r"Feature -1 is out of range.*d_sae=3.*0\.\.2"):
        F.check_feature_index(-1, 3)
    with pytest.raises(ValueError, match=r"x has shape \(\), but its last dimension must be w = 4"):
        F.checks._check_last_dim(torch.tensor(1.0), 4, "w", "x")
    with pytest.raises(
        ValueError, match=r"x has shape \(2, 3\), but its last dimension must be w = 4"
    ):
        F.checks._check_last_dim(torch.zeros(2, 3), 4, "w", "x")
    for shape in [(4,), (2, 4), (2, 3, 4)]:  # the right width passes, whatever comes before it
        F.checks._check_last_dim(torch.zeros(shape), 4, "w", "x")
    assert F.check_hook_name(model, HOOK) is None
    with pytest.raises(KeyError) as nothing_close:
        F.check_hook_name(model, "zzz")
    message = str(nothing_close.value)
    assert "no hook 'zzz'. Hook names look like" in message and "Close matches" not in message
    assert "layer in 0..1" in message and "list(model.hook_dict)" in message
    with pytest.raises(KeyError, match=r"Close matches: blocks\.1\.hook_resid_pre[,.]"):
        F.check_hook_name(model, "blocks.1.hook_resid_pree")


def test_sae_metadata_without_the_fields():
    """An SAE object whose metadata lacks the fields: no hook is an error that says so, no
    prepend_bos means True (SAELens' default)."""
    from types import SimpleNamespace

    bare = SimpleNamespace(cfg=SimpleNamespace(metadata=SimpleNamespace()))
    with pytest.raises(ValueError, match="names no hook"):
        F.sae_hook_name(bare)
    assert F.sae_prepend_bos(bare) is True
    empty = SimpleNamespace(cfg=SimpleNamespace(metadata=SimpleNamespace(hook_name="")))
    with pytest.raises(ValueError, match=r"sae\.cfg\.metadata\.hook_name is empty"):
        F.sae_hook_name(empty)


def test_check_hook_name_lists_up_to_five_close_matches():
    m = CharModel()
    m.cfg.n_layers = 2
    m.hook_dict = dict.fromkeys(f"hook_{i}" for i in range(1, 8))  # 7 names, each as close
    with pytest.raises(KeyError) as seven:
        F.check_hook_name(m, "hook_")
    listed = str(seven.value).split("Close matches: ")[1].split(".")[0].split(", ")
    assert len(listed) == 5 and set(listed) <= set(m.hook_dict)
    # similarity 2 * 2 / 8 = 0.5 ('ab' shared): close enough (the cutoff is 0.5, inclusive)
    m.hook_dict = {"abxy": None}
    with pytest.raises(KeyError, match="Close matches: abxy."):
        F.check_hook_name(m, "abcd")
