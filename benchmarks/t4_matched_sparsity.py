"""Tutorial 4's matched-sparsity comparison (TopK against BatchTopK at the same k, three seeds) on
a preset's synthetic model, written to ``benchmarks/results/t4_matched_sparsity_<preset>.csv``.

    python benchmarks/t4_matched_sparsity.py --preset gpt2-small   # what tutorial 4 reads
    python benchmarks/t4_matched_sparsity.py --preset tiny --no-write   # check: the notebook's numbers

Tutorial 4 runs on the ``tiny`` preset in CI and on the website; its section 5 says what the same
comparison gives on the ``gpt2-small`` preset's larger synthetic model, and reads it from this
file. The model and the SAE configurations are the notebook's own: the script executes the
notebook's cells ``t4-05`` (the synthetic model) and ``t4-13`` (the configurations), then trains
and scores as the notebook's ``train`` and ``score`` do (same sizes, seeds and evaluation sample).
With ``--preset tiny`` it reproduces the notebook's printed table, which is how to check it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from utils.presets import get_preset, pick_device  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "04_ground_truth_with_synthetic_data.ipynb"
RESULTS = ROOT / "benchmarks" / "results"
CELLS = ("t4-05", "t4-13")  # the synthetic model; the SAE configurations
ARCHITECTURES = ("TopK", "BatchTopK")
SEEDS = (0, 1, 2)
COLUMNS = ["SAE", "k", "seed", "l0", "explained_variance", "mcc", "device", "measured_at"]


def results_path(preset: str) -> Path:
    return RESULTS / f"t4_matched_sparsity_{preset}.csv"


def notebook_namespace(sizes, device: str) -> dict:
    """Run the notebook's model and configuration cells; return their variables."""
    import sae_lens
    import sae_lens.synthetic as synthetic

    from utils.ground_truth import parent_children

    cells = {c.get("id"): c for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]}
    namespace = {**vars(sae_lens), **vars(synthetic), "torch": torch}
    namespace.update(sizes=sizes, device=device, parent_children=parent_children)
    for cell_id in CELLS:
        source = "".join(cells[cell_id]["source"])
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(source, f"{NOTEBOOK.name}:{cell_id}", "exec"), namespace)
    return namespace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="gpt2-small")
    parser.add_argument("--no-write", action="store_true", help="only print")
    args = parser.parse_args()

    from utils.ground_truth import score_sae, train_on_synthetic

    torch.set_num_threads(1)  # as in the notebook
    sizes = get_preset(args.preset).synthetic
    device = pick_device()
    ns = notebook_namespace(sizes, device)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for seed in SEEDS:
        for architecture in ARCHITECTURES:
            start = time.perf_counter()
            sae = train_on_synthetic(
                ns["model"],
                ns["make_config"][architecture](sizes.k),
                training_samples=sizes.training_samples,
                batch_size=sizes.batch_size,
                lr=sizes.lr,
                dead_feature_window=sizes.dead_feature_window,
                seed=seed,
                device=device,
                show_progress=False,
            )
            row = score_sae(
                sae, ns["model"], num_samples=sizes.eval_samples, batch_size=sizes.batch_size
            )
            rows.append(
                {
                    "SAE": architecture,
                    "k": sizes.k,
                    "seed": seed,
                    "l0": f"{row['l0']:.4f}",
                    "explained_variance": f"{row['explained_variance']:.4f}",
                    "mcc": f"{row['mcc']:.4f}",
                    "device": device,
                    "measured_at": stamp,
                }
            )
            print(
                f"{architecture} k={sizes.k} seed {seed}: L0 {row['l0']:.2f}, "
                f"EV {row['explained_variance']:.4f}, MCC {row['mcc']:.4f} "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    if not args.no_write:
        path = results_path(args.preset)
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"Wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
