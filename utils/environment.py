"""The environment the book reads and sets, each rule in one place.

- :data:`OFFLINE_ENV`: the variables that keep a run off the network (Hugging Face Hub and
  datasets, Weights & Biases). Every Python script, test helper and build that runs offline
  takes them from here (:func:`offline_env`, :func:`set_offline_defaults`); the two shell copies,
  the Makefile's ``RUN_ENV`` and ``.ci/run``, are checked against this one by
  ``tests/test_environment.py``.
- :func:`hub_offline`: whether ``HF_HUB_OFFLINE`` asks for offline mode, read as huggingface_hub
  reads it.
- :func:`book_setting`: the book's own variables (``SAE_BOOK_PRESET``, ``SAE_BOOK_SCALE``,
  ``SAE_BOOK_LANG``, ``SAE_BOOK_QUALITY_CHECKS``), all read the same way.
- :func:`book_root`: the book's folder, found from a folder inside it by the same marker as the
  notebooks' setup cell (``notebooks/_setup_cell.py``), :data:`BOOK_ROOT_MARKER`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

#: What an offline run sets: the Hub and datasets read only their local caches (transformers
#: follows ``HF_HUB_OFFLINE``, so ``TRANSFORMERS_OFFLINE``, its older name, adds nothing), and
#: Weights & Biases records nothing.
OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
}

#: The values of ``HF_HUB_OFFLINE`` that mean "offline", in upper case, as huggingface_hub's
#: ``constants.ENV_VARS_TRUE_VALUES``: anything else (``0``, ``off``, ``false``, empty) is online.
TRUE_VALUES = frozenset({"1", "ON", "YES", "TRUE"})

#: A file only the book's root folder holds, relative to it (the setup cell looks for the same).
BOOK_ROOT_MARKER = Path("utils", "presets.py")


def offline_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with :data:`OFFLINE_ENV` set over it, then
    ``extra`` (e.g. ``SAE_BOOK_PRESET="tiny"``): the environment for an offline subprocess."""
    env = dict(os.environ if base is None else base)
    env.update(OFFLINE_ENV)
    env.update(extra)
    return env


def set_offline_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set each variable of :data:`OFFLINE_ENV` in ``environ`` (default ``os.environ``) that is not
    set already: a script runs offline unless its caller chose otherwise. Call it before
    huggingface_hub or datasets is imported (they read these variables at import)."""
    environ = os.environ if environ is None else environ
    for name, value in OFFLINE_ENV.items():
        environ.setdefault(name, value)


def hub_offline(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``HF_HUB_OFFLINE`` (or, when it is unset or empty, ``TRANSFORMERS_OFFLINE``) asks
    for offline mode: ``1``, ``on``, ``yes`` or ``true`` in any case, exactly as huggingface_hub
    reads it (so ``off`` and `` 1`` are online to both). Read when called, not at import, so a
    notebook or test that sets it later is heard."""
    environ = os.environ if environ is None else environ
    value = environ.get("HF_HUB_OFFLINE") or environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in TRUE_VALUES


def book_setting(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The book's own environment variable ``name``, trimmed and in lower case (``""`` when unset),
    so ``" Tiny "`` and ``tiny`` mean the same."""
    environ = os.environ if environ is None else environ
    return environ.get(name, "").strip().lower()


def book_root(start: Path) -> Path | None:
    """The nearest folder from ``start`` upwards that holds :data:`BOOK_ROOT_MARKER`, else None."""
    start = Path(start).resolve()
    return next((p for p in (start, *start.parents) if (p / BOOK_ROOT_MARKER).is_file()), None)
