"""The website, checked the way a reader sees it: in headless Chromium.

The session builds the book like `make book` (or reuses _build/html when it is newer than every
source of the site), serves _build/html on localhost and opens every page of the table of contents.
On each page: no JavaScript errors, no failed request to the site, every internal link resolves,
the repository / edit / issue buttons point at the repository. On each tutorial page: every plotly
figure, circuitsvis view and HTML output that the executed notebook holds is on the page and drawn,
the tables have rows, the Colab and Binder buttons open this notebook, copying a code cell gives
its source. A full-page screenshot of each page goes to _build/screenshots/ for review.

Every check runs on both editions: the English pages and their Chinese twins under zh/ (docnames
"zh/..."), whose launch buttons must open the Chinese notebooks. On top: the language switch of
every page leads to the same page in the other edition (followed in the browser both ways, over
http and from file://), and the Chinese search finds each tutorial by a Chinese term.

Requests to other hosts (CDNs) are blocked, so the page must not need them; they are listed in the
output of test_page_loads_cleanly. The page weights (test_page_weight) need no browser.

Without Chromium (and Python playwright) the browser tests are skipped, saying so; with CI=true
they fail instead, because CI must run them (.ci/run installs Debian's chromium).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import nbformat
import pytest
from site_helpers import (
    CHROMIUM_ARGS,
    EXECUTION_CACHE,
    HTML_DIR,
    PAGE_BUDGET_BYTES,
    PAGE_SIZES_JSON,
    REPO_ROOT,
    SCREENSHOT_DIR,
    SiteServer,
    ensure_built,
    executed_notebook_outputs,
    expected_outputs,
    format_size,
    is_chinese,
    is_local_url,
    load_config,
    local_target,
    page_slug,
    page_weights,
    parse_page,
    require_chromium,
    toc_docnames,
    tutorial_docnames,
    twin_of,
)

PAGES = toc_docnames() + toc_docnames("zh")
TUTORIALS = tutorial_docnames()
RENDER_TIMEOUT_MS = 20_000


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Checked before the (slow) build, so a machine without a browser skips at once."""
    return require_chromium("Browser test")


@pytest.fixture(scope="session")
def site():
    """_build/html, built now if it is missing or older than its sources."""
    try:
        message = ensure_built()
    except RuntimeError as error:
        pytest.fail(f"The book does not build:\n{error}", pytrace=False)
    print(message)
    return HTML_DIR


@pytest.fixture(scope="session")
def server(site):
    with SiteServer(site) as running:
        yield running


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Visit:
    """What one page load showed."""

    docname: str
    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_local: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    dom: dict = field(default_factory=dict)
    clipboard: str | None = None
    screenshot: str = ""


# Run in the page once it has loaded and its figures had time to draw.
COLLECT_JS = r"""
() => {
  // Outputs folded away (a hide-output toggle, a closed dropdown) have no size until opened.
  const box = el => { const r = el.getBoundingClientRect();
    return {w: r.width, h: r.height, folded: !!el.closest('.tag_hide-output, details:not([open]), .toggle-hidden')}; };
  const plotly = [...document.querySelectorAll('.plotly-graph-div')].map(gd => ({
    id: gd.id,
    ...box(gd),
    svg: gd.querySelectorAll('svg.main-svg').length,
    traces: (gd._fullData || []).length,
    drawn: gd.querySelectorAll('.main-svg .trace, .main-svg .hm, .main-svg image, .main-svg .point,'
                               + ' .main-svg .bars path, .main-svg .slice').length,
  }));
  const cv = [...document.querySelectorAll('[id^="circuits-vis-"]')].map(el => ({
    id: el.id, ...box(el), children: el.querySelectorAll('*:not(script)').length,
  }));
  const html = [...document.querySelectorAll('.cell_output .output.text_html')].map(el => ({
    ...box(el), text: el.innerText.length, children: el.children.length,
  }));
  const tables = [...document.querySelectorAll('.cell_output .output.text_html table')].map(t => ({
    ...box(t), rows: t.querySelectorAll('tbody tr').length, head: t.querySelectorAll('thead th').length,
  }));
  const links = [...document.querySelectorAll('a[href]')].map(a => ({raw: a.getAttribute('href'), abs: a.href}));
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
  const stderr = document.querySelectorAll('.cell_output .output.stderr').length;
  const textOutputs = [...document.querySelectorAll(
      '.cell_output .output.stream, .cell_output .output.text_plain, .cell_output .output.traceback')];
  const tallText = textOutputs.map(box).filter(b => b.h > 520 && !b.folded).map(b => b.h);
  const warningLines = textOutputs.flatMap(e => e.innerText.split('\n'))
      .filter(l => /\b[A-Z]\w*Warning\b|^\s*WARNING\b|^\s*warn(ings)?\.warn/.test(l));
  const logo = document.querySelector('img.logo__image');
  const favicon = document.querySelector('link[rel~="icon"]');
  const scripts = [...document.querySelectorAll('script[src]')].map(s => s.getAttribute('src'));
  const codeInputs = [...document.querySelectorAll('.cell_input div.highlight pre')].length;
  const copyButtons = document.querySelectorAll('button.copybtn').length;
  const outputCopyButtons = document.querySelectorAll('.cell_output button.copybtn').length;
  const mathNodes = [...document.querySelectorAll('span.math, div.math')];
  const math = {nodes: mathNodes.length, typeset: mathNodes.filter(e => e.querySelector('mjx-container')).length,
                raw: mathNodes.filter(e => !e.querySelector('mjx-container')).map(e => e.innerText.slice(0, 60))};
  return {title: document.title, plotly, cv, html, tables, links, ids, stderr, scripts, tallText, warningLines, math,
          logo: logo ? {src: logo.getAttribute('src'), w: logo.naturalWidth} : null,
          favicon: favicon ? favicon.getAttribute('href') : null,
          codeInputs, copyButtons, outputCopyButtons,
          height: document.documentElement.scrollHeight};
}
"""

WAIT_DRAWN_JS = r"""
() => [...document.querySelectorAll('.plotly-graph-div')].every(gd => gd.querySelector('svg.main-svg'))
   && [...document.querySelectorAll('[id^="circuits-vis-"]')].every(el => el.querySelector('*:not(script)'))
   && [...document.querySelectorAll('span.math, div.math')].every(el => el.querySelector('mjx-container'))
"""


@pytest.fixture(scope="session")
def visit(browser, server):
    """visit(docname) -> Visit: loads each page once per session, in a fresh browser context."""
    cache: dict[str, Visit] = {}

    def load(docname: str) -> Visit:
        if docname in cache:
            return cache[docname]
        url = f"{server.base_url}{docname}.html"
        result = Visit(docname, url)
        context = browser.new_context(
            viewport={"width": 1280, "height": 900},
            permissions=["clipboard-read", "clipboard-write"],
        )
        page = context.new_page()

        def route(r):
            if is_local_url(r.request.url) or r.request.url.startswith(("data:", "blob:")):
                r.continue_()
            else:
                result.external.append(r.request.url)
                r.abort("blockedbyclient")

        page.route("**/*", route)

        def on_console(msg):
            if msg.type != "error":
                return
            where = (msg.location or {}).get("url", "")
            # The browser's own line for a request we blocked on purpose is not a page error.
            if "net::ERR_BLOCKED_BY_CLIENT" in msg.text or (where and not is_local_url(where)):
                return
            result.console_errors.append(f"{msg.text} ({where})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: result.page_errors.append(str(exc)))
        page.on(
            "requestfailed",
            lambda req: (
                result.failed_local.append(f"{req.url}: {req.failure}")
                if is_local_url(req.url)
                else None
            ),
        )
        page.on(
            "response",
            lambda resp: (
                result.failed_local.append(f"{resp.url}: HTTP {resp.status}")
                if is_local_url(resp.url) and resp.status >= 400
                else None
            ),
        )
        page.goto(url, wait_until="load")
        try:
            page.wait_for_function(WAIT_DRAWN_JS, timeout=RENDER_TIMEOUT_MS)
        except Exception:  # the checks below say what did not draw
            pass
        page.wait_for_timeout(300)  # let plotly finish its layout pass before the screenshot
        result.dom = page.evaluate(COLLECT_JS)
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOT_DIR / f"{page_slug(docname)}.png"
        page.screenshot(path=str(shot), full_page=True)
        result.screenshot = str(shot.relative_to(REPO_ROOT))
        if docname in TUTORIALS:
            result.clipboard = _copy_first_code_cell(page)
        context.close()
        cache[docname] = result
        return result

    return load


def _copy_first_code_cell(page) -> str | None:
    """Click the copy button of the first code cell a reader sees; return the clipboard."""
    button = page.locator(
        ".cell:not(.tag_hide-input):not(.tag_remove-input) .cell_input button.copybtn"
    ).first
    if button.count() == 0:
        return None
    button.scroll_into_view_if_needed()
    button.hover()
    button.click()
    page.wait_for_timeout(200)
    return page.evaluate("navigator.clipboard.readText()")


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


# --- page weight (no browser needed) -----------------------------------------------------------------


def test_page_weight(site, capsys):
    weights = page_weights(PAGES)
    shared: dict[str, int] = {}
    for w in weights:
        shared.update(w.shared_files)
    report = {
        "budget_bytes": PAGE_BUDGET_BYTES,
        "pages": {
            w.docname: {
                "html_bytes": w.html_bytes,
                "own_files": w.own_files,
                "own_total_bytes": w.own_bytes,
                "shared_loaded_bytes": w.shared_bytes,
            }
            for w in weights
        },
        "shared_files": dict(sorted(shared.items(), key=lambda kv: -kv[1])),
    }
    PAGE_SIZES_JSON.write_text(json.dumps(report, indent=2))
    lines = [
        f"Page weight (budget {format_size(PAGE_BUDGET_BYTES)} per page with its own files; "
        f"shared files are cached across pages). Also in {PAGE_SIZES_JSON.relative_to(REPO_ROOT)}.",
        f"{'page':<45} {'html':>11} {'own files':>11} {'page total':>11} {'+ shared':>11}",
    ]
    for w in weights:
        lines.append(
            f"{w.docname:<45} {format_size(w.html_bytes):>11} {format_size(w.own_bytes - w.html_bytes):>11} "
            f"{format_size(w.own_bytes):>11} {format_size(w.shared_bytes):>11}"
        )
    biggest = sorted(shared.items(), key=lambda kv: -kv[1])[:5]
    lines.append(
        "largest shared files: " + ", ".join(f"{name} {format_size(n)}" for name, n in biggest)
    )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    over = [w for w in weights if w.own_bytes > PAGE_BUDGET_BYTES]
    assert not over, "pages over budget: " + ", ".join(
        f"{w.docname} {format_size(w.own_bytes)} (largest own files: "
        f"{sorted(w.own_files.items(), key=lambda kv: -kv[1])[:3]})"
        for w in over
    )


def test_executed_notebooks_are_known(site):
    """Every tutorial's executed outputs can be found (the other checks rely on them)."""
    for docname in TUTORIALS:
        nb = executed_notebook_outputs(docname)
        assert any(cell.get("outputs") for cell in nb["cells"] if cell["cell_type"] == "code"), (
            f"{docname}: the executed notebook has no outputs"
        )


def test_site_scripts_come_before_require_js(site):
    """plotly.min.js (and circuitsvis.js) must run before require.js, which pages with widgets load
    from a CDN: after it, plotly.js defines an AMD module instead of window.Plotly and every figure
    breaks for readers online. The browser test blocks CDNs, so only the order can show this."""
    for docname in TUTORIALS:
        scripts = re.findall(
            r'<script[^>]*\bsrc="([^"]+)"', (HTML_DIR / f"{docname}.html").read_text()
        )
        ours = [i for i, s in enumerate(scripts) if "plotly.min.js" in s or "circuitsvis.js" in s]
        require = [i for i, s in enumerate(scripts) if "require" in s]
        if ours and require:
            assert max(ours) < min(require), f"{docname}: script order {scripts}"


# --- the two editions ----------------------------------------------------------------------------

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


# --- on a phone --------------------------------------------------------------------------------------

PHONE_WIDTH = 390  # CSS pixels: an iPhone 12-15 held upright

# The page's width, and the elements that stick out past the right edge of the window without a
# box of their own that scrolls (the widest first): what makes the whole page scroll sideways.
OVERFLOW_JS = r"""
width => {
  // The phone's width, not window.innerWidth: a mobile browser widens its layout viewport to
  // whatever the page overflows to.
  const root = [document.body, document.documentElement];
  const scrolls = el => { for (let e = el.parentElement; e && !root.includes(e); e = e.parentElement) {
      const s = getComputedStyle(e);
      if (['auto', 'scroll', 'hidden'].includes(s.overflowX) && e.clientWidth <= width) return true; }
    return false; };
  const wide = [...document.body.querySelectorAll('*')].filter(el => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.right > width + 1 && getComputedStyle(el).position !== 'fixed'
        && !scrolls(el); })
    .map(el => ({tag: el.tagName.toLowerCase(), cls: String(el.className).slice(0, 60),
                 right: Math.round(el.getBoundingClientRect().right),
                 text: (el.innerText || '').slice(0, 40)}))
    .sort((a, b) => b.right - a.right);
  return {width, scrollWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 8)};
}
"""


@pytest.fixture(scope="session")
def phone_view(browser, server):
    """phone_view(docname) -> what OVERFLOW_JS measured on the page at 390 px (other hosts
    blocked, as offline)."""
    context = browser.new_context(
        viewport={"width": PHONE_WIDTH, "height": 844}, device_scale_factor=1, is_mobile=True
    )

    def measure(docname: str) -> dict:
        page = context.new_page()
        page.route(
            "**/*",
            lambda r: (
                r.continue_()
                if is_local_url(r.request.url) or r.request.url.startswith(("data:", "blob:"))
                else r.abort("blockedbyclient")
            ),
        )
        page.goto(f"{server.base_url}{docname}.html", wait_until="load")
        try:
            page.wait_for_function(WAIT_DRAWN_JS, timeout=RENDER_TIMEOUT_MS)
        except Exception:
            pass
        page.wait_for_timeout(300)
        result = page.evaluate(OVERFLOW_JS, PHONE_WIDTH)
        page.close()
        return result

    yield measure
    context.close()


@pytest.mark.parametrize("docname", PAGES)
def test_page_fits_a_phone(phone_view, docname):
    """At 390 px the page itself never scrolls sideways: wide tables, code, formulas and outputs
    scroll inside their own box (_static/book.css)."""
    seen = phone_view(docname)
    assert seen["scrollWidth"] <= PHONE_WIDTH, (
        f"{docname}: {seen['scrollWidth']} px wide at {PHONE_WIDTH} px; sticking out: "
        f"{seen['wide']}"
    )


def test_no_page_shows_a_widget_view(site):
    """The site has no kernel behind its widgets, so no page shows a live widget view (the
    website shows a widget's HTML snapshot, or nothing: nb_mime_priority_overrides in
    _config.yml) and none loads a widget manager (require.js, @jupyter-widgets/html-manager;
    nb_ipywidgets_js is empty): there is nothing for them to draw."""
    for docname in PAGES:
        html = (HTML_DIR / f"{docname}.html").read_text(encoding="utf-8")
        assert "application/vnd.jupyter.widget-view+json" not in html, (
            f"{docname}: shows a widget view"
        )
        scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
        manager = [s for s in scripts if "require" in s or "html-manager" in s or "embed-amd" in s]
        assert not manager, f"{docname}: loads a widget manager: {manager}"
