"""The benchmarks train what tutorial 2 trains, and the GPU benchmark runs end to end (on a
scaled-down model on the CPU: the GPU itself is not tested here)."""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import replace

import pytest
from notebook_code import notebook_configs
from random_models import REPO


def load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` (a script, not a package) as a module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu = load_benchmark("gpu_training_throughput")

pytestmark = [
    pytest.mark.filterwarnings("ignore:The training dataset contains fewer samples"),
]


def gpu_args(**changes) -> argparse.Namespace:
    args = dict(
        steps=300,
        device=None,
        architecture="standard",
        autocast=False,
        act_store_device=None,
        n_batches_in_buffer=None,
        norm_batches=None,
    )
    return argparse.Namespace(**{**args, **changes})


@pytest.mark.parametrize("architecture", ["standard", "topk"])
def test_gpu_benchmark_trains_the_notebooks_full_preset_config(architecture):
    args = gpu_args(architecture=architecture)
    from utils.presets import PRESETS

    overrides = gpu.benchmark_overrides(args, PRESETS["gpt2-small"].training)
    notebook = notebook_configs("gpt2-small", d_in=768, device="cuda")[architecture]
    benchmark = gpu.full_preset_config(args, "cuda")
    assert benchmark == replace(notebook, **overrides)
    # what it leaves as the notebook has it: the SAE, the hook, the batch, the buffer, the optimiser
    for field in (
        "sae",
        "hook_name",
        "train_batch_size_tokens",
        "context_size",
        "lr",
        "n_batches_in_buffer",
        "store_batch_size_prompts",
        "dead_feature_window",
    ):
        assert getattr(benchmark, field) == getattr(notebook, field), field
    assert benchmark.training_tokens == 300 * 4096


def test_gpu_benchmark_runs_end_to_end(monkeypatch, capsys):
    """The whole script, with a 7-layer model 64 wide standing in for GPT-2 small, for 2 steps."""
    small = dict(
        gpu.GPT2_SMALL_SHAPE, n_layers=7, d_model=64, n_heads=2, d_head=32, d_mlp=128, d_vocab=500
    )
    monkeypatch.setattr(gpu, "GPT2_SMALL_SHAPE", small)
    result = gpu.main(
        ["--steps", "2", "--device", "cpu", "--norm-batches", "1", "--architecture", "topk"]
    )
    out = capsys.readouterr().out
    assert result["tokens_per_s"] > 0 and result["steady_tokens_per_s"] > 0
    assert result["projected_full_s"] > result["seconds"] / 2  # 10M tokens take longer than 8k
    assert "projected time for the full preset's 10,000,000 tokens" in out
    assert "d_sae 512" in out


def test_gpu_benchmark_rejects_zero_steps(capsys):
    with pytest.raises(SystemExit):
        gpu.main(["--steps", "0"])
    assert "--steps must be at least 1" in capsys.readouterr().err
