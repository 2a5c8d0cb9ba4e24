"""The notebook timings (utils/timings.py, which benchmarks/notebook_times.py writes, including its
--standin runs) and the "Teaching with this book" page that shows them. Fast: no notebook is run."""

from __future__ import annotations

import subprocess
import sys

import pytest
from random_models import REPO

from utils import timings


def row(notebook: str, preset: str, seconds: str, status: str = "ok") -> dict:
    return {
        "notebook": notebook,
        "preset": preset,
        "weights": "w",
        "seconds": seconds,
        "cpu_seconds": "10",
        "peak_rss_mib": "2048",
        "cpus": "2",
        "load_1min_before": "1.00",
        "load_1min_after": "1.50",
        "scale": "1",
        "status": status,
        "measured_at": "2026-11-29 19:00 UTC",
    }


def test_rows_merge_by_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(timings, "RESULTS", tmp_path)
    timings.write_rows([row("01_a", "tiny", "60.0"), row("02_b", "tiny", "90.0")], "tiny")
    timings.write_rows([row("02_b", "tiny", "95.5")], "tiny")  # a re-run replaces its row
    timings.write_rows([row("01_a", "gpt2-small", "150.0")], "gpt2-small")
    rows = timings.read_times(tmp_path)
    assert sorted((r["preset"], r["notebook"], r["seconds"]) for r in rows) == [
        ("gpt2-small", "01_a", "150.0"),
        ("tiny", "01_a", "60.0"),
        ("tiny", "02_b", "95.5"),
    ]


def test_table_has_every_notebook_and_says_what_is_not_measured():
    rows = [
        row("01_a", "tiny", "75.0"),
        row("01_a", "gpt2-small", "155.0"),
        row("02_b", "gpt2-small", "1.0", status="failed"),
    ]
    table = timings.times_table(rows, ["01_a", "02_b", "03_new"])
    assert list(table.index) == ["01_a", "02_b", "03_new"]
    assert list(table.columns.get_level_values(0).unique()) == ["tiny", "gpt2-small"]
    assert table.loc["01_a", ("tiny", "wall time (load)")] == "1 min 15 s (load 1.0)"
    assert table.loc["01_a", ("gpt2-small", "peak memory")] == "2.0 GB"
    assert table.loc["01_a", ("gpt2-small", "CPU time")] == "0 min 10 s"
    assert table.loc["02_b", ("gpt2-small", "wall time (load)")] == "not measured"
    assert table.loc["03_new", ("tiny", "wall time (load)")] == "not measured"
    assert "2 CPU cores" in timings.measured_on(rows)


def test_a_scaled_run_is_not_shown_as_the_presets_cost():
    scaled = row("01_a", "gpt2-small", "40.0") | {"scale": "0.0002"}
    table = timings.times_table([scaled, row("01_a", "tiny", "75.0")], ["01_a"])
    assert table.loc["01_a", ("gpt2-small", "wall time (load)")] == "only scaled (x0.0002)"
    assert table.loc["01_a", ("gpt2-small", "peak memory")] == ""
    assert table.loc["01_a", ("tiny", "wall time (load)")] == "1 min 15 s (load 1.0)"


def test_teaching_page_is_in_the_toc_and_lists_no_notebook_by_hand():
    assert "- file: teaching" in (REPO / "_toc.yml").read_text(encoding="utf-8")
    page = (REPO / "teaching.md").read_text(encoding="utf-8")
    assert "timings.times_table(" in page and "read_times(" in page
    for path in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        assert path.stem not in page, f"{path.stem} is named by hand in teaching.md"


@pytest.mark.parametrize("name", ["0", "zz"])
def test_unknown_notebook_names_are_refused(name):
    """The benchmark refuses a name before starting any kernel (run as the script it is)."""
    script = REPO / "benchmarks" / "notebook_times.py"
    run = subprocess.run(
        [sys.executable, str(script), name, "--no-write"], capture_output=True, text=True
    )
    assert run.returncode != 0 and "No notebook" in run.stderr


def test_slowest_cells_from_jupyters_times():
    """Seconds from each code cell's recorded start and reply, slowest first; cells that did not
    run (no times) and markdown cells are left out."""

    def code(source, began=None, ended=None):
        stamps = {}
        if began:
            stamps = {"iopub.execute_input": began, "shell.execute_reply": ended}
        return {"cell_type": "code", "source": source, "metadata": {"execution": stamps}}

    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": "# Title", "metadata": {}},
            code("\nimport torch\n", "2026-12-03T06:00:00.000000Z", "2026-12-03T06:00:02.500000Z"),
            code(["# steer\n", "x = 1"], "2026-12-03T06:00:03Z", "2026-12-03T06:10:04.250000Z"),
            code("y = 2", "2026-12-03T07:59:59+01:00", "2026-12-03T07:00:10.000000Z"),
            code("not run"),
        ]
    }
    # 2.5 s; 10 min 1.25 s; 07:59:59 at +01:00 is 06:59:59 UTC, 11 s before 07:00:10 UTC
    assert timings.slowest_cells(notebook) == [
        (2, 601.25, "# steer"),
        (3, 11.0, "y = 2"),
        (1, 2.5, "import torch"),
    ]
    assert timings.slowest_cells(notebook, n=1) == [(2, 601.25, "# steer")]
