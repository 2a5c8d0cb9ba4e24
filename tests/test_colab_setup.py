"""The Colab path of each notebook's setup cell, exercised here without the internet.

The first code cell of every notebook must be notebooks/_setup_cell.py, verbatim. The cell is then
run in a fresh Python with a stand-in ``google.colab`` module (so it believes it is in Colab),
``SAE_BOOK_REPO`` pointing at a git repository made from this working tree (uncommitted work
included) and ``SAE_BOOK_DIR`` in a temporary folder. Its steps run for real: ``git clone`` from
that repository, ``pip install -r requirements-colab.txt`` into this environment (everything is
already installed, and PIP_NO_INDEX forbids downloads, so pip only checks), then
``import utils.presets`` from the clone. A second run finds the clone and does not clone again.
Torch must be neither named to pip nor touched by it. The local path (JupyterLab) is run too, from
notebooks/ and from zh/notebooks/ (the Chinese edition's notebooks, two folders below the book),
and the Chinese notebooks' Colab address is the one their launch button opens. In Colab the
exercise checkers answer in the language of the notebook the Colab page shows (a stand-in page
answers ``get_ipynb`` with the notebook file), with nothing for the reader to set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).parent.parent
SETUP_CELL = REPO_ROOT / "notebooks" / "_setup_cell.py"
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))
ZH_NOTEBOOKS = sorted((REPO_ROOT / "zh" / "notebooks").glob("[0-9]*.ipynb"))
# Folders that never belong in the stand-in repository (build outputs, environments, caches).
NOT_IN_REPO = {
    ".git",
    ".venv",
    "_build",
    "__pycache__",
    ".pytest_cache",
    ".ipynb_checkpoints",
    "wandb",
}

# Runs in a fresh Python: pretend to be Colab, record subprocess calls, run the cell, import utils.
DRIVER = textwrap.dedent(
    """
    import json, subprocess, sys, types
    sys.modules["google.colab"] = types.ModuleType("google.colab")  # what the cell looks for
    calls = []
    _run = subprocess.run
    def recording_run(cmd, *args, **kwargs):
        calls.append([str(part) for part in cmd])
        return _run(cmd, *args, **kwargs)
    subprocess.run = recording_run
    cell = open(sys.argv[1], encoding="utf-8").read()
    exec(compile(cell, "<setup cell>", "exec"), {"__name__": "__main__"})
    import utils.presets
    print("RESULT " + json.dumps({"calls": calls, "utils": utils.presets.__file__,
                                  "sys_path0": sys.path[0]}))
    """
)


def first_code_cell(notebook: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(notebook, as_version=4)
    return next(cell for cell in nb.cells if cell.cell_type == "code")


def test_there_are_notebooks_to_check():
    assert NOTEBOOKS, "no notebooks/NN_*.ipynb found"


@pytest.mark.parametrize(
    "notebook", NOTEBOOKS + ZH_NOTEBOOKS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix()
)
def test_first_code_cell_is_the_setup_cell(notebook):
    cell = first_code_cell(notebook)
    assert cell.source.strip() == SETUP_CELL.read_text().strip(), (
        f"{notebook.name}: the first code cell differs from notebooks/_setup_cell.py; copy it verbatim"
    )
    assert "hide-input" in cell.metadata.get("tags", []), (
        f"{notebook.name}: tag the setup cell hide-input"
    )


def _requirement_names(path: Path) -> list[str]:
    """The project names a requirements file asks for (normalised: lower case, '-')."""
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.append(re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", line).group()).lower())
    return names


def test_colab_requirements_never_name_torch():
    names = _requirement_names(REPO_ROOT / "requirements-colab.txt")
    assert names, "requirements-colab.txt is empty"
    assert not {"torch", "torchvision", "torchaudio"} & set(names), names


def _working_tree_files() -> list[Path]:
    """The files of the working tree a clone would have: tracked plus untracked-but-not-ignored."""
    try:
        listed = (
            subprocess.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=REPO_ROOT,
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .split("\0")
        )
        files = [REPO_ROOT / name for name in listed if name]
    except (subprocess.CalledProcessError, FileNotFoundError):  # not a git checkout
        files = [p for p in REPO_ROOT.rglob("*") if p.is_file()]
    return [
        p for p in files if p.is_file() and not NOT_IN_REPO & set(p.relative_to(REPO_ROOT).parts)
    ]


@pytest.fixture(scope="module")
def book_repo(tmp_path_factory) -> str:
    """A file:// URL of a git repository holding this working tree (uncommitted work included)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("book-origin")
    for source in _working_tree_files():
        target = repo / source.relative_to(REPO_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    git = [
        "git",
        "-c",
        "user.name=test",
        "-c",
        "user.email=test@example.invalid",
        "-c",
        "init.defaultBranch=main",
    ]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "working tree"]):
        subprocess.run(git + args, cwd=repo, check=True, capture_output=True)
    return repo.as_uri()


def _torch_fingerprint() -> dict:
    dist = metadata.distribution("torch")
    init = Path(dist.locate_file("torch/__init__.py"))
    return {"version": dist.version, "file": str(init), "mtime": init.stat().st_mtime_ns}


def _run_setup_cell(tmp_path: Path, env_extra: dict[str, str], cwd: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "SAE_BOOK_REPO", "SAE_BOOK_DIR")
    }
    env.update(env_extra)
    env["PIP_NO_INDEX"] = "1"  # everything is installed already: pip must not download
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [sys.executable, str(driver), str(SETUP_CELL)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"the setup cell failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    line = next(out for out in proc.stdout.splitlines() if out.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_setup_cell_in_colab_clones_installs_and_imports(book_repo, tmp_path):
    book_dir = tmp_path / "content" / "sae-tutorial-book"
    workdir = tmp_path / "colab-cwd"  # Colab starts in /content, outside the book
    workdir.mkdir()
    env = {"SAE_BOOK_REPO": book_repo, "SAE_BOOK_DIR": str(book_dir)}
    torch_before = _torch_fingerprint()

    first = _run_setup_cell(tmp_path, env, workdir)
    clones = [c for c in first["calls"] if c[:2] == ["git", "clone"]]
    assert len(clones) == 1 and clones[0][-2:] == [book_repo, str(book_dir)], first["calls"]
    assert (book_dir / "utils" / "presets.py").is_file()
    pips = [c for c in first["calls"] if c[1:4] == ["-m", "pip", "install"]]
    assert len(pips) == 1, first["calls"]
    assert (
        pips[0][0] == sys.executable or Path(pips[0][0]).resolve() == Path(sys.executable).resolve()
    )
    assert pips[0][-2:] == ["-r", str(book_dir / "requirements-colab.txt")], pips
    assert not any("torch" in part for part in pips[0]), f"pip was asked for torch: {pips[0]}"
    assert "torch" not in _requirement_names(book_dir / "requirements-colab.txt")
    assert Path(first["utils"]).resolve().is_relative_to(book_dir.resolve()), (
        f"utils was imported from {first['utils']}, not from the clone in {book_dir}"
    )
    assert first["sys_path0"] == str(book_dir)

    second = _run_setup_cell(tmp_path, env, workdir)
    assert not [c for c in second["calls"] if c[:2] == ["git", "clone"]], (
        "the second run cloned again"
    )
    assert Path(second["utils"]).resolve().is_relative_to(book_dir.resolve())

    assert _torch_fingerprint() == torch_before, "torch changed while the setup cell ran"


def test_setup_cell_locally_finds_utils_from_notebooks_folder(tmp_path):
    """In JupyterLab (no google.colab) the cell adds the book's root to sys.path and runs nothing."""
    result = _run_local(tmp_path, REPO_ROOT / "notebooks")
    assert result["calls"] == []
    assert Path(result["sys_path0"]).resolve() == REPO_ROOT.resolve()


def test_setup_cell_locally_finds_utils_from_the_chinese_notebooks_folder(tmp_path):
    assert ZH_NOTEBOOKS, "no zh/notebooks/NN_*.ipynb found"
    result = _run_local(tmp_path, REPO_ROOT / "zh" / "notebooks")
    assert result["calls"] == []
    assert Path(result["sys_path0"]).resolve() == REPO_ROOT.resolve()


def colab_url(config_path: Path, notebook: Path) -> str:
    """The Colab address a page's launch button opens, from the edition's _config.yml (the way
    sphinx-book-theme builds it: repository, branch, path_to_book, the page's path)."""
    import yaml

    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    repo = config["repository"]
    owner_repo = repo["url"].removeprefix("https://github.com/").strip("/")
    book = config_path.parent
    path = "/".join(
        filter(
            None, [repo.get("path_to_book", "").strip("/"), notebook.relative_to(book).as_posix()]
        )
    )
    return (
        f"{config['launch_buttons']['colab_url']}/github/{owner_repo}/blob/{repo['branch']}/{path}"
    )


@pytest.mark.parametrize("notebook", ZH_NOTEBOOKS, ids=lambda p: p.name)
def test_chinese_notebooks_open_in_colab_from_their_own_path(notebook):
    """The Colab link of a Chinese page names zh/notebooks/<file>, a file of the repository."""
    url = colab_url(REPO_ROOT / "zh" / "_config.yml", notebook)
    repo_path = url.split("/blob/", 1)[1].split("/", 1)[1]
    assert repo_path == f"zh/notebooks/{notebook.name}", url
    assert (REPO_ROOT / repo_path).is_file()
    english = colab_url(REPO_ROOT / "_config.yml", REPO_ROOT / "notebooks" / notebook.name)
    assert english.replace("/notebooks/", "/zh/notebooks/") == url


def test_setup_cell_locally_outside_the_book_says_where_to_start(tmp_path):
    proc = _run_local(tmp_path, tmp_path, check=False)
    assert proc.returncode != 0
    assert "Cannot find the book's utils/ package" in proc.stderr


def _run_local(tmp_path: Path, cwd: Path, check: bool = True):
    script = tmp_path / "local_driver.py"
    script.write_text(
        DRIVER.replace('sys.modules["google.colab"] = types.ModuleType("google.colab")', "pass")
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, str(script), str(SETUP_CELL)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if not check:
        return proc
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(out for out in proc.stdout.splitlines() if out.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


# Colab with a page that shows the notebook given as argv[2]: the setup cell runs (the book is
# already in SAE_BOOK_DIR, so no clone), then an exercise checker is called unanswered.
LANGUAGE_DRIVER = textwrap.dedent(
    """
    import importlib.machinery, json, sys, types
    colab = types.ModuleType("google.colab")
    colab.__spec__ = importlib.machinery.ModuleSpec("google.colab", None)  # for find_spec()
    def blocking_request(request_type, request="", timeout_sec=None):
        assert request_type == "get_ipynb", request_type
        return {"ipynb": json.load(open(sys.argv[2], encoding="utf-8"))}
    colab._message = types.SimpleNamespace(blocking_request=blocking_request)
    sys.modules["google.colab"] = colab
    sys.modules["google.colab._message"] = colab._message
    cell = open(sys.argv[1], encoding="utf-8").read()
    exec(compile(cell, "<setup cell>", "exec"), {"__name__": "__main__"})
    from utils.exercises import check_l0
    check_l0(None)
    """
)


@pytest.mark.parametrize("edition", ["en", "zh"])
def test_in_colab_a_notebooks_checkers_speak_its_language(tmp_path, edition):
    """Opened in Colab (the kernel in /content, outside the book, SAE_BOOK_LANG unset), tutorial
    1's checker answers in the language of the notebook on the page."""
    notebook = REPO_ROOT / ("zh/notebooks" if edition == "zh" else "notebooks") / NOTEBOOKS[0].name
    driver = tmp_path / "language_driver.py"
    driver.write_text(LANGUAGE_DRIVER)
    workdir = tmp_path / "content"
    workdir.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "SAE_BOOK_REPO", "SAE_BOOK_LANG")
    }
    env.update(SAE_BOOK_DIR=str(REPO_ROOT), PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run(
        [sys.executable, str(driver), str(SETUP_CELL), str(notebook)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = "还没有作答" if edition == "zh" else "Not answered yet"
    assert expected in proc.stdout, proc.stdout[-2000:]
