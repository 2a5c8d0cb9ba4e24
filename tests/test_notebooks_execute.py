"""Every tutorial notebook runs top to bottom on the tiny preset: once, in the site's build.

`make book` executes each notebook through jupyter-cache with ``raise_on_error`` (_config.yml), so
any failing cell (an error, or one of the notebook's own asserts) fails the build, and the build
log shows the cell's traceback (``nb_execution_show_tb``). This test builds the site when it is
stale, as the browser tests do (tests/site_helpers.py), then checks that the execution cache holds
a successful run of each notebook's *current* code. The cache is cleared whenever utils/ or
benchmarks/results/ change (the notebooks read both), so a cached run is one of today's code.

Running the notebooks a second time through nbmake would double this part of `make test` for
nothing. nbmake still runs every notebook in `make test-tiny` (CI's second Python runs the
Chinese twins, whose code is the English code token for token; it builds no site), and tests/test_gpt2_standin_notebooks.py runs tutorials 1 to 3 on the
gpt2-small stand-in.
"""

from __future__ import annotations

import nbformat
import pytest
from site_helpers import EXECUTION_CACHE, REPO_ROOT, ensure_built

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def site_build() -> str:
    """What building (or reusing) the site did, or why it failed: each test reports it."""
    try:
        return ensure_built()
    except RuntimeError as error:  # the tests below say which notebooks have no good run
        return f"The site build failed:\n{error}"


def cached_execution(path):
    """The execution cache's record of a successful run of ``path``'s current code, or None."""
    if not EXECUTION_CACHE.is_dir():
        return None
    from jupyter_cache import get_cache

    try:
        return get_cache(EXECUTION_CACHE).match_cache_notebook(nbformat.read(path, as_version=4))
    except KeyError:  # no run of this code succeeded
        return None


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_in_the_site_build(path, site_build):
    record = cached_execution(path)
    assert record is not None, (
        f"{path.name} has no successful execution of its current code in {EXECUTION_CACHE}.\n"
        f"{site_build}"
    )
    seconds = record.data.get("execution_seconds")
    took = f"{seconds:.1f} s" if isinstance(seconds, (int, float)) else "an unrecorded time"
    print(f"{path.name}: executed in {took} ({site_build})")
