"""Does the book's training path cost anything? Tokens/s of tutorial 2's training vs SAELens' bare runner.

    python benchmarks/training_throughput.py                 # tiny preset, 3 runs of each, interleaved
    python benchmarks/training_throughput.py --repeats 5 --architecture topk

Both paths train the notebook's configuration (``utils/training_config.py``) on the same
model and data with the same seed:

* **book**: what the notebook runs: ``quiet_expected_training_messages()``, then
  ``utils.training.RecordingTrainingRunner`` (records the metrics wandb would get every
  ``wandb_log_frequency`` steps), then builds the ``curves`` table;
* **bare**: ``sae_lens.LanguageModelSAETrainingRunner`` with nothing around it.

The runs alternate (bare, book, book, bare, ...) so a change in the machine's load hits both
alike; each time covers building the runner and ``run()``. Prints every run, the median tokens/s
of each path, and their ratio (book / bare; 1.0 means no overhead). The load average is printed
too: on a shared machine, wall times are only comparable within one invocation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from utils.presets import get_preset, pick_device
from utils.training_config import runner_config, standard_sae_config, topk_sae_config


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:
        return "unknown"


def train_once(path: str, cfg, model, dataset) -> float:
    """Train once along ``path`` ("book" or "bare"); return tokens/s (runner construction + run)."""
    from sae_lens import LanguageModelSAETrainingRunner

    from utils.training import RecordingTrainingRunner, quiet_expected_training_messages

    torch.manual_seed(0)
    start = time.perf_counter()
    if path == "book":
        quiet_expected_training_messages()
        runner = RecordingTrainingRunner(cfg, override_dataset=dataset, override_model=model)
        runner.run()
        curves = runner.curves
        assert len(curves) > 0
    else:
        LanguageModelSAETrainingRunner(cfg, override_dataset=dataset, override_model=model).run()
    if str(cfg.device).startswith("cuda"):
        torch.cuda.synchronize()
    return cfg.training_tokens / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny", help="preset name (default tiny)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each path (default 3)")
    parser.add_argument("--architecture", choices=("standard", "topk"), default="standard")
    parser.add_argument("--device", default=None, help="default: the best available")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    from utils.loading import load_model, training_dataset

    preset = get_preset(args.preset)
    device = args.device or pick_device()
    model = load_model(preset, device)
    dataset = training_dataset(preset)
    d_in = model.cfg.d_model
    make_sae = standard_sae_config if args.architecture == "standard" else topk_sae_config
    print(
        f"preset {preset.name}, {args.architecture} SAE, {preset.training.training_tokens:,} tokens per run, "
        f"device {device}, torch threads {torch.get_num_threads()}"
    )
    print(f"load average before: {load_average()}")

    results: dict[str, list[float]] = {"bare": [], "book": []}
    for i in range(args.repeats):
        order = ("bare", "book") if i % 2 == 0 else ("book", "bare")
        for path in order:
            cfg = runner_config(preset, make_sae(preset, d_in), device)
            tokens_per_s = train_once(path, cfg, model, dataset)
            results[path].append(tokens_per_s)
            print(f"  run {i + 1} {path:4}: {tokens_per_s:10,.0f} tokens/s")

    bare, book = statistics.median(results["bare"]), statistics.median(results["book"])
    print(f"load average after:  {load_average()}")
    print(
        f"median tokens/s  bare runner: {bare:,.0f}   book (RecordingTrainingRunner): {book:,.0f}"
    )
    print(f"ratio book / bare: {book / bare:.3f}  (target >= 0.9)")
    return {"bare": bare, "book": book, "ratio": book / bare}


if __name__ == "__main__":
    main()
