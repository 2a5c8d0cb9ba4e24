"""utils/language.py: which edition runs, and the Teaching page's table in each language."""

import importlib.machinery
import json
import sys
import types
from pathlib import Path

import pytest

from utils import language, timings
from utils.language import book_language, choose, notebook_language

BOOK = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_language_env(monkeypatch):
    monkeypatch.delenv("SAE_BOOK_LANG", raising=False)
    monkeypatch.setattr(language, "_colab_answer", [])  # each test asks "Colab" afresh


@pytest.mark.parametrize(
    ("folder", "expected"),
    [(".", "en"), ("notebooks", "en"), ("zh", "zh"), ("zh/notebooks", "zh")],
)
def test_the_kernels_folder_decides(folder, expected):
    assert book_language(BOOK / folder) == expected


def test_outside_the_book_is_english(tmp_path):
    (tmp_path / "zh").mkdir()
    assert book_language(tmp_path / "zh") == "en"  # a zh/ folder that is not the book's


def test_the_environment_wins(monkeypatch):
    monkeypatch.setenv("SAE_BOOK_LANG", "ZH")
    assert book_language(BOOK / "notebooks") == "zh"
    assert choose("Correct", "正确") == "正确"
    monkeypatch.setenv("SAE_BOOK_LANG", "en")
    assert book_language(BOOK / "zh" / "notebooks") == "en"


def test_an_unknown_language_says_what_is_accepted(monkeypatch):
    monkeypatch.setenv("SAE_BOOK_LANG", "fr")
    with pytest.raises(ValueError, match=r"'fr'.*en, zh"):
        book_language()
    with pytest.raises(ValueError, match="one of en, zh"):
        choose("a", "b", "de")


def _row(notebook, preset, seconds, scale="1"):
    return {
        "notebook": notebook,
        "preset": preset,
        "seconds": seconds,
        "load_1min_before": "0.5",
        "cpu_seconds": "50",
        "peak_rss_mib": "2048",
        "status": "ok",
        "scale": scale,
        "cpus": "2",
        "measured_at": "2026-12-02T10:00:00",
        "weights": "bundled",
    }


def test_the_teaching_table_speaks_the_pages_language():
    rows = [_row("01_a", "tiny", "75.0"), _row("03_c", "gpt2-small", "600", scale="0.01")]
    english = timings.times_table(rows, ["01_a", "03_c"], language="en")
    chinese = timings.times_table(rows, ["01_a", "03_c"], language="zh")
    assert english.loc["01_a", ("tiny", "wall time (load)")] == "1 min 15 s (load 0.5)"
    assert chinese.loc["01_a", ("tiny", "墙钟时间（负载）")] == "1 min 15 s (负载 0.5)"
    assert chinese.loc["03_c", ("gpt2-small", "墙钟时间（负载）")] == "仅缩小规模运行（x0.01）"
    assert chinese.loc["01_a", ("tiny", "内存峰值")] == "2.0 GB"
    assert "2 个 CPU 核心" in timings.measured_on(rows, language="zh")
    assert "2 CPU cores" in timings.measured_on(rows, language="en")


def _fake_colab(monkeypatch, reply):
    """A stand-in ``google.colab`` whose page answers ``get_ipynb`` with ``reply`` (an exception
    is raised instead); returns the list of requests it saw."""
    asked = []

    def blocking_request(request_type, request="", timeout_sec=5):
        asked.append((request_type, timeout_sec))
        if isinstance(reply, Exception):
            raise reply
        return reply

    colab = types.ModuleType("google.colab")
    colab.__spec__ = importlib.machinery.ModuleSpec("google.colab", None)
    colab._message = types.SimpleNamespace(blocking_request=blocking_request)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", colab._message)
    return asked


def _ipynb(path: str) -> dict:
    return json.loads((BOOK / path).read_text(encoding="utf-8"))


NB1 = "notebooks/01_analysing_a_pretrained_sae.ipynb"


def test_in_colab_the_open_chinese_notebook_decides(monkeypatch, tmp_path):
    """Colab starts the kernel in /content (outside the book): the notebook the page shows says
    which edition runs, asked once."""
    asked = _fake_colab(monkeypatch, {"ipynb": _ipynb("zh/" + NB1)})
    assert book_language(tmp_path) == "zh"
    assert choose("Correct", "正确") == "正确"
    assert asked == [("get_ipynb", language.COLAB_TIMEOUT)]


def test_in_colab_the_english_notebook_stays_english(monkeypatch):
    _fake_colab(monkeypatch, {"ipynb": _ipynb(NB1)})
    assert book_language(BOOK / "zh" / "notebooks") == "en"  # the page wins over the folder


def test_in_colab_the_environment_still_wins(monkeypatch):
    asked = _fake_colab(monkeypatch, {"ipynb": _ipynb("zh/" + NB1)})
    monkeypatch.setenv("SAE_BOOK_LANG", "en")
    assert book_language() == "en"
    assert asked == []


def test_in_colab_without_an_answer_the_folder_decides(monkeypatch, tmp_path):
    _fake_colab(monkeypatch, TimeoutError("no reply"))
    assert book_language(tmp_path) == "en"
    assert book_language(BOOK / "zh") == "zh"


@pytest.mark.parametrize("path", [NB1, "zh/" + NB1])
def test_a_notebook_is_chinese_by_its_records_or_its_prose(path):
    notebook = _ipynb(path)
    expected = "zh" if path.startswith("zh/") else "en"
    assert notebook_language(notebook) == expected
    for cell in notebook["cells"]:  # a platform that drops cell metadata: the prose decides
        cell["metadata"] = {}
    assert notebook_language(notebook) == expected
    markdown = [c for c in notebook["cells"] if c["cell_type"] == "markdown"]
    for cell in markdown[: len(markdown) // 2 + 1]:  # most of its prose English: English
        cell["source"] = "English prose."
    assert notebook_language(notebook) == "en"
    assert notebook_language({"cells": []}) == "en"
