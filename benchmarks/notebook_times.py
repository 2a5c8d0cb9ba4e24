"""Time each tutorial notebook end to end, offline, and record wall time and peak memory.

    python benchmarks/notebook_times.py                # every notebooks/NN_*.ipynb, tiny preset
    python benchmarks/notebook_times.py 01_analysing_a_pretrained_sae.ipynb [more names...]
    python benchmarks/notebook_times.py 02             # a unique prefix will do
    python benchmarks/notebook_times.py --standin 01   # gpt2-small on the stand-in Hub

Each notebook runs in a fresh kernel (kernel start and imports included) with HF_HUB_OFFLINE=1,
HF_DATASETS_OFFLINE=1 and WANDB_MODE=disabled. By default the preset is ``tiny``. With
``--standin`` it is ``gpt2-small``, run against a stand-in Hugging Face cache built in a temporary
folder (tests/standin_hub.py: GPT-2's real tokenizer and shapes, random weights), so the times and
memory are GPT-2 small's on this machine's CPU; ``SAE_BOOK_QUALITY_CHECKS=warn`` lets the quality
claims that random weights cannot meet print a line and go on. The stand-in's run sizes are the
preset's own unless you set ``SAE_BOOK_SCALE`` (then the result is not the preset's cost, and the
row's ``scale`` column says so).

Each notebook's line is followed by its three slowest cells (index, seconds, first line), from
the times Jupyter records as it runs them: where a long notebook spends its time.

Peak memory is the largest resident set size (RSS) of the kernel and its child processes,
sampled every 0.2 s. The machine's load average is recorded before and after each notebook, since
other work on the machine inflates the times.

Each timed notebook's row is written to ``benchmarks/results/notebook_times_<preset>.csv``
(replacing an earlier row for the same notebook; ``--no-write`` to only print). The book's
"Teaching with this book" page reads these files. Exits with status 1 if a notebook fails.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # for utils (the presets) and tests (the stand-in Hub)
    sys.path.insert(0, str(ROOT))

from utils import environment  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "benchmarks" / "results"
OFFLINE_ENV = {"SAE_BOOK_PRESET": "tiny", **environment.OFFLINE_ENV}
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


def find_notebooks(names: list[str]) -> list[Path]:
    """The notebooks named on the command line (names or paths), or all of notebooks/NN_*.ipynb."""
    if not names:
        found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
        if not found:
            raise SystemExit(f"No notebooks matching NN_*.ipynb in {NOTEBOOKS}")
        return found
    paths = []
    for name in names:
        path = Path(name)
        if not path.exists():
            path = NOTEBOOKS / name
        if not path.exists() and not name.endswith(".ipynb"):
            path = NOTEBOOKS / f"{name}.ipynb"
        if not path.exists():  # a unique prefix, e.g. "02"
            matches = sorted(NOTEBOOKS.glob(f"{name}*.ipynb"))
            path = matches[0] if len(matches) == 1 else path
        if not path.exists():
            known = ", ".join(p.name for p in sorted(NOTEBOOKS.glob("*.ipynb")))
            raise SystemExit(f"No notebook {name!r}. Notebooks in {NOTEBOOKS}: {known}")
        paths.append(path.resolve())
    return paths


class PeakMemory:
    """Samples the summed RSS of this process's children (the kernel) in a background thread, and
    their CPU time (user + system), which other work on the machine inflates far less than wall
    time."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.peak_bytes = 0
        self.cpu_seconds: dict[int, float] = {}  # pid -> latest CPU time seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil  # a dependency of ipykernel, so always there when notebooks can run

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                    times = child.cpu_times()
                    self.cpu_seconds[child.pid] = times.user + times.system
                except psutil.Error:  # a child that just exited
                    pass
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_notebook(
    path: Path, env: dict[str, str], cell_timeout: int | None = None
) -> tuple[float, int, float, Any]:
    """Execute ``path`` in a new kernel (cwd = its folder) with environment ``env``.

    Returns (wall time in seconds, peak RSS of the kernel in bytes, kernel CPU seconds, the
    executed notebook). The per-cell time limit is the notebook's own
    (metadata.execution.timeout) unless given.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    timeout = cell_timeout or notebook.metadata.get("execution", {}).get("timeout", 600)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    with PeakMemory() as memory:
        start = time.perf_counter()
        client.execute(env=env)
        seconds = time.perf_counter() - start
    return seconds, memory.peak_bytes, sum(memory.cpu_seconds.values()), notebook


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


def write_rows(rows: list[dict], preset: str) -> Path:
    """Merge ``rows`` into results/notebook_times_<preset>.csv (one row per notebook, sorted)."""
    path = RESULTS / f"notebook_times_{preset}.csv"
    kept: dict[str, dict] = {}
    if path.exists():
        with path.open(newline="", encoding="utf-8") as f:
            kept = {row["notebook"]: row for row in csv.DictReader(f)}
    kept.update({row["notebook"]: row for row in rows})
    RESULTS.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for name in sorted(kept):
            writer.writerow({key: kept[name].get(key, "") for key in COLUMNS})
    return path


def read_times(results: Path = RESULTS) -> list[dict]:
    """Every row of every ``notebook_times_<preset>.csv`` in ``results`` (what main() wrote)."""
    rows = []
    for path in sorted(results.glob("notebook_times_*.csv")):
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
    from utils.language import book_language

    return _LABELS[language or book_language()]


def times_table(rows: list[dict], notebooks: list[str], language: str | None = None):
    """A pandas table: one row per notebook (those measured and those in ``notebooks``), three
    columns per preset (wall time, the kernel's CPU time, peak memory). Unmeasured cells say so.
    ``language`` (``"en"``/``"zh"``; default: the edition that runs) picks the labels."""
    import pandas as pd

    from utils.presets import PRESETS

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
    from utils.language import choose

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


def environment(standin_home: Path | None) -> tuple[dict[str, str], str, str]:
    """(kernel environment, preset name, weights description) for a tiny or a stand-in run."""
    if standin_home is None:
        return {**os.environ, **OFFLINE_ENV}, "tiny", "bundled"
    sys.path.insert(0, str(ROOT / "tests"))
    from standin_hub import standin_env

    from utils.quality import QUALITY_ENV_VAR

    env = standin_env(standin_home, **{QUALITY_ENV_VAR: "warn"})
    return env, "gpt2-small", "stand-in (random, GPT-2 shapes)"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="names or unique prefixes (default: all)")
    parser.add_argument(
        "--standin",
        action="store_true",
        help="time gpt2-small against a stand-in Hub (tests/standin_hub.py)",
    )
    parser.add_argument(
        "--cell-timeout",
        type=int,
        default=None,
        help="seconds per cell (default: the notebook's own limit)",
    )
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="print only; do not update benchmarks/results/notebook_times_*.csv",
    )
    args = parser.parse_args(argv)
    paths = find_notebooks(args.notebooks)
    with tempfile.TemporaryDirectory(prefix="sae-book-standin-") as tmp:
        standin_home = None
        if args.standin:
            sys.path.insert(0, str(ROOT / "tests"))
            from standin_hub import build_standin_hub

            standin_home = Path(tmp) / "hf_home"
            print(f"Building the stand-in Hub in {standin_home} ...", flush=True)
            build_standin_hub(standin_home)
        env, preset, weights = environment(standin_home)
        scale = env.get("SAE_BOOK_SCALE", "").strip() or "1"
        print(f"Preset {preset}, weights {weights}, scale {scale}, {os.cpu_count()} CPUs")
        failed = False
        rows = []
        for path in paths:
            before = os.getloadavg()[0]
            try:
                seconds, peak, cpu, executed = run_notebook(path, env, args.cell_timeout)
                status = "ok"
            except Exception as error:  # report and carry on with the next notebook
                what = f"{getattr(error, 'ename', type(error).__name__)}: "
                what += f"{getattr(error, 'evalue', error)}"
                print(f"{path.name}: FAILED ({what.strip()[:300]})")
                if type(error).__name__ == "CellTimeoutError":
                    print(
                        "  A cell ran past the notebook's time limit: time it with a larger "
                        "one, e.g. --cell-timeout 3600."
                    )
                failed = True
                continue
            after = os.getloadavg()[0]
            print(
                f"{path.name}: {seconds:.1f} s ({cpu:.0f} CPU s), "
                f"peak RSS {peak / 2**20:,.0f} MiB "
                f"(load average {before:.2f} before, {after:.2f} after)",
                flush=True,
            )
            for index, cell_seconds, first in slowest_cells(executed):
                print(f"  cell {index}: {cell_seconds:7.1f} s  {first[:70]}")
            rows.append(
                {
                    "notebook": path.stem,
                    "preset": preset,
                    "weights": weights,
                    "seconds": f"{seconds:.1f}",
                    "cpu_seconds": f"{cpu:.0f}",
                    "peak_rss_mib": f"{peak / 2**20:.0f}",
                    "cpus": os.cpu_count(),
                    "load_1min_before": f"{before:.2f}",
                    "load_1min_after": f"{after:.2f}",
                    "scale": scale,
                    "status": status,
                    "measured_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                }
            )
    if rows and not args.no_write:
        print(f"Wrote {write_rows(rows, preset)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
