"""What every checker shares: calling the reader's function and the reminder for an unfinished
answer. Every message a reader sees is chosen at call time by the edition of the book that runs
(:func:`utils.language.choose`: English, or Chinese in the ``zh/`` notebooks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..language import choose

# English text of the reminder (kept for code that imports it; checkers print `_not_done()`).
_NOT_DONE = "Not answered yet: fill in the cell above and run this check again."


def _not_done() -> str:
    """The reminder for an unfinished answer, in the running edition's language."""
    return choose(_NOT_DONE, "还没有作答：请先完成上面的代码单元，再运行这个检查。")


def _call(fn: Callable[..., Any] | None, *args: Any) -> Any:
    """``fn(*args)``, or ``None`` when ``fn`` is ``None`` or raises ``NotImplementedError``."""
    if fn is None:
        return None
    try:
        return fn(*args)
    except NotImplementedError:
        return None
