"""Which edition of the book is running: English (``"en"``) or Chinese (``"zh"``).

The two editions run the same code (a test compares every code cell of a Chinese notebook with its
English twin), so a cell cannot say which language to print in. The few messages a reader sees
from the book's own code (the exercise checkers, the Teaching page's tables) ask
:func:`book_language` instead:

1. the environment variable ``SAE_BOOK_LANG`` (``en`` or ``zh``), if set: it always wins;
2. in Google Colab, the open notebook itself. Colab gives the kernel no notebook path, but the
   kernel can ask the Colab page for the notebook it shows (``get_ipynb``). A notebook is the
   Chinese edition when its markdown cells carry the Chinese edition's translation records
   (``metadata.translation``, which only ``zh/`` notebooks have) or, should the platform drop cell
   metadata, when most of its markdown cells are written in Chinese. So a Chinese notebook opened
   from its launch button answers in Chinese with nothing for the reader to set. Asked once per
   kernel; if the page does not answer, the next rule decides;
3. otherwise the kernel's working directory: Jupyter, JupyterLab and the site build start a
   notebook's kernel in the notebook's own folder, so anything under the book's ``zh/`` folder is
   the Chinese edition;
4. otherwise English.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from i18n.chinese import has_chinese

from .environment import book_root, book_setting

LANGUAGES = ("en", "zh")
# Seconds to wait for the Colab page to send the notebook.
COLAB_TIMEOUT = 10
_colab_answer: list[str | None] = []  # the open notebook's language, once asked (None: unknown)


def notebook_language(notebook: dict) -> str:
    """``"zh"`` or ``"en"`` for a notebook's JSON (a dict as in an ``.ipynb`` file): ``"zh"`` when
    any markdown cell records the English cell it translates, or when more than half of the
    markdown cells hold Chinese characters."""
    markdown = [c for c in notebook.get("cells", []) if c.get("cell_type") == "markdown"]
    if any((c.get("metadata") or {}).get("translation") for c in markdown):
        return "zh"
    chinese = 0
    for cell in markdown:
        source = cell.get("source", "")
        chinese += has_chinese("".join(source) if isinstance(source, list) else source)
    return "zh" if markdown and chinese * 2 > len(markdown) else "en"


def colab_notebook_language() -> str | None:
    """In Colab, the language of the notebook the page shows (:func:`notebook_language`);
    ``None`` outside Colab or when the page sends no notebook. Asked once per kernel."""
    if "google.colab" not in sys.modules:
        return None
    if not _colab_answer:
        try:
            from google.colab import _message

            reply = _message.blocking_request("get_ipynb", request="", timeout_sec=COLAB_TIMEOUT)
            _colab_answer.append(notebook_language(reply["ipynb"]))
        except Exception:  # no page (a headless run), a timeout, another reply: not known
            _colab_answer.append(None)
    return _colab_answer[0]


def book_language(cwd: Path | None = None) -> str:
    """``"zh"`` or ``"en"``: from ``SAE_BOOK_LANG``, else (in Colab) from the open notebook, else
    from where the kernel runs (``cwd``, default the current directory: inside the book's ``zh/``
    folder means Chinese)."""
    chosen = book_setting("SAE_BOOK_LANG")
    if chosen:
        if chosen not in LANGUAGES:
            raise ValueError(
                f"SAE_BOOK_LANG={os.environ['SAE_BOOK_LANG']!r} is not a language of this book: "
                f"use one of {', '.join(LANGUAGES)} (or unset it to follow the notebook)."
            )
        return chosen
    colab = colab_notebook_language()
    if colab:
        return colab
    here = (cwd or Path.cwd()).resolve()
    root = book_root(here)
    if root is None:
        return "en"
    return "zh" if here.relative_to(root).parts[:1] == ("zh",) else "en"


def choose(en: str, zh: str, language: str | None = None) -> str:
    """``en`` or ``zh``, by ``language`` (default :func:`book_language`)."""
    language = language or book_language()
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    return zh if language == "zh" else en
