"""The preset registry and how a preset is chosen (env var, auto, unknown names, device)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from utils import presets
from utils.presets import PRESET_ENV_VAR, PRESETS, choose_preset, get_preset, pick_device


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv(PRESET_ENV_VAR, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return monkeypatch


def test_registry_has_both_presets_with_every_field_set():
    assert set(PRESETS) == {"gpt2-small", "tiny"}
    for preset in PRESETS.values():
        assert preset.analysis_hook.startswith("blocks.") and preset.training_hook.startswith(
            "blocks."
        )
        # Exactly one SAE source: a registry entry or a local folder.
        assert (preset.sae_path is None) != (preset.sae_release is None)
        assert (preset.sae_release is None) == (preset.sae_id is None)
        assert preset.training.expansion_factor == 8


def test_gpt2_small_preset_is_the_seed_tutorials_setup():
    p = get_preset("gpt2-small")
    assert p.model_name == "gpt2-small"
    assert (p.sae_release, p.sae_id) == ("gpt2-small-res-jb", "blocks.8.hook_resid_pre")
    assert p.analysis_hook == "blocks.8.hook_resid_pre"
    assert p.training_hook == "blocks.6.hook_resid_pre"
    assert p.dataset_path == "monology/pile-uncopyrighted" and p.dataset_streaming
    assert p.training.context_size == 128
    assert p.training.training_tokens == 10_000_000
    assert not p.is_local


def test_tiny_preset_points_inside_the_repository():
    p = get_preset("tiny")
    assert p.is_local
    root = presets.TINY_ASSETS
    assert p.model_path.parent == root and p.sae_path.parent == root


def test_unknown_name_lists_the_known_presets():
    with pytest.raises(ValueError) as err:
        get_preset("gpt3")
    message = str(err.value)
    assert "'gpt3'" in message
    for name in ("gpt2-small", "tiny", "auto"):
        assert name in message


def test_env_var_wins_over_auto(clean_env, capsys):
    clean_env.setenv(PRESET_ENV_VAR, "gpt2-small")
    clean_env.setattr(
        presets, "hub_reachable", lambda *a, **k: pytest.fail("auto must not probe the hub")
    )
    assert choose_preset().name == "gpt2-small"
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "gpt2-small" in out and PRESET_ENV_VAR in out


def test_env_var_with_unknown_name_raises(clean_env):
    clean_env.setenv(PRESET_ENV_VAR, "nope")
    with pytest.raises(ValueError, match="Known presets"):
        choose_preset()


def test_explicit_name_beats_env_var(clean_env):
    clean_env.setenv(PRESET_ENV_VAR, "gpt2-small")
    assert choose_preset("tiny", verbose=False).name == "tiny"


def test_auto_with_unreachable_hub_picks_tiny(clean_env, capsys):
    clean_env.setattr(presets, "HUB_URL", "http://127.0.0.1:9")  # discard port: nothing answers
    assert choose_preset().name == "tiny"
    assert "did not answer" in capsys.readouterr().out


def test_auto_with_reachable_hub_picks_gpt2(clean_env, capsys):
    clean_env.setenv(PRESET_ENV_VAR, "auto")
    clean_env.setattr(presets, "hub_reachable", lambda *a, **k: True)
    assert choose_preset().name == "gpt2-small"
    assert "reachable" in capsys.readouterr().out


def test_auto_respects_hf_hub_offline_without_probing(clean_env):
    clean_env.setenv("HF_HUB_OFFLINE", "1")
    clean_env.setattr(
        presets, "hub_reachable", lambda *a, **k: pytest.fail("must not probe when offline")
    )
    assert choose_preset(verbose=False).name == "tiny"


def test_hub_reachable_is_false_for_a_closed_port():
    assert presets.hub_reachable("http://127.0.0.1:9", timeout=0.5) is False


def test_presets_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["tiny"].model_name = "x"


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_device_order_is_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device() == expected


def test_hub_texts_come_from_the_split_the_training_does_not_read(monkeypatch):
    """Held-out text on a Hub preset is the validation split; tutorial 2 trains on "train"."""
    import datasets

    from utils.loading import load_texts

    calls = []

    def fake_load_dataset(path, split, streaming):
        calls.append((path, split, streaming))
        return iter([{"text": f"{split} document {i}"} for i in range(10)])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    preset = get_preset("gpt2-small")
    assert load_texts(preset, n=3) == [f"validation document {i}" for i in range(3)]
    assert load_texts(preset, n=2, split="train") == ["train document 0", "train document 1"]
    assert calls == [
        (preset.dataset_path, "validation", True),
        (preset.dataset_path, "train", True),
    ]
    with pytest.raises(ValueError, match="give n"):
        load_texts(preset)
    with pytest.raises(ValueError, match="split must be"):
        load_texts(preset, n=1, split="test")
