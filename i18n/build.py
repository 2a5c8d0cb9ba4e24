"""Build both editions of the book into one site (``make book`` runs ``python -m i18n.build``).

1. English: ``jupyter-book build . -W -n --keep-going`` into ``_build/html`` (notebooks execute
   through the jupyter-cache in ``_build/.jupyter_cache``).
2. Chinese: ``jupyter-book build zh -W -n --keep-going --path-output _build/zh``, then its HTML
   is copied to ``_build/html/zh``. zh/_config.yml shares the English execution cache, so Chinese
   notebooks whose code is their English twin's (tests/test_translations.py) are not run again.

Each build's time is printed; a failing build stops here with its exit status.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "_build"
HTML_DIR = BUILD_DIR / "html"
ZH_OUTPUT = BUILD_DIR / "zh"  # --path-output of the Chinese build
ZH_HTML = ZH_OUTPUT / "_build" / "html"
FLAGS = ["-W", "-n", "--keep-going"]


def jupyter_book() -> str:
    """The jupyter-book of the running Python's environment."""
    found = Path(sys.executable).parent / "jupyter-book"
    return str(found) if found.exists() else "jupyter-book"


def commands() -> dict[str, list[str]]:
    jb = jupyter_book()
    return {
        "en": [jb, "build", ".", *FLAGS],
        "zh": [jb, "build", "zh", *FLAGS, "--path-output", str(ZH_OUTPUT.relative_to(REPO_ROOT))],
    }


def merge_chinese_site() -> None:
    """Put the Chinese site at _build/html/zh (replacing an older copy)."""
    target = HTML_DIR / "zh"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(ZH_HTML, target)


def build(run=subprocess.run, **kwargs) -> int:
    """Build English then Chinese; return the first non-zero exit status, or 0."""
    for name, command in commands().items():
        print(f"== {name}: {' '.join(command)}", flush=True)
        start = time.perf_counter()
        status = run(command, cwd=REPO_ROOT, **kwargs).returncode
        print(f"== {name}: exit {status} after {time.perf_counter() - start:.1f} s", flush=True)
        if status != 0:
            return status
    merge_chinese_site()
    print(f"== English: {HTML_DIR / 'index.html'}\n== 中文: {HTML_DIR / 'zh' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(build())
