"""The website, checked the way a reader sees it: every page of the table of contents, in both
editions (the English pages and their Chinese twins under zh/, docnames "zh/..."), opened in
headless Chromium (``visit``: tests/site_browser.py; the session builds the book like `make book`,
or reuses _build/html when it is newer than every source of the site, and serves it on localhost).

On each page: no JavaScript errors, no failed request to the site, no request to another host
(they are blocked, and listed in the output of test_page_loads_cleanly), every internal link
resolves, the repository / edit / issue buttons point at the repository, a screenshot is written.
On each tutorial page: every plotly figure, circuitsvis view and HTML output that the executed
notebook holds is on the page and drawn, the tables have rows, formulas are typeset, the Colab
and Binder buttons open this notebook (the Chinese one on a Chinese page), copying a code cell
gives its source.

Without Chromium (and Python playwright) the browser tests are skipped, saying so; with CI=true
they fail instead, because CI must run them (.ci/run installs Debian's chromium).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import nbformat
import pytest
from site_browser import PAGES, TUTORIALS
from site_helpers import (
    HTML_DIR,
    REPO_ROOT,
    expected_outputs,
    is_local_url,
    load_config,
    local_target,
    parse_page,
)

# --- every page --------------------------------------------------------------------------------------


@pytest.mark.parametrize("docname", PAGES)
def test_page_loads_cleanly(visit, docname):
    v = visit(docname)
    # Offline, a request to another host fails (and leaves a console error): the site serves
    # everything a page loads itself (plotly.js, MathJax, circuitsvis; no widget manager, see
    # test_no_page_shows_a_widget_view).
    assert not v.external, f"{docname}: requests to other hosts: {sorted(set(v.external))}"
    assert not v.page_errors, f"{docname}: JavaScript exceptions: {v.page_errors}"
    assert not v.console_errors, f"{docname}: console errors: {v.console_errors}"
    assert not v.failed_local, f"{docname}: failed requests to the site: {v.failed_local}"
    assert v.dom["stderr"] == 0, f"{docname}: {v.dom['stderr']} stderr outputs are on the page"


@pytest.mark.parametrize("docname", PAGES)
def test_outputs_are_readable(visit, docname):
    """Long text outputs scroll in a box (_static/book.css); no dependency warnings in them."""
    dom = visit(docname).dom
    assert not dom["tallText"], (
        f"{docname}: text outputs taller than their box: {dom['tallText']} px"
    )
    assert not dom["warningLines"], f"{docname}: warning text in outputs: {dom['warningLines'][:5]}"


@pytest.mark.parametrize("docname", PAGES)
def test_page_title_logo_and_favicon(visit, docname):
    v = visit(docname)
    book_title = load_config(docname)["title"]
    title = v.dom["title"]
    assert title.endswith(book_title), f"{docname}: <title> {title!r} does not name the book"
    heading = title[: -len(book_title)].rstrip(" —-")
    assert heading, f"{docname}: <title> {title!r} has no page heading before the book's name"
    assert heading != book_title, f"{docname}: <title> {title!r} repeats the book's name"
    assert v.dom["logo"] and v.dom["logo"]["w"] > 0, (
        f"{docname}: the logo is missing or did not load"
    )
    favicon = load_config(docname)["html"]["favicon"].rsplit("/", 1)[-1]
    assert v.dom["favicon"] and v.dom["favicon"].endswith(favicon), (
        f"{docname}: no link to {favicon}"
    )


@pytest.mark.parametrize("docname", PAGES)
def test_internal_links_resolve(visit, docname):
    v = visit(docname)
    page_file = HTML_DIR / f"{docname}.html"
    own_ids = set(v.dom["ids"]) | parse_page(page_file).ids
    broken = []
    checked = 0
    for link in v.dom["links"]:
        raw, absolute = link["raw"], link["abs"]
        if not is_local_url(absolute) or raw.startswith(("javascript:", "mailto:")):
            continue
        parts = urlsplit(raw)
        if not parts.path:  # "#anchor" on this page
            target, ids = page_file, own_ids
        else:
            target = local_target(page_file, raw)
            if target is not None and target.is_dir():
                target = target / "index.html"
            if target is None or not target.is_file():
                broken.append(f"{raw} (no file {target})")
                continue
            ids = parse_page(target).ids if target.suffix == ".html" else None
        checked += 1
        if parts.fragment and ids is not None and parts.fragment not in ids:
            broken.append(f"{raw} (no id {parts.fragment!r} in {target.name})")
    assert checked > 0, f"{docname}: no internal links found; is the page empty?"
    assert not broken, f"{docname}: internal links that do not resolve:\n" + "\n".join(broken)


@pytest.mark.parametrize("docname", PAGES)
def test_repository_buttons(visit, docname):
    repo = load_config()["repository"]
    base, branch = repo["url"].rstrip("/"), repo.get("branch", "main")
    source = next(
        p for p in (REPO_ROOT / f"{docname}.ipynb", REPO_ROOT / f"{docname}.md") if p.is_file()
    )
    path_in_repo = "/".join(
        filter(
            None,
            [repo.get("path_to_book", "").strip("/"), source.relative_to(REPO_ROOT).as_posix()],
        )
    )
    hrefs = {link["abs"] for link in visit(docname).dom["links"]}
    assert base in hrefs, f"{docname}: no repository button linking {base}"
    assert f"{base}/edit/{branch}/{path_in_repo}" in hrefs, (
        f"{docname}: no 'edit this page' button for {path_in_repo}"
    )
    assert any(h.startswith(f"{base}/issues/new") for h in hrefs), (
        f"{docname}: no 'open an issue' button"
    )


# --- tutorial pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("docname", TUTORIALS)
def test_launch_buttons_open_this_notebook(visit, docname):
    repo = load_config()["repository"]
    owner_repo = urlsplit(repo["url"]).path.strip("/").removesuffix(".git")
    branch = repo.get("branch", "main")
    path = "/".join(filter(None, [repo.get("path_to_book", "").strip("/"), f"{docname}.ipynb"]))
    hrefs = {link["abs"] for link in visit(docname).dom["links"]}
    colab = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{path}"
    binder = f"https://mybinder.org/v2/gh/{owner_repo}/{branch}?urlpath=lab/tree/{path}"
    assert colab in hrefs, (
        f"{docname}: no Colab button for {colab}; launch links: {_launch_links(hrefs)}"
    )
    assert binder in hrefs, (
        f"{docname}: no Binder button for {binder}; launch links: {_launch_links(hrefs)}"
    )
    assert (REPO_ROOT / path).is_file()


def _launch_links(hrefs):
    return sorted(h for h in hrefs if "colab" in h or "binder" in h)


@pytest.mark.parametrize("docname", TUTORIALS)
def test_figures_views_and_tables_render(visit, docname):
    expected = expected_outputs(docname)
    dom = visit(docname).dom
    assert not expected.figures_without_html, (
        f"{docname}: cells {expected.figures_without_html} show plotly figures with no text/html part, "
        "which the website cannot show: import utils.plots before the first figure"
    )
    figures = dom["plotly"]
    assert len(figures) == expected.plotly_figures, (
        f"{docname}: the notebook has {expected.plotly_figures} plotly figures, the page {len(figures)}"
    )
    not_drawn = [
        f
        for f in figures
        if not (f["svg"] and f["traces"] and f["drawn"] and (f["h"] > 50 or f["folded"]))
    ]
    assert not not_drawn, f"{docname}: plotly figures that did not draw: {not_drawn}"
    views = dom["cv"]
    assert len(views) == expected.circuitsvis_views, (
        f"{docname}: the notebook has {expected.circuitsvis_views} circuitsvis views, the page {len(views)}"
    )
    blank = [v for v in views if not (v["children"] and (v["h"] > 10 or v["folded"]))]
    assert not blank, f"{docname}: circuitsvis views that did not render: {blank}"
    outputs = dom["html"]
    assert len(outputs) == expected.html_outputs, (
        f"{docname}: the notebook has {expected.html_outputs} HTML outputs, the page shows {len(outputs)}"
    )
    empty = [i for i, o in enumerate(outputs) if o["h"] < 5 and not o["folded"]]
    assert not empty, f"{docname}: HTML outputs (feature views, tables) with no height: {empty}"
    tables = dom["tables"]
    assert len(tables) >= expected.tables, (
        f"{docname}: the notebook has {expected.tables} table outputs, the page {len(tables)}"
    )
    assert all(t["rows"] > 0 for t in tables), f"{docname}: tables without rows: {tables}"


def test_tutorials_show_each_kind_of_output(visit):
    """So the per-page checks cannot pass by finding nothing to check."""
    totals = {"plotly": 0, "html": 0, "tables": 0}  # circuitsvis views are checked where present
    for docname in TUTORIALS:
        dom = visit(docname).dom
        for key in totals:
            totals[key] += len(dom[key])
    assert TUTORIALS, "the table of contents lists no notebooks"
    assert all(totals.values()), (
        f"the tutorials together show none of some kind of output: {totals}"
    )


@pytest.mark.parametrize("docname", PAGES)
def test_math_is_typeset_offline(visit, docname):
    """Formulas render with the site's own MathJax (_ext/mathjax_local.py), not raw TeX."""
    v = visit(docname)
    math = v.dom["math"]
    assert not math["raw"], (
        f"{docname}: formulas left as raw TeX (is MathJax served locally?): {math['raw'][:3]}"
    )
    mathjax = [s for s in v.dom["scripts"] if "mathjax" in s.lower()]
    if math["nodes"]:
        assert mathjax and all(s.startswith(("_static/", "../_static/")) for s in mathjax), mathjax


@pytest.mark.parametrize(
    "docname", ["notebooks/02_training_your_own_sae", "zh/notebooks/02_training_your_own_sae"]
)
def test_tutorial_2_has_math(visit, docname):
    """So the check above cannot pass by finding no formula."""
    assert visit(docname).dom["math"]["typeset"] >= 5


@pytest.mark.parametrize("docname", TUTORIALS)
def test_code_cells_copy_cleanly(visit, docname):
    v = visit(docname)
    assert v.dom["copyButtons"] >= v.dom["codeInputs"] > 0, (
        f"{docname}: code cells without a copy button"
    )
    assert v.dom["outputCopyButtons"] == 0, f"{docname}: outputs carry copy buttons"
    sources = {
        cell.source.strip()
        for cell in nbformat.read(REPO_ROOT / f"{docname}.ipynb", as_version=4).cells
        if cell.cell_type == "code"
    }
    assert v.clipboard is not None, f"{docname}: no visible code cell with a copy button"
    assert v.clipboard.strip() in sources, (
        f"{docname}: copying a code cell gave text that is not its source:\n{v.clipboard[:500]}"
    )


@pytest.mark.parametrize("docname", PAGES)
def test_screenshot_written(visit, docname):
    v = visit(docname)
    shot = REPO_ROOT / v.screenshot
    assert shot.is_file() and shot.stat().st_size > 10_000, f"{docname}: no screenshot at {shot}"
    print(f"\n{docname}: {v.screenshot} (page height {v.dom['height']} px)")
