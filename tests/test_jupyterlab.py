"""Tutorial 1 in JupyterLab, driven in headless Chromium: the path a reader takes with `make lab`.

One JupyterLab (tests/jupyterlab_helpers.py: 127.0.0.1, a free port, a random token, temporary
Jupyter folders, the kernel on the tiny preset and offline) serves a temporary copy of
``notebooks/``; the repository's notebook is never written to. The browser opens tutorial 1, runs
every cell with Lab's own Run > Run All Cells menu, and then checks what a reader would see:

- the setup cell ran and found ``utils`` (no error output anywhere in the notebook);
- every plotly figure was drawn by JupyterLab (an ``svg.main-svg`` in each figure output);
- the feature explorer is a live widget: a new prompt typed into its text box and another feature
  index typed into its number box change the view (through the kernel), and an empty prompt shows
  the explorer's error message inside the widget instead of a traceback;
- the page logged no errors to its console (what counts is in ``test_no_console_errors``).

The explorer is found by its structure (a widget output with a text box, a number box and an HTML
view), not by the notebook's prose, and the test reads the current feature index and picks another
valid one, so editing the tutorial's text, prompt or feature does not break it.

Without Chromium (or Python playwright) these tests are skipped, saying so; with CI=true they fail
instead. JupyterLab itself is in requirements.txt, so a missing JupyterLab is a failure.
Every wait has a timeout; the fixture prints the time of each phase with the load average.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field

import pytest
from jupyterlab_helpers import REPO_ROOT, LabServer, jupyterlab_installed
from site_helpers import CHROMIUM_ARGS, require_chromium

NOTEBOOK = "01_analysing_a_pretrained_sae.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"

# Timeouts (ms). Generous, because a loaded machine is several times slower than a quiet one, but
# bounded: together they stay within the module's budget below.
OPEN_TIMEOUT_MS = 60_000  # JupyterLab's page and the notebook's cells
KERNEL_TIMEOUT_MS = 60_000  # the kernel ready (Run menu enabled)
RUN_TIMEOUT_MS = 300_000  # every cell of tutorial 1 (about 15 s of kernel time on a quiet machine)
WIDGET_TIMEOUT_MS = 45_000  # one round trip of the explorer through the kernel


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class LabRun:
    """Tutorial 1, run in JupyterLab in the browser, and what the page logged meanwhile."""

    page: object
    started: float
    cells: list[dict] = field(default_factory=list)  # see CELLS_JS
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)  # requests to other hosts (blocked)
    phases: dict[str, float] = field(default_factory=dict)  # seconds since start, for the log

    def mark(self, phase: str) -> None:
        self.phases[phase] = round(time.monotonic() - self.started, 1)


# Every code cell of the open notebook: execution count, its outputs in the model (output type,
# mime types, text of errors and stderr) and, for each output, what its DOM node holds.
CELLS_JS = r"""
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.widgets;
  return cells.map((cell, index) => {
    if (cell.model.type !== 'code') return null;
    const outputs = [];
    const model = cell.model.outputs;
    for (let i = 0; i < model.length; i++) {
      const out = model.get(i).toJSON();
      const node = cell.outputArea.widgets[i] ? cell.outputArea.widgets[i].node : null;
      const svgs = node ? [...node.querySelectorAll('svg.main-svg')] : [];
      outputs.push({
        type: out.output_type,
        name: out.name || null,
        mimes: Object.keys(out.data || {}),
        error: out.output_type === 'error' ? `${out.ename}: ${out.evalue}` : null,
        text: out.output_type === 'stream' ? String(out.text).slice(0, 500) : null,
        svg: svgs.length,
        svg_area: svgs.reduce((a, s) => Math.max(a, s.getBoundingClientRect().width
                                                   * s.getBoundingClientRect().height), 0),
        traces: node ? node.querySelectorAll(
          '.main-svg .trace, .main-svg .hm, .main-svg .bars path, .main-svg .point').length : 0,
      });
    }
    return {index, count: cell.model.executionCount, source: cell.model.sharedModel.getSource()
            .slice(0, 80), outputs};
  }).filter(c => c !== null);
}
"""

# The explorers in the notebook's outputs: widget views holding a text box, a number box and an
# HTML view (ipywidgets' Text, BoundedIntText and HTML in a VBox). Marks each with a data attribute.
FIND_EXPLORERS_JS = r"""
() => {
  const found = [];
  const views = document.querySelectorAll('.jp-OutputArea-output .widget-vbox');
  for (const box of views) {
    const text = box.querySelectorAll('input[type="text"]');
    const number = box.querySelectorAll('input[type="number"]');
    const html = box.querySelectorAll('.widget-html-content');
    if (text.length === 1 && number.length === 1 && html.length === 1) {
      box.setAttribute('data-sae-explorer', String(found.length));
      found.push({prompt: text[0].value, feature: number[0].value,
                  min: number[0].getAttribute('min'), max: number[0].getAttribute('max')});
    }
  }
  return found;
}
"""


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_chromium("JupyterLab browser test")


@pytest.fixture(scope="module")
def lab_run(chromium_path):
    """JupyterLab started, tutorial 1 opened and run in Chromium; everything stopped afterwards."""
    from playwright.sync_api import sync_playwright

    if not jupyterlab_installed():
        pytest.fail(
            "JupyterLab is not installed; requirements.txt lists it "
            "(pip install -r requirements.txt)",
            pytrace=False,
        )
    source = REPO_ROOT / "notebooks" / NOTEBOOK
    digest = _digest(source)
    started = time.monotonic()
    phases, external = {}, []
    with LabServer() as lab, sync_playwright() as pw:
        phases["server up"] = round(time.monotonic() - started, 1)
        browser = pw.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, env=lab.browser_env()
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            run = LabRun(page=page, started=started, phases=phases, external=external)

            def on_console(msg):
                if msg.type == "error":
                    where = msg.location.get("url", "") if msg.location else ""
                    run.console_errors.append(f"{msg.text} ({where})")

            def block_external(route):
                run.external.append(route.request.url)
                route.abort()

            # JupyterLab and the notebook must work offline: requests to other hosts are refused
            # (and listed), so the test behaves the same with and without a network.
            page.route(lambda url: not url.startswith(lab.base_url), block_external)
            page.on("console", on_console)
            page.on("pageerror", lambda exc: run.page_errors.append(str(exc)))
            try:
                _open_and_run(page, lab, run)
                run.cells = page.evaluate(CELLS_JS)
            except Exception as error:
                raise AssertionError(
                    f"Running {NOTEBOOK} in JupyterLab failed: {error}\n"
                    f"Console errors: {run.console_errors}\nPage errors: {run.page_errors}\n"
                    f"Server log (end):\n{lab.log_tail()}"
                ) from error
            yield run
        finally:
            browser.close()
            phases["browser closed"] = round(time.monotonic() - started, 1)
    print(
        f"JupyterLab test: {time.monotonic() - started:.0f} s in all, load average "
        f"{os.getloadavg()[0]:.1f}; seconds from the start: {phases}; "
        f"requests to other hosts refused: {external or 'none'}"
    )
    assert _digest(source) == digest, f"notebooks/{NOTEBOOK} changed while the test ran"


def _open_and_run(page, lab: LabServer, run: LabRun) -> None:
    page.goto(lab.url(f"lab/tree/{NOTEBOOK}"), timeout=OPEN_TIMEOUT_MS)
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=OPEN_TIMEOUT_MS)
    run.mark("notebook shown")
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext",
        timeout=OPEN_TIMEOUT_MS,
    )
    # The kernel has started when the session says so; only then may Run All be used.
    page.wait_for_function(
        "() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;"
        " return s.session && s.session.kernel && s.session.kernel.connectionStatus === 'connected'"
        " && s.session.kernel.status === 'idle'; }",
        timeout=KERNEL_TIMEOUT_MS,
    )
    run.mark("kernel idle")
    # Run > Run All Cells, as a reader would click it.
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click(
        timeout=OPEN_TIMEOUT_MS
    )
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]:not(.lm-mod-disabled)').click(
        timeout=OPEN_TIMEOUT_MS
    )
    # Started: the first code cell is queued or has run. Done: no cell is queued or running, and
    # the kernel is idle (after an error Lab un-queues the rest, which the checks then report).
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
        ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))",
        timeout=OPEN_TIMEOUT_MS,
    )
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
        ".some(p => p.textContent.includes('*'))"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
        timeout=RUN_TIMEOUT_MS,
        polling=500,
    )
    run.mark("all cells run")


def _problems(cells: list[dict]) -> list[str]:
    """Errors and unexecuted cells, one line each (with the start of the cell's source)."""
    lines = []
    for cell in cells:
        first_line = cell["source"].splitlines()[0] if cell["source"] else ""
        where = f"cell {cell['index']} ({first_line!r})"
        if cell["count"] is None:
            lines.append(f"{where}: not executed")
        for out in cell["outputs"]:
            if out["error"]:
                lines.append(f"{where}: {out['error']}")
    return lines


# --- the checks ---------------------------------------------------------------------------------


def test_setup_cell_finds_utils_and_every_cell_runs(lab_run):
    cells = lab_run.cells
    assert cells, "JupyterLab shows no code cells"
    setup = cells[0]
    assert setup["count"] is not None, "The setup cell (first code cell) did not run"
    bad = [o for o in setup["outputs"] if o["error"] or o["name"] == "stderr"]
    assert not bad, f"The setup cell wrote errors: {bad}"
    problems = _problems(cells)
    assert not problems, "Tutorial 1 did not run cleanly in JupyterLab:\n" + "\n".join(problems)


def test_plotly_figures_render(lab_run):
    figures = [
        (c["index"], o) for c in lab_run.cells for o in c["outputs"] if PLOTLY_MIME in o["mimes"]
    ]
    assert figures, "No plotly figure in tutorial 1's outputs"
    undrawn = [i for i, o in figures if not (o["svg"] and o["svg_area"] > 0 and o["traces"])]
    assert not undrawn, (
        f"Plotly figures not drawn by JupyterLab (no svg.main-svg with traces) in cells {undrawn} "
        f"of {len(figures)} figure outputs"
    )


def _explorer_view(page) -> str:
    return page.locator('[data-sae-explorer="0"] .widget-html-content').inner_text(
        timeout=WIDGET_TIMEOUT_MS
    )


def _wait_view(page, predicate_js: str, arg, what: str) -> str:
    """Wait until the explorer's view satisfies ``predicate_js(text, arg)``; return its text."""
    try:
        page.wait_for_function(
            "([arg]) => { const el = document.querySelector("
            "'[data-sae-explorer=\"0\"] .widget-html-content');"
            f" if (!el) return false; const text = el.innerText; return ({predicate_js}); }}",
            arg=[arg],
            timeout=WIDGET_TIMEOUT_MS,
            polling=250,
        )
    except Exception as error:
        raise AssertionError(
            f"The explorer's view did not {what} within {WIDGET_TIMEOUT_MS / 1000:.0f} s; "
            "it shows:\n" + _explorer_view(page)[:1000]
        ) from error
    return _explorer_view(page)


def _output_types(cells: list[dict]) -> list[tuple[int, list[str]]]:
    return [(c["index"], [o["type"] for o in c["outputs"]]) for c in cells]


def test_feature_explorer_is_live(lab_run):
    from utils.features import check_prompt

    page = lab_run.page
    widget_cells = [
        c["index"] for c in lab_run.cells for o in c["outputs"] if WIDGET_MIME in o["mimes"]
    ]
    assert widget_cells, "No widget output in tutorial 1 (the explorer should be one)"
    explorers = page.evaluate(FIND_EXPLORERS_JS)
    assert explorers, (
        f"No feature explorer (a widget with a text box, a number box and an HTML view) rendered; "
        f"widget outputs in cells {widget_cells}. Is ipywidgets' JupyterLab front-end "
        "(jupyterlab_widgets) installed?"
    )
    explorer = page.locator('[data-sae-explorer="0"]')
    explorer.scroll_into_view_if_needed(timeout=WIDGET_TIMEOUT_MS)
    prompt_box = explorer.locator('input[type="text"]')
    feature_box = explorer.locator('input[type="number"]')
    first_view = _explorer_view(page)
    assert first_view.strip(), "The explorer's view is empty"

    # 1. A new prompt: its text appears in the view, which changes.
    new_prompt = "import os and print the files of a folder"
    assert new_prompt not in first_view
    prompt_box.fill(new_prompt, timeout=WIDGET_TIMEOUT_MS)
    prompt_box.press("Enter", timeout=WIDGET_TIMEOUT_MS)
    prompt_view = _wait_view(page, "text.includes(arg)", new_prompt, "show the new prompt")
    assert prompt_view != first_view

    # 2. Another feature: one the view suggests for this prompt if it lists any ("12 (3.4)"),
    # else the next index; the view changes and names it.
    current = int(feature_box.input_value(timeout=WIDGET_TIMEOUT_MS))
    low = int(explorers[0]["min"] or 0)
    high = int(explorers[0]["max"]) if explorers[0]["max"] else current + 1
    suggested = [int(m) for m in re.findall(r"\b(\d+) \(\d+\.\d+\)", prompt_view)]
    candidates = [f for f in suggested if f != current and low <= f <= high]
    new_feature = candidates[0] if candidates else (current + 1 if current < high else current - 1)
    feature_box.fill(str(new_feature), timeout=WIDGET_TIMEOUT_MS)
    feature_box.press("Enter", timeout=WIDGET_TIMEOUT_MS)
    feature_view = _wait_view(
        page, "text !== arg", prompt_view, f"change for feature {new_feature}"
    )
    assert str(new_feature) in feature_view, f"Feature {new_feature} not named in:\n{feature_view}"
    assert new_prompt in feature_view

    # 3. An empty prompt: the explorer's own error message, in the widget, and no traceback.
    with pytest.raises(ValueError) as expected:
        check_prompt("")
    message = str(expected.value)
    outputs_before = _output_types(page.evaluate(CELLS_JS))
    prompt_box.fill("", timeout=WIDGET_TIMEOUT_MS)
    prompt_box.press("Enter", timeout=WIDGET_TIMEOUT_MS)
    error_view = _wait_view(page, "text.includes(arg)", message, "show the empty-prompt message")
    assert "Traceback" not in error_view
    lab_run.mark("explorer checked")
    print(
        f"Explorer: prompt {new_prompt!r}; feature {current} -> {new_feature} "
        f"(suggested: {suggested}); empty prompt -> {error_view.strip()!r}"
    )
    outputs_after = _output_types(page.evaluate(CELLS_JS))
    assert outputs_after == outputs_before, "The explorer's round trips added notebook outputs"


def test_no_console_errors(lab_run):
    """Every console message of type error and every uncaught exception of the page counts.

    Run last, so that it covers the run and the explorer's round trips. JupyterLab's own chatter
    (debug, info and warning messages) does not count; nor does a request to another host unless it
    logged an error (they are refused and listed, like the site test does).
    """
    external = f" Requests to other hosts (refused): {lab_run.external}" if lab_run.external else ""
    assert not lab_run.page_errors, (
        f"Uncaught exceptions in JupyterLab's page: {lab_run.page_errors}.{external}"
    )
    assert not lab_run.console_errors, (
        f"Console errors in JupyterLab's page: {lab_run.console_errors}.{external}"
    )
