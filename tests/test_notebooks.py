"""Static checks of every tutorial notebook (running them is nbmake's job), and checks that
tutorial 2's configuration cells build exactly what the benchmarks train."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace

import pytest

from random_models import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TUTORIAL_2 = REPO / "notebooks" / "02_training_your_own_sae.ipynb"


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_sources(path) -> list[str]:
    return ["".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "code"]


def test_both_tutorials_are_there():
    names = [p.name for p in NOTEBOOKS]
    assert names[:2] == ["01_analysing_a_pretrained_sae.ipynb", TUTORIAL_2.name], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    for cell in load(path)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_setup_cell(path):
    nb = load(path)
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    setup = (REPO / "notebooks" / "_setup_cell.py").read_text(encoding="utf-8")
    assert "".join(first["source"]).strip() == setup.strip()
    assert "hide-input" in first["metadata"].get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_branches_on_the_preset(path):
    """One set of cells for every preset: the preset supplies values, never a branch."""
    for source in code_sources(path)[1:]:  # the setup cell branches on Colab, not on the preset
        for line in source.splitlines():
            branches = re.search(r"\b(if|elif|while|match)\b", line.split("#")[0])
            assert not (branches and re.search(r"\bpreset\b", line)), line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_fold_away_and_are_checked(path):
    solutions = [c for c in load(path)["cells"] if c["cell_type"] == "code" and "".join(c["source"]).startswith("# Solution")]
    assert len(solutions) >= 2
    for cell in solutions:
        assert "hide-input" in cell["metadata"].get("tags", [])
        assert "assert check_" in "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_marked_with_difficulty_and_importance(path):
    markdown = "\n".join("".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    headings = re.findall(r"^### Exercise \d+:.*\n\n(.*)$", markdown, flags=re.M)
    assert len(headings) >= 2
    for line in headings:
        assert re.fullmatch(r"\*Difficulty\* ●{1,3} · \*Importance\* ●{1,3}", line), line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_execution_timeout_metadata(path):
    assert load(path)["metadata"]["execution"]["timeout"] >= 300


def test_tutorial_2_asserts_the_quality_targets():
    """The issue's bar: the trained tiny SAE reaches EV >= 0.7 and CE loss recovered >= 0.7, in the notebook."""
    joined = "\n".join(code_sources(TUTORIAL_2))
    assert 'm["explained_variance"] >= 0.7 and m["ce_loss_score"] >= 0.7' in joined


# Tutorial 2's configuration == benchmarks/tutorial2_config.py --------------------------------------


def notebook_configs(preset_name: str, d_in: int = 128, device: str = "cpu") -> dict:
    """Execute tutorial 2's two configuration statements (Standard and TopK) for a preset."""
    import sae_lens

    from utils.presets import get_preset

    sources = code_sources(TUTORIAL_2)
    standard = next(s for s in sources if s.startswith("cfg = LanguageModelSAERunnerConfig("))
    topk_cell = next(s for s in sources if s.startswith("topk_cfg = replace("))
    topk = topk_cell.split("\n\n")[0]  # the statement, not the training that follows it
    preset = get_preset(preset_name)
    namespace = {**vars(sae_lens), "preset": preset, "sizes": preset.training, "d_in": d_in,
                 "device": device, "replace": replace}
    exec(standard, namespace)  # noqa: S102 - our own notebook
    exec(topk, namespace)  # noqa: S102
    return {"standard": namespace["cfg"], "topk": namespace["topk_cfg"], "preset": preset}


@pytest.mark.parametrize("preset_name", ["tiny", "gpt2-small"])
def test_benchmark_config_is_the_notebooks(preset_name):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from tutorial2_config import runner_config, standard_sae_config, topk_sae_config

    built = notebook_configs(preset_name)
    preset = built["preset"]
    assert built["standard"] == runner_config(preset, standard_sae_config(preset, 128), "cpu")
    assert built["topk"] == runner_config(preset, topk_sae_config(preset, 128), "cpu")
    # and the check can fail: a different coefficient is a different configuration
    assert built["standard"] != runner_config(preset, standard_sae_config(preset, 128, l1_coefficient=0.5), "cpu")


def test_full_preset_is_the_seeds_run():
    cfg = notebook_configs("gpt2-small", d_in=768, device="cuda")["standard"]
    assert cfg.hook_name == "blocks.6.hook_resid_pre"
    assert cfg.sae.d_sae == 8 * 768
    assert cfg.training_tokens == 10_000_000
    assert cfg.context_size == 128
    assert cfg.streaming is True
