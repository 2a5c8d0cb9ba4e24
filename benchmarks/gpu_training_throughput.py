"""How fast does tutorial 2's full-preset training run on YOUR GPU? (no downloads needed)

Trains the ``gpt2-small`` preset's SAE configuration (d_sae = 8 x 768, batch 4096 tokens,
context 128, the preset's buffer sizes) for a fixed number of steps, on a randomly initialised
GPT-2-small-shaped ``HookedSAETransformer`` fed random token ids. Random weights and data make
no useful SAE, but every tensor has GPT-2 small's shapes, so the time per step is what the real
run costs -- minus streaming and tokenizing the Pile, which the real run adds on top.

Prints tokens/s and the projected wall time of the preset's full budget (10M tokens).

    python benchmarks/gpu_training_throughput.py                      # 300 steps on the best device
    python benchmarks/gpu_training_throughput.py --steps 3 --device cpu --norm-batches 2  # a smoke test
    python benchmarks/gpu_training_throughput.py --architecture topk --autocast

Options that matter on small GPUs: ``--act-store-device cpu`` (keep the activation buffer in
host memory), ``--n-batches-in-buffer`` (buffer size), ``--autocast`` (bf16 SAE training; needs
an Ampere-or-newer GPU to be faster).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from utils.presets import PRESETS, pick_device

GPT2_SMALL_SHAPE = dict(
    n_layers=12,
    d_model=768,
    n_heads=12,
    d_head=64,
    d_mlp=3072,
    n_ctx=1024,
    d_vocab=50257,
    act_fn="gelu_new",
    normalization_type="LN",
)


def random_gpt2_small(device: str, seed: int = 0):
    """A GPT-2-small-shaped HookedSAETransformer with random weights and no tokenizer."""
    from sae_lens import HookedSAETransformer
    from transformer_lens import HookedTransformerConfig

    cfg = HookedTransformerConfig(**GPT2_SMALL_SHAPE, device=device, seed=seed)
    model = HookedSAETransformer(cfg)
    model.eval()
    return model


def random_token_dataset(n_contexts: int, context_size: int, d_vocab: int, seed: int = 0):
    """A pre-tokenized ``datasets.Dataset`` (``tokens`` column) of uniformly random token ids."""
    from datasets import Dataset

    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, d_vocab, (n_contexts, context_size), generator=g)
    return Dataset.from_dict({"tokens": tokens.tolist()})


def full_preset_config(args: argparse.Namespace, device: str):
    """Tutorial 2's configuration on the gpt2-small preset (``utils.training_config``), for ``args.steps`` steps.

    Changed from the notebook's, and only these: the data (random pre-tokenized contexts, so no BOS
    or special tokens to handle), the budget, and the options given on the command line.
    """
    from utils.training_config import runner_config, standard_sae_config, topk_sae_config

    preset = PRESETS["gpt2-small"]
    sizes = preset.training
    make_sae = standard_sae_config if args.architecture == "standard" else topk_sae_config
    return runner_config(
        preset,
        make_sae(preset, GPT2_SMALL_SHAPE["d_model"]),
        device,
        **benchmark_overrides(args, sizes),
    )


def benchmark_overrides(args: argparse.Namespace, sizes) -> dict:
    """The fields of the notebook's configuration this benchmark changes (see ``full_preset_config``)."""
    return dict(
        dataset_path="random-tokens",
        is_dataset_tokenized=True,
        streaming=False,
        prepend_bos=False,
        sequence_separator_token=None,
        exclude_special_tokens=False,
        training_tokens=args.steps * sizes.train_batch_size_tokens,
        n_batches_in_buffer=args.n_batches_in_buffer or sizes.n_batches_in_buffer,
        n_batches_for_norm_estimate=args.norm_batches or sizes.n_batches_for_norm_estimate,
        act_store_device=args.act_store_device,  # None: SAELens' default, the SAE's device
        autocast=args.autocast,
        autocast_lm=args.autocast,
        seed=42,
    )


def time_each_step(runner, device: str) -> list[float]:
    """Make ``runner`` record ``time.perf_counter()`` after every training step (GPU synchronised)."""
    times: list[float] = []
    run_trainer = runner.run_trainer_with_interruption_handling

    def run_with_timing(trainer):
        step = trainer.step

        def timed_step(batch):
            out = step(batch)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter())
            return out

        trainer.step = timed_step
        return run_trainer(trainer)

    runner.run_trainer_with_interruption_handling = run_with_timing
    return times


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--steps", type=int, default=300, help="training steps to time (default 300)"
    )
    parser.add_argument(
        "--device", default=None, help="cuda / mps / cpu (default: the best available)"
    )
    parser.add_argument("--architecture", choices=("standard", "topk"), default="standard")
    parser.add_argument(
        "--autocast", action="store_true", help="bf16 autocast for the SAE and the LM"
    )
    parser.add_argument(
        "--act-store-device", default=None, help="e.g. cpu: keep the activation buffer off the GPU"
    )
    parser.add_argument(
        "--n-batches-in-buffer", type=int, default=None, help="override the preset's buffer size"
    )
    parser.add_argument(
        "--norm-batches",
        type=int,
        default=None,
        help="batches for the activation-norm estimate (default: the preset's)",
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")

    from sae_lens import LanguageModelSAETrainingRunner

    device = args.device or pick_device()
    cfg = full_preset_config(args, device)
    sizes = PRESETS["gpt2-small"].training
    # Enough random contexts for the buffer, the norm estimate and the steps, without epochs.
    needed = cfg.training_tokens + cfg.n_batches_for_norm_estimate * cfg.train_batch_size_tokens
    needed += cfg.n_batches_in_buffer * cfg.store_batch_size_prompts * cfg.context_size
    dataset = random_token_dataset(
        needed // cfg.context_size + 64, cfg.context_size, GPT2_SMALL_SHAPE["d_vocab"]
    )
    model = random_gpt2_small(device)

    print(
        f"device: {device}"
        + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else "")
    )
    print(
        f"config: {args.architecture}, d_in {cfg.sae.d_in} -> d_sae {cfg.sae.d_sae}, batch {cfg.train_batch_size_tokens} tokens, "
        f"{args.steps} steps, buffer {cfg.n_batches_in_buffer} x {cfg.store_batch_size_prompts} contexts, "
        f"autocast {args.autocast}, act_store_device {cfg.act_store_device}"
    )
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    start = time.perf_counter()
    runner = LanguageModelSAETrainingRunner(cfg, override_dataset=dataset, override_model=model)
    step_times = time_each_step(runner, device)
    runner.run()
    seconds = time.perf_counter() - start
    tokens_per_s = cfg.training_tokens / seconds
    # Steady state: from the end of the first ~10% of steps (buffer filled, norm estimated) to the end.
    first = max(1, len(step_times) // 10) - 1
    steady_steps = len(step_times) - 1 - first
    steady = (
        steady_steps * cfg.train_batch_size_tokens / (step_times[-1] - step_times[first])
        if steady_steps > 0
        else tokens_per_s
    )
    overhead = max(0.0, seconds - cfg.training_tokens / steady)
    full = sizes.training_tokens
    projected = overhead + full / steady
    result = {
        "tokens_per_s": tokens_per_s,
        "steady_tokens_per_s": steady,
        "seconds": seconds,
        "projected_full_s": projected,
    }
    print(
        f"trained {cfg.training_tokens:,} tokens in {seconds:.1f} s: {tokens_per_s:,.0f} tokens/s overall, "
        f"{steady:,.0f} tokens/s once running (start-up {overhead:.1f} s: model hooks, buffer, norm estimate)"
    )
    print(
        f"projected time for the full preset's {full:,} tokens: {projected / 60:.1f} min "
        "(plus streaming + tokenizing the Pile, which this benchmark leaves out)"
    )
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**30
        result["peak_gib"] = peak
        print(f"peak GPU memory allocated: {peak:.2f} GiB")
    return result


if __name__ == "__main__":
    main()
