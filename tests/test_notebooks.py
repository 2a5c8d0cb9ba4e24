"""Static checks of every tutorial notebook (running them: tests/test_notebooks_execute.py): the conventions of
CONTRIBUTING.md, and that tutorial 2 trains the runs utils/training_config.py builds (which the
benchmarks and the generated script also use)."""

from __future__ import annotations

import ast
import json
import re

import pytest
from notebook_code import TUTORIAL_2, code_sources, load, notebook_configs
from random_models import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


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


# ---- exercises (CONTRIBUTING.md, "Exercises") ----------------------------------------------------

EXERCISE_HEADING = re.compile(r"^### Exercise (\d+): .+$", flags=re.M)


def parse(source: str) -> ast.Module:
    """A code cell's syntax tree; IPython's `%magic` and `!shell` lines are left out."""
    lines = source.splitlines()
    return ast.parse("\n".join("" if s.lstrip().startswith(("%", "!")) else s for s in lines))


def exercise_numbers(cell) -> list[int]:
    return [int(n) for n in EXERCISE_HEADING.findall("".join(cell["source"]))]


def is_solution_cell(cell) -> bool:
    return cell["cell_type"] == "code" and (
        "solution" in cell["metadata"].get("tags", [])
        or "".join(cell["source"]).lstrip().startswith(("# Solution", "# @title Solution"))
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_are_numbered_in_order_and_marked(path):
    cells = load(path)["cells"]
    numbers = [
        n for cell in cells if cell["cell_type"] == "markdown" for n in exercise_numbers(cell)
    ]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 2, numbers
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    marks = re.findall(r"^### Exercise \d+:.*\n\n(.*)$", markdown, flags=re.M)
    assert len(marks) == len(numbers)
    for line in marks:
        assert re.fullmatch(r"\*Difficulty\* ●{1,3} · \*Importance\* ●{1,3}", line), line


def test_tutorials_1_and_2_have_three_exercises_each():
    for path in NOTEBOOKS[:2]:
        cells = load(path)["cells"]
        assert [n for c in cells if c["cell_type"] == "markdown" for n in exercise_numbers(c)] == [
            1,
            2,
            3,
        ]


def is_written_solution(cell) -> bool:
    return cell["cell_type"] == "markdown" and "".join(cell["source"]).lstrip().startswith(
        "<details>"
    )


def exercise_headings(cells) -> tuple[list[int], list[int]]:
    """Indices of the code exercises' headings and of the written exercises' headings (a written
    exercise's heading is followed directly by its ``<details>`` solution, with no answer cell)."""
    headings = [
        i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and exercise_numbers(c)
    ]
    written = [i for i in headings if i + 1 < len(cells) and is_written_solution(cells[i + 1])]
    return [i for i in headings if i not in written], written


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_exercise_has_an_answer_cell_then_a_folded_solution_cell(path):
    """Heading, then the reader's cell calling its checker, then the solution that asserts it;
    the solution folds in Colab (a form), JupyterLab (source_hidden) and on the website (tags).
    A written exercise (no code) has its folded ``<details>`` answer right after its heading."""
    cells = load(path)["cells"]
    solutions = [i for i, c in enumerate(cells) if is_solution_cell(c)]
    headings, written = exercise_headings(cells)
    for heading in written:
        assert re.fullmatch(
            r"<details><summary>Solution: [^<\n]+</summary>\n\n.+\n\n</details>",
            "".join(cells[heading + 1]["source"]).strip(),
            flags=re.S,
        )
    assert len(solutions) == len(headings)
    numbers = [exercise_numbers(cells[i])[0] for i in headings]
    for n, heading, solution in zip(numbers, headings, solutions):
        answer = cells[heading + 1]
        assert answer["cell_type"] == "code" and not is_solution_cell(answer), f"exercise {n}"
        assert re.search(r"^check_\w+\(", "".join(answer["source"]), flags=re.M), f"exercise {n}"
        assert solution == heading + 2, f"exercise {n}: its solution must follow the answer cell"
        cell = cells[solution]
        source = "".join(cell["source"])
        assert source.splitlines()[0] == f"# @title Solution: exercise {n}"
        assert cell["metadata"].get("cellView") == "form"
        assert cell["metadata"].get("jupyter", {}).get("source_hidden") is True
        assert {"hide-input", "solution"} <= set(cell["metadata"].get("tags", []))
        assert re.search(r"^assert check_\w+\(", source, flags=re.M), f"exercise {n}"


def is_solution_like(cell) -> bool:
    """A code cell that looks like a solution in any way: tagged, or titled as one."""
    source = "".join(cell["source"]).lstrip()
    return cell["cell_type"] == "code" and (
        "solution" in cell["metadata"].get("tags", [])
        or bool(re.match(r"#\s*(@title\s+)?Solution", source, flags=re.I))
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_solution_cell_folds_input_and_output(path):
    """A solution's answer is in its output too (a printed number, a table), so both fold: on the
    website (tags hide-input and hide-output), in Colab (a form) and in JupyterLab (source and
    outputs hidden)."""
    solutions = [c for c in load(path)["cells"] if is_solution_like(c)]
    assert solutions, "every tutorial has solution cells"
    for cell in solutions:
        meta = cell["metadata"]
        where = f"{path.stem}, cell {cell.get('id')}"
        tags = set(meta.get("tags", []))
        assert {"hide-input", "hide-output", "solution"} <= tags, f"{where}: tags {sorted(tags)}"
        assert meta.get("cellView") == "form", f"{where}: no Colab form"
        jupyter = meta.get("jupyter", {})
        assert jupyter.get("source_hidden") is True, f"{where}: source not hidden in JupyterLab"
        assert jupyter.get("outputs_hidden") is True, f"{where}: outputs not hidden in JupyterLab"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_written_solutions_are_details_blocks(path):
    """<details> folds in JupyterLab, Colab and on the website; a MyST dropdown only on the website."""
    for cell in load(path)["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"])
        assert ":class: dropdown" not in source and "{admonition} Solution" not in source
        if "<details>" in source or "Solution:" in source:
            assert re.fullmatch(
                r"<details><summary>Solution: [^<\n]+</summary>\n\n.+\n\n</details>",
                source.strip(),
                flags=re.S,
            ), source[:80]


def expressions(source: str) -> set[str]:
    return {ast.unparse(node) for node in ast.walk(parse(source)) if isinstance(node, ast.expr)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nothing_is_answered_before_it_is_asked(path):
    """No code cell before an exercise's heading computes what its solution returns, or defines
    the function its answer cell asks for."""
    cells = load(path)["cells"]
    headings, _written = exercise_headings(cells)  # a written exercise computes nothing
    for heading in headings:
        answer = parse("".join(cells[heading + 1]["source"]))
        asked = {node.name for node in answer.body if isinstance(node, ast.FunctionDef)}
        solution = parse("".join(cells[heading + 2]["source"]))
        answers = {
            ast.unparse(node.value)
            for node in ast.walk(solution)
            if isinstance(node, ast.Return) and node.value is not None
        }
        for earlier in cells[:heading]:
            if earlier["cell_type"] != "code":
                continue
            source = "".join(earlier["source"])
            defined = {n.name for n in ast.walk(parse(source)) if isinstance(n, ast.FunctionDef)}
            assert not asked & defined, f"{sorted(asked & defined)} is defined before it is asked"
            assert not answers & expressions(source), (
                f"{sorted(answers & expressions(source))} is computed before it is asked"
            )


# ---- quality claims -----------------------------------------------------------------------------


def compare_ops(node: ast.AST) -> set[str]:
    return {ast.unparse(n) for n in ast.walk(node) if isinstance(n, ast.Compare)}


def asserted_conditions(path) -> list[str]:
    """The conditions the notebook's code checks, from its syntax tree: plain ``assert`` statements
    and ``assert_quality(condition, claim)`` calls (a commented-out line is not code)."""
    conditions = []
    for source in code_sources(path):
        for node in ast.walk(parse(source)):
            if isinstance(node, ast.Assert):
                conditions.append(node.test)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "assert_quality"
                and node.args
            ):
                conditions.append(node.args[0])
    return [c for condition in conditions for c in compare_ops(condition)]


def test_tutorial_2_asserts_the_quality_targets():
    """The issue's bar: the trained tiny SAE reaches EV >= 0.7 and CE loss recovered >= 0.7, in the notebook."""
    checked = asserted_conditions(TUTORIAL_2)
    assert "m['explained_variance'] >= 0.7" in checked
    assert "m['ce_loss_score'] >= 0.7" in checked


def test_asserted_conditions_reads_code_not_comments(tmp_path):
    notebook = {
        "cells": [
            {"cell_type": "code", "source": "# assert m['ce_loss_score'] >= 0.7\nx = 1"},
            {"cell_type": "code", "source": "assert_quality(m['l0'] < 10 and ok, 'sparse')"},
            {"cell_type": "code", "source": "assert m['explained_variance'] >= 0.7, 'usable'"},
        ]
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    assert sorted(asserted_conditions(path)) == ["m['explained_variance'] >= 0.7", "m['l0'] < 10"]


# ---- tutorial 2 trains utils.training_config's runs -------------------------------------------------


@pytest.mark.parametrize("preset_name", ["tiny", "gpt2-small"])
def test_tutorial_2_trains_the_runner_config(preset_name):
    from utils.training_config import runner_config, standard_sae_config, topk_sae_config

    built = notebook_configs(preset_name)
    preset = built["preset"]
    assert built["standard"] == runner_config(preset, standard_sae_config(preset, 128), "cpu")
    assert built["topk"] == runner_config(preset, topk_sae_config(preset, 128), "cpu")
    # and the check can fail: a different coefficient is a different configuration
    other = standard_sae_config(preset, 128, l1_coefficient=0.5)
    assert built["standard"] != runner_config(preset, other, "cpu")


def test_full_preset_is_the_seeds_run():
    cfg = notebook_configs("gpt2-small", d_in=768, device="cuda")["standard"]
    assert cfg.hook_name == "blocks.6.hook_resid_pre"
    assert cfg.sae.d_sae == 8 * 768
    assert cfg.training_tokens == 10_000_000
    assert cfg.context_size == 128
    assert cfg.streaming is True
