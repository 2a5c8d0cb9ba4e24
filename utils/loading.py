"""Load the model, the SAE and text for a preset, the same way for every preset.

Every function returns the same types whichever preset it is given (a ``HookedSAETransformer``,
a SAELens ``SAE``, a list of strings, a ``datasets.Dataset``), so notebook cells do not care
whether they run on GPT-2 small or on the bundled tiny model.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from .environment import hub_offline
from .presets import PRESET_ENV_VAR, Preset, hub_endpoint

# SAELens warns, on every SAE whose registry entry names model loading options, to load the model
# with them; load_model is given exactly those options (see its docstring), so the advice is
# already followed and the warning would only alarm a reader. It starts with a newline.
_KWARGS_WARNING = r"\s*This SAE has non-empty model_from_pretrained_kwargs"


class HubUnavailableError(RuntimeError):
    """A Hub preset could not download what it needs (no network, or ``HF_HUB_OFFLINE`` is set)."""


def _is_hub_failure(error: BaseException) -> bool:
    """True when ``error`` (or an exception it was raised from) says the Hub was out of reach."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    unreachable: tuple[type[BaseException], ...] = (
        LocalEntryNotFoundError,
        ConnectionError,
        TimeoutError,
    )
    with contextlib.suppress(ImportError):
        import requests

        unreachable += (requests.ConnectionError, requests.Timeout)
    with contextlib.suppress(ImportError):
        import httpx

        unreachable += (httpx.TransportError,)
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, unreachable):
            return True
        if isinstance(error, OSError) and "couldn't connect to" in str(error).lower():
            return True  # transformers' wording when the Hub and the cache both fail
        # the chain a traceback shows: "raised from", else "during handling of" unless suppressed
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return False


@contextlib.contextmanager
def _from_the_hub(preset: Preset, what: str) -> Iterator[None]:
    """Turn a failed Hub download of ``what`` into one :class:`HubUnavailableError` that says how
    to switch to the offline preset; the original exception stays chained for anyone debugging."""
    try:
        yield
    except Exception as error:
        if not _is_hub_failure(error):
            raise
        why = "HF_HUB_OFFLINE is set" if hub_offline() else f"{hub_endpoint()} could not be reached"
        raise HubUnavailableError(
            f"Could not download {what}: {why}, and it is not in the local Hugging Face cache. "
            f"The '{preset.name}' preset needs the Hugging Face Hub. To run the book offline, "
            f"use the bundled tiny model: set {PRESET_ENV_VAR}=tiny (or unset {PRESET_ENV_VAR} "
            "for 'auto', which picks tiny when the Hub is out of reach) and restart the kernel."
        ) from error


def load_sae(preset: Preset, device: str = "cpu", fold_W_dec_norm: bool = False):
    """The preset's pretrained SAE (tutorial 1), as a SAELens ``SAE`` on ``device``.

    Registry presets call ``SAE.from_pretrained(release, sae_id, device=...)`` (SAELens 6.x returns
    the SAE alone); local presets call ``SAE.load_from_disk(folder, device=...)``.
    ``fold_W_dec_norm=True`` is passed on to either: the decoder rows are scaled to unit norm and
    the encoder scaled up to match, so reconstructions stay the same and each latent's activation
    is multiplied by its decoder row's norm (the activations Neuronpedia shows).
    """
    from sae_lens import SAE

    if preset.sae_path is not None:
        from .tiny import check_asset_folder

        check_asset_folder(preset.sae_path)
        return SAE.load_from_disk(
            str(preset.sae_path), device=device, fold_W_dec_norm=fold_W_dec_norm
        )
    what = f"the SAE {preset.sae_id!r} of the release {preset.sae_release!r}"
    with _from_the_hub(preset, what), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_KWARGS_WARNING, category=UserWarning)
        return SAE.from_pretrained(
            preset.sae_release, preset.sae_id, device=device, fold_W_dec_norm=fold_W_dec_norm
        )


def load_model(preset: Preset, device: str = "cpu", **from_pretrained_kwargs: Any):
    """The preset's language model as a ``HookedSAETransformer`` on ``device``, in eval mode.

    ``from_pretrained_kwargs`` are the loading options an SAE asks for in
    ``sae.cfg.metadata.model_from_pretrained_kwargs`` (e.g. ``center_writing_weights=True`` for
    ``gpt2-small-res-jb``); they are passed to
    ``HookedSAETransformer.from_pretrained_no_processing`` so the model is processed exactly as
    the SAE was trained on. The bundled tiny model is stored unprocessed and needs none.
    """
    from sae_lens import HookedSAETransformer

    if preset.model_path is not None:
        from .tiny import load_tiny_model

        model = load_tiny_model(preset.model_path, device=device, **from_pretrained_kwargs)
    else:
        with _from_the_hub(preset, f"the model {preset.model_name!r}"):
            model = HookedSAETransformer.from_pretrained_no_processing(
                preset.model_name, device=device, **from_pretrained_kwargs
            )
    model.eval()
    return model


def load_texts(preset: Preset, n: int | None = None, split: str = "heldout") -> list[str]:
    """Up to ``n`` documents of the preset's dataset, in a fixed order.

    ``split`` is ``"heldout"`` (text the models were not trained on; default) or ``"train"``.
    For a Hub dataset these are the start of its ``preset.dataset_heldout_split`` split (the Pile's
    validation split) and of its ``train`` split, streamed: tutorial 2 trains on the start of
    ``train``, so held-out text has to come from elsewhere.
    """
    if split not in ("heldout", "train"):
        raise ValueError(f"split must be 'heldout' or 'train', got {split!r}")
    if n is not None and n < 1:
        raise ValueError(f"n must be a positive number of documents (or None for all), got {n}")
    if preset.dataset_path.startswith("bundled:"):
        from .tiny.corpus import load_corpus

        corpus = load_corpus()  # the shipped file: the same documents on every Python
        docs = corpus.heldout if split == "heldout" else corpus.train
        return list(docs[:n] if n is not None else docs)
    if n is None:
        raise ValueError(
            f"{preset.dataset_path} is streamed: give n, the number of documents to read"
        )
    from datasets import load_dataset

    hub_split = preset.dataset_heldout_split if split == "heldout" else "train"
    with _from_the_hub(preset, f"the dataset {preset.dataset_path!r} (split {hub_split!r})"):
        stream = load_dataset(preset.dataset_path, split=hub_split, streaming=True)
        return [row["text"] for _, row in zip(range(n), stream)]


def training_dataset(preset: Preset):
    """What to pass as ``override_dataset`` to SAELens' training runner for this preset.

    ``None`` for Hub datasets (the runner streams ``cfg.dataset_path`` itself); for the bundled
    corpus, a ``datasets.Dataset`` with a ``text`` column holding the training documents.
    """
    if not preset.dataset_path.startswith("bundled:"):
        return None
    from datasets import Dataset

    return Dataset.from_dict({"text": load_texts(preset, split="train")})
