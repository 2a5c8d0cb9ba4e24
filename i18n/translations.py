"""The Chinese edition's bookkeeping: what is untranslated or stale, and the commands that keep
the Chinese tree (``zh/``) in step with the English one.

    python -m i18n.translations status                  # per Chinese file: what is left to do
    python -m i18n.translations stale [ZH_FILE ...]     # each stale translation, with the English diff
    python -m i18n.translations refresh ZH_FILE --cell ID [--cell ID ...]   # a notebook's cells
    python -m i18n.translations refresh ZH_FILE         # a page (.md), or a notebook's stale cells
                                                        #   with --all-stale
    python -m i18n.translations sync [ZH_FILE ...]      # copy code cells and metadata from English
    python -m i18n.translations scaffold EN_FILE        # start a translation

The record (CONTRIBUTING.md, "Translating"):

- A Chinese notebook ``zh/<path>.ipynb`` has the English notebook's cells, in order, with the same
  ids. Code cells are the English ones verbatim (source and metadata); notebook metadata too.
  Each markdown cell carries ``metadata.translation = {"source": <English cell id>, "sha256":
  <sha256 of that English cell's source, as one UTF-8 string, when it was translated>}``;
  ``"sha256": null`` marks a cell not translated yet (``scaffold`` and ``sync`` leave the English
  text there, for the translator).
- A Chinese page ``zh/<path>.md`` records the whole English file in one MyST comment line (not
  shown on the site), after the front matter if it has one:
  ``% translation: source=<path> sha256=<sha256 of the English file's UTF-8 text>``;
  ``sha256=untranslated`` marks a page not translated yet.

A translation is *stale* when the English source no longer hashes to the recorded sha256.
``stale`` finds the English text that was translated in the git history of the English file (the
version whose cell, or file, hashes to the record) and prints the diff to today's text.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import hashlib
import io
import json
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
ZH = "zh"
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*\n", re.DOTALL)
# A MyST code cell in a .md page: ```{code-cell} ... ``` (its fence may be longer than three).
CODE_CELL_BLOCK = re.compile(
    r"^(?P<fence>`{3,})\{code-cell\}[^\n]*\n.*?^(?P=fence)[ \t]*$", re.DOTALL | re.MULTILINE
)


CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


# --- the book's pages ------------------------------------------------------------------------------


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


def pairs(root: Path = REPO_ROOT) -> list[Pair]:
    """Every English page of the table of contents with its Chinese twin's path."""
    found = []
    for docname in toc_files(root / "_toc.yml"):
        english = source_path(root, docname)
        if english is None:
            continue  # tests/test_site_config.py reports toc entries without a source
        found.append(Pair(english, root / ZH / english.relative_to(root)))
    return found


def english_of(chinese: Path, root: Path = REPO_ROOT) -> Path:
    """The English source of a file in zh/."""
    rel = chinese.resolve().relative_to((root / ZH).resolve())
    return root / rel


# --- notebooks -------------------------------------------------------------------------------------


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


def untranslated_cell(english_cell: dict) -> dict:
    """A markdown cell for the Chinese notebook that still holds the English text."""
    metadata = copy.deepcopy(english_cell.get("metadata", {}))
    metadata["translation"] = {"source": english_cell["id"], "sha256": None}
    return {
        "cell_type": "markdown",
        "id": english_cell["id"],
        "metadata": metadata,
        "source": cell_source(english_cell),
    }


def copied_cell(english_cell: dict) -> dict:
    """A code (or raw) cell copied verbatim, without outputs."""
    cell = {
        "cell_type": english_cell["cell_type"],
        "id": english_cell["id"],
        "metadata": copy.deepcopy(english_cell.get("metadata", {})),
        "source": cell_source(english_cell),
    }
    if cell["cell_type"] == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    return cell


def scaffold_notebook(english: dict) -> dict:
    return {
        "cells": [
            untranslated_cell(c) if c["cell_type"] == "markdown" else copied_cell(c)
            for c in english["cells"]
        ],
        "metadata": copy.deepcopy(english["metadata"]),
        "nbformat": english["nbformat"],
        "nbformat_minor": english["nbformat_minor"],
    }


def synced_notebook(english: dict, chinese: dict) -> tuple[dict, list[str]]:
    """The Chinese notebook rebuilt on the English one's cells; and what changed, in words.

    Code and raw cells and the notebook metadata come from English. Markdown cells keep their
    Chinese text and record; an English markdown cell new to the Chinese notebook arrives
    untranslated (and an untranslated one with no Chinese in it yet gets today's English text); a Chinese markdown cell whose English cell is gone is dropped (and named).
    """
    by_id = {}
    for cell in chinese["cells"]:
        if cell["cell_type"] == "markdown":
            key = cell.get("metadata", {}).get("translation", {}).get("source") or cell.get("id")
            by_id[key] = cell
    changes = []
    cells = []
    used = set()
    for index, en_cell in enumerate(english["cells"]):
        if en_cell["cell_type"] != "markdown":
            cells.append(copied_cell(en_cell))
            continue
        zh_cell = by_id.get(en_cell["id"])
        if zh_cell is None:
            cells.append(untranslated_cell(en_cell))
            changes.append(f"cell {index} ({en_cell['id']}): new English markdown, untranslated")
            continue
        used.add(en_cell["id"])
        record = zh_cell.get("metadata", {}).get("translation", {})
        if record.get("sha256") is None and not CJK.search(cell_source(zh_cell)):
            # Untranslated and still English (no Chinese begun): today's English text.
            cells.append(untranslated_cell(en_cell))
            continue
        metadata = copy.deepcopy(en_cell.get("metadata", {}))
        metadata["translation"] = {"source": en_cell["id"], "sha256": record.get("sha256")}
        cells.append(
            {
                "cell_type": "markdown",
                "id": en_cell["id"],
                "metadata": metadata,
                "source": cell_source(zh_cell),
            }
        )
    for key, cell in by_id.items():
        if key not in used:
            changes.append(
                f"dropped Chinese cell {cell.get('id')} (its English cell {key} is gone)"
            )
    synced = {
        "cells": cells,
        "metadata": copy.deepcopy(english["metadata"]),
        "nbformat": english["nbformat"],
        "nbformat_minor": english["nbformat_minor"],
    }
    old_code = [
        (c.get("id"), cell_source(c), c.get("metadata"))
        for c in chinese["cells"]
        if c["cell_type"] != "markdown"
    ]
    new_code = [
        (c["id"], cell_source(c), c["metadata"]) for c in cells if c["cell_type"] != "markdown"
    ]
    if old_code != new_code:
        changes.append("code cells copied from English")
    if chinese.get("metadata") != english["metadata"]:
        changes.append("notebook metadata copied from English")
    if [c.get("id") for c in chinese["cells"]] != [c["id"] for c in cells]:
        changes.append("cells put in the English order")
    old_untranslated = {
        c.get("id"): cell_source(c)
        for c in chinese["cells"]
        if c["cell_type"] == "markdown"
        and (c.get("metadata", {}).get("translation") or {}).get("sha256") is None
    }
    renewed = [
        c["id"]
        for c in cells
        if c["id"] in old_untranslated and cell_source(c) != old_untranslated[c["id"]]
    ]
    if renewed:
        changes.append(f"untranslated cells given today's English text: {renewed}")
    return synced, changes


# --- pages (.md) -----------------------------------------------------------------------------------

# The record of a page: one MyST comment line (invisible on the site), right after the front matter.
PAGE_RECORD = re.compile(
    r"^% translation: source=(?P<source>\S+) sha256=(?P<sha256>\S+)[ \t]*$", re.M
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
    line = f"% translation: source={source} sha256={digest or UNTRANSLATED}"
    if PAGE_RECORD.search(text):
        return PAGE_RECORD.sub(line, text, count=1)
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


def synced_page(english: str, chinese: str) -> tuple[str, list[str]]:
    """The Chinese page with its code-cell blocks replaced by the English ones (same count)."""
    en_blocks = page_code_cells(english)
    zh_blocks = list(CODE_CELL_BLOCK.finditer(chinese))
    if len(en_blocks) != len(zh_blocks):
        return chinese, [
            f"NOT synced: {len(zh_blocks)} code cells here, {len(en_blocks)} in English; "
            "copy them by hand"
        ]
    out, last = [], 0
    for match, block in zip(zh_blocks, en_blocks):
        out += [chinese[last : match.start()], block]
        last = match.end()
    out.append(chinese[last:])
    synced = "".join(out)
    return synced, (["code cells copied from English"] if synced != chinese else [])


def scaffold_page(english_text: str, source: str) -> str:
    return set_page_record(english_text, source, None)


# --- code identity ---------------------------------------------------------------------------------

_SKIPPED_TOKENS = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


def code_tokens(source: str) -> list[tuple[str, str]]:
    """A code cell as Python tokens, comments and blank lines left out.

    Indentation counts by its structure (INDENT/DEDENT), not its text. A cell Python cannot
    tokenize (an IPython magic with an unclosed quote, say) falls back to its lines with
    ``#`` comments and blank lines removed.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        lines = [re.sub(r"\s+#.*$|^\s*#.*$", "", line).rstrip() for line in source.splitlines()]
        return [("line", line) for line in lines if line.strip()]
    out = []
    for tok in tokens:
        if tok.type in _SKIPPED_TOKENS:
            continue
        name = tokenize.tok_name[tok.type]
        text = (
            "" if tok.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE) else tok.string
        )
        out.append((name, text))
    return out


# --- what is left to do ----------------------------------------------------------------------------


@dataclass
class Issue:
    """One thing a Chinese file needs. kind: missing | structure | code | metadata | untranslated
    | stale | no-record."""

    kind: str
    cell: str | None  # cell id (notebooks), None for the whole file
    index: int | None
    detail: str

    def where(self) -> str:
        return "" if self.cell is None else f"cell {self.index} (id {self.cell})"


def notebook_issues(english: dict, chinese: dict) -> list[Issue]:
    issues = []
    en_ids = [(c["cell_type"], c["id"]) for c in english["cells"]]
    zh_ids = [(c["cell_type"], c.get("id")) for c in chinese["cells"]]
    if en_ids != zh_ids:
        matcher = difflib.SequenceMatcher(a=en_ids, b=zh_ids, autojunk=False)
        ops = [op for op in matcher.get_opcodes() if op[0] != "equal"]
        detail = "; ".join(
            f"English cells {i1}-{i2 - 1} {[i for _, i in en_ids[i1:i2]]} are not in the Chinese"
            if tag == "delete"
            else f"Chinese cells {j1}-{j2 - 1} {[i for _, i in zh_ids[j1:j2]]} are not in the English"
            if tag == "insert"
            else f"English {en_ids[i1:i2]} where the Chinese has {zh_ids[j1:j2]}"
            for tag, i1, i2, j1, j2 in ops[:5]
        )
        issues.append(Issue("structure", None, None, f"cells differ from English ({detail})"))
    if chinese.get("metadata") != english.get("metadata"):
        issues.append(Issue("metadata", None, None, "notebook metadata differs from English"))
    zh_by_id = {c.get("id"): c for c in chinese["cells"]}
    for index, en_cell in enumerate(english["cells"]):
        zh_cell = zh_by_id.get(en_cell["id"])
        if zh_cell is None or zh_cell["cell_type"] != en_cell["cell_type"]:
            if en_cell["cell_type"] == "markdown":
                issues.append(Issue("untranslated", en_cell["id"], index, "no Chinese cell"))
            continue
        if en_cell["cell_type"] != "markdown":
            if code_tokens(cell_source(en_cell)) != code_tokens(cell_source(zh_cell)):
                issues.append(Issue("code", en_cell["id"], index, "code differs from English"))
            if zh_cell.get("metadata", {}) != en_cell.get("metadata", {}):
                issues.append(
                    Issue("metadata", en_cell["id"], index, "cell metadata differs from English")
                )
            continue
        record = zh_cell.get("metadata", {}).get("translation")
        if not isinstance(record, dict) or record.get("source") != en_cell["id"]:
            issues.append(
                Issue("no-record", en_cell["id"], index, "no translation record for this cell")
            )
            continue
        if record.get("sha256") is None:
            issues.append(Issue("untranslated", en_cell["id"], index, "not translated yet"))
        elif record["sha256"] != sha256(cell_source(en_cell)):
            issues.append(Issue("stale", en_cell["id"], index, "the English cell changed since"))
        extra = {
            k: v for k, v in zh_cell.get("metadata", {}).items() if k != "translation"
        } != en_cell.get("metadata", {})
        if extra:
            issues.append(
                Issue("metadata", en_cell["id"], index, "cell metadata differs from English")
            )
    return issues


def page_issues(english_text: str, chinese_text: str, source: str) -> list[Issue]:
    issues = []
    record = page_record(chinese_text)
    if record is None or record.get("source") != source:
        issues.append(
            Issue(
                "no-record",
                None,
                None,
                f"no record line `% translation: source={source} sha256=...`",
            )
        )
    elif record.get("sha256") is None:
        issues.append(Issue("untranslated", None, None, "not translated yet"))
    elif record["sha256"] != sha256(english_text):
        issues.append(Issue("stale", None, None, "the English page changed since"))
    en_code, zh_code = page_code_cells(english_text), page_code_cells(chinese_text)
    if len(en_code) != len(zh_code):
        issues.append(
            Issue("code", None, None, f"{len(zh_code)} code cells, English has {len(en_code)}")
        )
    else:
        for index, (a, b) in enumerate(zip(en_code, zh_code)):
            if code_tokens(_cell_body(a)) != code_tokens(_cell_body(b)) or _cell_head(
                a
            ) != _cell_head(b):
                issues.append(Issue("code", f"code-cell {index}", index, "differs from English"))
    return issues


def _cell_head(block: str) -> str:
    """A ```{code-cell} block's directive line and its :option: lines."""
    lines = block.splitlines()
    head = [lines[0]]
    for line in lines[1:]:
        if not line.startswith(":"):
            break
        head.append(line)
    return "\n".join(head)


def _cell_body(block: str) -> str:
    lines = block.splitlines()[1:-1]
    while lines and lines[0].startswith(":"):
        lines.pop(0)
    return "\n".join(lines) + "\n"


def file_issues(pair: Pair, root: Path = REPO_ROOT) -> list[Issue]:
    if not pair.chinese.is_file():
        return [
            Issue(
                "missing",
                None,
                None,
                f"no Chinese twin: python -m i18n.translations scaffold {pair.rel(pair.english, root)}",
            )
        ]
    if pair.is_notebook:
        return notebook_issues(read_notebook(pair.english), read_notebook(pair.chinese))
    return page_issues(
        pair.english.read_text(encoding="utf-8"),
        pair.chinese.read_text(encoding="utf-8"),
        pair.rel(pair.english, root),
    )


# --- the English text that was translated (git history) --------------------------------------------


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


# --- commands --------------------------------------------------------------------------------------


def _pair_for(path: str, root: Path) -> Pair:
    full = (root / path).resolve() if not Path(path).is_absolute() else Path(path)
    zh_root = (root / ZH).resolve()
    if full.is_relative_to(zh_root):
        return Pair(english_of(full, root), full)
    return Pair(full, zh_root / full.relative_to(root.resolve()))


def cmd_status(root: Path, args) -> int:
    total = 0
    for pair in pairs(root):
        issues = file_issues(pair, root)
        zh_rel = pair.rel(pair.chinese, root)
        total += len(issues)
        if not issues:
            print(f"ok       {zh_rel}")
            continue
        kinds: dict[str, list[Issue]] = {}
        for issue in issues:
            kinds.setdefault(issue.kind, []).append(issue)
        parts = []
        for kind, found in kinds.items():
            cells = [i.cell for i in found if i.cell]
            shown = ", ".join(cells[:8]) + (", ..." if len(cells) > 8 else "")
            parts.append(f"{len(found)} {kind}" + (f" ({shown})" if cells else ""))
        print(f"TODO     {zh_rel}: " + "; ".join(parts))
        for issue in issues:
            if issue.cell is None:
                print(f"         {issue.kind}: {issue.detail}")
    print(f"{total} thing(s) to do" if total else "Every Chinese page is complete and current.")
    return 0


def cmd_stale(root: Path, args) -> int:
    chosen = [_pair_for(p, root) for p in args.files] if args.files else pairs(root)
    reports, untranslated = [], 0
    for pair in chosen:
        reports += stale_report(pair, root)
        untranslated += sum(
            i.kind in ("untranslated", "missing", "no-record") for i in file_issues(pair, root)
        )
    for report in reports:
        print(report)
    print(
        f"{len(reports)} stale translation(s)"
        + (f"; {untranslated} untranslated (see `status`)" if untranslated else "")
    )
    return 1 if reports or untranslated else 0


def cmd_refresh(root: Path, args) -> int:
    pair = _pair_for(args.file, root)
    if not pair.chinese.is_file():
        print(f"{pair.rel(pair.chinese, root)} does not exist", file=sys.stderr)
        return 2
    if not pair.is_notebook:
        english = pair.english.read_text(encoding="utf-8")
        chinese = pair.chinese.read_text(encoding="utf-8")
        if page_body(chinese).strip() == page_body(english).strip() and not args.force:
            print("The page still holds the English text: translate it first.", file=sys.stderr)
            return 2
        source = pair.rel(pair.english, root)
        pair.chinese.write_text(set_page_record(chinese, source, sha256(english)), encoding="utf-8")
        print(
            f"{pair.rel(pair.chinese, root)}: recorded {source} as sha256 {sha256(english)[:12]}..."
        )
        return 0
    english = read_notebook(pair.english)
    chinese = read_notebook(pair.chinese)
    en_by_id = {c["id"]: c for c in english["cells"] if c["cell_type"] == "markdown"}
    if args.cell:
        wanted = list(args.cell)
    elif args.all_stale:
        wanted = [i.cell for i in notebook_issues(english, chinese) if i.kind == "stale"]
    else:
        print("Name the cells you updated (--cell ID, repeatable) or pass --all-stale.")
        return 2
    unknown = [c for c in wanted if c not in en_by_id]
    if unknown:
        print(f"Not markdown cells of {pair.rel(pair.english, root)}: {unknown}", file=sys.stderr)
        return 2
    changed = 0
    for cell in chinese["cells"]:
        if cell.get("id") not in wanted:
            continue
        en_cell = en_by_id[cell["id"]]
        if cell_source(cell).strip() == cell_source(en_cell).strip() and not args.force:
            print(f"cell {cell['id']} still holds the English text: translate it first.")
            continue
        record = {"source": en_cell["id"], "sha256": sha256(cell_source(en_cell))}
        cell.setdefault("metadata", {})["translation"] = record
        changed += 1
        print(f"cell {cell['id']}: recorded English sha256 {record['sha256'][:12]}...")
    if changed:
        write_notebook(pair.chinese, chinese)
    return 0 if changed == len(wanted) else 1


def cmd_sync(root: Path, args) -> int:
    chosen = [_pair_for(p, root) for p in args.files] if args.files else pairs(root)
    for pair in chosen:
        zh_rel = pair.rel(pair.chinese, root)
        if not pair.chinese.is_file():
            print(f"missing  {zh_rel} (scaffold it first)")
            continue
        if pair.is_notebook:
            synced, changes = synced_notebook(
                read_notebook(pair.english), read_notebook(pair.chinese)
            )
            if changes:
                write_notebook(pair.chinese, synced)
        else:
            text, changes = synced_page(
                pair.english.read_text(encoding="utf-8"), pair.chinese.read_text(encoding="utf-8")
            )
            if changes and not changes[0].startswith("NOT"):
                pair.chinese.write_text(text, encoding="utf-8")
        print(
            f"{'synced' if changes else 'same':8} {zh_rel}"
            + "".join(f"\n         {c}" for c in changes)
        )
    return 0


def cmd_scaffold(root: Path, args) -> int:
    pair = _pair_for(args.file, root)
    zh_rel = pair.rel(pair.chinese, root)
    if pair.chinese.exists() and not args.force:
        print(f"{zh_rel} exists; use `sync` to bring it up to date (or --force)", file=sys.stderr)
        return 2
    if pair.is_notebook:
        write_notebook(pair.chinese, scaffold_notebook(read_notebook(pair.english)))
    else:
        text = pair.english.read_text(encoding="utf-8")
        pair.chinese.parent.mkdir(parents=True, exist_ok=True)
        pair.chinese.write_text(scaffold_page(text, pair.rel(pair.english, root)), encoding="utf-8")
    print(
        f"wrote {zh_rel}: translate each markdown cell (or the page), then "
        f"`python -m i18n.translations refresh {zh_rel}"
        + (" --cell ID`" if pair.is_notebook else "`")
    )
    return 0


def main(argv: list[str] | None = None, root: Path = REPO_ROOT) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m i18n.translations", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="per Chinese file: missing, untranslated, stale")
    stale = sub.add_parser("stale", help="stale translations with the English diff")
    stale.add_argument("files", nargs="*")
    refresh = sub.add_parser("refresh", help="record the current English after updating")
    refresh.add_argument("file")
    refresh.add_argument("--cell", action="append", help="cell id (repeatable)")
    refresh.add_argument("--all-stale", action="store_true")
    refresh.add_argument("--force", action="store_true", help="even if it is still English")
    sync = sub.add_parser("sync", help="copy code cells and metadata from English")
    sync.add_argument("files", nargs="*")
    scaffold = sub.add_parser("scaffold", help="start the Chinese twin of an English file")
    scaffold.add_argument("file")
    scaffold.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    command = {
        "status": cmd_status,
        "stale": cmd_stale,
        "refresh": cmd_refresh,
        "sync": cmd_sync,
        "scaffold": cmd_scaffold,
    }[args.command]
    return command(root, args)


if __name__ == "__main__":
    sys.exit(main())
