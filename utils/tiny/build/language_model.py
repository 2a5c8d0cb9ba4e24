"""Steps 1 and 2 of the tiny build: a byte-level BPE tokenizer and a 2-layer language model trained
on the corpus, saved in the layout :func:`utils.tiny.load_tiny_model` reads."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import torch

from .. import MODEL_CONFIG_FILE, MODEL_WEIGHTS_FILE
from .metrics import pack_documents
from .settings import (
    BOS_TOKEN,
    MODEL_CONFIG,
    N_CTX,
    SEED,
    VOCAB_SIZE,
)

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
