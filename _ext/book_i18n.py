"""Sphinx extension: the two editions of the book (English at the site's root, Chinese in zh/).

1. A language switch in every page's header (``_ext/templates/language-switch.html``, placed by
   ``html_theme_options.article_header_end`` in both _config.yml): a plain relative link to the
   same page in the other edition, so it works offline, from ``file://`` and over http. A page
   the other edition lacks links to that edition's front page. The English site lives in
   ``_build/html`` and the Chinese one in ``_build/html/zh`` (``python -m i18n.build``).
2. The ``book-glossary`` directive: the table of ``i18n/glossary.yml`` in the page's language
   (``glossary.md`` and ``zh/glossary.md`` hold only their own prose and this directive).
3. Chinese search: for a ``zh`` build, a jieba user dictionary made from the glossary's Chinese
   terms is written to the path ``html_search_options.dict`` names, so whole terms
   (稀疏自编码器, 残差流, 特征吸收) become search terms. Sphinx indexes no Chinese word without
   the ``jieba`` package (requirements.txt).
4. ``execute.cache`` (``nb_execution_cache_path``) and ``html_search_options.dict`` given as
   relative paths are taken relative to the repository root, not to wherever the build runs:
   zh/_config.yml points its execution cache at the English build's, so a Chinese notebook whose
   code cells are identical to its English twin's (tests/test_translations.py) reuses the
   English run's outputs instead of executing again.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # for i18n (the toc walk); Sphinx puts only _ext on the path
    sys.path.insert(0, str(REPO_ROOT))
from i18n.chinese import has_chinese  # noqa: E402
from i18n.twins import toc_files  # noqa: E402

GLOSSARY = REPO_ROOT / "i18n" / "glossary.yml"
TEMPLATES = Path(__file__).resolve().parent / "templates"
ZH = "zh"
# Pages every Sphinx HTML build has, in both editions.
BUILT_IN_PAGES = {"search", "genindex"}
# jieba's frequency for a glossary term: high enough that the whole term wins over its parts.
JIEBA_FREQUENCY = 2000


def edition(config) -> str:
    return "zh" if (config.language or "").lower().startswith("zh") else "en"


def load_glossary() -> list[dict]:
    return yaml.safe_load(GLOSSARY.read_text(encoding="utf-8"))["terms"]


# --- 1. the language switch -----------------------------------------------------------------------


def toc_docnames(toc_path: Path) -> tuple[str, set[str]]:
    """(root page, every page) of a _toc.yml, as docnames (the walk is i18n.twins')."""
    names = toc_files(toc_path)
    return names[0], set(names)


def switch_link(pagename: str, this_edition: str, other_root: str, other_pages: set[str]) -> str:
    """The relative URL of ``pagename``'s twin in the other edition (or its front page)."""
    target = pagename if pagename in other_pages | BUILT_IN_PAGES else other_root
    up = "../" * pagename.count("/")
    if this_edition == "en":
        return f"{up}{ZH}/{target}.html"
    return f"{up}../{target}.html"


SWITCH = {
    # this edition -> how the link to the other one reads
    "en": {"label": "中文", "hreflang": "zh-CN", "title": "阅读本页的中文版"},
    "zh": {"label": "English", "hreflang": "en", "title": "Read this page in English"},
}


def _add_switch(app, pagename, templatename, context, doctree):
    this = edition(app.config)
    other_toc = REPO_ROOT / ("_toc.yml" if this == "zh" else f"{ZH}/_toc.yml")
    if not other_toc.is_file():
        return
    root, pages = toc_docnames(other_toc)
    context["language_switch"] = {
        **SWITCH[this],
        "href": switch_link(pagename, this, root, pages),
        "twin": pagename in pages | BUILT_IN_PAGES,
    }


# --- 2. the glossary table ------------------------------------------------------------------------

COLUMNS = {
    "en": [("Term", "en"), ("中文", "zh"), ("Notes", "note")],
    "zh": [
        ("中文", "zh"),
        ("English", "en"),
        ("首次出现时写作", "first_use"),
        ("不用", "rejected"),
    ],
}


def _table(headings: list[str], rows: list[list[str]]) -> nodes.table:
    table = nodes.table(classes=["book-glossary"])
    group = nodes.tgroup(cols=len(headings))
    table += group
    for _ in headings:
        group += nodes.colspec(colwidth=1)
    head, body = nodes.thead(), nodes.tbody()
    group += head
    group += body
    for target, values in ((head, [headings]), (body, rows)):
        for values_row in values:
            row = nodes.row()
            for value in values_row:
                row += nodes.entry("", nodes.paragraph(text=value))
            target += row
    return table


class BookGlossary(SphinxDirective):
    """``book-glossary``: i18n/glossary.yml as a table, with ``:language: en`` or ``zh``."""

    has_content = False
    option_spec = {"language": lambda value: value.strip()}

    def run(self):
        language = self.options.get("language", edition(self.config))
        if language not in COLUMNS:
            raise self.error(f"book-glossary: language must be one of {sorted(COLUMNS)}")
        self.env.note_dependency(str(GLOSSARY))  # a change to the glossary rebuilds the page
        columns = COLUMNS[language]
        rows = []
        for term in load_glossary():
            row = []
            for _, key in columns:
                value = term.get(key) or ""
                if isinstance(value, list):
                    value = "、".join(value)
                row.append(str(value))
            rows.append(row)
        return [_table([heading for heading, _ in columns], rows)]


# --- 3. the jieba dictionary ----------------------------------------------------------------------


def jieba_words(terms: list[dict]) -> list[str]:
    """Every Chinese word the glossary defines (``字典（学习）`` gives 字典学习 and 字典)."""
    words = []
    for term in terms:
        zh = str(term.get("zh") or "")
        for word in (re.sub(r"[（(].*?[）)]", "", zh), re.sub(r"[（()）]", "", zh)):
            word = word.strip()
            if has_chinese(word) and " " not in word and word not in words:
                words.append(word)
    return words


def write_jieba_dict(path: Path, terms: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{word} {JIEBA_FREQUENCY} n" for word in jieba_words(terms)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _from_repo_root(value: str) -> str:
    path = Path(value)
    return str(path if path.is_absolute() else REPO_ROOT / path)


def _resolve_paths(app, config):
    if config.nb_execution_cache_path:
        config.nb_execution_cache_path = _from_repo_root(config.nb_execution_cache_path)
    options = dict(config.html_search_options or {})
    if edition(config) == "zh" and options.get("dict"):
        options["dict"] = _from_repo_root(options["dict"])
        write_jieba_dict(Path(options["dict"]), load_glossary())
        config.html_search_options = options
        try:
            import jieba  # noqa: F401
        except ImportError:
            logger.warning(
                "book_i18n: the jieba package is not installed, so the Chinese search index "
                "holds no Chinese word (pip install -r requirements.txt)"
            )


def _add_templates(app, config):
    if str(TEMPLATES) not in config.templates_path:
        config.templates_path.append(str(TEMPLATES))


def setup(app):
    # Before MyST-NB reads nb_execution_cache_path and before the HTML builder loads templates.
    app.connect("config-inited", _resolve_paths, priority=100)
    app.connect("config-inited", _add_templates, priority=100)
    app.connect("html-page-context", _add_switch)
    app.add_directive("book-glossary", BookGlossary)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
