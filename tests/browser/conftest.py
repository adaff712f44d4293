"""Fixtures for the real-browser tests (helpers are in ``harness.py``).

* ``lab_env``     session: extra environment variables for the server, so for every kernel.
* ``lab``         session: one JupyterLab (:class:`harness.Lab`) for the whole run.
* ``playwright``  session: Playwright's sync API.
* ``new_browser`` factory ``new_browser(video_file=None, grant_camera=False)`` -> Browser,
  closed after the test.

Passing variables to the kernels: the server gets ``os.environ`` plus ``lab_env``.  Add
yours to the dict below, or override ``lab_env`` (``def lab_env(lab_env): return
{**lab_env, "X": "1"}``, session-scoped).  ``lab`` starts once per run, with the
``lab_env`` of the first test that asks for it; a module that needs a different
environment uses its own server: ``with harness.start_lab(env) as lab:`` in a
module-scoped fixture.

Without Chromium (or Playwright) the tests here are skipped; ``GESTURE_BROWSER_REQUIRED=1``
(set by ``make browser-test``) makes that an error instead.  Test modules import
Playwright as ``expect = pytest.importorskip("playwright.sync_api").expect`` so that a
missing package is a skip too.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from .harness import CHROMIUM, launch_browser, start_lab

HERE = Path(__file__).parent


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this folder's tests when Chromium or Playwright is missing (error if required)."""
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("GESTURE_BROWSER_REQUIRED") == "1":
        raise pytest.UsageError(f"browser tests required (GESTURE_BROWSER_REQUIRED=1): {reason}")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    """Extra environment for the JupyterLab server and its kernels."""
    return {"GESTURE_BROWSER_LAB": "1"}


@pytest.fixture(scope="session")
def lab(lab_env: dict[str, str]):
    """One JupyterLab for the run (log: artifacts/browser/jupyter.log)."""
    with start_lab(lab_env) as server:
        yield server


@pytest.fixture(scope="session")
def playwright():
    """Playwright's sync API, started once."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def new_browser(playwright):
    """Factory ``new_browser(video_file=None, grant_camera=False)``: a Chromium
    (:func:`harness.launch_browser`) that is closed when the test ends."""
    browsers = []

    def new(video_file: Path | None = None, grant_camera: bool = False):
        browsers.append(launch_browser(playwright, video_file, grant_camera))
        return browsers[-1]

    yield new
    for browser in browsers:
        browser.close()
