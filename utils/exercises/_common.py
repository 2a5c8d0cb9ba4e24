"""What every checker shares: calling the reader's function and the reminder for an unfinished answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_NOT_DONE = "Not answered yet: fill in the cell above and run this check again."


def _call(fn: Callable[..., Any] | None, *args: Any) -> Any:
    """``fn(*args)``, or ``None`` when ``fn`` is ``None`` or raises ``NotImplementedError``."""
    if fn is None:
        return None
    try:
        return fn(*args)
    except NotImplementedError:
        return None
