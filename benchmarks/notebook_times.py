"""Time each tutorial notebook end to end on the tiny preset, offline, and print the wall times.

    python benchmarks/notebook_times.py                      # every notebooks/NN_*.ipynb
    python benchmarks/notebook_times.py 01_analysing_a_pretrained_sae.ipynb [more names...]
    python benchmarks/notebook_times.py 02                   # a unique prefix will do

Each notebook runs in a fresh kernel (kernel start and imports included) with
SAE_BOOK_PRESET=tiny, HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1 and WANDB_MODE=disabled. The machine's
load average is printed before and after, since other work on the machine inflates the times.
Exits with status 1 if a notebook fails.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
OFFLINE_ENV = {
    "SAE_BOOK_PRESET": "tiny",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
}


def find_notebooks(names: list[str]) -> list[Path]:
    """The notebooks named on the command line (file names or paths), or all of notebooks/NN_*.ipynb."""
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


def run_notebook(path: Path) -> float:
    """Execute ``path`` in a new kernel (cwd = its folder); return the wall time in seconds."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    timeout = notebook.metadata.get("execution", {}).get("timeout", 600)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    os.environ.update(OFFLINE_ENV)
    paths = find_notebooks(argv)
    print(f"Load average before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    failed = False
    total = 0.0
    for path in paths:
        try:
            seconds = run_notebook(path)
        except Exception as error:  # report and carry on with the next notebook
            what = f"{getattr(error, 'ename', type(error).__name__)}: {getattr(error, 'evalue', error)}"
            print(f"{path.name}: FAILED ({what.strip()[:300]})")
            failed = True
            continue
        total += seconds
        print(f"{path.name}: {seconds:.1f} s")
    print(f"Total: {total:.1f} s for {len(paths)} notebook(s)")
    print(f"Load average after: {os.getloadavg()[0]:.2f} (1 min)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
