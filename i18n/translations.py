"""The Chinese edition's bookkeeping commands: what is untranslated or stale, and the commands that
keep the Chinese tree (``zh/``) in step with the English one.

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

One module per job, their names handed on here (``from i18n import translations as tr``):
``twins`` (which English file pairs with which Chinese one), ``records`` (notebooks, pages and the
sha256 records they carry), ``code_identity`` (code that counts as the same), ``sync`` (scaffold
and sync), ``issues`` (what is left to do), ``history`` (the translated English in git); this
module holds the commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import twins
from .chinese import has_chinese
from .code_identity import code_tokens
from .history import (
    english_versions,
    stale_report,
    translated_english_cell,
    translated_english_page,
)
from .issues import Issue, file_issues, notebook_issues, page_issues
from .records import (
    CODE_CELL_BLOCK,
    FRONT_MATTER,
    PAGE_RECORD,
    UNTRANSLATED,
    cell_source,
    page_body,
    page_code_cells,
    page_record,
    read_notebook,
    set_page_record,
    sha256,
    write_notebook,
)
from .sync import (
    copied_cell,
    scaffold_notebook,
    scaffold_page,
    synced_notebook,
    synced_page,
    untranslated_cell,
)
from .twins import REPO_ROOT, ZH, Pair, english_of, pairs, source_path, toc_files

__all__ = [
    "CODE_CELL_BLOCK",
    "FRONT_MATTER",
    "PAGE_RECORD",
    "REPO_ROOT",
    "UNTRANSLATED",
    "ZH",
    "Issue",
    "Pair",
    "cell_source",
    "code_tokens",
    "copied_cell",
    "english_of",
    "english_versions",
    "file_issues",
    "has_chinese",
    "main",
    "notebook_issues",
    "page_body",
    "page_code_cells",
    "page_issues",
    "page_record",
    "pairs",
    "read_notebook",
    "scaffold_notebook",
    "scaffold_page",
    "set_page_record",
    "sha256",
    "source_path",
    "stale_report",
    "synced_notebook",
    "synced_page",
    "toc_files",
    "translated_english_cell",
    "translated_english_page",
    "untranslated_cell",
    "write_notebook",
]


def _pair_for(path: str, root: Path) -> Pair:
    full = (root / path).resolve() if not Path(path).is_absolute() else Path(path)
    zh_root = (root / ZH).resolve()
    for english, chinese in twins.OUTSIDE_THE_TOC:  # README.md and README.zh-CN.md
        if full in ((root / english).resolve(), (root / chinese).resolve()):
            return Pair(root / english, root / chinese)
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
