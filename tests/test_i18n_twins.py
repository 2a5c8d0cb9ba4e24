"""i18n/twins.py: every page of the English table of contents, and the files outside it, with
where its Chinese twin lives under zh/ (CONTRIBUTING.md, "Translating")."""

from __future__ import annotations

from i18n.twins import Pair, english_of, pairs, source_path, toc_files

TOC = """\
format: jb-book
root: intro
parts:
  - caption: Part one — 第一部分
    chapters:
      - file: notebooks/01_a.ipynb
        sections:
          - file: notebooks/01_b
            sections:
              - file: deep.md
      - file: missing
      - file: running.md
  - caption: Part two
    chapters:
      - url: https://example.com
        chapters:
          - file: nested
chapters:
  - file: after
"""


def test_toc_files_lists_every_page_root_first_without_suffix(tmp_path, ascii_locale):
    (tmp_path / "_toc.yml").write_text(TOC, encoding="utf-8")
    assert toc_files(tmp_path / "_toc.yml") == [
        "intro",
        "notebooks/01_a",
        "notebooks/01_b",
        "deep",
        "missing",
        "running",
        "nested",
        "after",
    ]
    # a book without parts
    (tmp_path / "_toc.yml").write_text("root: intro\nchapters:\n  - file: a.md\n", encoding="utf-8")
    assert toc_files(tmp_path / "_toc.yml") == ["intro", "a"]


def test_pairs_put_each_twin_under_zh_and_skip_pages_without_a_source(tmp_path):
    (tmp_path / "_toc.yml").write_text(TOC, encoding="utf-8")
    for name in ("intro.md", "notebooks/01_a.ipynb", "notebooks/01_b.md", "running.md", "after.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    found = pairs(tmp_path)
    assert [(p.english, p.chinese) for p in found] == [
        (tmp_path / e, tmp_path / z)
        for e, z in [
            ("intro.md", "zh/intro.md"),
            ("notebooks/01_a.ipynb", "zh/notebooks/01_a.ipynb"),
            ("notebooks/01_b.md", "zh/notebooks/01_b.md"),
            ("running.md", "zh/running.md"),  # after "missing", which has no source
            ("after.md", "zh/after.md"),
            ("README.md", "README.zh-CN.md"),
        ]
    ]
    assert [p.is_notebook for p in found] == [False, True, False, False, False, False]


def test_source_path_prefers_the_notebook(tmp_path):
    (tmp_path / "a.md").write_text("x", encoding="utf-8")
    assert source_path(tmp_path, "a") == tmp_path / "a.md"
    (tmp_path / "a.ipynb").write_text("{}", encoding="utf-8")
    assert source_path(tmp_path, "a") == tmp_path / "a.ipynb"
    assert source_path(tmp_path, "b") is None


def test_english_of_and_rel(tmp_path):
    assert english_of(tmp_path / "zh" / "notebooks" / "a.ipynb", tmp_path) == (
        tmp_path / "notebooks" / "a.ipynb"
    )
    pair = Pair(tmp_path / "notebooks" / "a.ipynb", tmp_path / "zh" / "notebooks" / "a.ipynb")
    assert pair.rel(pair.chinese, tmp_path) == "zh/notebooks/a.ipynb"
