"""Sphinx extension: MathJax served by the site itself, so formulas render offline too.

Sphinx's MathJax support loads MathJax 3 from a CDN by default. Readers without that CDN (offline
copies of the site, workshop networks, this book's CI) then see raw TeX such as
``\\(\\sqrt{d_\\text{in}}\\)``. When the ``django-static-mathjax`` package is installed (MathJax 3.2's
own files, packaged for pip; it does not need Django), this extension

1. points ``mathjax_path`` at ``_static/mathjax/tex-mml-chtml.js``, unless ``_config.yml`` set
   another one;
2. copies what that file loads into ``_static/mathjax/``: the combined TeX/MathML/CommonHTML
   component, its web fonts, and the TeX extensions and menu parts it fetches on demand (about
   3 MB; the speech-rule engine, which only the accessibility menu asks for, stays out).

Sphinx adds the ``<script>`` only to pages that contain math. Without the package the site falls
back to the CDN, and says so in the build log.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

TARGET = "mathjax"  # folder under _static/
ENTRY = "tex-mml-chtml.js"
# What tex-mml-chtml.js loads, relative to MathJax's es5/ folder.
PARTS = ("output/chtml/fonts", "input/tex/extensions", "ui", "a11y")


def mathjax_es5() -> Path | None:
    """MathJax's es5/ folder in the installed django-static-mathjax package, or None."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        es5 = Path(location) / "static" / "mathjax" / "es5"
        if (es5 / ENTRY).is_file():
            return es5
    return None


def _use_local_mathjax(app, config) -> None:
    from sphinx.ext.mathjax import MATHJAX_URL

    if config.mathjax_path != MATHJAX_URL:
        return  # _config.yml chose a MathJax; leave it
    if mathjax_es5() is None:
        logger.info(
            "mathjax_local: django-static-mathjax is not installed; MathJax comes from %s",
            MATHJAX_URL,
        )
        return
    config.mathjax_path = f"{TARGET}/{ENTRY}"


def _copy_mathjax(app) -> None:
    es5 = mathjax_es5()
    if (
        app.builder.format != "html"
        or es5 is None
        or app.config.mathjax_path != f"{TARGET}/{ENTRY}"
    ):
        return
    target = Path(app.outdir) / "_static" / TARGET
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(es5 / ENTRY, target / ENTRY)
    for part in PARTS:
        if (es5 / part).is_dir():
            shutil.copytree(es5 / part, target / part, dirs_exist_ok=True)


def setup(app):
    app.connect(
        "config-inited", _use_local_mathjax, priority=900
    )  # after the user's config is read
    app.connect("builder-inited", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
