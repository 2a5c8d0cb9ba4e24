"""What a Chinese file still needs: missing, untranslated, stale (the English changed since it was
translated), or code, cells or metadata that differ from the English (:func:`file_issues`)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from .code_identity import code_tokens
from .records import cell_source, page_code_cells, page_record, read_notebook, sha256
from .twins import REPO_ROOT, Pair


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
