"""i18n/records.py: the sha256 a translation records, a cell's source, notebooks read and written as
Jupyter saves them, and a page's record line (CONTRIBUTING.md, "Translating")."""

from __future__ import annotations

import hashlib
import json

from i18n.records import (
    cell_source,
    page_body,
    page_code_cells,
    page_record,
    read_notebook,
    set_page_record,
    sha256,
    write_notebook,
)


def test_sha256_is_of_the_utf8_text():
    assert sha256("稀疏自编码器 SAE\n") == hashlib.sha256("稀疏自编码器 SAE\n".encode()).hexdigest()
    assert sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_cell_source_joins_lines_and_defaults_to_empty():
    assert cell_source({"source": ["a\n", "b"]}) == "a\nb"
    assert cell_source({"source": "a\nb"}) == "a\nb"
    assert cell_source({}) == ""
    assert cell_source({"source": []}) == ""


def test_write_notebook_saves_as_jupyter_does(tmp_path, ascii_locale):
    nb = {
        "nbformat": 4,
        "metadata": {"kernelspec": {"name": "python3"}},
        "cells": [
            {"source": "# 标题\n\n文字", "id": "a", "cell_type": "markdown", "metadata": {}},
            {"cell_type": "code", "id": "b", "metadata": {}, "source": ["x = 1\n", "y"]},
        ],
        "nbformat_minor": 5,
    }
    path = tmp_path / "zh" / "notebooks" / "a.ipynb"  # folders are made
    write_notebook(path, nb)
    expected = """{
 "cells": [
  {
   "cell_type": "markdown",
   "id": "a",
   "metadata": {},
   "source": [
    "# 标题\\n",
    "\\n",
    "文字"
   ]
  },
  {
   "cell_type": "code",
   "id": "b",
   "metadata": {},
   "source": [
    "x = 1\\n",
    "y"
   ]
  }
 ],
 "metadata": {
  "kernelspec": {
   "name": "python3"
  }
 },
 "nbformat": 4,
 "nbformat_minor": 5
}
"""
    assert path.read_bytes() == expected.encode("utf-8")
    write_notebook(path, nb)  # again, into the folder that now exists
    assert path.read_bytes() == expected.encode("utf-8")
    # the caller's notebook is left as it was
    assert nb["cells"][0]["source"] == "# 标题\n\n文字"
    assert read_notebook(path) == {
        **nb,
        "cells": [
            {**nb["cells"][0], "source": ["# 标题\n", "\n", "文字"]},
            nb["cells"][1],
        ],
    }


def test_read_notebook_reads_utf8(tmp_path, ascii_locale):
    path = tmp_path / "a.ipynb"
    path.write_bytes(json.dumps({"cells": [], "t": "中文"}, ensure_ascii=False).encode("utf-8"))
    assert read_notebook(path) == {"cells": [], "t": "中文"}


RECORD = "% translation: source=running.md sha256=abc123"


def test_page_record_reads_both_forms_and_untranslated():
    assert page_record(f"---\ntitle: x\n---\n\n{RECORD}\n\n# 运行\n") == {
        "source": "running.md",
        "sha256": "abc123",
    }
    html = "<!-- translation: source=README.md sha256=untranslated -->\n# 标题\n"
    assert page_record(html) == {"source": "README.md", "sha256": None}
    assert page_record("# 运行\n\ntranslation: source=a.md sha256=b\n") is None


def test_set_page_record_replaces_the_record_in_its_own_form():
    page = f"---\ntitle: x\n---\n\n{RECORD}\n\n# 运行\n"
    assert set_page_record(page, "running.md", "ff00") == page.replace("abc123", "ff00")
    assert set_page_record(page, "running.md", None) == page.replace("abc123", "untranslated")
    html = "# 标题\n<!-- translation: source=README.md sha256=old -->\n\n文字\n"
    assert set_page_record(html, "README.md", "new") == html.replace("old", "new")


def test_set_page_record_replaces_only_the_first_record_line():
    page = f"{RECORD}\n\n```\n{RECORD}\n```\n"
    assert set_page_record(page, "running.md", "new") == (
        f"% translation: source=running.md sha256=new\n\n```\n{RECORD}\n```\n"
    )


def test_set_page_record_adds_the_record_after_the_front_matter_or_on_top():
    page = "---\ntitle: x\n---\n# 运行\n"
    assert set_page_record(page, "running.md", "d1") == (
        "---\ntitle: x\n---\n\n% translation: source=running.md sha256=d1\n# 运行\n"
    )
    assert set_page_record("# 运行\n", "intro.md", None) == (
        "% translation: source=intro.md sha256=untranslated\n\n# 运行\n"
    )


def test_page_body_leaves_out_front_matter_and_the_first_record_line():
    page = f"---\ntitle: x\n---\n\n{RECORD}\n\n# 运行\n\n{RECORD}\n"
    assert page_body(page) == f"\n\n\n# 运行\n\n{RECORD}\n"
    assert page_body(f"# 运行\n{RECORD}\n") == "# 运行\n\n"


def test_page_code_cells_are_the_whole_blocks_in_order():
    first = "```{code-cell} ipython3\n:tags: [x]\nprint(1)\n```"
    second = "````{code-cell}\n```\nnot the end\n```\n````"
    page = f"---\ntitle: x\n---\n{RECORD}\n\n{first}\n\n```python\nnot a cell\n```\n\n{second}\n"
    assert page_code_cells(page) == [first, second]
    assert page_code_cells("# 运行\n\n```python\nx\n```\n") == []
