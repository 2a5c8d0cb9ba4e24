"""The book's bundled small model: a 2-layer TransformerLens model and its SAE, trained on Python's docs.

The built files live in ``utils/tiny/assets/``::

    assets/tokenizer/   a byte-level BPE tokenizer in Hugging Face format (AutoTokenizer loads it)
    assets/model/       config.json (a HookedTransformerConfig) + model.safetensors (fp16 weights)
    assets/sae/         cfg.json + sae_weights.safetensors, written by SAELens' ``save_model``
    assets/card.json    what was measured when they were built (metrics, sizes, seeds, versions)

``python -m utils.tiny.build`` rebuilds all of them: the package :mod:`utils.tiny.build` (the
corpus generator, the training steps and the measurements written to the card), which nothing the
notebooks run imports. This module only loads the built files, and :mod:`utils.tiny.corpus` the
corpus; neither imports anything heavier than torch until a loader is called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

ASSETS = Path(__file__).resolve().parent / "assets"
REBUILD_HINT = "rebuild with: python -m utils.tiny.build"
MODEL_NAME = "sae-book-tiny"

# What each kind of asset folder must hold. JSON files must parse; safetensors files must open.
REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    "tokenizer": ("tokenizer.json", "tokenizer_config.json"),
    "model": ("config.json", "model.safetensors"),
    "sae": ("cfg.json", "sae_weights.safetensors"),
}
MODEL_CONFIG_FILE = "config.json"
MODEL_WEIGHTS_FILE = "model.safetensors"

# Weight-processing options of ``HookedTransformer.from_pretrained`` that the tiny model also
# accepts (the model is stored unprocessed; these are applied after loading, as TransformerLens
# would). Anything else is rejected with an error that lists these.
PROCESSING_KWARGS = (
    "fold_ln",
    "center_writing_weights",
    "center_unembed",
    "refactor_factored_attn_matrices",
)


def _asset_kind(folder: Path) -> str:
    if folder.name in REQUIRED_FILES:
        return folder.name
    for kind, files in REQUIRED_FILES.items():
        if (folder / files[0]).exists():
            return kind
    raise ValueError(
        f"{folder} is not a tiny-model asset folder: expected a folder named one of "
        f"{sorted(REQUIRED_FILES)} (or holding their files). If the bundled assets are broken, {REBUILD_HINT}"
    )


def check_asset_folder(folder: Path | str) -> None:
    """Check that ``folder`` (assets/tokenizer, assets/model or assets/sae) is complete and readable.

    Raises ``FileNotFoundError`` when the folder or one of its files is missing, and ``ValueError``
    when a file is there but cannot be read (truncated JSON or safetensors). Both messages name the
    folder, what is wrong, and the rebuild command.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Tiny-model asset folder {folder} does not exist (the bundled model, tokenizer and SAE "
            f"live in {ASSETS}); {REBUILD_HINT}"
        )
    kind = _asset_kind(folder)
    missing = [name for name in REQUIRED_FILES[kind] if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Tiny-model {kind} folder {folder} is incomplete: missing {', '.join(missing)}; {REBUILD_HINT}"
        )
    from safetensors import safe_open

    for name in REQUIRED_FILES[kind]:
        path = folder / name
        try:
            if name.endswith(".json"):
                json.loads(path.read_text(encoding="utf-8"))
            else:
                with safe_open(str(path), framework="pt") as handle:
                    keys = list(handle.keys())
                    if not keys:
                        raise ValueError("no tensors")
                    for key in keys:  # reads every tensor: catches truncated files
                        handle.get_tensor(key)
        except Exception as error:  # any parse failure means the file is corrupt
            raise ValueError(
                f"Tiny-model {kind} folder {folder} has a corrupt file {name} "
                f"({type(error).__name__}: {error}); {REBUILD_HINT}"
            ) from error


def load_tiny_tokenizer(folder: Path | str = ASSETS / "tokenizer"):
    """The tiny model's tokenizer (a Hugging Face fast tokenizer), loaded from ``folder`` offline."""
    from transformers import AutoTokenizer

    folder = Path(folder).resolve()
    check_asset_folder(folder)
    # An absolute local path: TransformerLens reloads the tokenizer by this name (to add BOS).
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def read_model_config(folder: Path | str = ASSETS / "model") -> dict[str, Any]:
    """The keyword arguments of the tiny model's ``HookedTransformerConfig`` (from config.json)."""
    folder = Path(folder)
    check_asset_folder(folder)
    return json.loads((folder / MODEL_CONFIG_FILE).read_text(encoding="utf-8"))


def load_tiny_model(
    folder: Path | str = ASSETS / "model", device: str = "cpu", **from_pretrained_kwargs: Any
):
    """The bundled tiny model as a ``HookedSAETransformer`` in fp32 and eval mode, on ``device``.

    ``folder`` is assets/model (the tokenizer is read from the sibling folder assets/tokenizer).
    ``from_pretrained_kwargs`` mirrors ``HookedTransformer.from_pretrained``: only the
    weight-processing flags in ``PROCESSING_KWARGS`` are accepted (the SAE's
    ``cfg.metadata.model_from_pretrained_kwargs`` is ``{}``, so normally none are given).
    """
    unknown = sorted(set(from_pretrained_kwargs) - set(PROCESSING_KWARGS))
    if unknown:
        raise TypeError(
            f"load_tiny_model got unsupported keyword argument(s) {unknown}; the tiny model accepts only "
            f"the weight-processing options {list(PROCESSING_KWARGS)} (booleans)"
        )
    for key, value in from_pretrained_kwargs.items():
        if not isinstance(value, bool):
            raise TypeError(f"load_tiny_model: {key} must be True or False, got {value!r}")

    folder = Path(folder).resolve()
    check_asset_folder(folder)
    tokenizer = load_tiny_tokenizer(folder.parent / "tokenizer")

    from sae_lens import HookedSAETransformer
    from safetensors.torch import load_file
    from transformer_lens import HookedTransformerConfig

    config_kwargs = read_model_config(folder)
    config_kwargs.pop("seed", None)  # a seed in the config would reseed every RNG on each load
    config = HookedTransformerConfig(**config_kwargs, device=device)
    with torch.random.fork_rng(devices=[]):  # the random init (overwritten below) leaves no trace
        model = HookedSAETransformer(config, tokenizer=tokenizer, move_to_device=False)
    state = {k: v.to(torch.float32) for k, v in load_file(str(folder / MODEL_WEIGHTS_FILE)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    buffers = {name for name, _ in model.named_buffers()}
    if unexpected or set(missing) - buffers:
        raise ValueError(
            f"Tiny-model weights in {folder} do not match its config.json (missing "
            f"{sorted(set(missing) - buffers)}, unexpected {sorted(unexpected)}); {REBUILD_HINT}"
        )
    if any(from_pretrained_kwargs.values()):
        model.process_weights_(
            **{k: from_pretrained_kwargs.get(k, False) for k in PROCESSING_KWARGS}
        )
    if torch.device(device).type != "cpu":
        model.to(device)
    model.eval()
    return model


def read_card(folder: Path | str = ASSETS) -> dict[str, Any]:
    """The build card (assets/card.json): metrics, sizes, seeds and versions of the bundled assets."""
    path = Path(folder) / "card.json"
    if not path.is_file():
        raise FileNotFoundError(f"No build card at {path}; {REBUILD_HINT}")
    return json.loads(path.read_text(encoding="utf-8"))
