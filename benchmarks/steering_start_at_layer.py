"""Tutorial 3's steering curves: from the tokens, from the SAE's layer, and in shared passes.

    python benchmarks/steering_start_at_layer.py                      # tiny preset
    python benchmarks/steering_start_at_layer.py --preset gpt2-small  # needs the Hub (or a cache)
    python benchmarks/steering_start_at_layer.py --directions 4 --repeats 5

Tutorial 3 draws one ``steering_curve`` per direction (3 picked latents and four controls of the
preset's ``random_directions`` each): every scale of ``steering_scales`` is a forward pass over
the steering contexts. Two paths over the same contexts, directions and scales:

* **tokens**: ``steering_curve(..., from_hook=False)``: every pass runs the whole model;
* **from hook**: ``steering_curve``, one direction at a time: blocks ``0..L-1`` run once per
  batch (a push at ``blocks.L.hook_resid_pre`` cannot change them) and every scale starts at block
  ``L`` (TransformerLens' ``start_at_layer``); each direction runs its own unsteered pass;
* **shared**: ``steering_curves`` over every direction at once, as tutorial 3 runs it: from the
  SAE's layer too, the unsteered pass once for all directions, and (direction, scale) pairs
  stacked along the batch (``--batch-size`` rows a pass; default the preset's).

The paths alternate, so a change in the machine's load hits both alike. Prints each timing, the
medians and their ratio, the largest difference between the two paths' numbers, and the load
average (on a shared machine, times are only comparable within one invocation).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from ablation_start_at_layer import (
    benchmark_parser,
    load_average,
    load_preset_sample,
    parse_benchmark_args,
)


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--directions", type=int, default=3, help="random directions timed")
    parser.add_argument("--batch-size", type=int, default=None, help="rows a pass (shared)")
    args = parse_benchmark_args(parser)

    from utils import interventions as I
    from utils.features import sae_hook_name

    preset, device, model, sae, sample = load_preset_sample(args.preset)
    sizes = preset.interventions
    contexts, counted = I.sample_contexts(sample, sizes.context_size, sizes.steering_contexts)
    hook = sae_hook_name(sae)
    directions = [I.random_unit_direction(model.cfg.d_model, s) for s in range(args.directions)]
    scored = [{"own": I.promoted_token_ids(model, d, sizes.top_tokens)} for d in directions]

    rows = args.batch_size or sizes.batch_size

    def run(path: str):
        wall, cpu = time.perf_counter(), time.process_time()
        if path == "shared":
            frame = I.steering_curves(
                model,
                hook,
                contexts,
                counted,
                directions,
                sizes.steering_scales,
                scored,
                batch_size=rows,
            )
            out = [
                frame[frame["direction"] == i].reset_index(drop=True)
                for i in range(len(directions))
            ]
            return time.perf_counter() - wall, time.process_time() - cpu, out
        out = [
            I.steering_curve(
                model,
                hook,
                contexts,
                counted,
                d,
                sizes.steering_scales,
                s,
                batch_size=sizes.batch_size,
                from_hook=path == "from hook",
            )
            for d, s in zip(directions, scored)
        ]
        return time.perf_counter() - wall, time.process_time() - cpu, out

    print(
        f"{preset.name}: steering at {hook} of {model.cfg.n_layers} blocks; {len(directions)} "
        f"directions x {len(sizes.steering_scales)} scales over {len(contexts)} contexts of "
        f"{sizes.context_size} tokens; device {device}; torch threads {torch.get_num_threads()}; "
        f"load {load_average()}"
    )
    names = ["tokens", "from hook", "shared"]
    for name in names:  # warm-up
        run(name)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu_times: dict[str, list[float]] = {name: [] for name in names}
    worst = 0.0
    for r in range(args.repeats):
        order = names if r % 2 == 0 else names[::-1]
        outputs = {}
        for name in order:
            seconds, cpu, outputs[name] = run(name)
            times[name].append(seconds)
            cpu_times[name].append(cpu)
            print(f"  run {r + 1}: {name:9} {seconds:7.2f} s wall, {cpu:7.2f} s CPU")
        for other in ("from hook", "shared"):
            for a, b in zip(outputs["tokens"], outputs[other]):
                for column in ("logprob", "loss"):
                    worst = max(worst, float((a[column] - b[column]).abs().max()))
    base = statistics.median(times["tokens"])
    base_cpu = statistics.median(cpu_times["tokens"])
    for name in names:
        median, cpu = statistics.median(times[name]), statistics.median(cpu_times[name])
        print(
            f"median {name:9} {median:7.2f} s wall ({median / base:.2f} x tokens), "
            f"{cpu:7.2f} s CPU ({cpu / base_cpu:.2f} x)"
        )
    print(f"largest difference from the tokens path: {worst:.1e} nats; load {load_average()}")


if __name__ == "__main__":
    main()
