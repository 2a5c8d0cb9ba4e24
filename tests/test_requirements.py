"""The requirements say what the code imports, and each version has one home: every package the
book's own code imports is declared (requirements.txt, or requirements-maintainer.txt for the
maintainers' tools), every declared package is pinned in requirements-lock.txt, and torch's, uv's
and mutmut's versions are written once."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys

from random_models import REPO

# Where the book's own code lives (notebooks are checked through the utils they import).
CODE = ("utils", "i18n", "_ext", "tests", "benchmarks", "tools")
# Imports that may fail, each caught where it is made, so no requirement names them.
OPTIONAL = {
    "google": "google.colab exists only in Colab (utils/language.py asks whether it runs there)",
    "httpx": "utils/loading.py recognises its errors when huggingface_hub uses it",
    "requests": "utils/loading.py recognises its errors when an older library uses it",
    "toml": "tools/mutation_parts.py on Python 3.10, where mutmut brings it (3.11+ has tomllib)",
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(path) -> set[str]:
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(normalise(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]))
    return names


def first_party() -> set[str]:
    names = {"utils", "i18n"}
    for folder in ("tests", "_ext", "benchmarks", "tools"):
        names |= {p.stem for p in (REPO / folder).glob("*.py")}
    return names


def imported_packages() -> dict[str, set[str]]:
    """Top-level names of what the code imports, outside the standard library: name -> files."""
    ours = first_party()
    found: dict[str, set[str]] = {}
    for folder in CODE:
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in ours or top == "__future__":
                        continue
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_imported_package_is_declared():
    book = declared(REPO / "requirements.txt")
    tools = declared(REPO / "requirements-maintainer.txt")
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for name, files in sorted(imported_packages().items()):
        if name in OPTIONAL:
            continue
        if name == "mutmut":  # run by tools/mutation.py, installed by `make mutation`
            assert "mutmut" in tools
            continue
        dists = {normalise(d) for d in distributions.get(name, [name])}
        if not dists & book:
            missing.append(
                f"{name} (distribution {sorted(dists)}; imported in {sorted(files)[:3]})"
            )
    assert not missing, "imported but not in requirements.txt: " + "; ".join(missing)


def test_the_scan_sees_what_it_should():
    """The check above would notice: the scan finds the packages known to be imported directly,
    including those that arrive only as other packages' dependencies."""
    found = imported_packages()
    for name in ("yaml", "IPython", "nbformat", "nbclient", "jupyter_cache", "sphinx", "myst_nb"):
        assert name in found, name
    assert "utils" not in found and "os" not in found and "random_models" not in found


def test_every_requirement_is_pinned_in_the_lock():
    lock = {
        normalise(m.group(1))
        for m in re.finditer(
            r"^([A-Za-z0-9_.-]+)==",
            (REPO / "requirements-lock.txt").read_text(encoding="utf-8"),
            flags=re.M,
        )
    }
    missing = sorted(declared(REPO / "requirements.txt") - lock)
    assert not missing, f"in requirements.txt but not pinned in requirements-lock.txt: {missing}"


def test_each_tool_version_is_written_once():
    lock = (REPO / "requirements-lock.txt").read_text(encoding="utf-8")
    torch_pins = re.findall(r"^torch==(\S+)", lock, flags=re.M)
    assert len(torch_pins) == 1, torch_pins
    for path in ("Makefile", ".ci/run", "requirements.txt", "CONTRIBUTING.md"):
        text = (REPO / path).read_text(encoding="utf-8")
        assert torch_pins[0] not in text, f"{path} repeats torch's release {torch_pins[0]}"
        for tool in ("uv", "mutmut"):
            assert not re.search(rf"\b{tool}==\d", text), f"{path} pins {tool} itself"
    tools = (REPO / "requirements-maintainer.txt").read_text(encoding="utf-8")
    for tool in ("uv", "mutmut"):
        assert len(re.findall(rf"^{tool}==\S+$", tools, flags=re.M)) == 1, tool
