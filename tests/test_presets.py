"""The preset registry and how a preset is chosen (env var, auto, unknown names, device)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from utils import presets
from utils.presets import PRESET_ENV_VAR, PRESETS, choose_preset, get_preset, pick_device

# `clean_env`: tests/conftest.py (none of the book's variables, no offline flag).


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
    assert "Known presets: gpt2-small, tiny, auto." in message
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
    from huggingface_hub import constants

    clean_env.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # discard port: no answer
    assert choose_preset().name == "tiny"
    assert "http://127.0.0.1:9 did not answer" in capsys.readouterr().out


def _choose_in_a_fresh_python(endpoint: str) -> str:
    """What choose_preset prints in a new Python whose environment sets ``HF_ENDPOINT`` (read by
    huggingface_hub when it is imported, as in a reader's kernel)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (PRESET_ENV_VAR, "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "SAE_BOOK_SCALE")
    }
    env["HF_ENDPOINT"] = endpoint
    proc = subprocess.run(
        [sys.executable, "-c", "from utils.presets import choose_preset; choose_preset()"],
        cwd=Path(presets.__file__).parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_auto_asks_the_mirror_in_hf_endpoint():
    """A reader behind a mirror sets HF_ENDPOINT: "auto" probes that host (a local server here,
    never the real Hub), picks gpt2-small when it answers and names it."""
    import http.server
    import threading

    asked = []

    class Mirror(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        mirror = f"http://127.0.0.1:{server.server_port}"
        out = _choose_in_a_fresh_python(mirror + "/")  # huggingface_hub drops the trailing slash
    finally:
        server.shutdown()
        server.server_close()
    assert out == (
        f"Preset: gpt2-small (auto: {mirror} is reachable). "
        f"Set {PRESET_ENV_VAR}=gpt2-small|tiny to override.\n"
    )
    assert asked == ["/"]


def test_auto_names_the_mirror_that_did_not_answer():
    out = _choose_in_a_fresh_python("http://127.0.0.1:9")  # the discard port: nothing answers
    assert out.startswith(
        "Preset: tiny (auto: http://127.0.0.1:9 did not answer within 2 s (HF_ENDPOINT sets "
    ), out
    assert "huggingface.co" not in out


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


def test_hub_reachable_gives_up_on_a_server_that_never_answers():
    """A socket that accepts the connection and says nothing: False after the timeout, not a
    notebook hung on its first cell."""
    import socket
    import time

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        start = time.monotonic()
        assert presets.hub_reachable(f"http://127.0.0.1:{silent.getsockname()[1]}/", 0.3) is False
        assert time.monotonic() - start < 10


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


# --- SAE_BOOK_SCALE's arithmetic on cases small enough to work out by hand --------------------


# huggingface_hub's rule (constants._is_true): offline for 1, ON, YES, TRUE in any case.
@pytest.mark.parametrize(
    ("written", "offline"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("On", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", False),
        ("2", False),
    ],
)
def test_hf_hub_offline_is_read_as_huggingface_hub_reads_it(clean_env, written, offline):
    clean_env.setenv("HF_HUB_OFFLINE", written)
    clean_env.setattr(presets, "hub_reachable", lambda *a, **k: True)
    assert presets.hub_offline() is offline
    assert choose_preset(verbose=False).name == ("tiny" if offline else "gpt2-small")


def test_transformers_offline_counts_when_hf_hub_offline_is_unset(clean_env):
    clean_env.setenv("TRANSFORMERS_OFFLINE", "1")
    assert presets.hub_offline()
    clean_env.setenv("HF_HUB_OFFLINE", "0")  # set: it decides
    assert not presets.hub_offline()


def test_a_count_below_its_floor_is_kept_not_raised_to_it():
    """Scale 0.05 by hand: 100 -> 5; 20 -> 1, raised to the floor 8; 3 is under the floor 4 and
    stays 3 (a scaled run never grows); 8 random directions -> 0.4, raised to the floor 2."""
    sizes = presets.InterventionSizes(steering_contexts=3, ablation_contexts=100)
    small = presets.scale_interventions(sizes, 0.05)
    assert small.steering_contexts == 3
    assert small.ablation_contexts == 5
    assert small.max_new_tokens == 8
    assert small.random_directions == 2
    assert small.attribution_contexts == 2 and small.attribution_top == 5
    preset = dataclasses.replace(PRESETS["tiny"], sample_texts=40)
    assert presets.scale_preset(preset, 0.5).sample_texts == 40  # under the floor of 64: kept
    preset = dataclasses.replace(PRESETS["tiny"], sample_texts=1000)
    assert presets.scale_preset(preset, 0.5).sample_texts == 500


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.0001])
def test_every_scaling_function_refuses_a_scale_outside_0_to_1(bad):
    tiny = PRESETS["tiny"]
    for scale_it, what in [
        (presets.scale_training, tiny.training),
        (presets.scale_interventions, tiny.interventions),
        (presets.scale_preset, tiny),
    ]:
        with pytest.raises(ValueError, match=r"in \(0, 1\]"):
            scale_it(what, bad)
    assert presets.scale_interventions(tiny.interventions, 1e-9).steering_contexts == 4


def test_the_dead_latent_window_keeps_its_share_and_stays_shorter_than_the_run():
    """Tiny's training at scale 0.1, by hand: a batch of 1024 x 0.1 = 102 tokens rounds to one
    128-token context; 409600 x 0.1 / 128 = 320 steps (of 400). The window of 100 steps keeps its
    quarter: 80. A window of 1000 (longer than the run) would become 800: clamped to 319."""
    tiny = PRESETS["tiny"].training
    small = presets.scale_training(tiny, 0.1)
    assert (small.train_batch_size_tokens, small.training_tokens) == (128, 320 * 128)
    assert small.dead_feature_window == 80
    assert small.l1_warm_up_steps == 16  # 20 x 320 / 400
    long_window = presets.scale_training(dataclasses.replace(tiny, dead_feature_window=1000), 0.1)
    assert long_window.dead_feature_window == 319


def test_the_smallest_tiny_run_by_hand():
    """Tiny's training at scale 1e-6, where every floor binds (the docstring's list), by hand:
    one 128-token context per batch, 4 steps; the L1 warm-up (20 of 400 steps) rounds to 0; the
    dead-latent window (100 of 400) keeps its quarter, 1 step; one context per store batch, and a
    buffer of 2 batches, half of which (128 tokens) holds a training batch; 8 evaluation texts and
    one batch for everything else."""
    small = presets.scale_training(PRESETS["tiny"].training, 1e-6)
    expected = dict(
        training_tokens=4 * 128,
        train_batch_size_tokens=128,
        l1_warm_up_steps=0,
        lr_warm_up_steps=0,
        dead_feature_window=1,
        store_batch_size_prompts=1,
        n_batches_in_buffer=2,
        eval_batches=1,
        n_batches_for_norm_estimate=1,
        eval_texts=8,
        eval_ce_batches=1,
    )
    assert {name: getattr(small, name) for name in expected} == expected
    # A window shorter than one step of the small run still lasts a step: 10 of 400 -> 0 -> 1.
    short = dataclasses.replace(PRESETS["tiny"].training, dead_feature_window=10)
    assert presets.scale_training(short, 1e-6).dead_feature_window == 1


def test_the_lr_warm_up_and_a_small_buffer_by_hand():
    """At scale 0.1 (320 steps of one 128-token context, as above): a learning-rate warm-up of 40
    of 400 steps keeps its tenth, 32; a buffer of 2 batches of 64 contexts (6 at this scale) stays
    at its floor of 2 batches, though one would hold two training batches."""
    sizes = dataclasses.replace(
        PRESETS["tiny"].training,
        lr_warm_up_steps=40,
        n_batches_in_buffer=2,
        store_batch_size_prompts=64,
    )
    small = presets.scale_training(sizes, 0.1)
    assert (small.train_batch_size_tokens, small.training_tokens) == (128, 320 * 128)
    assert small.lr_warm_up_steps == 32
    assert (small.store_batch_size_prompts, small.n_batches_in_buffer) == (6, 2)


@pytest.mark.parametrize("written", ["fast", "0", "1.5", "nan"])
def test_a_bad_scale_says_what_to_do(clean_env, written):
    clean_env.setenv(presets.SCALE_ENV_VAR, written)
    with pytest.raises(ValueError) as err:
        presets.run_scale()
    assert str(err.value) == (
        f"{presets.SCALE_ENV_VAR}={written!r} is not a number in (0, 1]; "
        "unset it for the preset's full sizes"
    )


def test_scale_one_in_the_environment_is_the_full_run(clean_env, capsys):
    clean_env.setenv(PRESET_ENV_VAR, "tiny")
    clean_env.setenv(presets.SCALE_ENV_VAR, "1")
    assert choose_preset() is PRESETS["tiny"]
    assert "scaled" not in capsys.readouterr().out


def test_the_printed_reason_names_who_chose(clean_env, capsys):
    clean_env.setenv(PRESET_ENV_VAR, "tiny")
    choose_preset()
    assert f"(asked for by {PRESET_ENV_VAR})" in capsys.readouterr().out
    choose_preset("tiny")
    assert "(asked for by the caller)" in capsys.readouterr().out
    clean_env.setenv(presets.SCALE_ENV_VAR, "0.5")
    choose_preset()
    assert f"(asked for by {PRESET_ENV_VAR}; run sizes scaled by 0.5 (" in capsys.readouterr().out
    clean_env.delenv(PRESET_ENV_VAR)
    clean_env.delenv(presets.SCALE_ENV_VAR)
    clean_env.setenv("HF_HUB_OFFLINE", "1")
    choose_preset()
    assert "(auto: HF_HUB_OFFLINE is set)" in capsys.readouterr().out


def test_hub_reachable_is_true_for_a_server_that_answers():
    """A local HTTP server answering HEAD requests stands in for the Hub."""
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert presets.hub_reachable(f"http://127.0.0.1:{server.server_port}/", timeout=5) is True
    finally:
        server.shutdown()
        server.server_close()


def test_hub_reachable_asks_for_headers_only_within_two_seconds(monkeypatch):
    # a HEAD request (no file is downloaded to find out) with a 2 s default timeout
    seen = []

    class Answer:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def fake_urlopen(request, timeout):
        seen.append((request.get_method(), request.full_url, timeout))
        return Answer()

    monkeypatch.setattr(presets.urllib.request, "urlopen", fake_urlopen)
    assert presets.hub_reachable("https://example.invalid/") is True
    assert seen == [("HEAD", "https://example.invalid/", 2.0)]


def test_a_scaled_circuit_run_keeps_the_last_graph_layers_and_loads_only_them():
    """gpt2-small's tutorial 5 sizes at scale 0.5, by hand (scale_circuits' docstring): the last
    round(4 x 0.5) = 2 of its graph layers (8, 9, 10, 11) are kept, (10, 11), and only those MLPs
    are replaced, so the run loads neither layer 0's nor layers 8 and 9's transcoders. The
    demonstration's layer 0 is not loaded, so it trains the first kept layer, 10. Counts: 7 x 0.5
    = 3.5 rounds to 4 faithfulness prompts, 2 -> 1 rerun prefix, 10 -> 5 ablated latents, 32 -> 16
    texts, 65,536 -> 32,768 demonstration tokens; positions and the source do not change."""
    gpt2 = PRESETS["gpt2-small"].circuits
    half = presets.scale_circuits(gpt2, 0.5)
    assert half.graph_layers == (10, 11)
    assert half.layers == (10, 11)
    assert half.demo_layer == 10
    expected = dict(
        faithfulness_prompts=4,
        diagnosed_prompts=1,
        ablated_per_prompt=5,
        texts=16,
        demo_tokens=32_768,
        graph_positions=2,
        transcoder_repo="pchlenski/gpt2-transcoders",
        demo_d_sae=6144,
    )
    assert {name: getattr(half, name) for name in expected} == expected


def test_a_demonstration_layer_the_scaled_run_loads_stays():
    """Four graph layers at scale 0.5 keep the last two, (2, 3): a demonstration on layer 3 is
    still loaded (the notebook compares it with that layer's transcoder), so it stays on 3; one on
    layer 1 is left out and moves to the first kept layer, 2."""
    sizes = presets.CircuitSizes(layers=(0, 1, 2, 3), graph_layers=(0, 1, 2, 3), demo_layer=3)
    kept = presets.scale_circuits(sizes, 0.5)
    assert (kept.graph_layers, kept.layers, kept.demo_layer) == ((2, 3), (2, 3), 3)
    moved = presets.scale_circuits(dataclasses.replace(sizes, demo_layer=1), 0.5)
    assert moved.demo_layer == 2


def test_the_smallest_circuit_run_by_hand():
    """gpt2-small's tutorial 5 sizes at scale 1e-6, where every floor of scale_circuits' docstring
    binds: 2 graph layers (a path from one layer's latents to the next), the last two, (10, 11),
    and only their MLPs replaced; 3 faithfulness prompts, 1 prefix rerun with parts frozen, 3
    latents ablated per prompt, 16 texts, and 4,096 demonstration tokens (two of
    train_transcoder's 2,048-token batches) on the first kept layer."""
    small = presets.scale_circuits(PRESETS["gpt2-small"].circuits, 1e-6)
    expected = dict(
        graph_layers=(10, 11),
        layers=(10, 11),
        faithfulness_prompts=3,
        diagnosed_prompts=1,
        ablated_per_prompt=3,
        texts=16,
        demo_tokens=4096,
        demo_layer=10,
    )
    assert {name: getattr(small, name) for name in expected} == expected


def test_scale_one_leaves_the_circuit_sizes_as_they_are():
    # a run 1 times as big is the full run: gpt2-small still replaces MLP 0 (the de-embedding's
    # example) besides the four graph layers, and tiny its two
    for name, layers in [("gpt2-small", (0, 8, 9, 10, 11)), ("tiny", (0, 1))]:
        sizes = PRESETS[name].circuits
        full = presets.scale_circuits(sizes, 1)
        assert full == sizes
        assert full.layers == layers


def test_a_scaled_preset_scales_tutorial_5_too():
    """scale_preset applies scale_circuits (the stand-in notebooks load only the scaled layers'
    transcoders): gpt2-small at 0.5 keeps graph layers (10, 11) and 16 texts (32 x 0.5), as above;
    a preset without tutorial 5's sizes stays without them."""
    half = presets.scale_preset(PRESETS["gpt2-small"], 0.5).circuits
    assert (half.graph_layers, half.layers, half.texts) == ((10, 11), (10, 11), 16)
    without = dataclasses.replace(PRESETS["tiny"], circuits=None)
    assert presets.scale_preset(without, 0.5).circuits is None
