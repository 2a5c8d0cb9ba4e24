"""The website's two editions: the language switch of every page leads to the same page in the
other edition (followed in headless Chromium both ways, over http and from file://), the Chinese
search finds each tutorial by a Chinese term, the Chinese pages say they are Chinese and show the
English run's outputs, and both glossary pages show every term.

Without Chromium (and Python playwright) the browser tests are skipped, saying so; with CI=true
they fail instead, because CI must run them (.ci/run installs Debian's chromium).
"""

from __future__ import annotations

import re

import nbformat
import pytest
from site_browser import PAGES, RENDER_TIMEOUT_MS
from site_helpers import (
    EXECUTION_CACHE,
    HTML_DIR,
    REPO_ROOT,
    is_chinese,
    is_local_url,
    local_target,
    tutorial_docnames,
    twin_of,
)

SWITCH_LINK = re.compile(r'<a class="[^"]*\blanguage-switch\b[^"]*"\s+href="([^"]+)"')


@pytest.mark.parametrize("docname", PAGES)
def test_language_switch_leads_to_the_twin(site, docname):
    """Each page's language switch is a relative link to the same page in the other edition."""
    page = HTML_DIR / f"{docname}.html"
    links = SWITCH_LINK.findall(page.read_text(encoding="utf-8"))
    assert len(links) == 1, f"{docname}: {len(links)} language switches (want one)"
    target = local_target(page, links[0])
    twin = (HTML_DIR / f"{twin_of(docname)}.html").resolve()
    assert target == twin, f"{docname}: the language switch {links[0]!r} leads to {target}"
    assert twin.is_file(), f"{docname}: its twin {twin} was not built"


def _follow_switch(browser, url: str) -> str:
    context = browser.new_context()
    page = context.new_page()
    page.route(
        "**/*",
        lambda r: (
            r.continue_()
            if is_local_url(r.request.url) or r.request.url.startswith(("file:", "data:", "blob:"))
            else r.abort("blockedbyclient")
        ),
    )
    page.goto(url, wait_until="domcontentloaded")
    switch = page.locator("a.language-switch").first
    switch.click()
    page.wait_for_load_state("domcontentloaded")
    landed = page.url
    context.close()
    return landed


@pytest.mark.parametrize("how", ["http", "file"])
def test_language_switch_followed_both_ways(browser, server, site, how):
    """Click the switch on tutorial 1, then on its Chinese twin: each lands on the other page."""
    base = server.base_url if how == "http" else HTML_DIR.resolve().as_uri() + "/"
    english = "notebooks/01_analysing_a_pretrained_sae"
    for start, expected in ((english, twin_of(english)), (twin_of(english), english)):
        landed = _follow_switch(browser, f"{base}{start}.html")
        assert landed.split("#")[0] == f"{base}{expected}.html", (
            f"{how}: the switch on {start} led to {landed}"
        )


# Each tutorial and a Chinese word from its title (or, for tutorial 1, the word the issue names):
# the Chinese site's search must list the tutorial for it. jieba (requirements.txt) and the user
# dictionary made from the glossary (_ext/book_i18n.py) make these whole search terms.
CHINESE_SEARCHES = [
    ("zh/notebooks/01_analysing_a_pretrained_sae", "稀疏自编码器"),
    ("zh/notebooks/02_training_your_own_sae", "训练"),
    ("zh/notebooks/03_using_sae_features", "引导"),
    ("zh/notebooks/03_using_sae_features", "消融"),
    ("zh/notebooks/03_using_sae_features", "归因"),
    ("zh/notebooks/04_ground_truth_with_synthetic_data", "特征吸收"),
]


@pytest.mark.parametrize(("docname", "term"), CHINESE_SEARCHES)
def test_chinese_search_finds_each_tutorial(browser, server, site, docname, term):
    assert docname in PAGES, f"{docname} is not in zh/_toc.yml"
    assert (HTML_DIR / f"{docname}.html").is_file(), f"{docname} was not built"
    context = browser.new_context()
    page = context.new_page()
    page.route(
        "**/*",
        lambda r: r.continue_() if is_local_url(r.request.url) else r.abort("blockedbyclient"),
    )
    page.goto(f"{server.base_url}zh/search.html?q={term}", wait_until="load")
    page.wait_for_function(
        "() => { const s = document.querySelector('#search-results .search-summary');"
        " return s && s.innerText.trim().length > 0; }",
        timeout=RENDER_TIMEOUT_MS,
    )
    hits = page.evaluate(
        "() => [...document.querySelectorAll('#search-results ul.search li a')]"
        ".map(a => a.getAttribute('href'))"
    )
    summary = page.locator("#search-results .search-summary").inner_text()
    context.close()
    page_file = docname.removeprefix("zh/") + ".html"
    assert any(h.split("?")[0].split("#")[0] == page_file for h in hits), (
        f"searching the Chinese site for {term!r} did not list {page_file}: {summary!r}, hits {hits}"
    )


def test_chinese_pages_say_they_are_chinese(site):
    for docname in PAGES:
        html = (HTML_DIR / f"{docname}.html").read_text(encoding="utf-8")
        lang = re.search(r'<html[^>]*\blang="([^"]+)"', html)
        want = "zh-CN" if is_chinese(docname) else "en"
        assert lang and lang.group(1) == want, f"{docname}: <html lang> is {lang and lang.group(1)}"


@pytest.mark.parametrize("docname", tutorial_docnames("zh"))
def test_chinese_notebook_ran_in_the_build(site, docname):
    """Each Chinese notebook's current code has a successful run in the shared execution cache
    (zh/_config.yml), and it is the English notebook's run: the Chinese site shows the English
    run's outputs and is not executed a second time."""
    from jupyter_cache import get_cache

    cache = get_cache(EXECUTION_CACHE)
    try:
        record = cache.match_cache_notebook(nbformat.read(REPO_ROOT / f"{docname}.ipynb", 4))
    except KeyError:
        pytest.fail(f"{docname}: no successful run of its current code in {EXECUTION_CACHE}")
    try:
        english = cache.match_cache_notebook(
            nbformat.read(REPO_ROOT / f"{twin_of(docname)}.ipynb", 4)
        )
    except KeyError:
        english = None
    shared = english is not None and english.pk == record.pk
    assert shared, (
        f"{docname}: executed on its own, not with the English run's outputs: its code differs "
        f"from {twin_of(docname)}.ipynb's (tests/test_translations.py says where; "
        "`python -m i18n.translations sync` copies it)"
    )


@pytest.mark.parametrize("docname", ["glossary", "zh/glossary"])
def test_glossary_page_shows_every_term(site, docname):
    """Both glossary pages are made from i18n/glossary.yml (the book-glossary directive)."""
    import yaml

    terms = yaml.safe_load((REPO_ROOT / "i18n" / "glossary.yml").read_text(encoding="utf-8"))
    html = (HTML_DIR / f"{docname}.html").read_text(encoding="utf-8")
    table = re.search(r'<table class="[^"]*book-glossary.*?</table>', html, flags=re.DOTALL)
    assert table, f"{docname}: no glossary table"
    body = table.group(0).split("<tbody>", 1)[1]
    assert body.count("<tr") == len(terms["terms"]), f"{docname}: rows != terms in the glossary"
    column = "zh" if docname.startswith("zh/") else "en"
    missing = [t[column] for t in terms["terms"] if t[column].replace("&", "&amp;") not in body]
    assert not missing, f"{docname}: terms missing from the table: {missing}"
