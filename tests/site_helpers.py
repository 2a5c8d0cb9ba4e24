"""Helpers for the tests of the built website (tests/test_site_*.py): build, serve, inspect.

The site has two editions: English pages at _build/html/<docname>.html and their Chinese twins at
_build/html/zh/<docname>.html, built from zh/ (`make book`, i18n/build.py). A Chinese page's
docname here is "zh/<docname>", which is also its source's path (zh/<docname>.ipynb or .md).

Nothing here needs a browser: the table of contents, the build (the same command as ``make book``),
a static file server on localhost, the expected outputs of an executed notebook, page weights and
link targets. The browser part lives in site_browser.py and the session fixtures in conftest.py.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from i18n.translations import toc_files

REPO_ROOT = Path(__file__).parent.parent
BUILD_DIR = REPO_ROOT / "_build"
HTML_DIR = BUILD_DIR / "html"
EXECUTED_DIR = BUILD_DIR / "jupyter_execute"
SCREENSHOT_DIR = BUILD_DIR / "screenshots"
PAGE_SIZES_JSON = BUILD_DIR / "page_sizes.json"
# Written after a successful build (by the test fixture and by `make book`): the site in
# _build/html is reused only when this stamp is newer than every source of the site.
BUILD_STAMP = BUILD_DIR / ".site-build-ok"

# What a reader downloads for one page, with the page's own images and frames, but not the files
# every page shares (theme, plotly.min.js, search index), which the browser caches.
PAGE_BUDGET_BYTES = 3 * 1024 * 1024

PLOTLY_MIME = "application/vnd.plotly.v1+json"
# Cell tags with which Jupyter Book leaves a cell's outputs off the page.
HIDDEN_OUTPUT_TAGS = {"remove-output", "remove_output", "remove-cell", "remove_cell"}

# Chromium: the first of these that exists. SAE_BOOK_CHROMIUM names another binary.
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    named = os.environ.get("SAE_BOOK_CHROMIUM")
    if named:
        return named if Path(named).is_file() else shutil.which(named)
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium(what: str) -> str:
    """The Chromium for a browser test called ``what``; without one (or without Python's
    playwright) the test is skipped, saying what to install, or fails under CI=true, because CI
    must run it (.ci/run installs chromium)."""
    import pytest

    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the Python package `playwright` is not installed"
    else:
        path = find_chromium()
        if path is not None:
            return path
        names = os.environ.get("SAE_BOOK_CHROMIUM") or ", ".join(CHROMIUM_CANDIDATES)
        reason = f"no Chromium found ({names})"
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{what} cannot run: {reason}. CI=true, and CI must run it (.ci/run installs chromium)."
        )
    pytest.skip(
        f"{what} skipped: {reason}; install Debian's `chromium` (or set SAE_BOOK_CHROMIUM) to run it."
    )


# --- the table of contents -------------------------------------------------------------------------


ZH = "zh"


def load_config(docname: str = "") -> dict:
    """The _config.yml of the edition ``docname`` belongs to (English by default)."""
    path = REPO_ROOT / ZH / "_config.yml" if is_chinese(docname) else REPO_ROOT / "_config.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def is_chinese(docname: str) -> bool:
    return docname.startswith(f"{ZH}/")


def twin_of(docname: str) -> str:
    """The same page in the other edition: notebooks/01_x <-> zh/notebooks/01_x."""
    return docname[len(ZH) + 1 :] if is_chinese(docname) else f"{ZH}/{docname}"


def toc_docnames(edition: str = "en") -> list[str]:
    """Every page of an edition's table of contents, root first, as docnames (no suffix);
    Chinese pages as "zh/<docname>"."""
    if edition == ZH:
        return [f"{ZH}/{name}" for name in toc_files(REPO_ROOT / ZH / "_toc.yml")]
    return toc_files(REPO_ROOT / "_toc.yml")


def all_docnames() -> list[str]:
    """The pages of both editions: English, then Chinese."""
    return toc_docnames() + toc_docnames(ZH)


def source_of(docname: str) -> Path:
    """The source file of a page (.ipynb or .md)."""
    for suffix in (".ipynb", ".md"):
        path = REPO_ROOT / f"{docname}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"_toc.yml names {docname!r}, but neither {docname}.ipynb nor .md exists"
    )


def tutorial_docnames(edition: str | None = None) -> list[str]:
    """The pages made from notebooks, of one edition or (None) of both."""
    names = all_docnames() if edition is None else toc_docnames(edition)
    return [d for d in names if (REPO_ROOT / f"{d}.ipynb").is_file()]


def page_slug(docname: str) -> str:
    """A file name for a page (screenshots): notebooks/01_x -> notebooks__01_x."""
    return docname.replace("/", "__")


# --- building ----------------------------------------------------------------------------------------


# What the notebooks read when they run, besides their own code. jupyter-cache keys executed
# notebooks on their code alone, so a change here must clear it (the Makefile's `book` does too).
EXECUTION_INPUTS = ("utils", "benchmarks/results")
EXECUTION_CACHE = BUILD_DIR / ".jupyter_cache"
# ...except what no page reads: `make mutation`'s summary (the Makefile skips it too).
NOT_READ = {"mutation.txt"}


def _files_under(folder: str) -> list[Path]:
    return [
        p
        for p in (REPO_ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.name not in NOT_READ
    ]


def site_sources() -> list[Path]:
    """The files whose change makes _build/html stale."""
    files = [REPO_ROOT / "_config.yml", REPO_ROOT / "_toc.yml"]
    files += [REPO_ROOT / ZH / "_config.yml", REPO_ROOT / ZH / "_toc.yml"]
    files += [REPO_ROOT / "i18n" / "glossary.yml", REPO_ROOT / "i18n" / "build.py"]
    files += [path for path in map(_source_or_none, all_docnames()) if path is not None]
    for folder in ("_static", "_ext", *EXECUTION_INPUTS):
        files += _files_under(folder)
    return files


def _source_or_none(docname: str) -> Path | None:
    try:
        return source_of(docname)
    except FileNotFoundError:  # a missing page fails the build, which says so
        return None


def execution_inputs_changed(stale: list[Path]) -> bool:
    """True when executed notebooks in the cache may predate ``utils/`` (or there is no record)."""
    inputs = [REPO_ROOT / folder for folder in EXECUTION_INPUTS]
    return not BUILD_STAMP.is_file() or any(
        p.is_relative_to(folder) for p in stale for folder in inputs
    )


def stale_sources() -> list[Path]:
    """Sources newer than the last successful build (all of them when there is none)."""
    if not BUILD_STAMP.is_file() or not (HTML_DIR / "index.html").is_file():
        return site_sources()
    built = BUILD_STAMP.stat().st_mtime
    return [p for p in site_sources() if p.stat().st_mtime > built]


def build_env() -> dict[str, str]:
    """The environment of `make book` (tiny preset, offline) unless the caller chose a preset."""
    env = dict(os.environ)
    env.setdefault("SAE_BOOK_PRESET", "tiny")
    env.setdefault("WANDB_MODE", "disabled")
    if env["SAE_BOOK_PRESET"] == "tiny":
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("HF_DATASETS_OFFLINE", "1")
    return env


def build_command() -> list[str]:
    """`make book`'s command: both editions (i18n/build.py), with the running Python."""
    return [sys.executable, "-m", "i18n.build"]


def ensure_built() -> str:
    """Build the site unless _build/html is up to date; return what was done, for the log.

    Raises RuntimeError with the end of the build log when the build fails.
    """
    stale = stale_sources()
    if not stale:
        return "reused _build/html (up to date with its sources)"
    if execution_inputs_changed(stale):
        shutil.rmtree(EXECUTION_CACHE, ignore_errors=True)  # execute the notebooks again
    BUILD_STAMP.unlink(missing_ok=True)
    proc = subprocess.run(
        build_command(), cwd=REPO_ROOT, env=build_env(), capture_output=True, text=True
    )
    if proc.returncode != 0:
        log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
        warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
        raise RuntimeError(
            f"`{' '.join(build_command())}` failed (exit {proc.returncode}).\n"
            + ("Warnings and errors:\n" + "\n".join(warnings[:40]) + "\n" if warnings else "")
            + "End of the log:\n"
            + log[-4000:]
        )
    BUILD_DIR.mkdir(exist_ok=True)
    BUILD_STAMP.touch()
    names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in stale[:5])
    return f"built _build/html (changed: {names}{', ...' if len(stale) > 5 else ''})"


# --- serving -----------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # `format`: the base class names it so
        pass


class SiteServer:
    """_build/html on http://127.0.0.1:<free port>/, in a thread."""

    def __init__(self, root: Path):
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def __enter__(self) -> SiteServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def is_local_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost")


# --- what a notebook page must show ------------------------------------------------------------------


@dataclass
class ExpectedOutputs:
    """What the executed notebook says its page shows."""

    plotly_figures: int = 0
    circuitsvis_views: int = 0
    html_outputs: int = 0  # text/html outputs shown as HTML (figures, views, tables, ...)
    tables: int = 0  # HTML outputs holding a <table> (pandas DataFrames and Stylers)
    figures_without_html: list[int] = field(default_factory=list)  # cells with JSON-only figures


def executed_notebook_outputs(docname: str) -> dict:
    """The notebook with the outputs its page shows.

    With `execute_notebooks: cache` the outputs live in the jupyter-cache of the build
    (_build/.jupyter_cache; _build/jupyter_execute then holds the notebook without them);
    with `force` or `auto` they are in _build/jupyter_execute.
    """
    import nbformat

    source = REPO_ROOT / f"{docname}.ipynb"
    cache_dir = EXECUTION_CACHE
    if cache_dir.is_dir():
        from jupyter_cache import get_cache

        try:
            _, merged = get_cache(cache_dir).merge_match_into_notebook(
                nbformat.read(source, as_version=4)
            )
            return merged
        except KeyError:
            pass  # not cached: executed in another mode
    executed = EXECUTED_DIR / f"{docname}.ipynb"
    if is_chinese(docname):  # the Chinese build's own folder (i18n/build.py)
        executed = BUILD_DIR / ZH / "_build" / "jupyter_execute" / f"{twin_of(docname)}.ipynb"
    if not executed.is_file():
        raise FileNotFoundError(
            f"No executed copy of {source.name}: neither in {cache_dir} nor at {executed}"
        )
    return json.loads(executed.read_text())


def html_mime_priority(nb: dict) -> list[str]:
    """The mime types MyST-NB shows on HTML pages for this notebook, best first.

    MyST-NB's own list with the book's ``nb_mime_priority_overrides`` and the notebook's
    (``metadata.mystnb.mime_priority_overrides``), e.g. a notebook that shows the HTML snapshot
    of a widget instead of the widget.
    """
    from myst_nb.core.render import get_mime_priority

    overrides = list(
        load_config().get("sphinx", {}).get("config", {}).get("nb_mime_priority_overrides", [])
    )
    overrides += list(nb.get("metadata", {}).get("mystnb", {}).get("mime_priority_overrides", []))
    return get_mime_priority("html", [tuple(o) for o in overrides])


def expected_outputs(docname: str) -> ExpectedOutputs:
    nb = executed_notebook_outputs(docname)
    priority = html_mime_priority(nb)
    expected = ExpectedOutputs()
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        if HIDDEN_OUTPUT_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            shown = next((mime for mime in priority if mime in data), None)
            html = data.get("text/html")
            if PLOTLY_MIME in data and html is None:
                expected.figures_without_html.append(index)
            if shown != "text/html":
                continue  # shown as something else (a widget, an image, text)
            html = "".join(html) if isinstance(html, list) else html
            expected.html_outputs += 1
            expected.plotly_figures += html.count('class="plotly-graph-div"')
            expected.circuitsvis_views += len(re.findall(r'id="circuits-vis-', html))
            expected.tables += 1 if "<table" in html else 0
    return expected


# --- static HTML inspection (ids, references) ---------------------------------------------------------


class _PageParser(HTMLParser):
    """Collects element ids and the local files a page loads (not the pages it links to)."""

    LOADS = {
        "img": "src",
        "script": "src",
        "iframe": "src",
        "source": "src",
        "video": "src",
        "audio": "src",
        "embed": "src",
        "object": "data",
        "track": "src",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.loads: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        attr = self.LOADS.get(tag)
        if attr and attrs.get(attr):
            self.loads.add(attrs[attr])
        if tag == "link" and attrs.get("href"):
            rel = (attrs.get("rel") or "").lower()
            if "stylesheet" in rel or "icon" in rel or "preload" in rel:
                self.loads.add(attrs["href"])
        if tag == "img" and attrs.get("srcset"):
            for candidate in attrs["srcset"].split(","):
                if candidate.strip():
                    self.loads.add(candidate.split()[0])


@functools.cache
def parse_page(html_path: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(html_path.read_text(encoding="utf-8", errors="replace"))
    return parser


def local_target(page: Path, ref: str) -> Path | None:
    """The file under _build/html that a relative reference on `page` points at (None if external)."""
    parts = urlsplit(ref)
    if parts.scheme or parts.netloc or ref.startswith(("data:", "#", "javascript:", "mailto:")):
        return None
    if not parts.path:
        return None
    return (page.parent / unquote(parts.path)).resolve()


def html_pages() -> list[Path]:
    return sorted(HTML_DIR.rglob("*.html"))


@dataclass
class PageWeight:
    docname: str
    html_bytes: int
    own_files: dict[str, int]  # files only this page loads (images, frames), path -> bytes
    shared_files: dict[str, int]  # files shared with other pages (theme, plotly.min.js, ...)

    @property
    def own_bytes(self) -> int:
        return self.html_bytes + sum(self.own_files.values())

    @property
    def shared_bytes(self) -> int:
        return sum(self.shared_files.values())


def page_weights(docnames: list[str]) -> list[PageWeight]:
    """For each page: its HTML, the files only it loads, and the shared files it loads.

    A file is shared when it lives in a _static/ (the English site's or the Chinese site's, zh/)
    or more than one page of the whole site loads it.
    """
    html_root = HTML_DIR.resolve()
    loads_by_page: dict[Path, set[Path]] = {}
    for page in html_pages():
        targets = set()
        for ref in parse_page(page).loads:
            target = local_target(page, ref)
            if target is not None and target.is_file():
                targets.add(target)
        loads_by_page[page.resolve()] = targets
    users: dict[Path, int] = {}
    for targets in loads_by_page.values():
        for target in targets:
            users[target] = users.get(target, 0) + 1
    statics = {html_root / "_static", html_root / ZH / "_static"}
    weights = []
    for docname in docnames:
        page = (HTML_DIR / f"{docname}.html").resolve()
        own, shared = {}, {}
        for target in sorted(loads_by_page.get(page, ())):
            rel = target.relative_to(html_root).as_posix()
            size = target.stat().st_size
            if statics & set(target.parents) or users[target] > 1:
                shared[rel] = size
            else:
                own[rel] = size
        weights.append(PageWeight(docname, page.stat().st_size, own, shared))
    return weights


def format_size(n: int) -> str:
    return f"{n / 1024:,.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.2f} MiB"
