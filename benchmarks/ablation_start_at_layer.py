"""Tutorial 3's real ablations, before and after starting them at the SAE's layer.

    python benchmarks/ablation_start_at_layer.py                      # tiny preset
    python benchmarks/ablation_start_at_layer.py --preset gpt2-small  # needs the Hub (or a cache)
    python benchmarks/ablation_start_at_layer.py --contexts 4 --repeats 5

``compare_attribution_with_ablation`` ablates ``attribution_top + attribution_random`` pairs in
each context, one forward pass per batch of 16 pairs (``ablation_effects``). Three paths:

* **before**: the previous ``ablation_effects`` (kept below as ``before_ablation_effects``):
  every pass runs the whole model from the tokens and unembeds every position;
* **tokens**: ``ablation_effects(..., from_hook=False)``: from the tokens, but only the target
  position is unembedded;
* **after**: ``ablation_effects`` as tutorial 3 runs it: the clean pass caches the residual
  stream at the SAE's hook and every batch starts at that block (TransformerLens'
  ``start_at_layer``), skipping the blocks before it, which an ablation there cannot change.

On the tiny preset the hook is block 1 of 2 (and the vocabulary 4096); on GPT-2 small it is
block 8 of 12 (vocabulary 50257). The paths take turns in a rotating order over the same contexts
and pairs, so a change in the machine's load hits all alike. Prints each timing, the medians,
their ratios to *before*, the largest difference from *before*'s numbers, and the load average
(on a shared machine, times are only comparable within one invocation).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch


@torch.no_grad()
def before_ablation_effects(model, sae, tokens, target_position, pairs, batch_size=16):
    """``utils.interventions.ablation_effects`` before it started at the SAE's layer (input
    checks left out): full forward passes from the tokens, logits at every position."""
    from utils.interventions.attribution import _correct_logprob
    from utils.interventions.checks import _acts_post_name, _check_tokens

    tokens = _check_tokens(tokens).to(model.cfg.device)
    acts_name = _acts_post_name(sae)
    with model.saes(saes=[sae], use_error_term=True):
        clean = _correct_logprob(model(tokens), tokens, torch.tensor([target_position]))[0]
        changes = []
        for start in range(0, len(pairs), batch_size):
            chunk = torch.tensor(pairs[start : start + batch_size], dtype=torch.long)
            rows = torch.arange(len(chunk))

            def remove(acts, hook, chunk=chunk, rows=rows):
                acts = acts.clone()
                acts[rows, chunk[:, 0], chunk[:, 1]] = 0
                return acts

            batch = tokens.expand(len(chunk), -1)
            logits = model.run_with_hooks(batch, fwd_hooks=[(acts_name, remove)])
            positions = torch.full((len(chunk),), target_position)
            changes.append(_correct_logprob(logits, batch, positions) - clean)
    return torch.cat(changes).cpu()


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:
        return "unknown"


def load_preset_sample(name: str):
    """The preset, device, model, SAE and held-out sample tutorial 3 starts from (no gradients)."""
    from utils.features import collect_feature_stats
    from utils.loading import load_model, load_sae, load_texts
    from utils.presets import get_preset, pick_device

    torch.set_grad_enabled(False)
    preset = get_preset(name)
    device = pick_device()
    sae = load_sae(preset, device)
    model = load_model(preset, device, **(sae.cfg.metadata.model_from_pretrained_kwargs or {}))
    texts = load_texts(preset, n=preset.sample_texts)
    sample = collect_feature_stats(
        model, sae, texts, context_size=preset.sample_context, progress=False
    )
    return preset, device, model, sae, sample


def benchmark_parser(doc: str) -> argparse.ArgumentParser:
    """The options both start_at_layer benchmarks take: --preset, --repeats, --threads."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each path")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    return parser


def parse_benchmark_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse, and set torch's thread count if --threads was given."""
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--contexts", type=int, default=None, help="default: the preset's")
    args = parse_benchmark_args(parser)

    from utils import interventions as I

    preset, device, model, sae, sample = load_preset_sample(args.preset)
    sizes = preset.interventions
    n_contexts = args.contexts or sizes.attribution_contexts
    tokens, _ = I.sample_contexts(sample, sizes.context_size, n_contexts)
    target = sizes.context_size - 2
    # the pairs tutorial 3 ablates: its attribution's top and random active pairs per context
    attribution = I.next_token_attribution(model, sae, tokens, [target] * len(tokens))
    work = []
    generator = torch.Generator().manual_seed(0)
    n_pairs = sizes.attribution_top + sizes.attribution_random
    for i in range(len(tokens)):
        active = (attribution.feature_acts[i, : target + 1] > 0).nonzero()
        chosen = active[torch.randperm(len(active), generator=generator)[:n_pairs]]
        work.append((tokens[i], [tuple(map(int, p)) for p in chosen]))
    total = sum(len(pairs) for _, pairs in work)

    paths = {
        "before": before_ablation_effects,
        "tokens": lambda *a: I.ablation_effects(*a, from_hook=False),
        "after": I.ablation_effects,
    }

    def run(name: str) -> tuple[float, float, list[torch.Tensor]]:
        """Wall-clock and CPU seconds of one path over all the work, and its numbers."""
        wall, cpu = time.perf_counter(), time.process_time()
        out = [paths[name](model, sae, t, target, pairs) for t, pairs in work]
        return time.perf_counter() - wall, time.process_time() - cpu, out

    print(
        f"{preset.name}: SAE at {sae.cfg.metadata.hook_name} of {model.cfg.n_layers} blocks; "
        f"{total} ablated pairs in {len(work)} contexts of {sizes.context_size} tokens; "
        f"device {device}; torch threads {torch.get_num_threads()}; load {load_average()}"
    )
    for name in paths:  # warm-up
        run(name)
    names = list(paths)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu_times: dict[str, list[float]] = {name: [] for name in names}
    worst = dict.fromkeys(names, 0.0)
    for r in range(args.repeats):
        outputs = {}
        for name in names[r % 3 :] + names[: r % 3]:
            seconds, cpu, outputs[name] = run(name)
            times[name].append(seconds)
            cpu_times[name].append(cpu)
            print(f"  run {r + 1}: {name:7} {seconds:7.2f} s wall, {cpu:7.2f} s CPU")
        for name in names:
            diffs = [(a - b).abs().max() for a, b in zip(outputs[name], outputs["before"])]
            worst[name] = max(worst[name], float(max(diffs)))
    before = statistics.median(times["before"])
    before_cpu = statistics.median(cpu_times["before"])
    for name in names:
        median, cpu = statistics.median(times[name]), statistics.median(cpu_times[name])
        print(
            f"median {name:7} {median:7.2f} s wall ({median / before:.2f} x before), "
            f"{cpu:7.2f} s CPU ({cpu / before_cpu:.2f} x); largest difference from before "
            f"{worst[name]:.1e} nats"
        )
    print(f"load {load_average()}")


if __name__ == "__main__":
    main()
