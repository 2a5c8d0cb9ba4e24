"""The notebook timings that ``benchmarks/notebook_times.py`` measures: their record in
``benchmarks/results/notebook_times_<preset>.csv`` (:func:`write_rows`, :func:`read_times`), the
slowest cells of an executed notebook (:func:`slowest_cells`), and the table and sentence the
Teaching page shows (:func:`times_table`, :func:`measured_on`, in the page's language). The page and
the tests read them from here; the benchmark only measures and writes.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
COLUMNS = [
    "notebook",
    "preset",
    "weights",
    "seconds",
    "cpu_seconds",
    "peak_rss_mib",
    "cpus",
    "load_1min_before",
    "load_1min_after",
    "scale",
    "status",
    "measured_at",
]


def slowest_cells(notebook: Any, n: int = 3) -> list[tuple[int, float, str]]:
    """The ``n`` code cells that took longest, slowest first: (cell index, seconds, first line).

    From the times nbclient records in each executed cell's ``metadata.execution`` (from the
    kernel starting the cell to its reply); cells without both times are left out."""
    times = []
    for index, cell in enumerate(notebook["cells"]):
        stamps = cell.get("metadata", {}).get("execution", {})
        began, ended = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
        if cell.get("cell_type") != "code" or not (began and ended):
            continue
        seconds = (_timestamp(ended) - _timestamp(began)).total_seconds()
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")
        times.append((index, seconds, first))
    return sorted(times, key=lambda t: -t[1])[:n]


def _timestamp(text: str) -> dt.datetime:
    """Jupyter's message time (ISO 8601, 'Z' or an offset, microseconds) as a datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def write_rows(rows: list[dict], preset: str, results: Path | None = None) -> Path:
    """Merge ``rows`` into ``results``/notebook_times_<preset>.csv (default: the book's
    benchmarks/results; one row per notebook, sorted by name)."""
    results = RESULTS if results is None else results
    path = results / f"notebook_times_{preset}.csv"
    kept: dict[str, dict] = {}
    if path.exists():
        with path.open(newline="", encoding="utf-8") as f:
            kept = {row["notebook"]: row for row in csv.DictReader(f)}
    kept.update({row["notebook"]: row for row in rows})
    results.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for name in sorted(kept):
            writer.writerow({key: kept[name].get(key, "") for key in COLUMNS})
    return path


def read_times(results: Path | None = None) -> list[dict]:
    """Every row of every ``notebook_times_<preset>.csv`` in ``results`` (what main() wrote)."""
    rows = []
    for path in sorted((RESULTS if results is None else results).glob("notebook_times_*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            rows.extend(csv.DictReader(f))
    return rows


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


# The table's words in each edition of the book (utils/language.py chooses the edition).
_LABELS = {
    "en": {
        "wall": "wall time (load)",
        "cpu": "CPU time",
        "memory": "peak memory",
        "notebook": "notebook",
        "preset": "preset",
        "not measured": "not measured",
        "only scaled": "only scaled (x{scale})",
        "load": "load",
    },
    "zh": {
        "wall": "墙钟时间（负载）",
        "cpu": "CPU 时间",
        "memory": "内存峰值",
        "notebook": "notebook",
        "preset": "预设",
        "not measured": "未测量",
        "only scaled": "仅缩小规模运行（x{scale}）",
        "load": "负载",
    },
}


def _labels(language: str | None) -> dict[str, str]:
    from .language import book_language

    return _LABELS[language or book_language()]


def times_table(rows: list[dict], notebooks: list[str], language: str | None = None):
    """A pandas table: one row per notebook (those measured and those in ``notebooks``), three
    columns per preset (wall time, the kernel's CPU time, peak memory). Unmeasured cells say so.
    ``language`` (``"en"``/``"zh"``; default: the edition that runs) picks the labels."""
    import pandas as pd

    from .presets import PRESETS

    words = _labels(language)

    known = set(PRESETS) | {row["preset"] for row in rows}  # a preset with no timing shows too
    presets = sorted(known, key=lambda p: (p != "tiny", p))
    names = sorted({row["notebook"] for row in rows} | set(notebooks))
    found = {(row["notebook"], row["preset"]): row for row in rows}
    table = {}
    for preset in presets:
        minutes, cpu, memory = [], [], []
        for name in names:
            row = found.get((name, preset))
            scale = (row or {}).get("scale") or "1"
            if row is None or row.get("status") != "ok" or float(scale) != 1:
                # a run made smaller with SAE_BOOK_SCALE does not cost what the preset costs
                minutes.append(
                    words["not measured"]
                    if float(scale) == 1
                    else words["only scaled"].format(scale=scale)
                )
                cpu.append("")
                memory.append("")
                continue
            minutes.append(
                f"{_minutes(float(row['seconds']))} ({words['load']} {float(row['load_1min_before']):.1f})"
            )
            cpu.append(_minutes(float(row["cpu_seconds"])) if row.get("cpu_seconds") else "")
            memory.append(f"{float(row['peak_rss_mib']) / 1024:.1f} GB")
        table[(preset, words["wall"])] = minutes
        table[(preset, words["cpu"])] = cpu
        table[(preset, words["memory"])] = memory
    frame = pd.DataFrame(table, index=pd.Index(names, name=words["notebook"]))
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=[words["preset"], ""])
    return frame


def measured_on(rows: list[dict], language: str | None = None) -> str:
    """One sentence saying where and when ``rows`` were measured (CPU count, dates, weights), in
    ``language`` (default: the edition that runs)."""
    from .language import choose

    if not rows:
        return choose(
            "No notebook has been timed yet: run benchmarks/notebook_times.py.",
            "还没有测量任何 notebook：请运行 benchmarks/notebook_times.py。",
            language,
        )
    cpus = sorted({row["cpus"] for row in rows})
    dates = sorted(row["measured_at"][:10] for row in rows)
    weights = sorted({f"{row['preset']}: {row['weights']}" for row in rows})
    when = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    when_zh = dates[0] if dates[0] == dates[-1] else f"{dates[0]} 至 {dates[-1]}"
    return choose(
        f"Measured by benchmarks/notebook_times.py on {' or '.join(cpus)} CPU cores, no GPU, "
        f"{when}; weights: {'; '.join(weights)}.",
        f"由 benchmarks/notebook_times.py 在 {' 或 '.join(cpus)} 个 CPU 核心上测得（无 GPU），"
        f"{when_zh}；权重：{'; '.join(weights)}。",
        language,
    )
