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

This file runs a part and reads the command line; the parts are in mutation_parts.py, the
summary and the reasons survivors are left in mutation_summary.py.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mutation_parts import PARTS, REPO, check_parts_cover_the_configuration
from mutation_summary import named_reasons, part_results, reason_for, stopped_how, summary


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def earlier_results(where: Path) -> dict[str, dict[str, int | None]]:
    """``{meta file relative to where: exit code by mutant}`` of the run in ``where``."""
    return {
        str(meta.relative_to(where)): json.loads(meta.read_text())["exit_code_by_key"]
        for meta in (where / "mutants").rglob("*.py.meta")
    }


NO_TESTS = 33  # mutmut's exit code for a mutant no selected test reaches


def functions_with(earlier: dict[str, dict[str, int | None]], code: int | None) -> set[str]:
    """``module.function__mutmut_*`` of each function with a mutant whose result in ``earlier``
    (:func:`earlier_results`) is ``code``."""
    return {
        key.rsplit("__mutmut_", 1)[0] + "__mutmut_*"
        for results in earlier.values()
        for key, result in results.items()
        if result == code
    }


def unfinished_functions(earlier: dict[str, dict[str, int | None]]) -> set[str]:
    """Each function with a mutant not run (``None``) in ``earlier``."""
    return functions_with(earlier, None)


def untested_functions(earlier: dict[str, dict[str, int | None]]) -> set[str]:
    """Each function with a mutant no test reached in ``earlier``: like a survivor, nothing
    explains it until a test reaches it."""
    return functions_with(earlier, NO_TESTS)


def new_functions(modules: list[str], earlier: dict[str, dict[str, int | None]]) -> set[str]:
    """``module.function__mutmut_*`` of each function of ``modules`` that mutmut can mutate
    (top-level or a class's method, not decorated but for staticmethod/classmethod) and that has
    no mutant in ``earlier`` (:func:`earlier_results`): new functions, or ones a decorator hid
    from an earlier run (mutmut 3 leaves decorated functions alone)."""
    seen = {key.rsplit("__mutmut_", 1)[0] for results in earlier.values() for key in results}
    found = set()
    for module in modules:
        dotted = module.removesuffix(".py").replace("/", ".")
        tree = ast.parse((REPO / module).read_text())
        for node in tree.body:
            methods = node.body if isinstance(node, ast.ClassDef) else [node]
            for function in methods:
                if not isinstance(function, ast.FunctionDef):
                    continue
                decorators = [ast.unparse(d) for d in function.decorator_list]
                if decorators not in ([], ["staticmethod"], ["classmethod"]):
                    continue
                name = (
                    f"xǁ{node.name}ǁ{function.name}"
                    if isinstance(node, ast.ClassDef)
                    else f"x_{function.name}"
                )
                if f"{dotted}.{name}" not in seen:
                    found.add(f"{dotted}.{name}__mutmut_*")
    return found


def run(
    part: str,
    folder: Path,
    jobs: int,
    budget: float | None = None,
    survivors: bool = False,
    resume: bool = False,
    new: bool = False,
) -> None:
    """Run ``part`` in a fresh copy under ``folder``. With ``survivors``, run again only the
    functions that had a survivor with no reason, or a mutant no test reached, in the part's last
    run (every mutant of each),
    against today's tests, and keep that run's results for the other functions (the record says
    so): after new tests, minutes instead of the whole part. With ``resume``, run the functions
    that a stopped run left with mutants not run (every mutant of each), keeping the rest; both
    together take both sets. With ``new``, also the functions the last run had no mutant of
    (:func:`new_functions`). (mutmut 3 itself forgets its results when it is run again.)"""
    check_parts_cover_the_configuration()
    spec = PARTS[part]
    where = folder / part
    earlier, earlier_record = {}, None
    again_run = survivors or resume or new
    if again_run:
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
        again_set |= untested_functions(earlier)
    unfinished = unfinished_functions(earlier) if resume else set()
    fresh = new_functions(spec["modules"], earlier) if new else set()
    again = sorted(again_set | unfinished | fresh)
    if again_run and not again:
        print(f"part {part}: no survivor without a reason, no mutant left, no new function")
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
    stopped_by = None  # "time budget" or "hand" (SIGTERM/SIGINT): the mutants left are "not run"
    signalled = []

    def stop(signum: int, frame: object) -> None:  # a stopped run keeps what it found
        signalled.append(signum)
        os.killpg(process.pid, signal.SIGTERM)

    with open(where / "mutmut.log", "w") as log:
        process = subprocess.Popen(
            [str(mutmut), "run", "--max-children", str(jobs), *again],
            cwd=where,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ,
            start_new_session=True,  # its workers too, so a budget can stop them all
        )
        handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            returncode = process.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            # mutmut records each mutant's result as it comes: what ran so far stays
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            returncode, stopped_by = 0, "time budget"
        finally:
            for number, handler in handlers.items():
                signal.signal(number, handler)
        if signalled:
            returncode, stopped_by = 0, "hand"
    seconds = time.monotonic() - start
    if returncode != 0:
        sys.exit(f"mutmut failed on part {part}; see {where / 'mutmut.log'}")
    if again_run:  # the earlier run's results for every mutant not run again
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
        "stopped": stopped_by is not None,
        "stopped_by": stopped_by,
        "tests": spec["tests"],
    }
    if again_run:
        which = " and ".join(
            name
            for name, chosen in (
                (f"with unexplained survivors or untested mutants ({len(again_set)})", survivors),
                (f"with mutants not run ({len(unfinished)})", resume),
                (f"with no mutant in that run ({len(fresh)}: new or no longer decorated)", new),
            )
            if chosen
        )
        record["note"] = (
            f"the functions {which} in the run of {earlier_record['date']} (commit "
            f"{earlier_record['commit']}, {earlier_record['seconds']} s"
            + (f", {stopped_how(earlier_record)}" if earlier_record.get("stopped") else "")
            + ") run against the tests of this commit; the other functions' results are "
            "that run's"
        )
        record["first_run"] = earlier_record
    (where / "run.json").write_text(json.dumps(record, indent=1))
    print(f"part {part}: {seconds:.0f} s")


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
    run_parser.add_argument(
        "--new",
        action="store_true",
        help="run the functions this part's last run had no mutant of, keeping the rest",
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
        run(
            args.part,
            args.folder.resolve(),
            args.jobs,
            args.budget,
            args.survivors,
            args.resume,
            args.new,
        )
    else:
        previous = args.previous.read_text() if args.previous and args.previous.exists() else ""
        summary(args.folder.resolve(), previous)


if __name__ == "__main__":
    main()
