"""Train the bundled tiny model's transcoders (one per MLP) and record them on its model card.

    python -m utils.circuits.build_tiny [--out utils/tiny/assets/transcoders] [--threads 2]

Each layer's transcoder reads ``blocks.L.ln2.hook_normalized`` and predicts ``blocks.L.hook_mlp_out``
on the tiny corpus's training split (BOS positions left out), with the settings in
:data:`SETTINGS`, and is saved in SAELens' own format (``Transcoder.save_model``: ``cfg.json`` and
``sae_weights.safetensors``) in a folder named after its input hook. Its FVU, L0 and dead latents on
held-out text, the next-token losses with both MLPs replaced (and zero-ablated), the training time
and the settings go to ``card.json`` under ``"transcoders"``. Deterministic (seeded); a few minutes
on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..presets import TINY_ASSETS, get_preset
from .replacement import replacement_losses
from .transcoders import (
    harvest_mlp_io,
    make_transcoder,
    mlp_in_hook,
    token_mask,
    train_transcoder,
    transcoder_metrics,
)

SETTINGS = {
    "architecture": "transcoder (SAELens Transcoder) with SAELens' TopK activation",
    "d_sae": 1024,
    "k": 16,
    "training_tokens": 2_000_000,  # per layer; about four passes over the training split
    "batch_size": 2048,
    "lr": 2e-3,
    "optimizer": "Adam, constant learning rate",
    "loss": "squared error / variance of the batch's MLP output (FVU)",
    "unit_decoder": False,
    "decay_fraction": 0.0,
    "init": "decoder rows random unit vectors, encoder their transpose, b_dec = mean MLP output",
    "seed": 0,  # layer L uses seed + L
    "heldout_contexts": 256,  # contexts of 128 tokens for FVU/L0/dead and the losses
}


def packed_contexts(model, texts: list[str], n_ctx: int) -> torch.Tensor:
    """The texts tokenized and packed into ``[n, n_ctx]`` contexts: each starts with BOS, documents
    are separated by BOS, the last incomplete context is dropped."""
    bos = model.tokenizer.bos_token_id
    ids = model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    stream: list[int] = []
    for doc in ids:
        if doc:
            stream += [bos, *doc]
    width = n_ctx - 1
    n = len(stream) // width
    body = torch.tensor(stream[: n * width], dtype=torch.long).reshape(n, width)
    return torch.cat([torch.full((n, 1), bos, dtype=torch.long), body], dim=1)


def build(out: Path, threads: int = 2) -> dict:
    """Train, save and measure the transcoders; returns the card entry."""
    from ..loading import load_model, load_texts

    torch.set_num_threads(threads)
    preset = get_preset("tiny")
    model = load_model(preset)
    n_ctx = model.cfg.n_ctx
    bos = model.tokenizer.bos_token_id
    train = packed_contexts(model, load_texts(preset, split="train"), n_ctx)
    heldout = packed_contexts(model, load_texts(preset), n_ctx)[: SETTINGS["heldout_contexts"]]
    layers = list(range(model.cfg.n_layers))
    started = time.perf_counter()
    io = harvest_mlp_io(model, train, layers, dtype=torch.float16, progress=True)
    held_io = harvest_mlp_io(model, heldout, layers)
    harvest_seconds = time.perf_counter() - started
    entry: dict = {"settings": SETTINGS, "layers": {}}
    transcoders = {}
    for layer in layers:
        tc = make_transcoder(
            model.cfg.d_model,
            model.cfg.d_model,
            SETTINGS["d_sae"],
            SETTINGS["k"],
            layer,
            model_name=model.cfg.model_name,
            seed=SETTINGS["seed"] + layer,
        )
        run = train_transcoder(
            tc,
            *io[layer],
            n_tokens=SETTINGS["training_tokens"],
            batch_size=SETTINGS["batch_size"],
            lr=SETTINGS["lr"],
            seed=SETTINGS["seed"] + layer,
            unit_decoder=SETTINGS["unit_decoder"],
            decay_fraction=SETTINGS["decay_fraction"],
        )
        metrics = transcoder_metrics(tc, *held_io[layer])
        tc.cfg.metadata.training = {"tokens": run.n_tokens, "steps": run.n_steps}
        tc.save_model(out / mlp_in_hook(layer))
        transcoders[layer] = tc
        entry["layers"][str(layer)] = {
            **metrics.as_dict(),
            "train_tokens": run.n_tokens,
            "train_seconds": round(run.seconds, 1),
            "final_batch_fvu": run.fvu[-1],
        }
        print(f"layer {layer}: {metrics} in {run.seconds:.0f} s", flush=True)
    losses = replacement_losses(model, transcoders, heldout, token_mask(heldout, bos))
    entry["losses"] = losses.as_dict()
    entry["harvest_seconds"] = round(harvest_seconds, 1)
    entry["threads"] = threads
    entry["timing_note"] = "wall seconds on the machine that built them (load not controlled)"
    entry["storage"] = "float32 safetensors (SAELens save_model), one folder per layer"
    print(f"losses: {losses.as_dict()}", flush=True)
    return entry


def write_card_entry(entry: dict, card: Path = TINY_ASSETS / "card.json") -> None:
    """Put ``entry`` under ``"transcoders"`` in the model card, leaving every other key alone."""
    data = json.loads(card.read_text(encoding="utf-8"))
    data["transcoders"] = entry
    card.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=TINY_ASSETS / "transcoders")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-card", action="store_true", help="do not update card.json")
    args = parser.parse_args(argv)
    entry = build(args.out, threads=args.threads)
    if not args.no_card:
        write_card_entry(entry)


if __name__ == "__main__":
    main()
