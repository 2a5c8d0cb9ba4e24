"""Mutation testing of the modules that print numbers (mutmut 3), in parts, and its summary.

``make mutation`` runs every part, then writes the summary to benchmarks/results/mutation.txt;
``make mutation PARTS="presets t1-t2"`` runs only those (the summary keeps the other parts' last
results, each with its own date, commit and run time).

    python tools/mutation.py run PART --folder DIR --jobs J   # one part, in DIR/PART
    python tools/mutation.py summary --folder DIR [--previous FILE]
        # every part found in DIR; with FILE (the last summary), each part not in DIR keeps its
        # block from FILE while the part still names the modules that block was run on

A part is some modules and their unit tests (``PARTS``); together the parts are exactly what
pyproject.toml's ``[tool.mutmut]`` names (checked). Each runs in a copy of utils/, i18n/ and tests/ whose
pyproject.toml names only that part, so mutmut's first pass (every selected test once, to learn
which tests reach which function) runs only the part's tests. The summary lists, per module,
mutants, killed (a test failed or timed out), survived (every test passed), the rest (no
selected test reaches them), and each survivor with the line it changed, taken from the mutated
copy of the function that mutmut writes beside the original.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mutmut brings the toml package there
    import toml as tomllib

REPO = Path(__file__).resolve().parents[1]
KILLED = {"killed", "timeout"}
# Why a survivor is left alone. First rules on its changed line ("old  ->  new"), then single
# mutants by name in REASONS_FILE ("module mutant: reason" lines; the names follow mutmut's
# numbering, so they hold for the commit the summary names). A survivor with no reason is marked
# "NO REASON": a test to write, or a reason to give.
RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r'float\("nan"\).*->.*float\("NAN"\)'),
        "equivalent: float() reads 'nan' in any case",
    ),
    (
        re.compile(r"< (\d(?:\.\d+)?e-\d+).*->.*<= \1"),
        "equivalent: no computed difference lands exactly on the tolerance",
    ),
    (
        re.compile(
            r"^.*?(margin|\"size\"|opacity|font|\"width\"|\"dash\"|_palette\(|_transparent\(|"
            r"fillcolor|hovertemplate|hoverinfo|showlegend|legendgroup|mode=|template=|marker=|"
            r"\"color\").*  ->  "
        ),
        "appearance of a figure (colours, sizes, hover text): tests check a figure's data only",
    ),
    (
        re.compile(r"device=device.*  ->  (?:(?!device=device).)*$"),
        "the device passed on: the tests run on a CPU-only machine, where no device (or None) "
        "is the CPU as well",
    ),
]
REASONS_FILE = REPO / "tools" / "mutation_reasons.txt"
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
PARTS: dict[str, dict[str, list[str]]] = {  # "copy": more of the book a part's tests read
    "presets": {
        "modules": ["utils/presets.py", "utils/quality.py"],
        "tests": [
            "tests/test_presets.py",
            "tests/test_gpt2_standin_budget.py",
            "tests/test_quality.py",
        ],
    },
    "evaluation": {
        "modules": ["utils/evaluation.py"],
        "tests": ["tests/test_evaluation.py"],
    },
    "t1-t2": {
        "modules": [
            "utils/exercises/__init__.py",
            "utils/exercises/_common.py",
            "utils/exercises/t1_pretrained.py",
            "utils/exercises/t2_training.py",
        ],
        "tests": ["tests/test_exercises.py", "tests/test_exercises_language.py"],
    },
    "t3": {
        "modules": [
            "utils/interventions/__init__.py",
            "utils/interventions/ablation.py",
            "utils/interventions/attribution.py",
            "utils/interventions/checks.py",
            "utils/interventions/choosing.py",
            "utils/interventions/directions.py",
            "utils/interventions/figures.py",
            "utils/interventions/statistics.py",
            "utils/interventions/steering.py",
            "utils/exercises/t3_using_features.py",
        ],
        "tests": [
            "tests/test_interventions_directions.py",
            "tests/test_interventions_choosing.py",
            "tests/test_interventions_steering.py",
            "tests/test_interventions_ablation.py",
            "tests/test_interventions_attribution.py",
            "tests/test_interventions_figures.py",
            "tests/test_interventions_statistics.py",
            "tests/test_exercises_t3.py",
            "tests/test_exercises_language.py",
        ],
    },
    "t5": {
        "modules": ["utils/exercises/t5_circuits.py"],
        "tests": ["tests/test_exercises_t5.py", "tests/test_exercises_language.py"],
    },
    "circuits": {  # build_tiny.py is the maintainer's training run, not a metric: not mutated
        "modules": [
            "utils/circuits/__init__.py",
            "utils/circuits/ablation.py",
            "utils/circuits/export.py",
            "utils/circuits/figures.py",
            "utils/circuits/graph.py",
            "utils/circuits/loading.py",
            "utils/circuits/pruning.py",
            "utils/circuits/replacement.py",
            "utils/circuits/transcoders.py",
            "utils/circuits/weights.py",
        ],
        "tests": ["tests/test_circuits.py", "tests/test_circuits_loading.py"],
    },
    "features": {
        "modules": [
            "utils/features/__init__.py",
            "utils/features/checks.py",
            "utils/features/logit_effects.py",
            "utils/features/prompt.py",
            "utils/features/reconstruction.py",
            "utils/features/sample.py",
            "utils/features/splicing.py",
        ],
        "tests": [
            "tests/test_features.py",
            "tests/test_reconstruction.py",
            "tests/test_token_concentrated.py",
            "tests/test_zero_ablation.py",
        ],
    },
    "display-plots": {
        "modules": ["utils/display.py", "utils/plots.py"],
        "tests": ["tests/test_display.py", "tests/test_plots.py"],
    },
    "training": {
        "modules": ["utils/training.py", "utils/training_config.py"],
        "tests": ["tests/test_training.py", "tests/test_training_config.py"],
    },
    "loading": {
        "modules": ["utils/environment.py", "utils/loading.py"],
        "tests": [
            "tests/test_environment.py",
            "tests/test_hub_failures.py",
            "tests/test_loading.py",
        ],
        "copy": ["Makefile", ".ci", "notebooks"],  # the shell copies, the setup cell's marker
    },
    "tiny-metrics": {
        "modules": ["utils/tiny/build/metrics.py"],
        "tests": ["tests/test_tiny.py"],
    },
    "i18n": {
        "modules": [
            "i18n/chinese.py",
            "i18n/code_identity.py",
            "i18n/issues.py",
            "i18n/records.py",
            "i18n/twins.py",
        ],
        "tests": ["tests/test_translations.py"],
        # the tests read the book's pages and both tables of contents
        "copy": [
            "_config.yml",
            "_toc.yml",
            "_ext",
            "zh",
            "notebooks",
            "intro.md",
            "running.md",
            "teaching.md",
            "glossary.md",
            "README.md",
            "README.zh-CN.md",
        ],
    },
    "t4": {
        "modules": [
            "utils/ground_truth/__init__.py",
            "utils/ground_truth/figures.py",
            "utils/ground_truth/metrics.py",
            "utils/ground_truth/training.py",
            "utils/exercises/t4_ground_truth.py",
        ],
        "tests": [
            "tests/test_ground_truth_metrics.py",
            "tests/test_ground_truth_training.py",
            "tests/test_ground_truth_figures.py",
            "tests/test_exercises_t4.py",
            "tests/test_exercises_language.py",
        ],
    },
}


def check_parts_cover_the_configuration() -> None:
    """The parts together are exactly pyproject.toml's [tool.mutmut] modules and tests."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    modules = {m for part in PARTS.values() for m in part["modules"]}
    configured = {
        str(p.relative_to(REPO))
        for pattern in config["only_mutate"]
        for p in REPO.glob(pattern)
        if p.suffix == ".py"
    }
    tests = {t for part in PARTS.values() for t in part["tests"]}
    if modules != configured or tests != set(config["pytest_add_cli_args_test_selection"]):
        sys.exit(
            "tools/mutation.py's PARTS and pyproject.toml's [tool.mutmut] disagree: "
            f"modules {sorted(modules ^ configured)}, tests "
            f"{sorted(tests ^ set(config['pytest_add_cli_args_test_selection']))}"
        )


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def earlier_results(where: Path) -> dict[str, dict[str, int | None]]:
    """``{meta file relative to where: exit code by mutant}`` of the run in ``where``."""
    return {
        str(meta.relative_to(where)): json.loads(meta.read_text())["exit_code_by_key"]
        for meta in (where / "mutants").rglob("*.py.meta")
    }


def unfinished_functions(earlier: dict[str, dict[str, int | None]]) -> set[str]:
    """``module.function__mutmut_*`` of each function with a mutant not run (``None``) in
    ``earlier`` (:func:`earlier_results`)."""
    return {
        key.rsplit("__mutmut_", 1)[0] + "__mutmut_*"
        for results in earlier.values()
        for key, code in results.items()
        if code is None
    }


def run(
    part: str,
    folder: Path,
    jobs: int,
    budget: float | None = None,
    survivors: bool = False,
    resume: bool = False,
) -> None:
    """Run ``part`` in a fresh copy under ``folder``. With ``survivors``, run again only the
    functions that had a survivor with no reason in the part's last run (every mutant of each),
    against today's tests, and keep that run's results for the other functions (the record says
    so): after new tests, minutes instead of the whole part. With ``resume``, run the functions
    that a stopped run left with mutants not run (every mutant of each), keeping the rest; both
    together take both sets. (mutmut 3 itself forgets its results when it is run again.)"""
    check_parts_cover_the_configuration()
    spec = PARTS[part]
    where = folder / part
    earlier, earlier_record = {}, None
    if survivors or resume:
        if not (where / "run.json").exists():
            sys.exit(f"part {part} has no earlier run in {where} to take the functions from")
        earlier = earlier_results(where)
        earlier_record = json.loads((where / "run.json").read_text())
    # Every mutant of each function that had a survivor with no reason given (mutmut numbers a
    # function's mutants in order, so a changed exclusion can renumber them):
    # "module.function__mutmut_*" patterns.
    named = named_reasons()
    again_set = set()
    if survivors:
        for module, lines in part_results(where, spec["modules"])[1].items():
            dotted = module.removesuffix(".py").replace("/", ".")
            for line in lines:
                if reason_for(module, line, named) == "NO REASON":
                    function = line.split(": ", 1)[0].rsplit("__mutmut_", 1)[0]
                    again_set.add(f"{dotted}.{function}__mutmut_*")
    unfinished = unfinished_functions(earlier) if resume else set()
    again = sorted(again_set | unfinished)
    if (survivors or resume) and not again:
        print(f"part {part}: no survivor without a reason and no mutant left; nothing to run")
        return
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("utils", "i18n", "tests", *spec.get("copy", [])):  # tests use i18n's rules
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, where / name, ignore=ignore)
        elif (REPO / name).is_file():
            shutil.copy2(REPO / name, where / name)
    config = (REPO / "pyproject.toml").read_text()
    # mutmut runs the tests inside its own copy (mutants/): "also_copy" takes what they read there
    also_copy = f"\nalso_copy = {toml_list(spec['copy'])}" if spec.get("copy") else ""
    config, n_modules = re.subn(
        r"(?ms)^only_mutate = \[.*?\]$",
        f"only_mutate = {toml_list(spec['modules'])}{also_copy}",
        config,
    )
    config, n_tests = re.subn(
        r"(?ms)^pytest_add_cli_args_test_selection = \[.*?\]$",
        f"pytest_add_cli_args_test_selection = {toml_list(spec['tests'])}",
        config,
    )
    assert n_modules == n_tests == 1, "pyproject.toml's [tool.mutmut] lists changed shape"
    (where / "pyproject.toml").write_text(config)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "diff", "--quiet", "HEAD", "--", *spec["modules"], *spec["tests"]], cwd=REPO
    ).returncode
    start = time.monotonic()
    mutmut = Path(sys.executable).with_name("mutmut")
    stopped = False
    with open(where / "mutmut.log", "w") as log:
        process = subprocess.Popen(
            [str(mutmut), "run", "--max-children", str(jobs), *again],
            cwd=where,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ,
            start_new_session=True,  # its workers too, so a budget can stop them all
        )
        try:
            returncode = process.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            # mutmut records each mutant's result as it comes: what ran so far stays
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            returncode, stopped = 0, True
    seconds = time.monotonic() - start
    if returncode != 0:
        sys.exit(f"mutmut failed on part {part}; see {where / 'mutmut.log'}")
    if survivors or resume:  # the earlier run's results for every mutant not run again
        for name, results in earlier.items():
            meta = where / name
            data = json.loads(meta.read_text())
            now = data["exit_code_by_key"]
            for key, code in results.items():
                rerun = key.rsplit("__mutmut_", 1)[0] + "__mutmut_*" in again
                if key in now and not rerun and code is not None:
                    now[key] = code
            meta.write_text(json.dumps(data))
    record = {
        "part": part,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" + uncommitted changes to these files" if dirty else ""),
        "seconds": round(seconds),
        "jobs": jobs,
        "stopped": stopped,
        "tests": spec["tests"],
    }
    if survivors or resume:
        which = " and ".join(
            name
            for name, chosen in (
                (f"with unexplained survivors ({len(again_set)})", survivors),
                (f"with mutants not run ({len(unfinished)})", resume),
            )
            if chosen
        )
        record["note"] = (
            f"the functions {which} in the run of {earlier_record['date']} (commit "
            f"{earlier_record['commit']}, {earlier_record['seconds']} s"
            + (", stopped at its time budget" if earlier_record.get("stopped") else "")
            + ") run against the tests of this commit; the other functions' results are "
            "that run's"
        )
        record["first_run"] = earlier_record
    (where / "run.json").write_text(json.dumps(record, indent=1))
    print(f"part {part}: {seconds:.0f} s")


def function_sources(path: Path) -> dict[str, str]:
    """Every function (methods included) of a mutated file, by name, as source text."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    return {
        node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def changed_line(sources: dict[str, str], mutant: str) -> str:
    """The original and mutated line(s) of ``mutant`` (its function's name), ``old -> new``."""
    name = mutant.rsplit(".", 1)[-1]
    orig_name = name.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"
    original = sources.get(orig_name, "").splitlines()
    mutated = sources.get(name, "").replace(name, orig_name, 1).splitlines()
    old, new = [], []
    for line in difflib.ndiff(original, mutated):
        if line.startswith("- "):
            old.append(line[2:].strip())
        elif line.startswith("+ "):
            new.append(line[2:].strip())
    plain = orig_name.removesuffix("__mutmut_orig").removeprefix("x_").replace("xǁ", "")
    plain = plain.replace("ǁ", ".")
    change = f"{' / '.join(old) or '(nothing)'}  ->  {' / '.join(new) or '(deleted)'}"
    return change.replace(orig_name, plain)


def _natural(item: tuple[str, str]) -> tuple[str, int]:
    """Order mutants by function, then number (``f__mutmut_9`` before ``f__mutmut_10``)."""
    function, _, number = item[0].rpartition("__mutmut_")
    return function, int(number) if number.isdigit() else -1


def part_results(
    where: Path, modules: list[str] | None = None
) -> tuple[dict[str, Counter], dict[str, list[str]]]:
    """Counts by status and the survivors, per module of the part run in ``where`` (only
    ``modules``, when given: a folder may hold an older run's results for others)."""
    from mutmut.stats import status_by_exit_code

    counts: dict[str, Counter] = {}
    survivors: dict[str, list[str]] = {}
    for meta in sorted((where / "mutants").rglob("*.py.meta")):
        source = meta.with_suffix("")  # mutants/utils/x.py
        module = source.relative_to(where / "mutants").as_posix()
        if modules is not None and module not in modules:
            continue
        results = json.loads(meta.read_text())["exit_code_by_key"]
        if not results:
            continue
        statuses = {key: status_by_exit_code[code] for key, code in results.items()}
        counts[module] = Counter(statuses.values())
        sources = function_sources(source)
        survivors[module] = [
            f"{key.rsplit('.', 1)[-1]}: {changed_line(sources, key)}"
            for key, status in sorted(statuses.items(), key=_natural)
            if status == "survived"
        ]
    return counts, survivors


def reason_for(module: str, survivor: str, named: dict[str, str]) -> str:
    """Why ``survivor`` (``"name: old  ->  new"``) is left, or ``"NO REASON"``."""
    name, _, change = survivor.partition(": ")
    if f"{module} {name}" in named:
        return named[f"{module} {name}"]
    for pattern, reason in RULES:
        if pattern.search(change):
            return reason
    old, _, new = change.partition("  ->  ")
    if old != new and STRING.sub('""', old) == STRING.sub('""', new):
        return "wording: only the text of a message or label changed (tests pin no wording)"
    return "NO REASON"


def named_reasons(path: Path = REASONS_FILE) -> dict[str, str]:
    """``{"module mutant": reason}`` from REASONS_FILE (``#`` comments and blank lines skipped)."""
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, reason = line.partition(": ")
            found[key.strip()] = reason.strip()
    return found


def not_mutated_lines(module: str) -> int:
    """Lines of ``module`` mutmut leaves alone: pyproject's do_not_mutate_patterns (text-only
    lines) and ``# pragma: no mutate`` lines and blocks (the checkers' test data)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    patterns = [re.compile(p) for p in config.get("do_not_mutate_patterns", [])]
    count, inside = 0, False
    for line in (REPO / module).read_text(encoding="utf-8").splitlines():
        if "# pragma: no mutate start" in line:
            inside = True
        elif "# pragma: no mutate end" in line:
            inside = False
        elif inside or "# pragma: no mutate" in line or any(p.search(line) for p in patterns):
            count += 1
    return count


def row(name: str, c: Counter) -> str:
    killed = sum(c[s] for s in KILLED)
    not_run = c["not checked"]
    other = sum(c.values()) - killed - c["survived"] - not_run
    tried = killed + c["survived"]
    share = f"{100 * killed / tried:8.1f}%" if tried else f"{'-':>9}"  # none run: no score
    return (
        f"{name:40} {sum(c.values()):8} {not_run:8} {killed:7} {c['survived']:9} {other:6} {share}"
    )


ROW = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(?:[\d.]+%|-)$")


def earlier_summary(text: str) -> dict[str, dict]:
    """The parts of an earlier summary's text, by name: ``{"lines": the part's block,
    "counts": {module: Counter}, "survivors": {module: ["name: change", "    -> reason", ...]}}``,
    so a summary can keep the results of parts that were not run again."""
    parts: dict[str, dict] = {}
    lines = text.splitlines()
    survivors: dict[str, list[str]] = {}
    current = None
    for line in lines:
        if line.startswith("Survivors in ") and line.endswith(":"):
            current = line.removeprefix("Survivors in ").removesuffix(":")
            survivors[current] = []
        elif current and line.startswith("  "):
            survivors[current].append(line)
        else:
            current = None
    i = 0
    while i < len(lines):
        match = re.match(r"^Part (\S+): ", lines[i])
        if not match:
            i += 1
            continue
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i])
            i += 1
        counts = {}
        for line in block:
            row_match = ROW.match(line)
            if row_match:
                module, total, not_run, killed, survived, other = row_match.groups()
                counts[module] = Counter(
                    {
                        "killed": int(killed),
                        "survived": int(survived),
                        "not checked": int(not_run),
                        "no tests": int(other),
                    }
                )
                assert sum(counts[module].values()) == int(total), line
        parts[match.group(1)] = {
            "lines": block,
            "counts": counts,
            "survivors": {m: survivors.get(m, []) for m in counts},
        }
    return parts


def summary(folder: Path, previous: str = "") -> None:
    """Print the summary of every part run in ``folder``; a part not run there keeps its block
    from ``previous`` (the last summary's text) when its modules are the same as today."""
    header = (
        f"{'module':40} {'mutants':>8} {'not run':>8} {'killed':>7} {'survived':>9} {'other':>6}"
        f" {'killed %':>9}"
    )
    print("Mutation testing (mutmut 3, `make mutation`) of the modules that print numbers, each")
    print("mutant run against those modules' unit tests (tools/mutation.py).")
    print("killed % = killed / (killed + survived); timeouts count as killed; 'other': mutants no")
    print("selected test reaches; 'not run': left when a part stopped at its time budget.")
    print("Parts not listed were not run; a part marked 'kept' shows its last run's results.")
    runs, total, all_survivors = [], Counter(), {}
    kept = earlier_summary(previous)
    kept_reasons: dict[str, list[str]] = {}
    for part in PARTS:
        record_path = folder / part / "run.json"
        if not record_path.exists():
            earlier = kept.get(part)
            # kept only while the part still names the modules it was run on (not after a move)
            if (
                earlier
                and earlier["counts"]
                and set(earlier["counts"]) <= set(PARTS[part]["modules"])
            ):
                runs.append(({"kept": earlier["lines"]}, earlier["counts"]))
                for module, lines in earlier["survivors"].items():
                    all_survivors[module] = [
                        line[2:] for line in lines if not line.startswith("      -> ")
                    ]
                    kept_reasons[module] = [
                        line.removeprefix("      -> ")
                        for line in lines
                        if line.startswith("      -> ")
                    ]
                for c in earlier["counts"].values():
                    total += c
            continue
        record = json.loads(record_path.read_text())
        counts, survivors = part_results(folder / part, PARTS[part]["modules"])
        runs.append((record, counts))
        all_survivors |= survivors
        for c in counts.values():
            total += c
    for record, counts in runs:
        print()
        if "kept" in record:
            print(record["kept"][0] + " (kept from the previous summary: not run again this time)")
            print("\n".join(record["kept"][1:]))
            continue
        print(
            f"Part {record['part']}: {record['date']}, commit {record['commit']}, "
            f"{record['seconds']} s wall with {record['jobs']} workers"
            + (" (stopped at its time budget)" if record.get("stopped") else "")
        )
        if record.get("note"):
            print(f"  note: {record['note']}")
        print(f"  tests: {', '.join(record['tests'])}")
        print(header)
        for module, c in counts.items():
            print(row(module, c))
    print()
    print(row("all parts run", total))
    print()
    print("Lines not mutated (text-only lines, and the checkers' test data in no-mutate blocks):")
    for module in sorted({m for _, counts in runs for m in counts}):
        print(f"  {module}: {not_mutated_lines(module)}")
    named = named_reasons()
    reasons = {
        module: [
            reason_for(module, line, named) if kept == "NO REASON" else kept
            for line, kept in zip(
                lines, kept_reasons.get(module) or ["NO REASON"] * len(lines), strict=True
            )
        ]
        for module, lines in all_survivors.items()
    }
    unexplained = sum(r == "NO REASON" for rs in reasons.values() for r in rs)
    print()
    print(
        f"Survivors: {sum(len(rs) for rs in reasons.values())}, each with the reason it is left "
        f"({unexplained} with none yet)."
    )
    for module, lines in all_survivors.items():
        if lines:
            print()
            print(f"Survivors in {module}:")
            for line, reason in zip(lines, reasons[module]):
                print(f"  {line}")
                print(f"      -> {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run one part")
    run_parser.add_argument("part", choices=sorted(PARTS))
    run_parser.add_argument("--folder", type=Path, required=True)
    run_parser.add_argument("--jobs", type=int, default=2)
    run_parser.add_argument(
        "--budget", type=float, help="stop after this many seconds, keeping the results so far"
    )
    run_parser.add_argument(
        "--survivors",
        action="store_true",
        help="run again only the mutants that survived this part's last run",
    )
    run_parser.add_argument(
        "--resume",
        action="store_true",
        help="run the functions a stopped run of this part left unfinished, keeping the rest",
    )
    summary_parser = commands.add_parser("summary", help="summarise every part run")
    summary_parser.add_argument("--folder", type=Path, required=True)
    summary_parser.add_argument(
        "--previous",
        type=Path,
        help="the last summary: parts not run in --folder keep their results from it",
    )
    args = parser.parse_args()
    if args.command == "run":
        run(args.part, args.folder.resolve(), args.jobs, args.budget, args.survivors, args.resume)
    else:
        previous = args.previous.read_text() if args.previous and args.previous.exists() else ""
        summary(args.folder.resolve(), previous)


if __name__ == "__main__":
    main()
