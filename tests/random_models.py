"""Small random models and SAEs for unit tests: sizes unlike GPT-2's, so nothing can assume 768/24576.

Built in memory (plus a tokenizer saved to a temporary folder, because TransformerLens reloads a
tokenizer by its path), with fixed seeds; no downloads.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `import utils` works however pytest is started
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

D_MODEL = 48
D_SAE = 200
N_LAYERS = 2
N_CTX = 32
HOOK = "blocks.1.hook_resid_pre"

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
        vocab_size=300, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(TRAIN_TEXT, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    fast.save_pretrained(str(folder))
    return AutoTokenizer.from_pretrained(str(folder))


def build_model(tokenizer, seed: int = 0):
    """A random 2-layer HookedSAETransformer with d_model 48."""
    from sae_lens import HookedSAETransformer
    from transformer_lens import HookedTransformerConfig

    torch.manual_seed(seed)
    cfg = HookedTransformerConfig(
        n_layers=N_LAYERS, d_model=D_MODEL, n_heads=4, d_head=12, d_mlp=96, n_ctx=N_CTX,
        d_vocab=len(tokenizer), act_fn="gelu", normalization_type="LN", seed=seed,
    )
    model = HookedSAETransformer(cfg, tokenizer=tokenizer)
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
