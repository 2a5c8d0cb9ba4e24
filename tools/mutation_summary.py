"""The summary of ``make mutation`` (``python tools/mutation.py summary``): per module, mutants,
killed (a test failed or timed out), survived (every test passed), the rest (no selected test
reaches them), and each survivor with the line it changed, taken from the mutated copy of the
function that mutmut writes beside the original, and the reason it is left (``RULES``, then
tools/mutation_reasons.txt). A part not run again keeps its block from the last summary."""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections import Counter
from pathlib import Path

from mutation_parts import PARTS, REPO, mutmut_config

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
        re.compile(
            r"(device=device|\.to\(device\)|, device\)).*  ->  "
            r"(?:(?!device=device|\.to\(device\)|, device\)).)*$"
        ),
        "the device passed on: the tests run on a CPU-only machine, where no device (or None) "
        "is the CPU as well",
    ),
    (
        re.compile(r'map_location="cpu".*  ->  (?:(?!map_location="cpu").)*$'),
        "where loaded tensors go: the tests' checkpoints are saved on a CPU-only machine, so they "
        "load on the CPU with or without map_location",
    ),
    (
        re.compile(r"tqdm\(.*leave=False.*  ->  (?:(?!leave=False).)*$"),
        "whether a finished progress bar stays on screen (tqdm's leave): appearance only",
    ),
    (
        re.compile(r'cfg\.json.*encoding="utf-8".*  ->  (?:(?!encoding="utf-8").)*$'),
        "equivalent: cfg.json is ASCII (json.dump escapes the rest), read alike in any encoding "
        "Python accepts for it",
    ),
]
REASONS_FILE = REPO / "tools" / "mutation_reasons.txt"
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


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
    config = mutmut_config()
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


def stopped_how(record: dict) -> str:
    """How a stopped run stopped, from its record (older records knew only the time budget)."""
    if record.get("stopped_by") == "hand":
        return "stopped by hand"
    return "stopped at its time budget"


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


KEPT = " (kept from the previous summary: not run again this time)"


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
    print("selected test reaches; 'not run': left when a part stopped early (its time budget, or")
    print("stopped by hand). Parts not listed were not run; a part marked 'kept' shows its last")
    print("run's results.")
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
            first = record["kept"][0].replace(KEPT, "")  # said once, however often it was kept
            print(first + KEPT)
            print("\n".join(record["kept"][1:]))
            continue
        print(
            f"Part {record['part']}: {record['date']}, commit {record['commit']}, "
            f"{record['seconds']} s wall with {record['jobs']} workers"
            + (f" ({stopped_how(record)})" if record.get("stopped") else "")
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
