"""The built website read as files, no browser needed: the page weights (written to
_build/page_sizes.json), every tutorial's executed outputs found, the site's scripts before
require.js, and no page showing a widget view or loading a widget manager.
"""

from __future__ import annotations

import json
import re

from site_browser import PAGES, TUTORIALS
from site_helpers import (
    HTML_DIR,
    PAGE_BUDGET_BYTES,
    PAGE_SIZES_JSON,
    REPO_ROOT,
    executed_notebook_outputs,
    format_size,
    page_weights,
)


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
