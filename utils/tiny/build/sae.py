"""Steps 3 and 4 of the tiny build: the SAE trained with SAELens on the saved model, and the latents
named from their top-activating held-out tokens."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import torch

from .. import MODEL_NAME
from .metrics import top_activations
from .settings import (
    DATASET_PATH,
    HOOK,
    N_CTX,
    SEED,
    log,
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
