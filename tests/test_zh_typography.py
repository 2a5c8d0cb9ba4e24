"""Chinese typography of the Chinese edition, checked by a tool made for it.

AutoCorrect (``autocorrect-py``, configured by ``.autocorrectrc``) lints spacing and punctuation
between Chinese and Latin text in ``README.zh-CN.md``, ``zh/*.md`` and every markdown cell of
``zh/notebooks/*.ipynb`` (code cells are the English code, so they are left alone). AutoCorrect reads
through Markdown emphasis, so the book adds its own conventions (:data:`BOOK_RULES`): a space between
Latin text and Chinese across ``**``/``*`` too, × for a product, citations written ``Gao 等`` (not
``et al.`` or ``等人``), one full stop after a closing quote, and a run-in bold heading's full stop
outside the bold. Each finding names the file, the cell and the line, and what to write instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

autocorrect = pytest.importorskip("autocorrect_py")

BOOK = Path(__file__).resolve().parents[1]
CONFIG = BOOK / ".autocorrectrc"
PAGES = [BOOK / "README.zh-CN.md", *sorted((BOOK / "zh").glob("*.md"))]
NOTEBOOKS = sorted((BOOK / "zh" / "notebooks").glob("*.ipynb"))

HAN = r"[\u4e00-\u9fff]"
LATIN = r"[A-Za-z0-9`)]"
# (pattern, what to write instead), applied to prose with inline code, links' targets and math
# removed (see prose_only).
BOOK_RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(rf"{LATIN}(?:\*\*|\*){HAN}|{HAN}(?:\*\*|\*){LATIN}"),
        "a space between Latin text and Chinese, outside the ** or * (`**token** 上`)",
    ),
    (re.compile(rf"{HAN} ?[xX] ?{HAN}"), "× for a product (批大小 × 宽度), not the letter x"),
    (re.compile(r"\bet al\.|等人"), "cite as `Gao 等` (`Gao 等，2024`; `Gao 等（2024）`)"),
    (re.compile(r"[。？！][”」』]?。"), "one full stop: none after ？！。 (also across a quote)"),
    (
        re.compile(r"(?:^|\n)\*\*[^*\n]+。\*\*"),
        "a run-in bold heading's full stop goes outside the bold: `**延伸阅读**。`",
    ),
]


def prose_only(text: str) -> str:
    """``text`` with inline code, math, link targets and HTML tags blanked out (same length and
    line breaks, so columns and line numbers still point at the file)."""

    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group())

    for pattern in (r"```.*?```", r"`[^`\n]*`", r"\$\$.*?\$\$", r"\$[^$\n]+\$", r"\]\([^)\n]*\)"):
        text = re.sub(pattern, blank, text, flags=re.S)
    return re.sub(r"<[^>\n]+>", blank, text)


def findings(text: str) -> list[str]:
    """What AutoCorrect and the book's rules find in one Markdown text: ``line N: ...``."""
    autocorrect.load_config(CONFIG.read_text(encoding="utf-8"))
    found = [
        f"line {r.line}: AutoCorrect: {r.old.strip()!r} -> {r.new.strip()!r}"
        for r in autocorrect.lint_for(text, "text.md").lines
    ]
    prose = prose_only(text)
    for pattern, advice in BOOK_RULES:
        for match in pattern.finditer(prose):
            line = prose.count("\n", 0, match.start()) + 1
            context = text[max(0, match.start() - 12) : match.end() + 12].replace("\n", " ")
            found.append(f"line {line}: {advice}: ...{context}...")
    return found


def markdown_cells(notebook: Path):
    for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] == "markdown":
            source = cell["source"]
            yield index, cell.get("id"), "".join(source) if isinstance(source, list) else source


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(BOOK).as_posix())
def test_a_chinese_page_is_well_typeset(page):
    found = findings(page.read_text(encoding="utf-8"))
    assert not found, f"{page.relative_to(BOOK)}:\n" + "\n".join(found)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.relative_to(BOOK).as_posix())
def test_a_chinese_notebooks_prose_is_well_typeset(notebook):
    found = [
        f"cell {index} (id {cell_id}), {finding}"
        for index, cell_id, text in markdown_cells(notebook)
        for finding in findings(text)
    ]
    assert not found, f"{notebook.relative_to(BOOK)}:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("用GPT-2 small训练。", "AutoCorrect"),
        ("再选 “Colab”。", "AutoCorrect"),
        ("在**提示词的最后一个 token**上激活。", "outside the **"),
        ("是**TopK**。", "outside the **"),
        ("批大小 x 宽度", "× for a product"),
        ("（Gao et al., 2024）", "cite as"),
        ("Marks 等人的论文", "cite as"),
        ("问的是“会怎样？”。", "one full stop"),
        ("**延伸阅读。** Bricken 等", "run-in bold heading"),
    ],
)
def test_the_lint_flags_each_convention(text, flagged):
    assert any(flagged in finding for finding in findings(text)), findings(text)


@pytest.mark.parametrize(
    "text",
    [
        "在**提示词的最后一个 token** 上激活，`x**2`和$a*b$不算。",
        "批大小 × 宽度；Gao 等（2024）。**延伸阅读**。",
        "见 [链接](https://example.com/a*b)，`et al.` 是代码。",
    ],
)
def test_the_lint_passes_the_books_conventions(text):
    assert findings(text) == []
