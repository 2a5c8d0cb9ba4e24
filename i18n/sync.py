"""Making and updating Chinese files from the English ones: a new twin with every cell still English
(:func:`scaffold_notebook`, :func:`scaffold_page`), and an existing one brought into step, its
translations kept (:func:`synced_notebook`, :func:`synced_page`)."""

from __future__ import annotations

import copy

from .chinese import has_chinese
from .records import CODE_CELL_BLOCK, cell_source, page_code_cells, set_page_record


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
        if record.get("sha256") is None and not has_chinese(cell_source(zh_cell)):
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
