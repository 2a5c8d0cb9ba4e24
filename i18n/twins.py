"""Which English files have a Chinese twin, and where it lives: every page of the English table of
contents (``_toc.yml``), at the same path under ``zh/``, and the few files outside it listed in
:data:`OUTSIDE_THE_TOC` (:func:`pairs`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
ZH = "zh"


def toc_files(toc_path: Path) -> list[str]:
    """The pages of a _toc.yml, root first, without suffix, as written there."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", n) for n in names]


def source_path(base: Path, docname: str) -> Path | None:
    for suffix in (".ipynb", ".md"):
        if (base / f"{docname}{suffix}").is_file():
            return base / f"{docname}{suffix}"
    return None


@dataclass(frozen=True)
class Pair:
    """An English page and where its Chinese twin lives (which may not exist yet)."""

    english: Path
    chinese: Path

    @property
    def is_notebook(self) -> bool:
        return self.english.suffix == ".ipynb"

    def rel(self, path: Path, root: Path) -> str:
        return path.relative_to(root).as_posix()


# Files outside the table of contents whose Chinese twin keeps a record too, as (English, Chinese)
# paths from the repository root; pairs() lists them after the book's pages.
OUTSIDE_THE_TOC: tuple[tuple[str, str], ...] = (("README.md", "README.zh-CN.md"),)


def pairs(root: Path = REPO_ROOT) -> list[Pair]:
    """Every English page of the table of contents with its Chinese twin's path (under ``zh/``),
    then the files of :data:`OUTSIDE_THE_TOC`."""
    found = []
    for docname in toc_files(root / "_toc.yml"):
        english = source_path(root, docname)
        if english is None:
            continue  # tests/test_site_config.py reports toc entries without a source
        found.append(Pair(english, root / ZH / english.relative_to(root)))
    found += [Pair(root / english, root / chinese) for english, chinese in OUTSIDE_THE_TOC]
    return found


def english_of(chinese: Path, root: Path = REPO_ROOT) -> Path:
    """The English source of a file in zh/."""
    rel = chinese.resolve().relative_to((root / ZH).resolve())
    return root / rel
