"""Static checks of notebooks/01_analysing_a_pretrained_sae.ipynb (running it is nbmake's job)."""

from __future__ import annotations

import json
import re

from random_models import REPO

NOTEBOOK = REPO / "notebooks" / "01_analysing_a_pretrained_sae.ipynb"


def load():
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def test_stored_without_outputs():
    for cell in load()["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_first_code_cell_is_the_setup_cell():
    nb = load()
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    setup = (REPO / "notebooks" / "_setup_cell.py").read_text(encoding="utf-8")
    assert "".join(first["source"]).strip() == setup.strip()
    assert "hide-input" in first["metadata"].get("tags", [])


def test_no_cell_branches_on_the_preset():
    for cell in load()["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            assert not re.search(r"preset\.(name|is_local|model_name|sae_release|sae_path)\b", source), source


def test_solutions_fold_away_and_are_checked():
    solutions = [c for c in load()["cells"] if c["cell_type"] == "code" and "".join(c["source"]).startswith("# Solution")]
    assert len(solutions) >= 2
    for cell in solutions:
        assert "hide-input" in cell["metadata"].get("tags", [])
        assert "assert check_" in "".join(cell["source"])


def test_execution_timeout_metadata():
    assert load()["metadata"]["execution"]["timeout"] >= 300
