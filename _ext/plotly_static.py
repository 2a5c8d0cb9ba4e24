"""Sphinx extension: serve plotly.js from the site itself, only on pages that have plotly figures.

The notebooks render plotly figures as HTML fragments without plotly.js (see
``utils.plots.configure_plotly_renderer``), so each page does not inline its own ~4.8 MB copy.
This extension copies the plotly.min.js of the installed plotly package into ``_static/`` and adds
a ``<script>`` tag for it to every page whose body contains a plotly figure. The file is shared by
all pages (and cached by the browser) and works offline, unlike a CDN link.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PLOTLY_JS = "plotly.min.js"


def _plotly_js_source() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / PLOTLY_JS


def _add_plotly_to_figure_pages(app, pagename, templatename, context, doctree):
    if "plotly-graph-div" in context.get("body", ""):
        app.add_js_file(PLOTLY_JS, priority=200)


def _copy_plotly_js(app, exception):
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_plotly_js_source(), static / PLOTLY_JS)


def setup(app):
    app.connect("html-page-context", _add_plotly_to_figure_pages)
    app.connect("build-finished", _copy_plotly_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
