"""What the browser tests of the website (tests/test_site_*.py) share: the pages they open, and a
page visit in headless Chromium with what it collects.

``visit(docname)`` (the session fixture in conftest.py, made by ``page_visitor``) loads a page of
the built site once per session: it records JavaScript errors, failed requests to the site and
requests to other hosts (blocked, so the page must not need them), runs ``COLLECT_JS`` in the page
once its figures had time to draw, writes a full-page screenshot to _build/screenshots/ for review
and, on a tutorial page, copies its first visible code cell. The build, the server and the
browser are conftest.py's session fixtures too (``site``, ``server``, ``browser``); what needs no
browser is in site_helpers.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from site_helpers import (
    REPO_ROOT,
    SCREENSHOT_DIR,
    is_local_url,
    page_slug,
    toc_docnames,
    tutorial_docnames,
)

PAGES = toc_docnames() + toc_docnames("zh")
TUTORIALS = tutorial_docnames()
RENDER_TIMEOUT_MS = 20_000


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


def page_visitor(browser, server):
    """visit(docname) -> Visit, the ``visit`` fixture (conftest.py): loads each page once per
    session, in a fresh browser context, on ``server`` (a ``SiteServer``)."""
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
