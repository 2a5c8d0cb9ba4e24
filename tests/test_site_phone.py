"""The website on a phone: at 390 px no page of either edition scrolls sideways (opened in headless
Chromium, other hosts blocked).

Without Chromium (and Python playwright) the browser tests are skipped, saying so; with CI=true
they fail instead, because CI must run them (.ci/run installs Debian's chromium).
"""

from __future__ import annotations

import pytest
from site_browser import PAGES, RENDER_TIMEOUT_MS, WAIT_DRAWN_JS
from site_helpers import is_local_url

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
