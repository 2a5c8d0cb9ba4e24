"""Sphinx extension: circuitsvis views on the website, with their JavaScript served once by the site.

A circuitsvis visualisation renders as HTML in one of two forms, chosen when the notebook runs:

- offline (as in CI): a ``<script type="module">`` that INLINES the whole circuitsvis bundle
  (about 1.3 MB) before its ``CircuitsVis.render(...)`` call, once per visualisation;
- online: a ``<script type="module">`` that imports the bundle from unpkg.com.

Neither suits the website: the first makes a page with a few views weigh many megabytes, the
second needs a CDN at reading time. On every page with a view, this extension removes the inlined
bundles, turns the CDN imports into reads of the global ``CircuitsVis``, and loads the installed
package's bundle once from ``_static/circuitsvis.js`` (shared by all pages, cached, offline).
The module scripts run after the page is parsed, so the classic script in ``<head>`` has defined
``CircuitsVis`` by then.
"""

from __future__ import annotations

import re
from pathlib import Path

CIRCUITSVIS_JS = "circuitsvis.js"

# The bundle as render_local inlines it: from its first statement to its source-map comment.
INLINE_BUNDLE = re.compile(
    r'"use strict";var CircuitsVis=\(\(\)=>\{.*?//# sourceMappingURL=iife\.js\.map', re.DOTALL
)
# The CDN form's import line: import { render, ColoredTokens } from "https://unpkg.com/circuitsvis@x/...";
CDN_IMPORT = re.compile(
    r'import\s*\{(?P<names>[^}]*)\}\s*from\s*["\']https://unpkg\.com/circuitsvis@[^"\']*["\'];?'
)
VIEW_MARK = 'id="circuits-vis-'


def _bundle_source() -> Path:
    import circuitsvis

    return Path(circuitsvis.__file__).resolve().parent / "dist" / "cdn" / "iife.js"


def share_circuitsvis_bundle(body: str) -> tuple[str, int]:
    """Rewrite a page body's circuitsvis views to use the shared bundle; return (body, n_views)."""
    n_views = body.count(VIEW_MARK)
    if not n_views:
        return body, 0
    body = INLINE_BUNDLE.sub("", body)
    body = CDN_IMPORT.sub(lambda m: "const {" + m["names"] + "} = window.CircuitsVis;", body)
    return body, n_views


def _rewrite_page(app, pagename, templatename, context, doctree):
    body = context.get("body", "")
    if VIEW_MARK not in body:
        return
    context["body"], _ = share_circuitsvis_bundle(body)
    app.add_js_file(CIRCUITSVIS_JS, priority=210)


def _copy_bundle(app):
    # Before any page is written, so each page's <script> gets a ?v=<checksum>.
    if app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        text = _bundle_source().read_text(encoding="utf-8")
        # No source map is shipped; drop the comment so browsers with devtools do not ask for it.
        text = re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", text)
        (static / CIRCUITSVIS_JS).write_text(text, encoding="utf-8")


def setup(app):
    app.connect("html-page-context", _rewrite_page)
    app.connect("builder-inited", _copy_bundle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
