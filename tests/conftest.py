"""Fixtures shared by the unit tests: a small random model, a random SAE and a feature sample.

Sizes unlike GPT-2's (d_model 48, d_sae 200), fixed seeds, no downloads; builders in
``random_models.py``. ``import utils`` works because ``pyproject.toml`` puts the repository on
pytest's ``pythonpath``.

And the website's session fixtures, shared by the tests/test_site_*.py files that open it (the
book built once, served once, each page loaded once): ``site``, ``server``, ``browser``,
``visit``; what they run lives in ``site_helpers.py`` and ``site_browser.py``, imported only when
a test asks for them.
"""

from __future__ import annotations

import locale
import os

import pytest
from random_models import (
    SAMPLE_CONTEXT,
    SAMPLE_TEXTS,
    TRAINING_TEXTS,
    build_model,
    build_sae,
    build_tokenizer,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A random 2-layer ``HookedSAETransformer`` (d_model 48) with a 300-token BPE tokenizer."""
    return build_model(build_tokenizer(tmp_path_factory.mktemp("tokenizer")))


@pytest.fixture(scope="module")
def sae():
    """A random ``StandardSAE`` (d_in 48, d_sae 200) on ``blocks.1.hook_resid_pre``."""
    return build_sae()


@pytest.fixture(scope="module")
def sample(model, sae):
    """``collect_feature_stats`` of ``sae`` over ``SAMPLE_TEXTS`` (contexts of 24 tokens)."""
    from utils import features as F

    return F.collect_feature_stats(
        model, sae, SAMPLE_TEXTS, context_size=SAMPLE_CONTEXT, batch_size=2, progress=False
    )


@pytest.fixture(scope="module")
def dataset():
    """A ``datasets.Dataset`` of short Python snippets (a ``text`` column) to train on."""
    from datasets import Dataset

    return Dataset.from_dict({"text": TRAINING_TEXTS})


@pytest.fixture
def clean_env(monkeypatch):
    """``monkeypatch`` after removing every ``SAE_BOOK_*`` variable and the Hub's offline flags
    (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``), so a test sees the book's defaults whatever
    the shell set (``make test`` sets some of them)."""
    for name in list(os.environ):
        if name.startswith("SAE_BOOK_") or name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            monkeypatch.delenv(name)
    return monkeypatch


# ---- the built website (tests/test_site_*.py) ----------------------------------------------------


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Checked before the (slow) build, so a machine without a browser skips at once."""
    from site_helpers import require_chromium

    return require_chromium("Browser test")


@pytest.fixture(scope="session")
def site():
    """_build/html, built now if it is missing or older than its sources."""
    from site_helpers import HTML_DIR, ensure_built

    try:
        message = ensure_built()
    except RuntimeError as error:
        pytest.fail(f"The book does not build:\n{error}", pytrace=False)
    print(message)
    return HTML_DIR


@pytest.fixture(scope="session")
def server(site):
    from site_helpers import SiteServer

    with SiteServer(site) as running:
        yield running


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright
    from site_helpers import CHROMIUM_ARGS

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def visit(browser, server):
    """visit(docname) -> Visit: loads each page once per session, in a fresh browser context
    (site_browser.py)."""
    from site_browser import page_visitor

    return page_visitor(browser, server)


@pytest.fixture
def ascii_locale():
    """A machine whose locale's encoding is not UTF-8 (Windows in China uses GBK): LC_CTYPE "C",
    ASCII, so a file read or written without encoding="utf-8" fails on Chinese text (where
    Python runs in UTF-8 mode, PYTHONUTF8=1, open() ignores the locale and this changes nothing)."""
    old = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, old)
