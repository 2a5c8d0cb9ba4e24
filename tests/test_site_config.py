"""The site's configuration agrees with itself and with the notebooks (no build needed)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).parent.parent
CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
MAKEFILE = (REPO_ROOT / "Makefile").read_text()


def _requirement_lines(path: Path) -> list[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def test_colab_requirements_are_lines_of_requirements_txt():
    main = set(_requirement_lines(REPO_ROOT / "requirements.txt"))
    colab = _requirement_lines(REPO_ROOT / "requirements-colab.txt")
    missing = [line for line in colab if line not in main]
    assert colab and not missing, (
        f"requirements-colab.txt lines not found verbatim in requirements.txt: {missing}"
    )


def test_setup_cell_repository_is_the_configured_repository():
    tree = ast.parse((REPO_ROOT / "notebooks" / "_setup_cell.py").read_text())
    book_repo = next(
        node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "BOOK_REPO" for t in node.targets)
    )
    assert book_repo == CONFIG["repository"]["url"], (
        f"BOOK_REPO in the setup cell is {book_repo!r}, repository.url in _config.yml is "
        f"{CONFIG['repository']['url']!r}: change both together (README, 'Publishing')"
    )


def test_every_toc_entry_has_a_source():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [
        chapter["file"] for part in toc.get("parts", []) for chapter in part.get("chapters", [])
    ]
    missing = [
        f for f in files if not any((REPO_ROOT / f"{f}{s}").is_file() for s in (".md", ".ipynb"))
    ]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"


def test_logo_and_favicon_exist():
    assert (REPO_ROOT / CONFIG["logo"]).is_file()
    assert (REPO_ROOT / CONFIG["html"]["favicon"]).is_file()


def test_launch_and_repository_buttons_are_on():
    buttons = CONFIG["launch_buttons"]
    assert buttons["colab_url"] == "https://colab.research.google.com"
    assert buttons["binderhub_url"] == "https://mybinder.org"
    html = CONFIG["html"]
    assert (
        html["use_repository_button"] and html["use_edit_page_button"] and html["use_issues_button"]
    )


def test_the_build_fails_on_a_failing_notebook_and_hides_stderr():
    assert CONFIG["execute"]["raise_on_error"] is True
    assert CONFIG["execute"]["stderr_output"] == "remove"


def _strip_prompts(text: str) -> str:
    """What sphinx-copybutton copies, per its formatCopyText with the book's settings."""
    options = CONFIG["sphinx"]["config"]
    assert options["copybutton_prompt_is_regexp"] is True
    prompt = re.compile("^(" + options["copybutton_prompt_text"] + ")(.*)")
    lines = text.split("\n")
    matches = [prompt.match(line) for line in lines]
    if not any(matches):
        return text  # no prompts: everything is copied
    return "\n".join(m.group(2) for m in matches if m)  # only prompt lines, without the prompt


def test_copy_button_leaves_out_prompts_and_output():
    assert _strip_prompts(">>> x = 1\n>>> print(x)\n1") == "x = 1\nprint(x)"
    assert (
        _strip_prompts(">>> for i in range(2):\n...     print(i)\n0\n1")
        == "for i in range(2):\n    print(i)"
    )
    assert _strip_prompts("$ make book\nbuilding...") == "make book"
    assert _strip_prompts(
        "In [1]: import torch\nIn [12]: torch.ones(2)\nOut[12]: tensor([1., 1.])"
    ) == ("import torch\ntorch.ones(2)")
    plain = "import torch\nx = torch.ones(2)  # $ and >>> inside a line stay"
    assert _strip_prompts(plain) == plain


def test_plotly_json_part_is_known_to_myst_nb(monkeypatch):
    """The extension makes MyST-NB keep the plotly JSON part quietly; other unknown types still warn."""
    import plotly_static
    from myst_nb.core.render import MimeData, NbElementRenderer

    plotly_static._accept_plotly_json()
    warnings = []

    class Logger:
        def warning(self, message, **kwargs):
            warnings.append(message)

    class Renderer:
        logger = Logger()

    plotly = NbElementRenderer.render_unhandled(
        Renderer(), MimeData(plotly_static.PLOTLY_MIME, "{}")
    )
    assert len(plotly) == 1 and not warnings
    other = NbElementRenderer.render_unhandled(Renderer(), MimeData("application/x-unknown", "{}"))
    assert other == [] and warnings


def test_circuitsvis_bundle_is_taken_out_of_pages():
    import circuitsvis_static

    inline = (
        '<div id="circuits-vis-1234" style="margin: 15px 0;"/>\n<script crossorigin type="module">\n'
        '"use strict";var CircuitsVis=(()=>{var a=1;return a;})();\n//# sourceMappingURL=iife.js.map\n'
        '\nCircuitsVis.render("circuits-vis-1234", CircuitsVis.ColoredTokens, {"tokens": ["a"]})\n</script>'
    )
    cdn = (
        '<div id="circuits-vis-5678"/>\n<script crossorigin type="module">\n'
        'import { render, ColoredTokens } from "https://unpkg.com/circuitsvis@1.43.3/dist/cdn/esm.js";\n'
        'render("circuits-vis-5678", ColoredTokens, {})\n</script>'
    )
    body, views = circuitsvis_static.share_circuitsvis_bundle(inline + cdn)
    assert views == 2
    assert "var CircuitsVis" not in body and "unpkg.com" not in body
    assert 'CircuitsVis.render("circuits-vis-1234"' in body
    assert "const { render, ColoredTokens } = window.CircuitsVis;" in body
    assert circuitsvis_static.share_circuitsvis_bundle("<p>no views</p>") == ("<p>no views</p>", 0)
    assert circuitsvis_static._bundle_source().is_file()


def _mathjax_local():
    import mathjax_local

    return mathjax_local


def test_local_mathjax_is_configured_and_installed():
    assert "mathjax_local" in CONFIG["sphinx"]["local_extensions"]
    es5 = _mathjax_local().mathjax_es5()
    assert es5 is not None, "django-static-mathjax is not installed (requirements.txt lists it)"
    for part in ("tex-mml-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions"):
        assert (es5 / part).exists(), part


def test_local_mathjax_respects_a_configured_path():
    from types import SimpleNamespace

    from sphinx.ext.mathjax import MATHJAX_URL

    ext = _mathjax_local()
    default = SimpleNamespace(mathjax_path=MATHJAX_URL)
    ext._use_local_mathjax(None, default)
    assert default.mathjax_path == "mathjax/tex-mml-chtml.js"
    chosen = SimpleNamespace(mathjax_path="https://example.org/mathjax.js")
    ext._use_local_mathjax(None, chosen)
    assert chosen.mathjax_path == "https://example.org/mathjax.js"


def test_a_utils_change_means_executing_the_notebooks_again(tmp_path, monkeypatch):
    """jupyter-cache keys on notebook code only; site_helpers (and the Makefile) clear it for utils/."""
    import site_helpers as H

    stamp = tmp_path / ".site-build-ok"
    monkeypatch.setattr(H, "BUILD_STAMP", stamp)
    assert H.execution_inputs_changed([])  # no record of a good build: trust no cache
    stamp.touch()
    assert not H.execution_inputs_changed(
        [REPO_ROOT / "intro.md", REPO_ROOT / "_static" / "book.css"]
    )
    assert H.execution_inputs_changed([REPO_ROOT / "utils" / "features.py"])
    assert H.execution_inputs_changed([REPO_ROOT / "benchmarks" / "results" / "l1_sweep_tiny.csv"])
    assert set(H.EXECUTION_INPUTS) == set(
        re.search(r"^EXECUTION_INPUTS := (.*)$", MAKEFILE, re.M)[1].split()
    )
