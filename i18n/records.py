"""The files the Chinese edition is made of, and the record each keeps of the English it translates
(CONTRIBUTING.md, "Translating"): a notebook's cells (read and written as Jupyter saves them) with
``metadata.translation`` per markdown cell, a MyST page with its ``% translation:`` line; the sha256
that records an English text."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*\n", re.DOTALL)
# A MyST code cell in a .md page: ```{code-cell} ... ``` (its fence may be longer than three).
CODE_CELL_BLOCK = re.compile(
    r"^(?P<fence>`{3,})\{code-cell\}[^\n]*\n.*?^(?P=fence)[ \t]*$", re.DOTALL | re.MULTILINE
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_notebook(path: Path, nb: dict) -> None:
    """Write like nbformat does (indent 1, sorted keys, sources as lists of lines)."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        cell["source"] = cell_source(cell).splitlines(keepends=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    # As Jupyter saves a notebook (nbformat): so a save in JupyterLab changes nothing.
    text = json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")


# The record of a page: one MyST comment line (invisible on the site), right after the front matter;
# or, in a file GitHub shows rather than the site (README.zh-CN.md), an HTML comment line.
PAGE_RECORD = re.compile(
    r"^(?P<open>% |<!-- )translation: source=(?P<source>\S+) sha256=(?P<sha256>\S+)(?: -->)?[ \t]*$",
    re.M,
)
UNTRANSLATED = "untranslated"


def page_record(text: str) -> dict | None:
    """{"source": ..., "sha256": ... (None when untranslated)} from a page's record line."""
    match = PAGE_RECORD.search(text)
    if match is None:
        return None
    digest = match["sha256"]
    return {"source": match["source"], "sha256": None if digest == UNTRANSLATED else digest}


def set_page_record(text: str, source: str, digest: str | None) -> str:
    """``text`` with its record line set (added after the front matter if it has none)."""
    line = f"translation: source={source} sha256={digest or UNTRANSLATED}"
    if found := PAGE_RECORD.search(text):
        line = f"<!-- {line} -->" if found["open"] == "<!-- " else f"% {line}"
        return PAGE_RECORD.sub(lambda _: line, text, count=1)
    line = f"% {line}"
    match = FRONT_MATTER.match(text)
    if not match:
        return f"{line}\n\n{text}"
    return text[: match.end()] + f"\n{line}\n" + text[match.end() :]


def page_body(text: str) -> str:
    """The text after the front matter, without the record line."""
    match = FRONT_MATTER.match(text)
    body = text[match.end() :] if match else text
    return PAGE_RECORD.sub("", body, count=1)


def page_code_cells(text: str) -> list[str]:
    """The ```{code-cell} blocks of a MyST page, in order, as written."""
    return [m.group(0) for m in CODE_CELL_BLOCK.finditer(page_body(text))]
