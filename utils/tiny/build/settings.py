"""The tiny build's fixed choices: seeds, sizes, hyperparameters, and its log line."""

from __future__ import annotations

import time
from typing import Any

from .. import MODEL_NAME

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
