"""utils/loading.py's reading of a failed download: which exceptions mean "the Hub is out of
reach" (so the reader is told to switch to the offline preset), following the chain a traceback
shows, and which are other errors that must surface unchanged. Cases built by hand."""

from __future__ import annotations

import pytest

from utils.loading import _is_hub_failure


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
