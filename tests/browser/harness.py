"""Helpers for the real-browser tests: a JupyterLab server and a Chromium driven by Playwright.

Tests import them relatively (``from .harness import open_notebook, run_all``); the fixtures
that wrap them (``lab``, ``playwright``, ``new_browser``) live in ``conftest.py``.

Playwright never downloads a browser here: every launch uses ``CHROMIUM`` (Debian's
package, ``/usr/bin/chromium`` unless the ``CHROMIUM`` environment variable says otherwise).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

#: User settings that keep first-run popups away: no "Would you like to get notified
#: about official Jupyter news?" toast, no update check, no extension manager (all three
#: would reach for the internet).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
}

#: Console errors JupyterLab itself logs in this offline setup, as narrow patterns; each
#: needs a comment saying where it comes from. Everything else is reported.
IGNORED_ERRORS: list[re.Pattern[str]] = []


@dataclass
class Lab:
    """A running JupyterLab: its base ``url``, ``token``, the ``env`` it (and so every
    kernel) was started with, and its ``log`` file."""

    url: str
    token: str
    env: dict[str, str]
    log: Path

    def tree_url(self, relpath: str) -> str:
        """URL opening ``relpath`` (relative to the repo root) in a fresh workspace."""
        return f"{self.url}/lab/tree/{quote(relpath)}?reset&token={self.token}"

    def api(self, path: str, method: str = "GET") -> object:
        """Call the server's REST API (``/api/...``); the decoded JSON, or None."""
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_command(port: int, token: str, home: Path) -> list[str]:
    """The ``jupyter lab`` command line: loopback, token, repo root, app exposed, no popups."""
    jupyter = Path(sys.executable).parent / "jupyter"  # the project's own .venv
    return [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={ROOT}", "--ServerApp.allow_root=True",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={home / 'settings'}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"]


def _write_settings(settings_dir: Path) -> None:
    """Write ``LAB_SETTINGS`` as JupyterLab user settings files."""
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_ready(lab: Lab, proc: subprocess.Popen, timeout: float) -> None:
    """Poll ``/api/status`` until it answers; a clear error with the log tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            lab.api("/api/status")
            return
        except OSError:
            time.sleep(0.25)
    tail = "\n".join(lab.log.read_text(errors="replace").splitlines()[-30:])
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not up in {timeout} s"
    raise RuntimeError(f"JupyterLab {state}; last lines of {lab.log}:\n{tail}")


def _stop(lab: Lab, proc: subprocess.Popen, timeout: float = 15) -> None:
    """Shut the kernels down through the API, then terminate the server (kill if it hangs)."""
    if proc.poll() is None:
        try:
            for kernel in lab.api("/api/kernels"):
                lab.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except OSError:
            pass  # the server is going anyway; its own shutdown stops the kernels too
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in the server's process group
    except ProcessLookupError:
        pass
    proc.wait(timeout)


@contextmanager
def start_lab(env: Mapping[str, str] | None = None, log: Path | None = None,
              timeout: float = 60) -> Iterator[Lab]:
    """Run JupyterLab on loopback for the ``with`` block; kernels inherit ``os.environ``
    plus ``env``.  Settings, workspaces, config and data dirs are temporary (nothing of
    the user's ``~/.jupyter`` or ``~/.local/share/jupyter`` is read or written).  The log goes to ``log``
    (default ``artifacts/browser/jupyter.log``)."""
    log = log or ARTIFACTS / "jupyter.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lab-") as tmp, open(log, "w") as log_file:
        home = Path(tmp)
        _write_settings(home / "settings")
        port, token = free_port(), secrets.token_hex(16)
        full_env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"),
                    "JUPYTER_DATA_DIR": str(home / "data"),
                    "JUPYTER_RUNTIME_DIR": str(home / "runtime"), **(env or {})}
        proc = subprocess.Popen(_lab_command(port, token, home), cwd=ROOT, env=full_env,
                                stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
        lab = Lab(f"http://127.0.0.1:{port}", token, full_env, log)
        try:
            _wait_ready(lab, proc, timeout)
            yield lab
        finally:
            _stop(lab, proc)


def launch_browser(playwright, video_file: Path | None = None, grant_camera: bool = False):
    """A headless Chromium (``CHROMIUM``) with a fake camera.

    ``video_file`` (a .y4m or .mjpeg) is what the fake camera shows; without it Chromium's
    own test pattern.  ``grant_camera`` answers the permission prompt with "allow"; without
    it headless Chromium denies ``getUserMedia`` with ``NotAllowedError``.
    """
    args = ["--disable-gpu", "--disable-dev-shm-usage",
            "--autoplay-policy=no-user-gesture-required", "--use-fake-device-for-media-stream"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root (CI)
    if video_file is not None:
        args.append(f"--use-file-for-fake-video-capture={video_file}")
    if grant_camera:
        args.append("--use-fake-ui-for-media-stream")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


def watch_errors(page) -> list[str]:
    """Collect the page's console errors and uncaught exceptions into the returned list
    (live: assert it is empty at the end).  Only ``IGNORED_ERRORS`` are left out."""
    errors: list[str] = []

    def add(text: str) -> None:
        if not any(p.search(text) for p in IGNORED_ERRORS):
            errors.append(text)

    page.on("console", lambda msg: msg.type == "error" and add(f"console: {msg.text}"))
    page.on("pageerror", lambda exc: add(f"pageerror: {exc}"))
    return errors


_NOTEBOOK_READY = """(path) => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session
    && w.sessionContext.session.kernel;
  return !!(kernel && w.context.path === path && kernel.status === 'idle'
    && kernel.connectionStatus === 'connected');
}"""


def open_notebook(page, lab: Lab, relpath: str, timeout: float = 60) -> None:
    """Open ``relpath`` (relative to the repo root) in JupyterLab and wait until it is the
    current widget and its kernel is connected and idle."""
    page.goto(lab.tree_url(relpath), timeout=timeout * 1000)
    page.wait_for_function(_NOTEBOOK_READY, arg=relpath, timeout=timeout * 1000)


_IDLE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && w.content.widgets.every(
    cell => !cell.promptNode || !cell.promptNode.textContent.includes('*'));
}"""


def wait_idle(page, timeout: float = 60) -> None:
    """Wait until the current notebook's kernel is idle and no cell is queued (``[*]``)."""
    page.wait_for_function(_IDLE, timeout=timeout * 1000)


def run_all(page, timeout: float = 120) -> bool:
    """Run every cell of the current notebook (``notebook:run-all-cells``) and wait for
    the end; True when no cell raised."""
    page.evaluate("""() => {
      window._runAll = 'running';
      window.jupyterapp.commands.execute('notebook:run-all-cells')
        .then(ok => { window._runAll = ok; }, err => { window._runAll = String(err); });
    }""")
    page.wait_for_function("() => window._runAll !== 'running'", timeout=timeout * 1000)
    wait_idle(page, timeout)
    return page.evaluate("() => window._runAll") is True


def kernel_execute(page, code: str, timeout: float = 30) -> str:
    """Run ``code`` in the current notebook's kernel (not in a cell); its stdout, plus
    ``Name: message`` if it raised."""
    return page.evaluate("""async ([code, ms]) => {
      const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
      const future = kernel.requestExecute({code, store_history: false});
      let out = '';
      future.onIOPub = msg => {
        if (msg.header.msg_type === 'stream') out += msg.content.text;
        if (msg.header.msg_type === 'error') out += `${msg.content.ename}: ${msg.content.evalue}`;
      };
      const late = new Promise((_, no) => setTimeout(() => no(new Error('timeout')), ms));
      await Promise.race([future.done, late]);
      return out;
    }""", [code, timeout * 1000])


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as ``artifacts/browser/<name>.png``; its path."""
    path = ARTIFACTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
