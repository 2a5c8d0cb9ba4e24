"""Sphinx extension: plotly figures on the website, with plotly.js served by the site itself.

The notebooks render a plotly figure as a bundle of two outputs (``utils.plots``, renderer
``plotly_mimetype+sae_book``): ``application/vnd.plotly.v1+json`` for JupyterLab and an HTML
fragment without plotly.js (``text/html``) for this website. This extension

1. copies the plotly.min.js of the installed plotly package into ``_static/`` and adds a
   ``<script>`` tag for it to every page whose body contains a plotly figure, and only those: the
   file is shared by all pages (and cached by the browser) and works offline, unlike a CDN link;
2. tells MyST-NB that the JSON part of the bundle is known and deliberately not rendered (the HTML
   part is shown), so the build stays free of ``skipping unknown output mime type`` warnings (which
   ``-W`` turns into errors). A figure that has ONLY the JSON part still fails the build: MyST-NB
   then finds no mime type it can show and warns ``No mime type available in priority list``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from docutils import nodes

PLOTLY_JS = "plotly.min.js"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _plotly_js_source() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / PLOTLY_JS


def _add_plotly_to_figure_pages(app, pagename, templatename, context, doctree):
    if "plotly-graph-div" in context.get("body", ""):
        # A plain (synchronous) <script> in <head>: each figure's inline script calls Plotly.newPlot
        # as the page is parsed, so plotly.js must have run before it.
        app.add_js_file(PLOTLY_JS, priority=200)


def _copy_plotly_js(app):
    # Before any page is written, so each page's <script> gets a ?v=<checksum> (a new plotly.js
    # then reaches readers whose browser cached the old one).
    if app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_plotly_js_source(), static / PLOTLY_JS)


def _accept_plotly_json() -> None:
    """Make MyST-NB render the plotly JSON part of a bundle as an invisible placeholder.

    MyST-NB renders every part of a mime bundle while parsing and picks one per builder later;
    for a mime type it has no renderer for it warns and renders nothing. The placeholder (a comment
    node) keeps the JSON part in the bundle, so the later pick still sees it, and since the JSON
    type has no place in the HTML priority list the pick takes the ``text/html`` part.
    """
    from myst_nb.core.render import NbElementRenderer

    if getattr(NbElementRenderer, "_sae_book_plotly_json", False):
        return
    render_block = NbElementRenderer.render_unhandled
    render_inline = NbElementRenderer.render_unhandled_inline

    def render_unhandled(self, data):
        if data.mime_type == PLOTLY_MIME:
            return [nodes.comment("", "plotly figure JSON (the text/html part is shown)")]
        return render_block(self, data)

    def render_unhandled_inline(self, data):
        if data.mime_type == PLOTLY_MIME:
            return [nodes.comment("", "plotly figure JSON (the text/html part is shown)")]
        return render_inline(self, data)

    NbElementRenderer.render_unhandled = render_unhandled
    NbElementRenderer.render_unhandled_inline = render_unhandled_inline
    NbElementRenderer._sae_book_plotly_json = True


def setup(app):
    _accept_plotly_json()
    app.connect("html-page-context", _add_plotly_to_figure_pages)
    app.connect("builder-inited", _copy_plotly_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
