"""Rebuild the bundled tiny model, its tokenizer and its SAE: ``python -m utils.tiny.build``.

Seeded, CPU only, no network, reproducible: a second build on the same machine, Python and library
versions wrote bit-identical tokenizer, SAE and model weights. About 11 minutes on two CPU cores
(10.6 min measured, with light other load; ``card.json`` records each build's timings). Steps:

1. the corpus (:mod:`utils.tiny.corpus`), generated from the running Python's documentation and
   written to ``assets/corpus.json.gz`` (the file every notebook reads), and a 4096-token
   byte-level BPE trained on its training split;
2. a 2-layer TransformerLens model (d_model 128) trained with AdamW (warm-up + cosine) on it,
   evaluated on the held-out split against unigram and uniform baselines;
3. a standard (ReLU + L1) SAE with 8x expansion trained with SAELens'
   ``LanguageModelSAETrainingRunner`` on ``blocks.1.hook_resid_pre`` of the saved (fp16-rounded) model,
   evaluated with ``sae_lens.evals`` and a mean-ablation baseline;
4. ``assets/card.json`` with the metrics, sizes, seeds and versions, and three latents named from
   their top-activating held-out tokens.

Everything is written to a temporary folder next to ``assets/`` and swapped in at the end, so a
failed or interrupted build leaves the previous assets in place.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from ..environment import set_offline_defaults
from . import (
    ASSETS,
    MODEL_CONFIG_FILE,
    MODEL_NAME,
    MODEL_WEIGHTS_FILE,
    load_tiny_model,
    load_tiny_tokenizer,
)
from .corpus import CORPUS_FILE, HELDOUT_FRACTION, SPLIT_SEED, generate_corpus, write_corpus
from .metrics import (
    ce_loss_recovered,
    lm_cross_entropy,
    pack_documents,
    sae_lens_metrics,
    tokenize_documents,
    top_activations,
    uniform_cross_entropy,
    unigram_cross_entropy,
)

SEED = 0
BOS_TOKEN = "<|endoftext|>"
VOCAB_SIZE = 4096
N_CTX = 128
HOOK = "blocks.1.hook_resid_pre"
DATASET_PATH = "bundled:python-docs"
PROMPT = "Return a new list containing"

MODEL_CONFIG: dict[str, Any] = {
    "model_name": MODEL_NAME,
    "n_layers": 2,
    "d_model": 128,
    "n_heads": 4,
    "d_head": 32,
    "d_mlp": 512,
    "n_ctx": N_CTX,
    "d_vocab": VOCAB_SIZE,
    "act_fn": "gelu",
    "normalization_type": "LN",
    "positional_embedding_type": "standard",
    "default_prepend_bos": True,
    "seed": SEED,
}


def default_lm_settings() -> dict[str, Any]:
    return {
        "steps": 800,
        "batch_size": 32,
        "lr": 2e-3,
        "warmup_steps": 100,
        "weight_decay": 0.05,
        "min_lr_ratio": 0.05,
    }


def default_sae_settings() -> dict[str, Any]:
    return {
        "architecture": "standard",
        "expansion_factor": 8,
        "training_tokens": 4_000_000,
        "train_batch_size_tokens": 4096,
        "lr": 4e-3,
        "l1_coefficient": 1.5,
        "l1_warm_up_steps": 50,
        "lr_scheduler": "constant",
        "lr_warm_up_steps": 0,
        "lr_decay_fraction": 0.2,  # linear decay to zero over the last 20% of steps
        "dead_feature_window_fraction": 0.25,  # a latent is "dead" after a quarter of the run silent
        "normalize_activations": "expected_average_only_in",
        "n_batches_in_buffer": 128,  # buffer of 128 contexts (16k tokens) to shuffle activations
        "store_batch_size_prompts": 32,
    }


def log(message: str) -> None:
    print(f"[tiny build {time.strftime('%H:%M:%S')}] {message}", flush=True)


# 1. Tokenizer -----------------------------------------------------------------------------------


def train_tokenizer(documents: list[str], folder: Path) -> None:
    """Train a byte-level BPE on ``documents`` and save it in Hugging Face format to ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS_TOKEN],  # id 0; BOS, EOS and padding, as in GPT-2
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS_TOKEN, eos_token=BOS_TOKEN, unk_token=BOS_TOKEN
    )
    wrapped.save_pretrained(str(folder))
    # transformers 5 records its own class name ("TokenizersBackend"), which transformers 4 does not
    # know; the generic fast-tokenizer class loads the same files under both.
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


# 2. Language model ------------------------------------------------------------------------------


def train_language_model(
    model, train_tokens: list[list[int]], bos_id: int, settings: dict[str, Any]
) -> list[float]:
    """Train ``model`` in place on freshly packed contexts each epoch; returns the loss curve."""
    from tqdm.auto import tqdm

    steps, batch_size = settings["steps"], settings["batch_size"]
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.ndim >= 2 and "embed" not in name else no_decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": settings["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=settings["lr"],
        betas=(0.9, 0.98),
    )

    def lr_factor(step: int) -> float:
        if step < settings["warmup_steps"]:
            return (step + 1) / settings["warmup_steps"]
        progress = (step - settings["warmup_steps"]) / max(1, steps - settings["warmup_steps"])
        floor = settings["min_lr_ratio"]
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    generator = torch.Generator().manual_seed(SEED)
    order_rng = random.Random(SEED)
    batches: list[torch.Tensor] = []
    losses: list[float] = []
    model.train()
    bar = tqdm(range(steps), desc="language model", mininterval=2.0)
    for step in bar:
        if (
            not batches
        ):  # a new epoch: shuffle documents, re-pack (new context boundaries), shuffle contexts
            docs = list(train_tokens)
            order_rng.shuffle(docs)
            contexts = pack_documents(docs, bos_id, N_CTX)
            contexts = contexts[torch.randperm(len(contexts), generator=generator)]
            batches = list(contexts.split(batch_size))[: len(contexts) // batch_size]
        loss = model(batches.pop(), return_type="loss")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    bar.close()
    model.eval()
    return losses


def save_model(model, folder: Path) -> None:
    """fp16 safetensors of the parameters + config.json (the HookedTransformerConfig's arguments)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {
        name: p.detach().to(torch.float16).contiguous() for name, p in model.named_parameters()
    }
    # One metadata key only: safetensors writes several in a random order, and the file would
    # change on every rebuild.
    save_file(state, str(folder / MODEL_WEIGHTS_FILE), metadata={"format": "pt"})
    (folder / MODEL_CONFIG_FILE).write_text(
        json.dumps(MODEL_CONFIG, indent=2) + "\n", encoding="utf-8"
    )


def sample_continuation(model, prompt: str, max_new_tokens: int = 40) -> str:
    """A seeded sample (temperature 0.7) continuing ``prompt``."""
    torch.manual_seed(SEED)
    return model.generate(
        prompt,
        max_new_tokens=max_new_tokens,
        temperature=0.7,
        top_k=40,
        verbose=False,
        stop_at_eos=True,
    )


# 3. SAE -----------------------------------------------------------------------------------------


def train_sae(model, train_documents: list[str], settings: dict[str, Any]):
    """Train the SAE with SAELens' runner on the model's residual stream; returns an inference ``SAE``."""
    from datasets import Dataset
    from sae_lens import (
        SAE,
        LanguageModelSAERunnerConfig,
        LanguageModelSAETrainingRunner,
        LoggingConfig,
        StandardTrainingSAEConfig,
    )

    d_in = model.cfg.d_model
    steps = settings["training_tokens"] // settings["train_batch_size_tokens"]
    torch.manual_seed(
        SEED
    )  # SAELens' runner does not seed: its SAE init and buffer shuffles use torch's RNG
    cfg = LanguageModelSAERunnerConfig(
        sae=StandardTrainingSAEConfig(
            d_in=d_in,
            d_sae=d_in * settings["expansion_factor"],
            l1_coefficient=settings["l1_coefficient"],
            l1_warm_up_steps=settings["l1_warm_up_steps"],
            normalize_activations=settings["normalize_activations"],
        ),
        model_name=MODEL_NAME,
        model_class_name="HookedSAETransformer",
        hook_name=HOOK,
        dataset_path=DATASET_PATH,
        is_dataset_tokenized=False,
        streaming=False,
        context_size=N_CTX,
        prepend_bos=True,
        exclude_special_tokens=True,
        training_tokens=settings["training_tokens"],
        train_batch_size_tokens=settings["train_batch_size_tokens"],
        n_batches_in_buffer=settings["n_batches_in_buffer"],
        store_batch_size_prompts=settings["store_batch_size_prompts"],
        lr=settings["lr"],
        lr_scheduler_name=settings["lr_scheduler"],
        lr_warm_up_steps=settings["lr_warm_up_steps"],
        lr_decay_steps=int(steps * settings["lr_decay_fraction"]),
        dead_feature_window=max(10, int(steps * settings["dead_feature_window_fraction"])),
        feature_sampling_window=max(10, int(steps * settings["dead_feature_window_fraction"])),
        n_batches_for_norm_estimate=50,
        n_eval_batches=2,
        model_from_pretrained_kwargs={},
        device="cpu",
        seed=SEED,
        logger=LoggingConfig(log_to_wandb=False),
        checkpoint_path=None,
        output_path=None,
        verbose=False,
    )
    log(
        f"SAE: {settings['architecture']} d_sae {d_in * settings['expansion_factor']}, {steps} steps"
    )
    dataset = Dataset.from_dict({"text": train_documents})
    trained = LanguageModelSAETrainingRunner(
        cfg, override_dataset=dataset, override_model=model
    ).run()
    # An inference SAE (no training-only fields), with the activation normalisation already folded
    # into its weights by the trainer, so it reads raw activations.
    state = trained.state_dict()
    trained.process_state_dict_for_saving_inference(state)
    sae = SAE.from_dict(trained.cfg.get_inference_sae_cfg_dict())
    sae.load_state_dict(state)
    if sae.cfg.normalize_activations != "none":
        raise RuntimeError(
            f"expected the trainer to fold activation normalisation, got {sae.cfg.normalize_activations}"
        )
    return sae.eval()


# 4. Named latents -------------------------------------------------------------------------------


# What a reader of Python's docs can name at a glance, in order of preference. Token latents fire
# on one token; context latents fire on many different tokens that share what comes just before.
PREFERRED_TOKENS = ("def", "self", "None", "return", "import", "class", "Return")
PREFERRED_CONTEXTS = {
    "def": "the name being defined, just after `def`",
    "__": "the name inside a dunder such as `__hash__`, just after `__`",
    "'": "the word just after an opening quote `'`",
    "(": "the first name just after `(`",
}


def name_latents(
    model, sae, contexts: torch.Tensor, density: torch.Tensor, k: int = 30
) -> list[dict[str, Any]]:
    """Name three latents from their top-``k`` activations on held-out ``contexts``.

    * one *token* latent: at least 90% of its top activations are on one word-like token
      (``def``, ``self``, ``None``, ... first, see ``PREFERRED_TOKENS``; the label shows the
      token exactly, so `` self`` with its leading space is not ``self``);
    * two *context* latents: their top activations are on at least 8 different tokens, but at
      least 80% of them have one token among the 3 tokens before (e.g. names after ``def``), so
      the latent reads context, not just the current token (``PREFERRED_CONTEXTS`` first).

    Only latents with a held-out firing density between 0.1% and 5% are considered.
    """
    values, positions = top_activations(model, sae, contexts, k=k)
    flat = contexts.flatten()
    n_ctx = contexts.shape[1]
    bos = model.tokenizer.bos_token_id

    def text(ids: list[int]) -> list[str]:
        return [model.tokenizer.decode([i]) for i in ids]

    # (sort key, latent, label, kind, share of the top-k activations that fit the label)
    token_latents: dict[str, tuple] = {}
    context_latents: dict[str, tuple] = {}
    for latent in range(sae.cfg.d_sae):
        if values[latent, -1] <= 0 or not (1e-3 <= float(density[latent]) <= 0.05):
            continue
        pos = positions[latent]
        current = Counter(text(flat[pos].tolist()))
        token, count = current.most_common(1)[0]
        word = token.strip()
        if count / k >= 0.9 and word.isidentifier() and len(word) >= 3:
            entry = (
                (-count, -float(density[latent])),
                latent,
                f"fires on `{token}`",
                "token",
                count / k,
            )
            token_latents[token] = min(token_latents.get(token, entry), entry)
            continue
        if len(current) < 8:
            continue
        window: Counter[str] = Counter()
        for p in pos.tolist():
            start = max(p - 3, (p // n_ctx) * n_ctx)
            window.update(
                {t.strip() for t in text([t for t in flat[start:p].tolist() if t != bos])}
            )
        for before, count in window.most_common(3):
            if count / k >= 0.8 and before and before not in {".", ","}:
                anchor = next((a for a in PREFERRED_CONTEXTS if before.endswith(a)), before)
                label = PREFERRED_CONTEXTS.get(
                    anchor, f"many different tokens shortly after `{before}`"
                )
                entry = ((-count, -len(current)), latent, f"fires on {label}", "context", count / k)
                context_latents[anchor] = min(context_latents.get(anchor, entry), entry)
                break
    if os.environ.get("TINY_BUILD_DEBUG"):
        for key, entry in sorted(token_latents.items()) + sorted(context_latents.items()):
            log(
                f"candidate {key!r}: latent {entry[1]} {entry[2]}; top {text(flat[positions[entry[1], :8]].tolist())}"
            )

    # The bare token first (``def`` opening a line), then the one with a leading space (`` def``).
    preferred = [t for word in PREFERRED_TOKENS for t in (word, f" {word}")]
    preferred_tokens = [token_latents[t] for t in preferred if t in token_latents]
    other_tokens = sorted(
        (e for t, e in token_latents.items() if t not in preferred), key=lambda e: e[0]
    )
    preferred_contexts = [context_latents[a] for a in PREFERRED_CONTEXTS if a in context_latents]
    other_contexts = sorted(
        (e for a, e in context_latents.items() if a not in PREFERRED_CONTEXTS), key=lambda e: e[0]
    )
    tokens_ranked = preferred_tokens + other_tokens
    chosen = tokens_ranked[:1] + (preferred_contexts + other_contexts)[:2]
    chosen += tokens_ranked[1 : 1 + 3 - len(chosen)]  # too few context latents: more token latents
    chosen = [(latent, label, kind, share) for _, latent, label, kind, share in chosen]

    named = []
    for latent, label, kind, share in chosen:
        pos = positions[latent]
        examples = []
        for p in pos[:5].tolist():
            start = max(p - 8, (p // n_ctx) * n_ctx + 1)
            examples.append(
                f"{model.tokenizer.decode(flat[start:p].tolist())}[[{model.tokenizer.decode([int(flat[p])])}]]"
            )
        named.append(
            {
                "index": latent,
                "label": label,
                "kind": kind,
                "density": round(float(density[latent]), 5),
                f"share_of_top_{k}_fitting_label": round(share, 3),
                "max_activation": round(float(values[latent, 0]), 3),
                "top_tokens": text(flat[pos[:10]].tolist()),
                "top_contexts": examples,
            }
        )
    return named


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
    train_tokens = tokenize_documents(tokenizer, corpus.train)
    heldout_tokens = tokenize_documents(tokenizer, corpus.heldout)
    train_contexts = pack_documents(train_tokens, bos, N_CTX)
    heldout_contexts = pack_documents(heldout_tokens, bos, N_CTX)
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
        "heldout_cross_entropy": lm_cross_entropy(model, heldout_contexts),
        "unigram_cross_entropy": unigram_cross_entropy(
            train_contexts, heldout_contexts, VOCAB_SIZE
        ),
        "uniform_cross_entropy": uniform_cross_entropy(VOCAB_SIZE),
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
    sae_metrics = sae_lens_metrics(model, sae, corpus.heldout)
    density = sae_metrics.pop("feature_density")
    recovered = ce_loss_recovered(model, sae, heldout_contexts)
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
        description="Rebuild the bundled tiny model, tokenizer and SAE."
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


if __name__ == "__main__":
    main(sys.argv[1:])
