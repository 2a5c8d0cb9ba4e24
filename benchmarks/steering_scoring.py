"""Scoring steered passes: full logits and a log-softmax copy, against the scored positions only.

    python benchmarks/steering_scoring.py              # GPT-2 small's shapes, random weights
    python benchmarks/steering_scoring.py --contexts 8 --repeats 5

``steering_curves`` as first written (commit bc9e04d, read from git) asked every steered pass
for its ``[rows, ctx, d_vocab]`` logits, copied the scored positions out and took their
log-softmax. Now the pass returns nothing, a hook keeps the last residual stream, only the scored
positions are unembedded, and log-probabilities are logits minus their logsumexp. Same passes,
same numbers (the largest difference is printed). The model is built from GPT-2 small's config
with random weights, no Hub needed: the cost is in the shapes (4 blocks after
``blocks.8.hook_resid_pre`` and a 50,257-token unembedding), not in the weights. The two
versions alternate, so a change in the machine's load hits both alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402  (after the path, as the other benchmarks)

BEFORE = "bc9e04d"  # steering_curves with full logits and a log-softmax


def before_module():
    """``utils/interventions/steering.py`` as of :data:`BEFORE`, imported inside the package."""
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:utils/interventions/steering.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "steering_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("utils.interventions._before", path)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "utils.interventions"
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contexts", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads)

    from transformer_lens import HookedTransformer, HookedTransformerConfig

    import utils.interventions as I

    cfg = HookedTransformerConfig(
        n_layers=12,
        d_model=768,
        n_heads=12,
        d_head=64,
        d_mlp=3072,
        d_vocab=50257,
        n_ctx=1024,
        act_fn="gelu_new",
        normalization_type="LN",
        seed=0,
    )
    model = HookedTransformer(cfg).eval()
    tokens = torch.randint(
        0, 50257, (args.contexts, 128), generator=torch.Generator().manual_seed(0)
    )
    counted = torch.ones_like(tokens, dtype=torch.bool)
    counted[:, 0] = False
    hook = "blocks.8.hook_resid_pre"
    directions = [I.random_unit_direction(768, s) for s in range(2)]
    sets = [{"own": I.promoted_token_ids(model, d, 10)} for d in directions]
    paths = {"before": before_module(), "now": I}

    def run(module):
        start = time.perf_counter()
        out = module.steering_curves(
            model, hook, tokens, counted, directions, (0.0, 0.5), sets, batch_size=16
        )
        return time.perf_counter() - start, out

    run(I)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in paths}
    worst = 0.0
    for r in range(args.repeats):
        outs = {}
        for name in list(paths) if r % 2 == 0 else list(paths)[::-1]:
            seconds, outs[name] = run(paths[name])
            times[name].append(seconds)
            print(f"  run {r + 1}: {name:6} {seconds:7.2f} s", flush=True)
        diff = (outs["before"][["logprob", "loss"]] - outs["now"][["logprob", "loss"]]).abs()
        worst = max(worst, float(diff.max().max()))
    before, now = (statistics.median(times[name]) for name in paths)
    print(
        f"medians: before {before:.2f} s, now {now:.2f} s ({now / before:.2f} x); 2 directions x "
        f"2 scales (3 passes) over {args.contexts} contexts of 128 tokens, GPT-2 small's shapes; "
        f"largest difference {worst:.1e} nats; torch threads {torch.get_num_threads()}; "
        f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
