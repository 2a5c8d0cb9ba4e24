"""Recording stand-ins for the library entry points utils/loading.py calls, so its unit tests
(tests/test_loading.py, tests/test_hub_failures.py) reach the Hub paths without a network or a
download: SAELens' ``SAE.from_pretrained`` / ``SAE.load_from_disk`` and
``HookedSAETransformer.from_pretrained_no_processing``, the tiny model's ``load_tiny_model``,
the tiny corpus's ``load_corpus`` and datasets' ``load_dataset``.

Each stand-in records the arguments it was called with and returns (or raises) what the test
asked for. The expected arguments are written out by hand in the tests, from the presets' fields.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from types import SimpleNamespace

from random_models import REPO

# The presets' fields, written out by hand (utils/presets.py's PRESETS), for the tests to compare
# the recorded arguments with.
GPT2_RELEASE = "gpt2-small-res-jb"
GPT2_SAE_ID = "blocks.8.hook_resid_pre"
GPT2_MODEL = "gpt2-small"
GPT2_DATASET = "monology/pile-uncopyrighted"
GPT2_HELDOUT_SPLIT = "validation"
TINY_SAE_FOLDER = REPO / "utils" / "tiny" / "assets" / "sae"
TINY_MODEL_FOLDER = REPO / "utils" / "tiny" / "assets" / "model"
ENDPOINT = "https://hub.example"  # what the tests make hub_endpoint() answer

# SAELens' own words (sae_lens/saes/sae.py, SAE.from_pretrained), the warning the book hides.
SAELENS_KWARGS_WARNING = (
    "\nThis SAE has non-empty model_from_pretrained_kwargs. "
    "\nFor optimal performance, load the model like so:\n"
    "model = HookedSAETransformer.from_pretrained_no_processing(..., **cfg.model_from_pretrained_kwargs)"
)


class Recorder:
    """A callable that records ``(args, kwargs)`` of each call, emits ``warn`` (pairs of message
    and category) in order, then raises ``error`` if given, else returns ``result``."""

    def __init__(
        self,
        result: object = None,
        error: BaseException | None = None,
        warn: Iterable[tuple[str, type[Warning]]] = (),
    ):
        self.result, self.error, self.warn = result, error, list(warn)
        self.calls: list[tuple[tuple, dict]] = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        for message, category in self.warn:
            warnings.warn(message, category, stacklevel=2)
        if self.error is not None:
            raise self.error
        return self.result


class FakeModel:
    """What a model loader returns: counts its ``eval()`` calls."""

    def __init__(self):
        self.eval_calls = 0

    def eval(self):
        self.eval_calls += 1
        return self


def install_sae_lens(monkeypatch, **recorders: Recorder) -> SimpleNamespace:
    """Replace ``sae_lens.SAE`` and ``sae_lens.HookedSAETransformer`` (what ``from sae_lens import
    ...`` inside utils/loading.py reads) with namespaces of recorders: ``from_pretrained``,
    ``load_from_disk`` (the SAE) and ``from_pretrained_no_processing`` (the model). Each one not
    given returns a fresh object (a ``FakeModel`` for the model)."""
    import sae_lens

    found = SimpleNamespace(
        from_pretrained=recorders.get("from_pretrained", Recorder(result=object())),
        load_from_disk=recorders.get("load_from_disk", Recorder(result=object())),
        from_pretrained_no_processing=recorders.get(
            "from_pretrained_no_processing", Recorder(result=FakeModel())
        ),
    )
    monkeypatch.setattr(
        sae_lens,
        "SAE",
        SimpleNamespace(from_pretrained=found.from_pretrained, load_from_disk=found.load_from_disk),
    )
    monkeypatch.setattr(
        sae_lens,
        "HookedSAETransformer",
        SimpleNamespace(from_pretrained_no_processing=found.from_pretrained_no_processing),
    )
    return found


def install_load_tiny_model(monkeypatch, recorder: Recorder | None = None) -> Recorder:
    """Replace ``utils.tiny.load_tiny_model`` (imported by load_model when it is called)."""
    import utils.tiny

    recorder = recorder or Recorder(result=FakeModel())
    monkeypatch.setattr(utils.tiny, "load_tiny_model", recorder)
    return recorder


def install_corpus(monkeypatch, train: list[str], heldout: list[str]) -> Recorder:
    """Replace ``utils.tiny.corpus.load_corpus`` with one returning these documents."""
    import utils.tiny.corpus

    recorder = Recorder(result=SimpleNamespace(train=train, heldout=heldout))
    monkeypatch.setattr(utils.tiny.corpus, "load_corpus", recorder)
    return recorder


class Stream:
    """A streamed dataset: yields ``{"text": t, "meta": i}`` rows from ``texts``, counting how
    many were read, and raises ``error`` (if given) when asked for the row after them."""

    def __init__(self, texts: list[str], error: BaseException | None = None):
        self.texts, self.error, self.read = texts, error, 0

    def __iter__(self) -> Iterator[dict]:
        for i, text in enumerate(self.texts):
            self.read += 1
            yield {"text": text, "meta": i}
        if self.error is not None:
            raise self.error


def install_load_dataset(monkeypatch, stream: Stream | None = None, error=None) -> Recorder:
    """Replace ``datasets.load_dataset`` with a recorder returning ``stream``."""
    import datasets

    recorder = Recorder(result=stream, error=error)
    monkeypatch.setattr(datasets, "load_dataset", recorder)
    return recorder


def hub_message(what: str, why: str, preset: str = "gpt2-small") -> str:
    """The book's whole message for a failed Hub download, written out by hand."""
    return (
        f"Could not download {what}: {why}, and it is not in the local Hugging Face cache. "
        f"The '{preset}' preset needs the Hugging Face Hub. To run the book offline, use the "
        "bundled tiny model: set SAE_BOOK_PRESET=tiny (or unset SAE_BOOK_PRESET for 'auto', "
        "which picks tiny when the Hub is out of reach) and restart the kernel."
    )
