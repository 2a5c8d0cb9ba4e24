"""Every cell of every tutorial on the ``gpt2-small`` preset, offline, against the stand-in Hub.

Each notebook runs in a fresh kernel started with the stand-in's environment
(tests/standin_hub.py), ``SAE_BOOK_QUALITY_CHECKS=warn`` and smaller run sizes
(``SAE_BOOK_SCALE``, see utils/presets.py). The stand-in's weights are random, so the
notebook's quality claims (``assert_quality``) cannot hold: each prints one line starting with
``QUALITY_PREFIX`` and the run goes on. This test reports those lines (as a warning, so they show
in pytest's summary) and fails on anything else: an error in any cell, or a known-bad message a
reader would take for a failure (``trust_remote_code``, see ``FORBIDDEN_OUTPUT``).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from standin_hub import REPO, session_standin_hub, standin_env  # noqa: E402

from utils.presets import SCALE_ENV_VAR  # noqa: E402
from utils.quality import QUALITY_ENV_VAR, QUALITY_PREFIX  # noqa: E402

ALL_NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def loads_the_presets_model(path: Path) -> bool:
    """Whether a tutorial loads the preset's language model or SAE (what the stand-in Hub serves).

    Tutorial 4 trains on synthetic data and loads neither: on gpt2-small it only runs bigger
    synthetic sizes, meant for a GPU (minutes per SAE on a CPU), and the stand-in has nothing
    to prove there.
    """
    import nbformat

    code = "\n".join(
        c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
    )
    return "load_model(" in code or "load_sae(" in code


NOTEBOOKS = [path for path in ALL_NOTEBOOKS if loads_the_presets_model(path)]
# GPT-2 small's sizes times this (each count kept at its floor): tutorial 2's runs become 16 steps
# of 128 tokens, evaluations one batch; tutorials 1 and 3 sample 64 texts; tutorial 3 steers over
# 4 contexts and compares attribution with ablation on 20 pairs instead of 800.
RUN_SCALE = "0.0002"
# Text that must not reach a reader. datasets 5.x logs "`trust_remote_code` is not supported
# anymore" as an error whenever SAELens passes its default dataset_trust_remote_code=True.
# The message itself, not the name: tutorial 2 prints its configuration's source, which sets
# dataset_trust_remote_code=False.
FORBIDDEN_OUTPUT = ("`trust_remote_code` is not supported anymore",)
# Per-cell limit: a guard against hangs, not a performance check (benchmarks/notebook_times.py
# measures time). Generous, because a busy shared CI machine can be many times slower than usual.
CELL_TIMEOUT_S = 1800


def output_texts(notebook) -> list[tuple[int, str]]:
    """(cell index, text) for each stream, text/plain result and error a run left in
    ``notebook``."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                found.append((index, output.get("text", "")))
            elif output.get("output_type") == "error":
                found.append((index, f"{output.get('ename')}: {output.get('evalue')}"))
            else:
                text = output.get("data", {}).get("text/plain", "")
                found.append((index, "".join(text) if isinstance(text, list) else text))
    return found


def run_on_standin(path: Path, hf_home: Path):
    """Execute ``path`` in a new kernel on the stand-in; return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    timeout = max(CELL_TIMEOUT_S, notebook.metadata.get("execution", {}).get("timeout", 600))
    env = standin_env(hf_home, **{QUALITY_ENV_VAR: "warn", SCALE_ENV_VAR: RUN_SCALE})
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=env)  # raises CellExecutionError (with the cell and traceback) on an error
    return notebook


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return session_standin_hub(tmp_path_factory)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_runs_on_gpt2_small_standin(path, standin):
    notebook = run_on_standin(path, standin)
    texts = output_texts(notebook)
    tolerated = [
        f"cell {i}: {line.strip()}"
        for i, text in texts
        for line in text.splitlines()
        if line.startswith(QUALITY_PREFIX)
    ]
    if tolerated:  # reported first, so a failure below still shows them
        warnings.warn(
            f"{path.stem} on the gpt2-small stand-in (random weights) tolerated "
            f"{len(tolerated)} quality claim(s):\n" + "\n".join(tolerated),
            stacklevel=1,
        )
    forbidden = [(i, word) for i, text in texts for word in FORBIDDEN_OUTPUT if word in text]
    assert not forbidden, f"cells print what a reader takes for a failure: {forbidden}"
