"""The Chinese edition (zh/) stays true to the English one. No build needed.

- Every page of the English table of contents has a Chinese twin at the same path under zh/, and
  zh/_toc.yml lists them in the same parts and order.
- A Chinese notebook has the English notebook's cells (ids, types, order) and metadata; each code
  cell equals its English twin as Python tokens with comments removed (comments may differ).
- Every English markdown cell (or page) has a translation, and no translation is stale: each
  records the sha256 of the English text it translates (i18n/translations.py; CONTRIBUTING.md,
  "Translating", gives the workflow).
- The glossary (i18n/glossary.yml): no rejected variant in Chinese prose; 稀疏自编码器 spelled out
  on first use on each page; no Chinese inside $...$ formulas unless in \\text{}.
- zh/_config.yml differs from _config.yml only where a Chinese build must.
- The workflow commands themselves, on a scratch git repository.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from i18n import translations as tr
from i18n import twins
from i18n.chinese import has_chinese

REPO_ROOT = tr.REPO_ROOT
PAIRS = tr.pairs()
NOTEBOOKS = [p for p in PAIRS if p.is_notebook]
PAGES = [p for p in PAIRS if not p.is_notebook]
GLOSSARY = yaml.safe_load((REPO_ROOT / "i18n" / "glossary.yml").read_text(encoding="utf-8"))[
    "terms"
]


def zh_name(pair: tr.Pair) -> str:
    return pair.chinese.relative_to(REPO_ROOT).as_posix()


def require_twin(pair: tr.Pair) -> None:
    if not pair.chinese.is_file():
        pytest.fail(
            f"{zh_name(pair)} does not exist: every English page needs its Chinese twin "
            f"(start one with `python -m i18n.translations scaffold "
            f"{pair.english.relative_to(REPO_ROOT).as_posix()}`)",
            pytrace=False,
        )


# --- the table of contents -----------------------------------------------------------------------


def _part_files(entries, files: list[str]) -> list[str]:
    for entry in entries or []:
        if "file" in entry:
            files.append(re.sub(r"\.(md|ipynb)$", "", entry["file"]))
        _part_files(entry.get("sections"), files)
    return files


def toc_parts(path: Path) -> tuple[str, list[list[str]]]:
    """(root, the files of each part, in order) of a _toc.yml."""
    toc = yaml.safe_load(path.read_text(encoding="utf-8"))
    parts = toc.get("parts", [{"chapters": toc.get("chapters", [])}])
    return toc["root"], [_part_files(part.get("chapters"), []) for part in parts]


def test_there_are_pages_to_check():
    assert NOTEBOOKS and PAGES, PAIRS


def test_chinese_toc_mirrors_the_english_toc():
    english = toc_parts(REPO_ROOT / "_toc.yml")
    chinese = toc_parts(REPO_ROOT / "zh" / "_toc.yml")
    if english != chinese:
        diff = difflib.unified_diff(
            yaml.safe_dump(english).splitlines(),
            yaml.safe_dump(chinese).splitlines(),
            "_toc.yml",
            "zh/_toc.yml",
            lineterm="",
        )
        pytest.fail(
            "zh/_toc.yml must list the English pages (root, then each part's files) in the same "
            "order:\n" + "\n".join(diff),
            pytrace=False,
        )


@pytest.mark.parametrize("pair", PAIRS, ids=zh_name)
def test_every_english_page_has_a_chinese_twin(pair):
    require_twin(pair)


# --- notebooks: the same cells, the same code ------------------------------------------------------


@pytest.mark.parametrize("pair", NOTEBOOKS, ids=zh_name)
def test_notebook_has_the_english_cells_and_metadata(pair):
    require_twin(pair)
    english, chinese = tr.read_notebook(pair.english), tr.read_notebook(pair.chinese)
    problems = [
        i.detail
        for i in tr.notebook_issues(english, chinese)
        if i.kind == "structure" or (i.kind == "metadata" and i.cell is None)
    ]
    assert not problems, (
        f"{zh_name(pair)}: {problems}. `python -m i18n.translations sync {zh_name(pair)}` puts "
        "the cells in the English order and copies the metadata"
    )


def test_code_tokens_ignore_comments_only():
    """The comparison the next test relies on: comments and blank lines do not count, code does."""
    english = "x = f(1)  # add one\nif x:\n    # explain\n    print(x)\n"
    assert tr.code_tokens(english) == tr.code_tokens(
        "x = f(1)  # 加一\n\nif x:\n    print(x)  # 打印\n"
    )
    for changed in ("x = f(2)\nif x:\n    print(x)\n", "x = f(1)\nif x:\n    pass\nprint(x)\n"):
        assert tr.code_tokens(english) != tr.code_tokens(changed)
    assert tr.code_tokens('print("a")') != tr.code_tokens('print("中文")')  # strings count


@pytest.mark.parametrize("pair", NOTEBOOKS, ids=zh_name)
def test_code_cells_are_the_english_code(pair):
    """Comments aside; so the Chinese page may show the English build's outputs."""
    require_twin(pair)
    english = tr.read_notebook(pair.english)
    zh_cells = {c.get("id"): c for c in tr.read_notebook(pair.chinese)["cells"]}
    differ = []
    for index, en_cell in enumerate(english["cells"]):
        if en_cell["cell_type"] == "markdown":
            continue
        zh_cell = zh_cells.get(en_cell["id"])
        where = f"cell {index} (id {en_cell['id']})"
        if zh_cell is None or zh_cell["cell_type"] != en_cell["cell_type"]:
            differ.append(f"{where}: no {en_cell['cell_type']} cell with this id")
            continue
        en_src, zh_src = tr.cell_source(en_cell), tr.cell_source(zh_cell)
        if tr.code_tokens(en_src) != tr.code_tokens(zh_src):
            diff = difflib.unified_diff(
                en_src.splitlines(), zh_src.splitlines(), "English", "Chinese", lineterm="", n=1
            )
            differ.append(f"{where}: the code differs\n" + "\n".join(list(diff)[:20]))
        if zh_cell.get("metadata", {}) != en_cell.get("metadata", {}):
            differ.append(
                f"{where}: metadata {zh_cell.get('metadata')} is not the English "
                f"{en_cell.get('metadata')}"
            )
    assert not differ, (
        f"{zh_name(pair)}: code cells must be the English ones (comments aside); "
        f"`python -m i18n.translations sync {zh_name(pair)}` copies them.\n" + "\n".join(differ)
    )


@pytest.mark.parametrize("pair", [p for p in PAGES if tr.page_code_cells(p.english.read_text())])
def test_page_code_cells_are_the_english_code(pair):
    """MyST pages with code cells (teaching.md) run the same code in both editions."""
    require_twin(pair)
    issues = tr.page_issues(
        pair.english.read_text(encoding="utf-8"),
        pair.chinese.read_text(encoding="utf-8"),
        pair.english.relative_to(REPO_ROOT).as_posix(),
    )
    code = [f"{i.cell or 'page'}: {i.detail}" for i in issues if i.kind == "code"]
    assert not code, f"{zh_name(pair)}: {code} (`python -m i18n.translations sync` copies them)"


# --- translations: present and current -----------------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS, ids=zh_name)
def test_everything_is_translated(pair):
    require_twin(pair)
    missing = [i for i in tr.file_issues(pair) if i.kind in ("untranslated", "no-record")]
    assert not missing, f"{zh_name(pair)}: not translated:\n" + "\n".join(
        f"  {i.where() or 'the page'}: {i.detail}" for i in missing
    )


@pytest.mark.parametrize("pair", PAIRS, ids=zh_name)
def test_no_translation_is_stale(pair):
    require_twin(pair)
    stale = [i for i in tr.file_issues(pair) if i.kind == "stale"]
    assert not stale, (
        f"{zh_name(pair)}: the English changed since it was translated:\n"
        + "\n".join(f"  {i.where() or 'the page'}: {i.detail}" for i in stale)
        + f"\nSee the English diff: python -m i18n.translations stale {zh_name(pair)}; update the "
        f"Chinese, then: python -m i18n.translations refresh {zh_name(pair)}"
        + (" --cell ID" if pair.is_notebook else "")
    )


# --- the glossary ----------------------------------------------------------------------------------


def prose(markdown: str) -> str:
    """Markdown without what is not prose: front matter, record line, code, comments, URLs."""
    text = tr.page_body(markdown)
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", "", text, flags=re.DOTALL | re.MULTILINE)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    text = re.sub(r"^%.*$", "", text, flags=re.MULTILINE)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\]\([^)\s]*\)", "]", text)
    return re.sub(r"https?://\S+", "", text)


def translated_markdown(pair: tr.Pair) -> list[tuple[str, str]]:
    """(where, markdown) of each translated part of a Chinese file, in page order."""
    if pair.is_notebook:
        out = []
        for index, cell in enumerate(tr.read_notebook(pair.chinese)["cells"]):
            record = cell.get("metadata", {}).get("translation") or {}
            if cell["cell_type"] == "markdown" and record.get("sha256"):
                out.append((f"cell {index} (id {cell.get('id')})", tr.cell_source(cell)))
        return out
    text = pair.chinese.read_text(encoding="utf-8")
    record = tr.page_record(text) or {}
    return [("the page", text)] if record.get("sha256") else []


def zh_files() -> list[tr.Pair]:
    return [p for p in PAIRS if p.chinese.is_file()]


def test_glossary_is_well_formed():
    assert len(GLOSSARY) >= 20
    seen = set()
    for term in GLOSSARY:
        assert term.get("en") and term.get("zh"), term
        assert term["zh"] not in term.get("rejected", []), term
        assert term["en"] not in seen, f"{term['en']} twice"
        seen.add(term["en"])
    sae = next(t for t in GLOSSARY if t["en"].startswith("sparse autoencoder"))
    assert sae["zh"] == "稀疏自编码器" and "稀疏自动编码器" in sae["rejected"]


REJECTED = [(variant, term["zh"]) for term in GLOSSARY for variant in term.get("rejected", [])]


@pytest.mark.parametrize("pair", zh_files(), ids=zh_name)
def test_no_rejected_variant_in_chinese_prose(pair):
    found = [
        f"{where}: {variant!r} (the glossary says {preferred!r})"
        for where, markdown in translated_markdown(pair)
        for variant, preferred in REJECTED
        if variant in prose(markdown)
    ]
    assert not found, f"{zh_name(pair)}: rejected variants (i18n/glossary.yml):\n" + "\n".join(
        found
    )


SAE_MENTION = re.compile(r"稀疏自编码器|(?<![A-Za-z0-9_])SAEs?(?![A-Za-z0-9_])")
SAE_SPELLED_OUT = re.compile(
    r"稀疏自编码器[（(][^）)]*(?<![A-Za-z0-9_])SAE(?![A-Za-z0-9_])[^）)]*[）)]"
)


def first_sae_problem(parts: list[tuple[str, str]]) -> str | None:
    """Where the page first names the SAE in body text (headings aside), unless that first
    mention is 稀疏自编码器（…SAE…）; None when it is, or when the page never names it."""
    for where, markdown in parts:
        body = "\n".join(
            line for line in prose(markdown).splitlines() if not line.lstrip().startswith("#")
        )
        match = SAE_MENTION.search(body)
        if match is None:
            continue
        if SAE_SPELLED_OUT.match(body, match.start()):
            return None
        context = body[max(0, match.start() - 20) : match.end() + 30].replace("\n", " ")
        return f"{where}: …{context}…"
    return None


def test_first_use_check_on_examples():
    ok = [("c", "# 教程：SAE\n\n稀疏自编码器（sparse autoencoder，SAE）是……SAE 的潜变量")]
    assert first_sae_problem(ok) is None
    assert first_sae_problem([("c", "这个 SAE 是稀疏自编码器（SAE）")]) is not None
    assert first_sae_problem([("c", "稀疏自编码器把激活……")]) is not None
    assert first_sae_problem([("c", "`sae = SAE.from_pretrained()` 以及 SAELens")]) is None


@pytest.mark.parametrize("pair", zh_files(), ids=zh_name)
def test_sae_spelled_out_on_first_use(pair):
    """ "SAE" alone can also mean a stacked autoencoder in Chinese ML texts."""
    problem = first_sae_problem(translated_markdown(pair))
    assert problem is None, (
        f"{zh_name(pair)}: the first mention of the SAE must spell it out, e.g. "
        f"稀疏自编码器（sparse autoencoder，SAE）; found {problem}"
    )


def math_spans(markdown: str) -> list[str]:
    """The TeX of each formula: $$...$$, $...$ and ```{math} blocks."""
    text = tr.page_body(markdown)
    spans = [
        m.group(2)
        for m in re.finditer(
            r"^(`{3,})\{math\}[^\n]*\n(.*?)^\1[ \t]*$", text, flags=re.DOTALL | re.MULTILINE
        )
    ]
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1[ \t]*$", "", text, flags=re.DOTALL | re.MULTILINE)
    text = re.sub(r"`[^`\n]*`", "", text)
    spans += re.findall(r"\$\$(.+?)\$\$", text, flags=re.DOTALL)
    text = re.sub(r"\$\$(.+?)\$\$", "", text, flags=re.DOTALL)
    spans += re.findall(r"(?<![\\$])\$(?!\s)([^$\n]+?)(?<![\s\\])\$", text)
    return spans


def chinese_in_math(markdown: str) -> list[str]:
    bad = []
    for tex in math_spans(markdown):
        outside_text = re.sub(r"\\(?:text|textrm|textbf|textit|mbox)\s*\{[^{}]*\}", "", tex)
        if has_chinese(outside_text, punctuation=True):
            bad.append(tex.strip())
    return bad


def test_what_counts_as_chinese():
    # one character of each range, and its neighbours just outside (by code point, by hand)
    for char in ("\u4e00", "字", "\u9fff", "\u3400", "\u4dbf", "\uf900", "\ufaff"):
        assert has_chinese(f"a{char}b"), hex(ord(char))
    for char in ("\u33ff", "\u4dc0", "\ua000", "\uf8ff", "\ufb00", "é", "ア", "한"):
        assert not has_chinese(f"a{char}b", punctuation=True), hex(ord(char))
    # punctuation and full-width forms count only when asked for
    for char in ("，", "。", "\u3000", "\u303f", "（", "\uff00", "\uffef"):
        assert not has_chinese(char), hex(ord(char))
        assert has_chinese(char, punctuation=True), hex(ord(char))
    assert not has_chinese("") and not has_chinese("plain ASCII, (brackets).", punctuation=True)


def test_math_check_on_examples():
    assert chinese_in_math(r"损失 $L = \|x - \hat x\|^2$ 与 $\text{稀疏性} + \lambda$") == []
    assert chinese_in_math(r"$$L_{重构} = 1$$") == [r"L_{重构} = 1"]
    assert chinese_in_math("价格 $x_i$ 和 `$中文$`") == []
    assert chinese_in_math("```{math}\n\\mathrm{解释方差}\n```") == ["\\mathrm{解释方差}"]


@pytest.mark.parametrize("pair", zh_files(), ids=zh_name)
def test_no_chinese_inside_formulas(pair):
    found = [
        f"{where}: ${tex}$"
        for where, markdown in translated_markdown(pair)
        for tex in chinese_in_math(markdown)
    ]
    assert not found, (
        f"{zh_name(pair)}: Chinese inside formulas (keep it out, or wrap it in \\text{{}}):\n"
        + "\n".join(found)
    )


def test_jieba_dictionary_makes_glossary_terms_whole_search_terms(tmp_path):
    jieba = pytest.importorskip("jieba", reason="jieba is in requirements.txt")
    sys.path.insert(0, str(REPO_ROOT / "_ext"))
    try:
        import book_i18n
    finally:
        sys.path.remove(str(REPO_ROOT / "_ext"))
    path = tmp_path / "dict.txt"
    book_i18n.write_jieba_dict(path, GLOSSARY)
    words = {line.split()[0] for line in path.read_text(encoding="utf-8").splitlines()}
    assert {"稀疏自编码器", "残差流", "特征吸收", "潜变量", "字典学习"} <= words
    tokenizer = jieba.Tokenizer()
    sentence = "稀疏自编码器的特征吸收"
    assert "稀疏自编码器" not in tokenizer.lcut_for_search(sentence)  # why the dictionary exists
    tokenizer.load_userdict(str(path))
    assert {"稀疏自编码器", "特征吸收"} <= set(tokenizer.lcut_for_search(sentence))


# --- the Chinese build's configuration -------------------------------------------------------------

# What a Chinese build must change: its title and language, paths to the shared folders (one level
# up), the shared execution cache, the search dictionary, and where its pages live in the repository.
ZH_ONLY = [
    ("title",),
    ("logo",),
    ("exclude_patterns",),
    ("execute", "cache"),
    ("repository", "path_to_book"),
    ("html", "favicon"),
    ("sphinx", "local_extensions"),
    ("sphinx", "config", "language"),
    ("sphinx", "config", "html_static_path"),
    ("sphinx", "config", "html_css_files"),
    ("sphinx", "config", "html_search_options"),
    ("sphinx", "config", "html_theme_options", "search_bar_text"),
]


def _drop(config: dict, path: tuple) -> None:
    for key in path[:-1]:
        config = config.get(key, {})
    config.pop(path[-1], None)


def test_chinese_config_is_the_english_one_but_for_language_and_paths():
    english = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))
    chinese = yaml.safe_load((REPO_ROOT / "zh" / "_config.yml").read_text(encoding="utf-8"))
    en_ext = english["sphinx"]["local_extensions"]
    assert chinese["sphinx"]["local_extensions"] == {k: f"../{v}" for k, v in en_ext.items()}
    assert chinese["logo"] == f"../{english['logo']}"
    assert chinese["html"]["favicon"] == f"../{english['html']['favicon']}"
    assert chinese["sphinx"]["config"]["language"] == "zh_CN"
    assert has_chinese(chinese["sphinx"]["config"]["html_theme_options"]["search_bar_text"])
    cache = chinese["execute"]["cache"]
    assert Path(cache) == Path("_build/.jupyter_cache"), "share the English execution cache"
    en_rest, zh_rest = copy.deepcopy(english), copy.deepcopy(chinese)
    for path in ZH_ONLY:
        _drop(en_rest, path)
        _drop(zh_rest, path)
    assert zh_rest == en_rest, (
        "zh/_config.yml differs from _config.yml beyond language and paths:\n"
        + "\n".join(
            difflib.unified_diff(
                yaml.safe_dump(en_rest).splitlines(),
                yaml.safe_dump(zh_rest).splitlines(),
                "_config.yml",
                "zh/_config.yml",
                lineterm="",
            )
        )
    )


# --- the workflow commands, on a scratch repository ------------------------------------------------


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def scratch_book(tmp_path, monkeypatch) -> Path:
    """A git repository with a two-page book: a notebook and a page, committed (no README twin:
    the book's own OUTSIDE_THE_TOC is emptied)."""
    monkeypatch.setattr(twins, "OUTSIDE_THE_TOC", ())
    root = tmp_path / "book"
    (root / "notebooks").mkdir(parents=True)
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/t\n"
    )
    (root / "intro.md").write_text("# Intro\n\nAn SAE page.\n", encoding="utf-8")
    nb = {
        "cells": [
            {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "# Title\n"},
            {
                "cell_type": "code",
                "id": "c1",
                "metadata": {"tags": ["hide-input"]},
                "execution_count": None,
                "outputs": [],
                "source": "x = 1  # one\n",
            },
            {"cell_type": "markdown", "id": "m2", "metadata": {}, "source": "The old text.\n"},
        ],
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / "notebooks" / "t.ipynb").write_text(json.dumps(nb))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "English")
    return root


def test_files_outside_the_toc_are_paired_after_the_pages(scratch_book, monkeypatch):
    pages = [tr.Pair.rel(p, p.chinese, scratch_book) for p in tr.pairs(scratch_book)]
    assert pages == ["zh/intro.md", "zh/notebooks/t.ipynb"]
    monkeypatch.setattr(twins, "OUTSIDE_THE_TOC", (("README.md", "README.zh-CN.md"),))
    last = tr.pairs(scratch_book)[-1]
    assert (last.english, last.chinese) == (
        scratch_book / "README.md",
        scratch_book / "README.zh-CN.md",
    )
    assert len(tr.pairs(scratch_book)) == 3


def _issues(root: Path) -> dict[str, list[tuple[str, str | None]]]:
    return {
        tr.Pair.rel(p, p.chinese, root): [(i.kind, i.cell) for i in tr.file_issues(p, root)]
        for p in tr.pairs(root)
    }


def _translate(root: Path, cell_id: str, text: str) -> None:
    path = root / "zh" / "notebooks" / "t.ipynb"
    nb = tr.read_notebook(path)
    next(c for c in nb["cells"] if c["id"] == cell_id)["source"] = text
    tr.write_notebook(path, nb)


def test_workflow_scaffold_translate_refresh_change_stale(scratch_book, capsys):
    root = scratch_book
    assert _issues(root)["zh/notebooks/t.ipynb"] == [("missing", None)]
    assert tr.main(["scaffold", "notebooks/t.ipynb"], root) == 0
    assert tr.main(["scaffold", "intro.md"], root) == 0
    assert _issues(root) == {
        "zh/intro.md": [("untranslated", None)],
        "zh/notebooks/t.ipynb": [("untranslated", "m1"), ("untranslated", "m2")],
    }
    # Refreshing a cell that still holds the English text is refused.
    assert tr.main(["refresh", "zh/notebooks/t.ipynb", "--cell", "m1"], root) == 1
    _translate(root, "m1", "# 标题\n")
    _translate(root, "m2", "旧的文字。\n")
    assert tr.main(["refresh", "zh/notebooks/t.ipynb", "--cell", "m1", "--cell", "m2"], root) == 0
    zh_intro = root / "zh" / "intro.md"
    zh_intro.write_text(zh_intro.read_text().replace("An SAE page.", "一页。"), encoding="utf-8")
    assert tr.main(["refresh", "zh/intro.md"], root) == 0
    assert _issues(root) == {"zh/intro.md": [], "zh/notebooks/t.ipynb": []}
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Chinese")

    # The English changes: the test's check names the cell; `stale` shows the English diff.
    en_path = root / "notebooks" / "t.ipynb"
    nb = json.loads(en_path.read_text())
    nb["cells"][2]["source"] = "The new text.\n"
    en_path.write_text(json.dumps(nb))
    _git(root, "commit", "-q", "-am", "English changes")
    assert _issues(root)["zh/notebooks/t.ipynb"] == [("stale", "m2")]
    capsys.readouterr()
    assert tr.main(["stale"], root) == 1
    out = capsys.readouterr().out
    assert "cell 2 (id m2) is stale" in out
    assert "-The old text." in out and "+The new text." in out

    # Not found in history (the record's text was never committed): said so.
    path = root / "zh" / "notebooks" / "t.ipynb"
    zh = tr.read_notebook(path)
    zh["cells"][2]["metadata"]["translation"]["sha256"] = tr.sha256("never committed")
    tr.write_notebook(path, zh)
    tr.main(["stale"], root)
    assert "is in no committed version" in capsys.readouterr().out

    _translate(root, "m2", "新的文字。\n")
    assert tr.main(["refresh", "zh/notebooks/t.ipynb", "--all-stale"], root) == 0
    assert _issues(root)["zh/notebooks/t.ipynb"] == []
    assert tr.main(["stale"], root) == 0


def test_sync_copies_code_and_brings_new_cells(scratch_book):
    root = scratch_book
    tr.main(["scaffold", "notebooks/t.ipynb"], root)
    path = root / "zh" / "notebooks" / "t.ipynb"
    zh = tr.read_notebook(path)
    zh["cells"][1]["source"] = "x = 2  # 二\n"  # code drifted
    zh["cells"][1]["metadata"] = {}
    zh["cells"][0]["source"] = "# 标题\n"
    tr.write_notebook(path, zh)
    assert ("code", "c1") in _issues(root)["zh/notebooks/t.ipynb"]
    en_path = root / "notebooks" / "t.ipynb"
    nb = json.loads(en_path.read_text())
    nb["cells"].insert(1, {"cell_type": "markdown", "id": "m0", "metadata": {}, "source": "New.\n"})
    nb["cells"][3]["source"] = "The new text.\n"  # m2, untranslated in Chinese
    en_path.write_text(json.dumps(nb))

    assert tr.main(["sync"], root) == 0
    synced = tr.read_notebook(path)
    assert [c["id"] for c in synced["cells"]] == ["m1", "m0", "c1", "m2"]
    assert tr.cell_source(synced["cells"][2]) == "x = 1  # one\n"
    assert synced["cells"][2]["metadata"] == {"tags": ["hide-input"]}
    assert tr.cell_source(synced["cells"][0]) == "# 标题\n"  # Chinese begun: kept
    assert tr.cell_source(synced["cells"][3]) == "The new text.\n"  # still English: updated
    kinds = _issues(root)["zh/notebooks/t.ipynb"]
    assert ("untranslated", "m0") in kinds and not [k for k in kinds if k[0] == "code"]


def test_language_switch_links_are_relative_twins():
    """_ext/book_i18n.py: the English site at _build/html, the Chinese one at _build/html/zh."""
    sys.path.insert(0, str(REPO_ROOT / "_ext"))
    try:
        import book_i18n
    finally:
        sys.path.remove(str(REPO_ROOT / "_ext"))
    pages = {"intro", "notebooks/01_x"}
    assert (
        book_i18n.switch_link("notebooks/01_x", "en", "intro", pages) == "../zh/notebooks/01_x.html"
    )
    assert (
        book_i18n.switch_link("notebooks/01_x", "zh", "intro", pages) == "../../notebooks/01_x.html"
    )
    assert book_i18n.switch_link("intro", "en", "intro", pages) == "zh/intro.html"
    assert book_i18n.switch_link("search", "zh", "intro", pages) == "../search.html"
    assert book_i18n.switch_link("notebooks/99_new", "en", "intro", pages) == "../zh/intro.html"
    # the pages the switch links to: the other edition's toc, root first, without suffixes
    root, zh_pages = book_i18n.toc_docnames(REPO_ROOT / "zh" / "_toc.yml")
    assert root == "intro"
    assert "notebooks/01_analysing_a_pretrained_sae" in zh_pages and "glossary" in zh_pages
    assert not [name for name in zh_pages if name.endswith((".md", ".ipynb"))]
