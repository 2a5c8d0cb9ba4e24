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

from utils.environment import offline_env  # noqa: E402
from utils.timings import slowest_cells, write_rows  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"


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


def kernel_environment(standin_home: Path | None) -> tuple[dict[str, str], str, str]:
    """(kernel environment, preset name, weights description) for a tiny or a stand-in run."""
    if standin_home is None:
        return offline_env(SAE_BOOK_PRESET="tiny"), "tiny", "bundled"
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

            from utils.presets import get_preset, run_scale, scale_preset

            # every transcoder the run loads (a scaled run: the default two; full size: all 12)
            layers = scale_preset(get_preset("gpt2-small"), run_scale()).circuits.layers
            standin_home = Path(tmp) / "hf_home"
            print(f"Building the stand-in Hub in {standin_home} ...", flush=True)
            build_standin_hub(standin_home, transcoder_layers=layers)
        env, preset, weights = kernel_environment(standin_home)
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
