"""The tiny build's steps in order (:func:`build`), the swap of the new files into ``assets/`` and
the command line (``python -m utils.tiny.build``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ...environment import set_offline_defaults
from .. import (
    ASSETS,
    MODEL_NAME,
    load_tiny_model,
    load_tiny_tokenizer,
)
from ..corpus import CORPUS_FILE, HELDOUT_FRACTION, SPLIT_SEED, write_corpus
from . import metrics
from .corpus import generate_corpus
from .language_model import sample_continuation, save_model, train_language_model, train_tokenizer
from .sae import name_latents, train_sae
from .settings import (
    BOS_TOKEN,
    HOOK,
    MODEL_CONFIG,
    N_CTX,
    PROMPT,
    SEED,
    VOCAB_SIZE,
    default_lm_settings,
    default_sae_settings,
    log,
)

# The build ----------------------------------------------------------------------------------------


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build(out: Path, lm: dict[str, Any], sae_settings: dict[str, Any]) -> dict[str, Any]:
    """Build every asset into ``out`` (which must be empty or absent); returns the card."""
    import sae_lens
    import tokenizers
    import transformer_lens
    import transformers

    torch.manual_seed(SEED)
    random.seed(SEED)
    started = time.time()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    timings: dict[str, float] = {}
    out.mkdir(parents=True, exist_ok=True)

    corpus = generate_corpus()
    corpus_sha256 = write_corpus(corpus, out / CORPUS_FILE.name)
    write_corpus_licence(out, corpus.python_version)
    log(
        f"corpus generated from this Python ({corpus.python_version}): {len(corpus.train)} training + "
        f"{len(corpus.heldout)} held-out documents, {corpus.n_chars:,} characters "
        f"(fingerprint {corpus.fingerprint}), written to {CORPUS_FILE.name}"
    )
    train_tokenizer(corpus.train, out / "tokenizer")
    tokenizer = load_tiny_tokenizer(out / "tokenizer")
    bos = tokenizer.bos_token_id
    train_tokens = metrics.tokenize_documents(tokenizer, corpus.train)
    heldout_tokens = metrics.tokenize_documents(tokenizer, corpus.heldout)
    train_contexts = metrics.pack_documents(train_tokens, bos, N_CTX)
    heldout_contexts = metrics.pack_documents(heldout_tokens, bos, N_CTX)
    timings["corpus_and_tokenizer_s"] = time.time() - started
    log(f"tokenizer: {len(tokenizer)} tokens; {train_contexts.numel():,} training and "
        f"{heldout_contexts.numel():,} held-out tokens in {N_CTX}-token contexts")  # fmt: skip

    t0 = time.time()
    from sae_lens import HookedSAETransformer
    from transformer_lens import HookedTransformerConfig

    model = HookedSAETransformer(
        HookedTransformerConfig(**MODEL_CONFIG, device="cpu"), tokenizer=tokenizer
    )
    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"language model: {n_params:,} parameters, {lm['steps']} steps of {lm['batch_size']}x{N_CTX} tokens"
    )
    losses = train_language_model(model, train_tokens, bos, lm)
    save_model(model, out / "model")
    timings["language_model_s"] = time.time() - t0

    # Everything below uses the model as shipped (fp16 weights loaded back in fp32).
    model = load_tiny_model(out / "model")
    lm_metrics = {
        "heldout_cross_entropy": metrics.lm_cross_entropy(model, heldout_contexts),
        "unigram_cross_entropy": metrics.unigram_cross_entropy(
            train_contexts, heldout_contexts, VOCAB_SIZE
        ),
        "uniform_cross_entropy": metrics.uniform_cross_entropy(VOCAB_SIZE),
        "train_loss_last_50_steps": sum(losses[-50:]) / len(losses[-50:]),
        "heldout_tokens": heldout_contexts.numel(),
    }
    lm_metrics["margin_over_unigram"] = (
        lm_metrics["unigram_cross_entropy"] - lm_metrics["heldout_cross_entropy"]
    )
    sample = sample_continuation(model, PROMPT)
    log("held-out cross-entropy {heldout_cross_entropy:.3f} nats (unigram {unigram_cross_entropy:.3f}, "
        "uniform {uniform_cross_entropy:.3f}; margin over unigram {margin_over_unigram:.2f})".format(**lm_metrics))  # fmt: skip
    log(f"sample: {sample!r}")

    t0 = time.time()
    sae = train_sae(model, corpus.train, sae_settings)
    sae.save_model(out / "sae")
    timings["sae_s"] = time.time() - t0

    from sae_lens import SAE

    t0 = time.time()
    sae = SAE.load_from_disk(str(out / "sae"))
    sae_metrics = metrics.sae_lens_metrics(model, sae, corpus.heldout)
    density = sae_metrics.pop("feature_density")
    recovered = metrics.ce_loss_recovered(model, sae, heldout_contexts)
    named = name_latents(model, sae, heldout_contexts, density)
    timings["evaluation_s"] = time.time() - t0
    log("SAE: explained variance {explained_variance:.3f}, L0 {l0:.1f}, dead {dead_fraction:.1%}, "
        "CE loss score (sae_lens, zero-ablation) {ce_loss_score:.3f}".format(**sae_metrics))  # fmt: skip
    log("CE recovered on all held-out tokens: zero-ablation {ce_loss_recovered_zero_ablation:.3f}, "
        "mean-ablation {ce_loss_recovered_mean_ablation:.3f} (clean {ce_clean:.3f}, with SAE {ce_with_sae:.3f}, "
        "mean-ablated {ce_mean_ablation:.3f}, zero-ablated {ce_zero_ablation:.3f})".format(**recovered))  # fmt: skip
    for latent in named:
        log(f"latent {latent['index']}: {latent['label']}; top tokens {latent['top_tokens']}")

    timings["total_s"] = time.time() - started
    sizes = {name: folder_size(out / name) for name in ("tokenizer", "model", "sae")}
    card = {
        "name": MODEL_NAME,
        "description": "A 2-layer TransformerLens model trained on Python's own documentation, with a "
        "standard (ReLU + L1) SAE on blocks.1.hook_resid_pre. Rebuild with: python -m utils.tiny.build",
        "corpus": {
            "sources": "pydoc_data.topics, standard-library docstrings (parsed with ast), built-in module docstrings",
            "python_version": corpus.python_version,
            "fingerprint": corpus.fingerprint,
            "file": CORPUS_FILE.name,
            "sha256": corpus_sha256,
            "licence": "CORPUS_LICENSE.md",
            "train_documents": len(corpus.train),
            "heldout_documents": len(corpus.heldout),
            "characters": corpus.n_chars,
            "heldout_fraction": HELDOUT_FRACTION,
            "split_seed": SPLIT_SEED,
            "train_tokens": train_contexts.numel(),
            "heldout_tokens": heldout_contexts.numel(),
        },
        "tokenizer": {
            "type": "byte-level BPE",
            "vocab_size": len(tokenizer),
            "bos_token": BOS_TOKEN,
        },
        "model": {
            "config": MODEL_CONFIG,
            "parameters": n_params,
            "storage": "float16 safetensors, loaded as float32",
            "training": lm,
            "metrics": lm_metrics,
            "prompt": PROMPT,
            "sample_continuation": sample,
        },  # fmt: skip
        "sae": {
            "hook_name": HOOK,
            "d_in": sae.cfg.d_in,
            "d_sae": sae.cfg.d_sae,
            "training": sae_settings,
            "metrics": {**sae_metrics, **recovered},
            "evaluation_sample": "the whole held-out split for explained variance, L0 and dead latents "
            "(BOS excluded); its first 10 batches of 32 contexts for sae_lens' CE/KL; the whole split for "
            "the zero- and mean-ablation CE recovered (mean taken over the same tokens)",
        },
        "features_named": named,
        "sizes_bytes": {**sizes, "total": sum(sizes.values())},
        "seed": SEED,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },  # fmt: skip
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sae_lens": sae_lens.__version__,
            "transformer_lens": getattr(transformer_lens, "__version__", "unknown"),
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    log(f"assets {sizes} bytes; build took {timings['total_s'] / 60:.1f} min")
    return card


def swap_in(built: Path, target: Path) -> None:
    """Replace ``target`` by ``built`` (both in the same folder), keeping ``target`` until the end."""
    old = target.with_name(target.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    built.rename(target)
    if old.exists():
        shutil.rmtree(old)


CORPUS_LICENSE = """\
# Licence of corpus.json.gz

`corpus.json.gz` holds text taken from Python's own documentation, as shipped with CPython {version}:
the help topics of `pydoc_data.topics`, and the docstrings of the standard library's modules,
classes and functions (read from its source with `ast`, or from built-in modules). Nothing was
rewritten; the text was only grouped into documents and split into training and held-out sets.

That text is copyright the Python Software Foundation and is distributed under the
**Python Software Foundation License Version 2** (PSF-2.0), the licence of CPython's source code and
documentation: https://docs.python.org/3/license.html. Code examples in Python's documentation are
also available under the Zero-Clause BSD licence (same page).

The book's own code and text are licensed as `LICENSE` at the repository root says; this file and
`corpus.json.gz` are the exception. Regenerate the corpus with `python -m utils.tiny.build`.
"""


def write_corpus_licence(folder: Path, python_version: str) -> None:
    """Write CORPUS_LICENSE.md (the Python documentation licence) beside the corpus file."""
    (folder / "CORPUS_LICENSE.md").write_text(
        CORPUS_LICENSE.format(version=python_version), encoding="utf-8"
    )


def write_corpus_only(target: Path) -> None:
    """Regenerate only ``corpus.json.gz`` in ``target`` and its entry in ``card.json``.

    The model and SAE are left alone, so this is only consistent when the running Python generates
    the corpus they were trained on (the card's fingerprint); otherwise it says so and stops.
    """
    card_path = target / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    corpus = generate_corpus()
    log(
        f"corpus generated from this Python ({corpus.python_version}): fingerprint {corpus.fingerprint}"
    )
    built_from = card["corpus"]
    if corpus.fingerprint != built_from["fingerprint"]:
        raise SystemExit(
            f"This Python ({corpus.python_version}) generates a different corpus (fingerprint "
            f"{corpus.fingerprint}) from the one the bundled model was trained on (Python "
            f"{built_from['python_version']}, fingerprint {built_from['fingerprint']}). Run this on "
            f"Python {built_from['python_version']}, or rebuild everything: python -m utils.tiny.build"
        )
    sha256 = write_corpus(corpus, target / CORPUS_FILE.name)
    write_corpus_licence(target, corpus.python_version)
    built_from.update({"file": CORPUS_FILE.name, "sha256": sha256, "licence": "CORPUS_LICENSE.md"})
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {target / CORPUS_FILE.name} (sha256 {sha256[:16]}...) and its entry in card.json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m utils.tiny.build",
        description="Rebuild the bundled tiny model, tokenizer and SAE.",
    )
    parser.add_argument(
        "--out", type=Path, default=ASSETS, help=f"where to write the assets (default {ASSETS})"
    )
    parser.add_argument("--lm-steps", type=int, help="language-model training steps")
    parser.add_argument("--sae-tokens", type=int, help="SAE training tokens")
    parser.add_argument("--l1", type=float, help="SAE L1 coefficient")
    parser.add_argument("--sae-lr", type=float, help="SAE learning rate")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument(
        "--corpus-only",
        action="store_true",
        help="regenerate only corpus.json.gz (needs the Python the model was built on)",
    )
    args = parser.parse_args(argv)
    if args.corpus_only:
        write_corpus_only(args.out.resolve())
        return

    if "OMP_WAIT_POLICY" not in os.environ:
        # OpenMP threads that spin while waiting make training ~4x slower when another process
        # shares the cores (measured on a shared 2-core machine). The policy is read when torch is
        # first imported, which has already happened here, so restart the interpreter with it set.
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.execv(
            sys.executable,
            [sys.executable, "-m", "utils.tiny.build", *(sys.argv[1:] if argv is None else argv)],
        )

    set_offline_defaults()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(args.threads)
    # Bit-for-bit reproducible builds: without this the embedding's backward pass sums in a
    # thread-dependent order on CPU, and two builds drift apart.
    torch.use_deterministic_algorithms(True, warn_only=True)
    lm, sae_settings = default_lm_settings(), default_sae_settings()
    if args.lm_steps:
        lm["steps"] = args.lm_steps
        lm["warmup_steps"] = min(lm["warmup_steps"], max(1, args.lm_steps // 10))
    if args.sae_tokens:
        sae_settings["training_tokens"] = args.sae_tokens
    if args.l1:
        sae_settings["l1_coefficient"] = args.l1
    if args.sae_lr:
        sae_settings["lr"] = args.sae_lr
    steps = sae_settings["training_tokens"] // sae_settings["train_batch_size_tokens"]
    sae_settings["l1_warm_up_steps"] = min(sae_settings["l1_warm_up_steps"], steps // 10)

    target = args.out.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-building-", dir=target.parent))
    building.chmod(0o755)  # mkdtemp makes it private; the assets are ordinary files
    try:
        build(building, lm, sae_settings)
        for path in building.rglob("*"):  # safetensors writes owner-only files
            path.chmod(0o755 if path.is_dir() else 0o644)
        swap_in(building, target)
    finally:
        if building.exists():
            shutil.rmtree(building)
    log(f"wrote {target}")
