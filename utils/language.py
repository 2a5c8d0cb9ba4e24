"""Which edition of the book is running: English (``"en"``) or Chinese (``"zh"``).

The two editions run the same code (a test compares every code cell of a Chinese notebook with its
English twin), so a cell cannot say which language to print in. The few messages a reader sees
from the book's own code (the exercise checkers, the Teaching page's tables) ask
:func:`book_language` instead:

1. the environment variable ``SAE_BOOK_LANG`` (``en`` or ``zh``), if set: Colab gives the kernel
   no notebook path, so a Chinese reader there sets ``%env SAE_BOOK_LANG=zh`` (the Chinese
   notebooks' setup section says so);
2. otherwise the kernel's working directory: Jupyter, JupyterLab and the site build start a
   notebook's kernel in the notebook's own folder, so anything under the book's ``zh/`` folder is
   the Chinese edition;
3. otherwise English.
"""

from __future__ import annotations

import os
from pathlib import Path

LANGUAGES = ("en", "zh")


def book_language(cwd: Path | None = None) -> str:
    """``"zh"`` or ``"en"``: from ``SAE_BOOK_LANG``, else from where the kernel runs (``cwd``,
    default the current directory: inside the book's ``zh/`` folder means Chinese)."""
    chosen = os.environ.get("SAE_BOOK_LANG", "").strip().lower()
    if chosen:
        if chosen not in LANGUAGES:
            raise ValueError(
                f"SAE_BOOK_LANG={os.environ['SAE_BOOK_LANG']!r} is not a language of this book: "
                f"use one of {', '.join(LANGUAGES)} (or unset it to follow the notebook's folder)."
            )
        return chosen
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "utils" / "language.py").is_file():  # the book's root
            inside = here.relative_to(folder).parts
            return "zh" if inside[:1] == ("zh",) else "en"
    return "en"


def choose(en: str, zh: str, language: str | None = None) -> str:
    """``en`` or ``zh``, by ``language`` (default :func:`book_language`)."""
    language = language or book_language()
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    return zh if language == "zh" else en
