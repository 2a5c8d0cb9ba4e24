"""A throwaway JupyterLab for tests/test_jupyterlab.py: its own folders, port, token and settings.

:class:`LabServer` copies ``notebooks/`` into a temporary book folder (with ``utils``, ``i18n`` and
``benchmarks`` linked in, so the setup cell finds ``utils/presets.py`` by walking up as it does in
the repository), points every Jupyter folder (config, data, runtime, settings, workspaces, IPython)
into the same temporary tree, and runs ``python -m jupyterlab`` of the running Python's environment
on 127.0.0.1 with a random token and a free port, in its own process group. Nothing of the user's
Jupyter set-up is read or written, and the repository's notebooks are never saved to.
Leaving the ``with`` block stops the server and every kernel it started (the whole process group).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).parent.parent
if str(REPO_ROOT) not in sys.path:  # the test imports utils (the explorer's error message)
    sys.path.insert(0, str(REPO_ROOT))

from utils.environment import OFFLINE_ENV  # noqa: E402

# Environment of the server and so of its kernels: the tiny preset, offline, as in `make test`.
KERNEL_ENV = {"SAE_BOOK_PRESET": "tiny", **OFFLINE_ENV}

# User settings of the test's JupyterLab (settings id -> values).
LAB_SETTINGS = {
    # No news or update checks: the test runs without network and wants no toasts over the page.
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    # Every cell in the DOM (the default windowing leaves cells out of view unrendered).
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    # The copy is thrown away anyway; no saving keeps the run free of save dialogs.
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    for plugin_id, values in LAB_SETTINGS.items():
        package, plugin = plugin_id.split(":")
        path = settings_dir / package / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def jupyterlab_installed() -> bool:
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return False
    return True


class LabServer:
    """JupyterLab on a temporary copy of ``notebooks/``; use as a context manager.

    Attributes once started: ``base_url`` (``http://127.0.0.1:<port>/``), ``token``, ``root`` (the
    temporary tree), ``notebooks_dir`` (the copy the server serves), ``log_path`` (its output).
    """

    def __init__(self, start_timeout_s: float = 45.0):
        self.start_timeout_s = start_timeout_s
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/"
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.process: subprocess.Popen | None = None

    # --- set-up -------------------------------------------------------------------------------

    def _prepare(self) -> dict[str, str]:
        self._tmp = tempfile.TemporaryDirectory(prefix="sae-book-lab-")
        root = self.root = Path(self._tmp.name)
        book = root / "book"
        shutil.copytree(
            REPO_ROOT / "notebooks",
            book / "notebooks",
            ignore=shutil.ignore_patterns(
                ".ipynb_checkpoints", "__pycache__", "*_saes", "checkpoints"
            ),
        )
        # what a reader's checkout has beside notebooks/: utils (and i18n, whose one rule for
        # Chinese text utils.language reads), and benchmarks/results, which pages read
        for name in ("utils", "i18n", "benchmarks"):
            (book / name).symlink_to(REPO_ROOT / name, target_is_directory=True)
        self.notebooks_dir = book / "notebooks"
        jupyter = root / "jupyter"
        settings = jupyter / "config" / "lab" / "user-settings"
        _write_settings(settings)
        env = dict(os.environ)
        env.update(KERNEL_ENV)
        env.update(
            JUPYTER_CONFIG_DIR=str(jupyter / "config"),
            JUPYTER_DATA_DIR=str(jupyter / "data"),
            JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "config" / "lab" / "workspaces"),
            IPYTHONDIR=str(jupyter / "ipython"),
            JUPYTER_PLATFORM_DIRS="0",
        )
        env.pop("JUPYTER_PATH", None)  # no extra kernels or extensions from the user's set-up
        env.pop("JUPYTER_CONFIG_PATH", None)
        self.log_path = root / "server.log"
        return env

    def browser_env(self) -> dict[str, str]:
        """The environment for the browser: its caches and settings in the temporary tree too."""
        env = dict(os.environ)
        env.update(
            XDG_CONFIG_HOME=str(self.root / "browser" / "config"),
            XDG_CACHE_HOME=str(self.root / "browser" / "cache"),
        )
        return env

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.notebooks_dir}",
            "--ServerApp.open_browser=False",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",  # no queries to PyPI
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the test reads the model
        ] + (["--allow-root"] if os.geteuid() == 0 else [])  # CI containers run as root

    def log_tail(self, n_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "(no server log)"

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        url = f"{self.base_url}api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with code {self.process.returncode} while starting:\n"
                    + self.log_tail()
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(
            f"JupyterLab did not answer on {self.base_url} within {self.start_timeout_s:.0f} s:\n"
            + self.log_tail()
        )

    def url(self, path: str) -> str:
        """An address on the server with the token; ``path`` is relative (``lab/tree/x.ipynb``)."""
        return f"{self.base_url}{path}?token={self.token}"

    # --- context manager ---------------------------------------------------------------------

    def __enter__(self) -> LabServer:
        env = self._prepare()
        try:
            with open(self.log_path, "wb") as log:
                self.process = subprocess.Popen(
                    self.command(),
                    cwd=self.notebooks_dir,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own process group, signalled as a whole in stop()
                )
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        """Stop the server and its kernels, then delete the temporary tree; idempotent.

        SIGTERM to the server's process group (the server then shuts its kernels down), SIGKILL
        after 10 s. Kernels run in sessions of their own, so any still alive 5 s after the server
        are killed one by one (psutil checks that a pid still names the same process).
        """
        import psutil

        process, self.process = self.process, None
        if process is not None:
            try:
                children = psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            self._signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            self._signal_group(process.pid, signal.SIGKILL)  # anything left in the group
            _, alive = psutil.wait_procs(children, timeout=5)
            for child in alive:
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(alive, timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
