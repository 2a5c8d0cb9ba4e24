"""i18n/issues.py on small synthetic twins: each finding a Chinese notebook or page can get (missing,
structure, metadata, code, untranslated, stale, no-record), with the cell it names, and none where
the Chinese is true to the English (CONTRIBUTING.md, "Translating")."""

from __future__ import annotations

import copy
import hashlib
import json
import re

from i18n.issues import Issue, _cell_body, _cell_head, file_issues, notebook_issues, page_issues
from i18n.twins import Pair


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def md(cell_id: str, source: str, **metadata) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": metadata, "source": source}


def code(cell_id: str, source: str, **metadata) -> dict:
    return {
        "cell_type": "code",
        "id": cell_id,
        "metadata": metadata,
        "source": source,
        "outputs": [],
        "execution_count": None,
    }


def zh_md(cell_id: str, source: str, translates: str | None, **metadata) -> dict:
    """A Chinese markdown cell recording the English text ``translates`` (None: untranslated)."""
    record = {"source": cell_id, "sha256": None if translates is None else digest(translates)}
    return md(cell_id, source, translation=record, **metadata)


def notebook(*cells, **metadata) -> dict:
    return {"cells": list(cells), "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


EN_INTRO, EN_LOOP = "# Intro\n\nSome text — briefly.", "We loop over the layers."
LOOP_CODE = "for layer in range(3):\n    print(layer)\n"
KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}


def english() -> dict:
    return notebook(
        md("intro", EN_INTRO),
        code("setup", "import math\nx = math.pi  # a constant\n"),
        md("loop", EN_LOOP),
        code("run", LOOP_CODE, tags=["hide-output"]),
        **KERNEL,
    )


def chinese() -> dict:
    """english()'s faithful twin: every markdown cell translated from today's English."""
    return notebook(
        zh_md("intro", "# 介绍\n\n一些文字。", EN_INTRO),
        code("setup", "import math\nx = math.pi  # 一个常数\n"),
        zh_md("loop", "我们遍历各层。", EN_LOOP),
        code("run", LOOP_CODE, tags=["hide-output"]),
        **KERNEL,
    )


def found(issues: list[Issue]) -> list[tuple]:
    """What a user acts on: the kind of finding, the cell it names (id and index)."""
    assert all(isinstance(i, Issue) and isinstance(i.detail, str) and i.detail for i in issues)
    return [(i.kind, i.cell, i.index) for i in issues]


def test_a_faithful_twin_has_no_issues():
    # comments in code may be translated; the record holds sha256 of the English cell source
    assert notebook_issues(english(), chinese()) == []


def test_a_cell_source_kept_as_a_list_of_lines_counts_as_its_joined_text():
    en, zh = english(), chinese()
    en["cells"][2]["source"] = ["We loop ", "over the layers."]
    assert notebook_issues(en, zh) == []


def test_stale_and_untranslated_markdown_cells():
    en, zh = english(), chinese()
    en["cells"][0]["source"] = EN_INTRO + " More."
    zh["cells"][2]["metadata"]["translation"]["sha256"] = None
    issues = notebook_issues(en, zh)
    assert found(issues) == [("stale", "intro", 0), ("untranslated", "loop", 2)]
    assert "changed" in issues[0].detail
    assert "not translated" in issues[1].detail
    assert issues[0].where() == "cell 0 (id intro)"


def test_a_missing_or_wrong_record_is_no_record_and_nothing_else_is_checked_for_that_cell():
    en, zh = english(), chinese()
    del zh["cells"][0]["metadata"]["translation"]  # no record at all
    zh["cells"][0]["metadata"]["tags"] = ["extra"]  # not reported: the record is missing
    zh["cells"][2]["metadata"]["translation"]["source"] = "intro"  # records another cell
    issues = notebook_issues(en, zh)
    assert found(issues) == [("no-record", "intro", 0), ("no-record", "loop", 2)]
    assert all("record" in i.detail for i in issues)


def test_a_record_that_is_not_a_mapping_or_a_cell_without_metadata_is_no_record():
    en, zh = english(), chinese()
    zh["cells"][0]["metadata"]["translation"] = "intro"
    del zh["cells"][2]["metadata"]
    assert found(notebook_issues(en, zh)) == [("no-record", "intro", 0), ("no-record", "loop", 2)]


def test_translated_code_differs():
    en, zh = english(), chinese()
    zh["cells"][1]["source"] = "import math\nx = math.tau\n"
    zh["cells"][3]["source"] = 'for layer in range(3):\n    print("层", layer)\n'
    issues = notebook_issues(en, zh)
    assert found(issues) == [("code", "setup", 1), ("code", "run", 3)]
    assert all("code differs" in i.detail for i in issues)


def test_code_cell_metadata_differs():
    en, zh = english(), chinese()
    zh["cells"][3]["metadata"] = {}
    issues = notebook_issues(en, zh)
    assert found(issues) == [("metadata", "run", 3)]
    assert "metadata" in issues[0].detail


def test_a_code_cell_without_metadata_equals_one_with_empty_metadata():
    en, zh = english(), chinese()
    del zh["cells"][1]["metadata"]  # English has {}
    assert notebook_issues(en, zh) == []
    del en["cells"][1]["metadata"]
    zh["cells"][1]["metadata"] = {}
    assert notebook_issues(en, zh) == []


def test_markdown_metadata_besides_the_record_must_match_the_english():
    en, zh = english(), chinese()
    en["cells"][0]["metadata"] = {"tags": ["remove-cell"]}
    zh["cells"][0]["metadata"]["tags"] = ["remove-cell"]
    assert notebook_issues(en, zh) == []  # the same tags, and the record, which English lacks
    zh["cells"][2]["metadata"]["tags"] = ["remove-cell"]  # English "loop" has none
    zh["cells"][0]["metadata"]["tags"] = ["other"]
    issues = notebook_issues(en, zh)
    assert found(issues) == [("metadata", "intro", 0), ("metadata", "loop", 2)]
    assert all("metadata" in i.detail for i in issues)


def test_an_english_markdown_cell_without_metadata_needs_only_the_record():
    en, zh = english(), chinese()
    del en["cells"][2]["metadata"]
    assert notebook_issues(en, zh) == []


def test_a_stale_cell_can_also_have_wrong_metadata():
    en, zh = english(), chinese()
    en["cells"][2]["source"] = "Changed."
    zh["cells"][2]["metadata"]["tags"] = ["x"]
    assert found(notebook_issues(en, zh)) == [("stale", "loop", 2), ("metadata", "loop", 2)]


def test_notebook_metadata_differs():
    en, zh = english(), chinese()
    zh["metadata"]["language_info"] = {"name": "python"}
    issues = notebook_issues(en, zh)
    assert found(issues) == [("metadata", None, None)]
    assert "notebook metadata" in issues[0].detail
    assert issues[0].where() == ""


def listed_ids(detail: str) -> list[str]:
    """The cell-id lists a structure finding names, in order."""
    return re.findall(r"\[[^\]]*\]", detail)


def test_a_missing_markdown_cell_is_untranslated_a_missing_code_cell_only_structure():
    en, zh = english(), chinese()
    del zh["cells"][2:4]  # "loop" (markdown) and "run" (code)
    issues = notebook_issues(en, zh)
    assert found(issues) == [("structure", None, None), ("untranslated", "loop", 2)]
    assert "English cells 2-3" in issues[0].detail and "not in the Chinese" in issues[0].detail
    assert listed_ids(issues[0].detail) == ["['loop', 'run']"]
    assert "no Chinese cell" in issues[1].detail


def test_cells_after_a_missing_one_are_still_checked():
    en, zh = english(), chinese()
    del zh["cells"][0]
    zh["cells"][0]["source"] = "x = 2\n"  # "setup"
    zh["cells"][1]["metadata"]["translation"]["sha256"] = None  # "loop"
    assert found(notebook_issues(en, zh)) == [
        ("structure", None, None),
        ("untranslated", "intro", 0),
        ("code", "setup", 1),
        ("untranslated", "loop", 2),
    ]


def test_a_cell_of_the_other_type_counts_as_missing():
    en, zh = english(), chinese()
    zh["cells"][0] = code("intro", "print(1)\n")  # English "intro" is markdown
    zh["cells"][1] = md("setup", "import math\nx = math.pi\n")  # English "setup" is code
    issues = notebook_issues(en, zh)
    assert found(issues) == [("structure", None, None), ("untranslated", "intro", 0)]
    assert listed_ids(issues[0].detail) == [
        "[('markdown', 'intro'), ('code', 'setup')]",
        "[('code', 'intro'), ('markdown', 'setup')]",
    ]
    assert "where the Chinese has" in issues[0].detail


def test_extra_and_reordered_chinese_cells_are_named():
    en, zh = english(), chinese()
    zh["cells"].insert(1, md("extra", "多余的。"))
    assert found(notebook_issues(en, zh)) == [("structure", None, None)]
    detail = notebook_issues(en, zh)[0].detail
    assert "Chinese cells 1-1" in detail and "not in the English" in detail
    assert listed_ids(detail) == ["['extra']"]
    zh = chinese()
    zh["cells"][0], zh["cells"][1] = zh["cells"][1], zh["cells"][0]  # setup, intro, loop, run
    detail = notebook_issues(en, zh)[0].detail
    # only the cells out of place are named: "setup" inserted before "intro", deleted after it
    assert "Chinese cells 0-0 ['setup'] are not in the English" in detail
    assert "English cells 1-1 ['setup'] are not in the Chinese" in detail
    assert listed_ids(detail) == ["['setup']", "['setup']"]


def test_a_chinese_cell_without_an_id_is_out_of_place():
    en, zh = english(), chinese()
    del zh["cells"][1]["id"]
    issues = notebook_issues(en, zh)
    assert found(issues) == [("structure", None, None)]  # English "setup" is code: no untranslated
    assert listed_ids(issues[0].detail) == ["[('code', 'setup')]", "[('code', None)]"]


def test_at_most_five_differences_are_listed():
    en = notebook(*[md(f"m{i}", f"Text {i}.") for i in range(12)])
    zh = notebook(*[zh_md(f"m{i}", f"文字 {i}。", f"Text {i}.") for i in range(12)])
    # drop every other Chinese cell: six separate gaps
    zh["cells"] = zh["cells"][1::2]
    issues = notebook_issues(en, zh)
    assert found(issues)[0] == ("structure", None, None)
    assert listed_ids(issues[0].detail) == [f"['m{i}']" for i in (0, 2, 4, 6, 8)]
    assert [i.cell for i in issues[1:]] == [f"m{i}" for i in range(0, 12, 2)]


def test_issue_where():
    assert Issue("stale", "abc", 3, "x").where() == "cell 3 (id abc)"
    assert Issue("stale", None, None, "x").where() == ""


# Pages (.md): one record line after the front matter, code cells copied from the English.
EN_PAGE = """---
title: Running
---

# Running — how

```{code-cell} ipython3
:tags: [hide-input]
import math
print(math.pi)
```

Text.

````{code-cell} ipython3
x = 1  # one
````
"""


def zh_page(record: str | None = None, en_page: str = EN_PAGE) -> str:
    if record is None:
        record = f"% translation: source=running.md sha256={digest(en_page)}"
    return f"""---
title: 运行
---

{record}

# 运行

```{{code-cell}} ipython3
:tags: [hide-input]
import math

print(math.pi)
```

文字。

````{{code-cell}} ipython3
x = 1  # 一
````
"""


def test_a_faithful_page_has_no_issues():
    assert page_issues(EN_PAGE, zh_page(), "running.md") == []


def test_a_page_in_a_github_comment_record_counts_too():
    record = f"<!-- translation: source=running.md sha256={digest(EN_PAGE)} -->"
    assert page_issues(EN_PAGE, zh_page(record), "running.md") == []


def test_page_without_record_or_recording_another_page():
    issues = page_issues(EN_PAGE, zh_page("no record here"), "running.md")
    assert found(issues) == [("no-record", None, None)]
    # the line to add, for this page
    assert "% translation: source=running.md sha256=" in issues[0].detail
    issues = page_issues(EN_PAGE, zh_page(), "intro.md")  # its record names running.md
    assert found(issues) == [("no-record", None, None)]
    assert "source=intro.md" in issues[0].detail


def test_page_untranslated_and_stale():
    issues = page_issues(
        EN_PAGE, zh_page("% translation: source=running.md sha256=untranslated"), "running.md"
    )
    assert found(issues) == [("untranslated", None, None)]
    assert "not translated" in issues[0].detail
    issues = page_issues(EN_PAGE + "More.\n", zh_page(), "running.md")
    assert found(issues) == [("stale", None, None)]
    assert "changed" in issues[0].detail
    assert issues[0].where() == ""


def test_page_with_a_code_cell_less_or_more():
    one_cell = zh_page().split("文字。")[0]
    issues = page_issues(EN_PAGE, one_cell, "running.md")
    assert found(issues) == [("code", None, None)]
    assert issues[0].detail.startswith("1 code cells, English has 2")


def test_page_code_cells_that_differ_are_named_by_position():
    body_differs = zh_page().replace("print(math.pi)", "print(math.tau)")
    issues = page_issues(EN_PAGE, body_differs, "running.md")
    assert found(issues) == [("code", "code-cell 0", 0)]
    assert "differs" in issues[0].detail
    option_differs = zh_page().replace(":tags: [hide-input]", ":tags: [hide-output]")
    assert found(page_issues(EN_PAGE, option_differs, "running.md")) == [("code", "code-cell 0", 0)]
    directive_differs = zh_page().replace("````{code-cell} ipython3", "````{code-cell} python")
    issues = page_issues(EN_PAGE, directive_differs, "running.md")
    assert found(issues) == [("code", "code-cell 1", 1)]


def test_page_issues_come_together():
    text = zh_page("no record").replace("x = 1", "x = 2")
    assert found(page_issues(EN_PAGE, text, "running.md")) == [
        ("no-record", None, None),
        ("code", "code-cell 1", 1),
    ]


def test_cell_head_is_the_directive_and_its_option_lines():
    block = "```{code-cell} ipython3\n:tags: [a]\n:name: b\nx = 1\n:not-an-option\n```"
    assert _cell_head(block) == "```{code-cell} ipython3\n:tags: [a]\n:name: b"
    assert _cell_head("```{code-cell}\n:tags: [a]\n```") == "```{code-cell}\n:tags: [a]"
    assert _cell_head("```{code-cell}\nx\n```") == "```{code-cell}"


def test_cell_body_is_the_code_without_fences_and_options():
    block = "```{code-cell} ipython3\n:tags: [a]\n:name: b\nx = 1\n:y\nz = 2\n```"
    assert _cell_body(block) == "x = 1\n:y\nz = 2\n"
    assert _cell_body("```{code-cell}\nx = 1\ny = 2\n```") == "x = 1\ny = 2\n"
    assert _cell_body("```{code-cell}\nx = 1\n```") == "x = 1\n"
    assert _cell_body("```{code-cell}\n```") == "\n"


# file_issues: the twin on disk.
def test_file_issues_missing_twin_names_the_scaffold_command(tmp_path):
    (tmp_path / "notebooks").mkdir()
    english_path = tmp_path / "notebooks" / "01_x.ipynb"
    english_path.write_text(json.dumps(english()), encoding="utf-8")
    pair = Pair(english_path, tmp_path / "zh" / "notebooks" / "01_x.ipynb")
    issues = file_issues(pair, tmp_path)
    assert found(issues) == [("missing", None, None)]
    assert issues[0].detail.endswith("python -m i18n.translations scaffold notebooks/01_x.ipynb")


def test_file_issues_reads_notebooks_and_pages_as_utf8(tmp_path, ascii_locale):
    (tmp_path / "zh").mkdir()
    en_nb, zh_nb = tmp_path / "a.ipynb", tmp_path / "zh" / "a.ipynb"
    en_nb.write_text(json.dumps(english()), encoding="utf-8")
    stale = copy.deepcopy(chinese())
    stale["cells"][0]["metadata"]["translation"]["sha256"] = digest("old")
    zh_nb.write_text(json.dumps(stale, ensure_ascii=False), encoding="utf-8")
    assert found(file_issues(Pair(en_nb, zh_nb), tmp_path)) == [("stale", "intro", 0)]
    en_md, zh_md_path = tmp_path / "running.md", tmp_path / "zh" / "running.md"
    en_md.write_text(EN_PAGE, encoding="utf-8")
    zh_md_path.write_text(zh_page(), encoding="utf-8")
    assert file_issues(Pair(en_md, zh_md_path), tmp_path) == []
    # the record must name the English page by its path from the root
    assert found(file_issues(Pair(en_md, zh_md_path), tmp_path.parent)) == [
        ("no-record", None, None)
    ]
