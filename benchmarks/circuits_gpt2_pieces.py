"""Tutorial 5 on gpt2-small, piece by piece, on this CPU: what one graph, one ablation check and
scoring the replacement model cost with GPT-2 small's real shapes (24,576-latent transcoders).

    python benchmarks/circuits_gpt2_pieces.py            # prints, and writes the results file
    python benchmarks/circuits_gpt2_pieces.py --no-write

The whole notebook is timed by ``benchmarks/notebook_times.py --standin 05`` at the preset's
sizes; this says why the preset is sized as it is: a graph at the preset's layers and positions
next to one over every layer's latents at 4 positions (each node costs a backward pass through
GPT-2), and the other pieces at the preset's sizes. It runs against a stand-in Hugging Face cache
with all 12 transcoders (tests/standin_hub.py: GPT-2's real tokenizer, shapes and file formats,
random weights; the same computation, so the same cost), built in a temporary folder. Each piece
runs once in a fresh Python with the stand-in's environment; times are wall and CPU seconds of
that process, with the load average before and after (on a busy machine the wall time inflates).
Results: benchmarks/results/circuits_gpt2_pieces.txt.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "circuits_gpt2_pieces.txt"
PREFIX = "PIECES "


def measure() -> dict:
    """The child: run each piece once and return the timings."""
    import resource
    import time

    import torch

    from utils.circuits import (
        ablation_check,
        build_graph,
        harvest_mlp_io,
        make_transcoder,
        replacement_losses,
        token_mask,
        train_transcoder,
    )
    from utils.circuits.loading import load_transcoders, model_kwargs_for
    from utils.features import collect_feature_stats, tokenize_texts
    from utils.loading import load_model, load_texts
    from utils.presets import get_preset

    torch.set_grad_enabled(False)
    out: dict = {"load_before": round(os.getloadavg()[0], 2), "threads": torch.get_num_threads()}

    def clock(name, fn, **extra):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        out[name] = {
            "wall": round(time.perf_counter() - wall, 1),
            "cpu": round(time.process_time() - cpu, 1),
            # the process's peak so far: a piece that raises it is the one that needs the memory
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            **extra,
        }
        print(name, out[name], flush=True)
        return result

    preset = get_preset("gpt2-small")
    sizes = preset.circuits
    every = clock("load 12 transcoders", lambda: load_transcoders(preset, layers=range(12)))
    transcoders = {i: every[i] for i in sizes.layers}  # what the notebook loads
    model = load_model(preset, "cpu", **model_kwargs_for(transcoders))
    texts = load_texts(preset, n=sizes.texts)
    tokens, lengths = tokenize_texts(model, texts, preset.sample_context)
    mask = token_mask(tokens, model.tokenizer.bos_token_id, lengths)
    out["tokens"] = int(mask.sum())
    prompt = sizes.worked_prompts[0]
    layers = ", ".join(str(i) for i in sizes.graph_layers)
    for name, tcs, graph_layers, positions in (
        ("every layer, last 4 positions", every, tuple(range(12)), 4),
        (
            f"the preset's: layers {layers}, last {sizes.graph_positions} positions",
            transcoders,
            sizes.graph_layers,
            sizes.graph_positions,
        ),
    ):
        graph = clock(
            f"graph, {name}",
            lambda tcs=tcs, graph_layers=graph_layers, positions=positions: build_graph(
                model, tcs, prompt, layers=graph_layers, positions=positions
            ),
        )
        out[f"graph, {name}"]["nodes"] = graph.n_nodes
    clock(
        f"ablation check of one graph ({sizes.ablated_per_prompt} top + control)",
        lambda: ablation_check(model, transcoders, [graph], sizes.ablated_per_prompt),
    )
    clock(
        f"replacement losses, {len(transcoders)} MLPs replaced, {out['tokens']} tokens",
        lambda: replacement_losses(model, transcoders, tokens, mask),
    )
    x, y = harvest_mlp_io(model, tokens, [sizes.demo_layer], mask)[sizes.demo_layer]
    d_model = model.cfg.d_model
    demo = make_transcoder(
        d_model, d_model, sizes.demo_d_sae, sizes.demo_k, sizes.demo_layer, seed=0
    )
    clock(
        f"demonstration training, {sizes.demo_tokens:,} tokens",
        lambda: train_transcoder(demo, x, y, n_tokens=sizes.demo_tokens, progress=False),
    )
    clock(
        f"dashboard statistics of one transcoder, {out['tokens']} tokens",
        lambda: collect_feature_stats(
            model, transcoders[max(transcoders)], texts, context_size=preset.sample_context
        ),
    )
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    out["load_after"] = round(os.getloadavg()[0], 2)
    return out


def report(out: dict) -> str:
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# benchmarks/circuits_gpt2_pieces.py, {when}, {os.cpu_count()} CPUs, "
        f"{out['threads']} torch threads, load {out['load_before']} before, "
        f"{out['load_after']} after; stand-in GPT-2 small with 12 transcoders of 24,576 latents",
    ]
    for name, value in out.items():
        if isinstance(value, dict):
            nodes = f", {value['nodes']:,} nodes" if "nodes" in value else ""
            lines.append(
                f"{name}: {value['cpu']:.0f} CPU s ({value['wall']:.0f} s wall{nodes}; "
                f"peak memory so far {value['peak_mib']:,} MiB)"
            )
    lines.append(f"peak memory: {out['peak_rss_mib']:,} MiB")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(PREFIX + json.dumps(measure()), flush=True)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from standin_hub import build_standin_hub, standin_env

    with tempfile.TemporaryDirectory(prefix="sae-book-standin-") as tmp:
        home = Path(tmp) / "hf_home"
        print(f"Building the stand-in Hub with 12 transcoders in {home} ...", flush=True)
        build_standin_hub(home, transcoder_layers=range(12))
        done = subprocess.run(
            [sys.executable, __file__, "--child"],
            env=standin_env(home),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(PREFIX)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the measurement failed:\n{done.stdout}\n{done.stderr}")
    text = report(json.loads(lines[-1][len(PREFIX) :]))
    print(text, end="")
    if not args.no_write:
        RESULT.write_text(text, encoding="utf-8")
        print(f"written to {RESULT.relative_to(ROOT)}")


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    main()
