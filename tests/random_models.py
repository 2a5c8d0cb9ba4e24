"""Small random models and SAEs for unit tests: sizes unlike GPT-2's, so nothing can assume 768/24576.

Built in memory (plus a tokenizer saved to a temporary folder, because TransformerLens reloads a
tokenizer by its path), with fixed seeds; no downloads.
"""

from __future__ import annotations

from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

D_MODEL = 48
D_SAE = 200
N_LAYERS = 2
N_CTX = 32
HOOK = "blocks.1.hook_resid_pre"
SAMPLE_CONTEXT = 24  # tokens per text in the shared `sample` fixture (tests/conftest.py)

TRAIN_TEXT = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "def add(a, b):\n    return a + b\n",
    "Sparse autoencoders split activations into features.",
    "Hello world! Hello there, general.",
    "import os\nimport sys\nprint(os.getcwd())",
] * 10

SAMPLE_TEXTS = [
    "The capital of France is Paris.",
    "Paris is a city in France, and Rome is a city in Italy.",
    "def add(a, b): return a + b",
    "",  # empty texts are skipped
    "Hello world",
    "Sparse autoencoders split activations into many features, and most of them are zero. " * 3,
]


def build_tokenizer(folder: Path):
    """A 300-token byte-level BPE tokenizer with a GPT-2-style <|endoftext|> BOS/EOS/PAD token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TRAIN_TEXT, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    fast.save_pretrained(str(folder))
    return AutoTokenizer.from_pretrained(str(folder))


def build_model(tokenizer, seed: int = 0, **overrides):
    """A random 2-layer HookedSAETransformer with d_model 48 and a final LayerNorm scale far from 1.

    ``overrides`` replace config settings (e.g. ``normalization_type="RMS"``, ``dtype``)."""
    from sae_lens import HookedSAETransformer
    from transformer_lens import HookedTransformerConfig

    torch.manual_seed(seed)
    cfg = HookedTransformerConfig(
        n_layers=N_LAYERS,
        d_model=D_MODEL,
        n_heads=4,
        d_head=12,
        d_mlp=96,
        n_ctx=N_CTX,
        d_vocab=len(tokenizer),
        act_fn="gelu",
        **{"normalization_type": "LN", "seed": seed, **overrides},
    )
    model = HookedSAETransformer(cfg, tokenizer=tokenizer)
    # A trained model's final LayerNorm scales each dimension differently; a fresh one has all
    # ones, which would let code that forgets the scale pass (feature_logit_effects' tests).
    if hasattr(getattr(model, "ln_final", None), "w"):  # no final norm without a normalization
        with torch.no_grad():
            model.ln_final.w.copy_(0.25 + 1.5 * torch.rand(D_MODEL))
    model.eval()
    return model


def build_sae(d_in: int = D_MODEL, d_sae: int = D_SAE, hook: str = HOOK, seed: int = 0, **metadata):
    """A random StandardSAE whose metadata names ``hook`` (and prepend_bos=True unless given)."""
    from sae_lens import StandardSAE, StandardSAEConfig

    torch.manual_seed(seed)
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae))
    # A negative encoder bias makes it sparse, like a trained SAE.
    with torch.no_grad():
        sae.b_enc.fill_(-0.5)
    sae.cfg.metadata.hook_name = hook
    sae.cfg.metadata.prepend_bos = metadata.pop("prepend_bos", True)
    for key, value in metadata.items():
        sae.cfg.metadata[key] = value
    sae.eval()
    return sae


# ---- small training runs (tests of utils.training, utils.evaluation, utils.exercises) ----------

TRAIN_CONTEXT = 16
BATCH_TOKENS = 64
TRAINING_TEXTS = [
    f"def function_{i}(x):\n    return x * {i} + len('{'abc' * (i % 5)}')  # number {i}"
    for i in range(120)
]


def make_cfg(architecture: str = "standard", steps: int = 12, log_frequency: int = 3):
    """A runner config for ``steps`` steps of 64 tokens on the random model (no output files)."""
    from sae_lens import (
        LanguageModelSAERunnerConfig,
        LoggingConfig,
        StandardTrainingSAEConfig,
        TopKTrainingSAEConfig,
    )

    if architecture == "standard":
        sae = StandardTrainingSAEConfig(
            d_in=D_MODEL,
            d_sae=D_SAE,
            l1_coefficient=1.0,
            l1_warm_up_steps=2,
            normalize_activations="expected_average_only_in",
        )
    else:
        sae = TopKTrainingSAEConfig(
            d_in=D_MODEL, d_sae=D_SAE, k=8, normalize_activations="expected_average_only_in"
        )
    return LanguageModelSAERunnerConfig(
        sae=sae,
        model_name="random-test-model",
        hook_name="blocks.1.hook_resid_pre",
        dataset_path="in-memory",
        is_dataset_tokenized=False,
        streaming=False,
        context_size=TRAIN_CONTEXT,
        training_tokens=steps * BATCH_TOKENS,
        train_batch_size_tokens=BATCH_TOKENS,
        lr=1e-3,
        n_batches_in_buffer=8,
        store_batch_size_prompts=4,
        n_batches_for_norm_estimate=2,
        dead_feature_window=5,
        feature_sampling_window=5,
        device="cpu",
        logger=LoggingConfig(log_to_wandb=False, wandb_log_frequency=log_frequency),
        output_path=None,
        checkpoint_path=None,
        exclude_special_tokens=True,
        verbose=False,
    )


def train(runner_class, cfg, model, dataset, **kwargs):
    """``(runner, trained SAE)``, seeded like the notebook."""
    torch.manual_seed(0)
    runner = runner_class(cfg, override_dataset=dataset, override_model=model, **kwargs)
    return runner, runner.run()
