"""Which L1 coefficient? Train tutorial 2's Standard SAE for several coefficients and measure each.

    python benchmarks/l1_sweep.py                       # tiny preset, the default coefficients
    python benchmarks/l1_sweep.py --coefficients 1 2 4 --topk 16 32

Every run is the notebook's configuration (``utils/training_config.py``: same budget,
learning rate, warm-up, normalisation) with only the L1 coefficient changed, seeded alike, and is
evaluated like the notebook evaluates: ``sae_lens.evals`` on the preset's held-out text. The
seed tutorial's coefficient, 8e-5, is in the default list to show what it does on SAELens 6.x.
``--topk`` adds TopK SAEs with those k for comparison.

Prints a table and writes it to ``benchmarks/results/l1_sweep_<preset>.csv``, which tutorial 2
displays (with the date and machine it was measured on) to justify its choice.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pandas as pd  # noqa: E402  (after the sys.path line, which `HERE` precedes)
import torch  # noqa: E402

from utils.presets import get_preset, pick_device  # noqa: E402
from utils.training_config import runner_config, standard_sae_config, topk_sae_config  # noqa: E402

DEFAULT_COEFFICIENTS = (8e-5, 0.5, 1.0, 2.0, 3.0, 5.0)


def results_path(preset_name: str) -> Path:
    """Where the sweep's table for ``preset_name`` is written (and read by tutorial 2)."""
    return HERE / "results" / f"l1_sweep_{preset_name}.csv"


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--coefficients", type=float, nargs="*", default=list(DEFAULT_COEFFICIENTS))
    parser.add_argument(
        "--topk", type=int, nargs="*", default=[16, 32], help="also train TopK SAEs with these k"
    )
    parser.add_argument(
        "--lr", type=float, default=None, help="override the preset's learning rate"
    )
    parser.add_argument(
        "--tokens", type=int, default=None, help="override the preset's training tokens"
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-save", action="store_true", help="print only; do not write the CSV")
    args = parser.parse_args(argv)

    from datasets import Dataset
    from sae_lens import LanguageModelSAETrainingRunner

    from utils.evaluation import evaluate_sae
    from utils.loading import load_model, load_texts, training_dataset
    from utils.training import quiet_expected_training_messages

    quiet_expected_training_messages()
    preset = get_preset(args.preset)
    sizes = preset.training
    device = args.device or pick_device()
    model = load_model(preset, device)
    train_data = training_dataset(preset)
    eval_data = Dataset.from_dict({"text": load_texts(preset, n=sizes.eval_texts, split="heldout")})
    d_in = model.cfg.d_model
    overrides = {}
    if args.lr is not None:
        overrides["lr"] = args.lr
    if args.tokens is not None:
        overrides["training_tokens"] = args.tokens

    runs = [("standard", c) for c in args.coefficients] + [("topk", k) for k in args.topk]
    rows = []
    for architecture, value in runs:
        if architecture == "standard":
            sae_cfg = standard_sae_config(preset, d_in, l1_coefficient=value)
        else:
            sae_cfg = topk_sae_config(preset, d_in, k=value)
        cfg = runner_config(preset, sae_cfg, device, **overrides)
        torch.manual_seed(0)
        start = time.perf_counter()
        sae = LanguageModelSAETrainingRunner(
            cfg, override_dataset=train_data, override_model=model
        ).run()
        seconds = time.perf_counter() - start
        metrics, _ = evaluate_sae(
            sae,
            model,
            eval_data,
            n_batches=sizes.eval_batches,
            n_ce_batches=sizes.eval_ce_batches,
            batch_size_prompts=sizes.store_batch_size_prompts,
        )
        row = {
            "architecture": architecture,
            "l1_coefficient": value if architecture == "standard" else None,
            "k": value if architecture == "topk" else None,
            "lr": cfg.lr,
            "training_tokens": cfg.training_tokens,
            "l0": metrics["l0"],
            "explained_variance": metrics["explained_variance"],
            "ce_loss_score": metrics["ce_loss_score"],
            "dead_fraction": metrics["dead_fraction"],
            "eval_tokens": metrics["eval_tokens"],
            "train_seconds": seconds,
        }
        rows.append(row)
        print(
            f"{architecture:8} {'L1' if architecture == 'standard' else 'k'}={value:<8g} L0 {row['l0']:7.1f}  "
            f"EV {row['explained_variance']:.3f}  CE score {row['ce_loss_score']:.3f}  "
            f"dead {row['dead_fraction']:.1%}  ({seconds:.0f} s)",
            flush=True,
        )

    table = pd.DataFrame(rows)
    print()
    print(
        table.drop(columns=["training_tokens", "eval_tokens"]).to_string(
            index=False, float_format="{:.4g}".format
        )
    )
    if not args.no_save:
        out = results_path(preset.name)
        out.parent.mkdir(exist_ok=True)
        with out.open("w") as f:
            f.write(
                f"# benchmarks/l1_sweep.py, {date.today().isoformat()}, preset {preset.name}, device {device}, "
                f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads\n"
            )
            table.to_csv(f, index=False)
        print(f"\nwritten to {out.relative_to(HERE.parent)}")
    return table


if __name__ == "__main__":
    main()
