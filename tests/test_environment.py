"""utils/environment.py: the offline variables, the HF_HUB_OFFLINE rule, the book's own variables
and the book's root, each checked against values written out by hand (and the shell copies of the
offline variables against the one list)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from random_models import REPO

from utils import environment as env
from utils.loading import HubUnavailableError, _from_the_hub
from utils.presets import get_preset


def test_offline_env_is_the_three_variables():
    assert env.OFFLINE_ENV == {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "WANDB_MODE": "disabled",
    }


def test_offline_env_overrides_the_base_and_extra_overrides_it():
    base = {"HF_HUB_OFFLINE": "0", "PATH": "/bin"}
    out = env.offline_env(base, SAE_BOOK_PRESET="tiny", WANDB_MODE="online")
    assert out == {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "WANDB_MODE": "online",
        "PATH": "/bin",
        "SAE_BOOK_PRESET": "tiny",
    }
    assert base == {"HF_HUB_OFFLINE": "0", "PATH": "/bin"}  # a copy, the base untouched


def test_offline_env_copies_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("SAE_BOOK_TEST_MARK", "x")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    out = env.offline_env()
    assert out["SAE_BOOK_TEST_MARK"] == "x" and out["HF_DATASETS_OFFLINE"] == "1"


def test_set_offline_defaults_keeps_what_the_caller_chose():
    environ = {"WANDB_MODE": "online"}
    env.set_offline_defaults(environ)
    assert environ == {"WANDB_MODE": "online", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def test_the_shell_copies_set_the_same_variables():
    """The Makefile (tiny preset) and CI set each offline variable to the same value."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    run_env = " ".join(re.findall(r"^RUN_ENV \+?:?= (.*)$", makefile, flags=re.M))
    ci = re.search(r"^export (.*)$", (REPO / ".ci" / "run").read_text(), flags=re.M)
    assert ci, ".ci/run has no export line"
    for where, line in (("Makefile RUN_ENV", run_env), (".ci/run", ci.group(1))):
        found = dict(re.findall(r"(\w+)=(\S+)", line))
        for name, value in env.OFFLINE_ENV.items():
            assert found.get(name) == value, f"{where} sets {name}={found.get(name)}, not {value}"


@pytest.mark.parametrize(
    "hf_hub_offline, transformers_offline, offline",
    [
        ("1", None, True),
        ("true", None, True),
        ("TRUE", None, True),
        ("Yes", None, True),
        ("on", None, True),
        ("0", None, False),
        ("off", None, False),  # loading.py once read this as offline; huggingface_hub does not
        ("false", None, False),
        ("no", None, False),
        ("2", None, False),
        (" 1", None, False),  # huggingface_hub does not trim
        (None, None, False),
        (None, "1", True),  # TRANSFORMERS_OFFLINE counts when HF_HUB_OFFLINE is unset...
        ("", "yes", True),  # ...or empty
        ("0", "1", False),  # ...and not when HF_HUB_OFFLINE is set
    ],
)
def test_hub_offline_by_hand(hf_hub_offline, transformers_offline, offline):
    environ = {}
    if hf_hub_offline is not None:
        environ["HF_HUB_OFFLINE"] = hf_hub_offline
    if transformers_offline is not None:
        environ["TRANSFORMERS_OFFLINE"] = transformers_offline
    assert env.hub_offline(environ) is offline


def test_true_values_are_huggingface_hubs():
    from huggingface_hub.constants import ENV_VARS_TRUE_VALUES

    assert env.TRUE_VALUES == set(ENV_VARS_TRUE_VALUES)


@pytest.mark.parametrize("value, offline", [("1", True), ("off", False)])
def test_a_failed_download_names_the_cause_by_the_same_rule(monkeypatch, value, offline):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    monkeypatch.setattr("utils.loading.hub_endpoint", lambda: "https://hub.example")
    with pytest.raises(HubUnavailableError) as raised, _from_the_hub(get_preset("tiny"), "x"):
        raise ConnectionError("no route")
    message = str(raised.value)
    assert ("HF_HUB_OFFLINE is set" in message) is offline
    assert ("https://hub.example could not be reached" in message) is not offline


@pytest.mark.parametrize(
    "written, read",
    [(" Tiny ", "tiny"), ("ZH\n", "zh"), ("gpt2-small", "gpt2-small"), ("", ""), (None, "")],
)
def test_book_setting_trims_and_lowers(written, read):
    environ = {} if written is None else {"SAE_BOOK_X": written}
    assert env.book_setting("SAE_BOOK_X", environ) == read


def test_book_root_from_inside_and_outside(tmp_path):
    assert env.book_root(REPO / "notebooks") == REPO.resolve()
    assert env.book_root(REPO / "utils" / "tiny") == REPO.resolve()
    assert env.book_root(REPO) == REPO.resolve()
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert env.book_root(tmp_path / "a" / "b") is None
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "presets.py").write_text("")
    assert env.book_root(tmp_path / "a" / "b") == tmp_path.resolve()


def test_the_setup_cell_looks_for_the_same_marker():
    setup = (REPO / "notebooks" / "_setup_cell.py").read_text(encoding="utf-8")
    parts = " / ".join(f'"{part}"' for part in env.BOOK_ROOT_MARKER.parts)
    assert f"(p / {parts}).is_file()" in setup, "the setup cell finds the root by another marker"
    assert Path("utils", "presets.py") == env.BOOK_ROOT_MARKER


def test_the_defaults_read_and_write_os_environ(monkeypatch):
    monkeypatch.setenv("SAE_BOOK_X", " Warn ")
    assert env.book_setting("SAE_BOOK_X") == "warn"
    for name in env.OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "online")
    env.set_offline_defaults()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["WANDB_MODE"] == "online"
    monkeypatch.setenv("HF_HUB_OFFLINE", "yes")
    assert env.hub_offline()
