"""The English text that was translated, found in the English file's git history by the sha256 the
Chinese file records, and the diff to today's English for each stale translation
(:func:`stale_report`)."""

from __future__ import annotations

import difflib
import json
import re
import subprocess
from pathlib import Path

from .issues import file_issues
from .records import cell_source, page_record, read_notebook, sha256
from .twins import REPO_ROOT, Pair


def _git(root: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def english_versions(root: Path, english: Path):
    """(commit, text) of each committed version of an English file, newest first."""
    rel = english.relative_to(root).as_posix()
    log = _git(root, "log", "--format=%H", "--name-only", "--follow", "--", rel)
    if not log:
        return
    commit = None
    for line in log.splitlines():
        if re.fullmatch(r"[0-9a-f]{40}", line):
            commit = line
        elif line.strip() and commit:
            text = _git(root, "show", f"{commit}:{line.strip()}")
            if text is not None:
                yield commit, text
            commit = None


def translated_english_cell(root: Path, english: Path, cell_id: str, digest: str):
    """(commit, source) of the English cell that hashes to ``digest``, or None."""
    for commit, text in english_versions(root, english):
        try:
            cells = json.loads(text)["cells"]
        except (ValueError, KeyError):
            continue
        same_id = [c for c in cells if c.get("id") == cell_id]
        for cell in same_id + cells:
            if sha256(cell_source(cell)) == digest:
                return commit, cell_source(cell)
    return None


def translated_english_page(root: Path, english: Path, digest: str):
    for commit, text in english_versions(root, english):
        if sha256(text) == digest:
            return commit, text
    return None


def stale_report(pair: Pair, root: Path = REPO_ROOT) -> list[str]:
    """Each stale translation of a file with the English diff since it was translated."""
    out = []
    zh_rel, en_rel = pair.rel(pair.chinese, root), pair.rel(pair.english, root)
    for issue in file_issues(pair, root):
        if issue.kind != "stale":
            continue
        if pair.is_notebook:
            en_cell = next(c for c in read_notebook(pair.english)["cells"] if c["id"] == issue.cell)
            zh_cell = next(c for c in read_notebook(pair.chinese)["cells"] if c["id"] == issue.cell)
            digest = zh_cell["metadata"]["translation"]["sha256"]
            found = translated_english_cell(root, pair.english, issue.cell, digest)
            now = cell_source(en_cell)
            label = f"{en_rel} cell {issue.index} (id {issue.cell})"
        else:
            digest = page_record(pair.chinese.read_text(encoding="utf-8"))["sha256"]
            found = translated_english_page(root, pair.english, digest)
            now = pair.english.read_text(encoding="utf-8")
            label = en_rel
        head = f"== {zh_rel}: {issue.where() or 'page'} is stale"
        if found is None:
            out.append(
                f"{head}\n   The translated English text (sha256 {digest[:12]}...) is in no "
                f"committed version of {en_rel}; today's English text:\n" + _indent(now)
            )
            continue
        commit, old = found
        diff = difflib.unified_diff(
            old.splitlines(keepends=True),
            now.splitlines(keepends=True),
            fromfile=f"{label} as translated (commit {commit[:10]})",
            tofile=f"{label} now",
        )
        out.append(f"{head}; English diff since it was translated:\n" + "".join(diff))
    return out


def _indent(text: str) -> str:
    return "".join(f"   | {line}" for line in text.splitlines(keepends=True)) + "\n"
