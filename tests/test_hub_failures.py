"""utils/loading.py's reading of a failed download: which exceptions mean "the Hub is out of
reach" (so the reader is told to switch to the offline preset), following the chain a traceback
shows, and which are other errors that must surface unchanged. Cases built by hand.

Then each loader (load_sae, load_model, load_texts) on the gpt2-small preset, its library entry
point replaced by a stand-in that raises (tests/loading_fakes.py): a Hub failure becomes the
book's HubUnavailableError, whose whole message (written out by hand) names what was being
downloaded and why; any other error comes through unchanged."""

from __future__ import annotations

import sys

import pytest
from loading_fakes import (
    ENDPOINT,
    Recorder,
    Stream,
    hub_message,
    install_load_dataset,
    install_sae_lens,
)

from utils.loading import HubUnavailableError, _is_hub_failure, load_model, load_sae, load_texts
from utils.presets import get_preset


def chained(outer: BaseException, inner: BaseException, how: str) -> BaseException:
    """``outer`` raised from ``inner`` (how="cause"), during its handling ("context"), or during its
    handling with the context suppressed ("suppressed")."""
    if how == "cause":
        outer.__cause__ = inner
    else:
        outer.__context__ = inner
        outer.__suppress_context__ = how == "suppressed"
    return outer


def test_the_unreachable_kinds():
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert _is_hub_failure(LocalEntryNotFoundError("not in the cache"))
    assert _is_hub_failure(ConnectionError("refused"))
    assert _is_hub_failure(TimeoutError())
    assert _is_hub_failure(OSError("We couldn't connect to 'https://huggingface.co' to load"))
    assert _is_hub_failure(OSError("WE COULDN'T CONNECT TO the Hub"))  # any case


def test_the_http_libraries_unreachable_kinds():
    """huggingface_hub downloads with httpx; older libraries (and datasets' streaming) with
    requests, whose errors are OSErrors but not the built-in ConnectionError."""
    import httpx
    import requests
    from huggingface_hub.errors import OfflineModeIsEnabled

    assert not issubclass(requests.ConnectionError, ConnectionError)  # why requests is named
    assert _is_hub_failure(requests.ConnectionError("Max retries exceeded"))
    assert _is_hub_failure(requests.Timeout("read timed out"))
    assert _is_hub_failure(httpx.ConnectError("[Errno -3] name resolution"))
    assert _is_hub_failure(httpx.ReadTimeout("timed out"))
    assert _is_hub_failure(OfflineModeIsEnabled("HF_HUB_OFFLINE=1"))
    assert not _is_hub_failure(requests.HTTPError("404 Client Error"))  # the Hub answered
    assert not _is_hub_failure(httpx.HTTPStatusError("401", request=None, response=None))


def test_without_requests_or_httpx_installed(monkeypatch):
    """Either library may be absent (an import of None in sys.modules fails): the rest still
    counts, and nothing is raised."""
    monkeypatch.setitem(sys.modules, "requests", None)
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ImportError):
        import requests  # noqa: F401
    assert _is_hub_failure(ConnectionError("refused"))
    assert _is_hub_failure(OSError("We couldn't connect to 'https://huggingface.co'"))
    assert not _is_hub_failure(ValueError("bad shape"))


def test_other_errors_are_not_the_hubs():
    assert not _is_hub_failure(ValueError("bad shape"))
    assert not _is_hub_failure(OSError("No such file or directory: 'cfg.json'"))
    assert not _is_hub_failure(KeyError("couldn't connect to"))  # the words, but not an OSError


@pytest.mark.parametrize("how, found", [("cause", True), ("context", True), ("suppressed", False)])
def test_the_chain_is_followed_as_a_traceback_shows_it(how, found):
    error = chained(RuntimeError("loading failed"), ConnectionError("refused"), how)
    assert _is_hub_failure(error) is found


def test_a_long_chain_and_a_cycle():
    deep = ConnectionError("refused")
    for _ in range(5):
        deep = chained(RuntimeError("wrapped"), deep, "cause")
    assert _is_hub_failure(deep)
    a, b = RuntimeError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a  # a loop: must end, and find nothing
    assert not _is_hub_failure(a)


# ---- what each loader reports (library entry points replaced by raising stand-ins) -------------

SAE_WHAT = "the SAE 'blocks.8.hook_resid_pre' of the release 'gpt2-small-res-jb'"
MODEL_WHAT = "the model 'gpt2-small'"


def dataset_what(split: str) -> str:
    return f"the dataset 'monology/pile-uncopyrighted' (split {split!r})"


def load_sae_raising(monkeypatch, error):
    install_sae_lens(monkeypatch, from_pretrained=Recorder(error=error))
    return load_sae(get_preset("gpt2-small"))


def load_model_raising(monkeypatch, error):
    install_sae_lens(monkeypatch, from_pretrained_no_processing=Recorder(error=error))
    return load_model(get_preset("gpt2-small"))


def load_texts_raising(monkeypatch, error):
    install_load_dataset(monkeypatch, error=error)
    return load_texts(get_preset("gpt2-small"), 4)


def load_texts_raising_mid_stream(monkeypatch, error):
    """A streamed dataset opens without a request; the first rows come, then the connection
    drops: the failure is raised while the rows are read."""
    install_load_dataset(monkeypatch, Stream(["d0", "d1"], error=error))
    return load_texts(get_preset("gpt2-small"), 4, split="train")


LOADERS = [
    (load_sae_raising, SAE_WHAT),
    (load_model_raising, MODEL_WHAT),
    (load_texts_raising, dataset_what("validation")),
    (load_texts_raising_mid_stream, dataset_what("train")),
]


def hub_errors():
    import httpx
    import requests
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    return [
        LocalEntryNotFoundError("not in the cache and outgoing traffic has been disabled"),
        OfflineModeIsEnabled("offline mode is enabled"),
        requests.ConnectionError("Max retries exceeded with url"),
        httpx.ConnectError("[Errno -3] Temporary failure in name resolution"),
    ]


@pytest.mark.parametrize("load, what", LOADERS)
@pytest.mark.parametrize("kind", range(4))
def test_a_hub_failure_becomes_the_books_message(clean_env, load, what, kind):
    clean_env.setattr("utils.loading.hub_endpoint", lambda: ENDPOINT)
    error = hub_errors()[kind]
    with pytest.raises(HubUnavailableError) as raised:
        load(clean_env, error)
    assert str(raised.value) == hub_message(what, "https://hub.example could not be reached")
    assert raised.value.__cause__ is error  # kept for anyone debugging


@pytest.mark.parametrize("load, what", LOADERS)
def test_offline_the_message_says_so(clean_env, load, what):
    clean_env.setenv("HF_HUB_OFFLINE", "1")
    clean_env.setattr("utils.loading.hub_endpoint", lambda: ENDPOINT)
    from huggingface_hub.errors import LocalEntryNotFoundError

    with pytest.raises(HubUnavailableError) as raised:
        load(clean_env, LocalEntryNotFoundError("outgoing traffic has been disabled"))
    assert str(raised.value) == hub_message(what, "HF_HUB_OFFLINE is set")


@pytest.mark.parametrize("load, what", LOADERS)
@pytest.mark.parametrize(
    "error",
    [
        ValueError("cfg.json has no d_sae"),
        OSError("No such file or directory: 'cfg.json'"),
        KeyError("blocks.8.hook_resid_pre"),
    ],
    ids=["ValueError", "OSError", "KeyError"],
)
def test_other_errors_come_through_unchanged(clean_env, load, what, error):
    with pytest.raises(type(error)) as raised:
        load(clean_env, error)
    assert raised.value is error and not isinstance(raised.value, HubUnavailableError)
