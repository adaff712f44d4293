"""The harness itself: JupyterLab + Chromium run a widget notebook, and the fake camera
behaves as the widget tests expect (denied without a grant, the given file with one)."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from .harness import (
    ARTIFACTS,
    ROOT,
    kernel_execute,
    open_notebook,
    run_all,
    screenshot,
    watch_errors,
)

# Skipped (not an import error) without playwright; conftest turns that into a failure
# under GESTURE_BROWSER_REQUIRED=1.
expect = pytest.importorskip("playwright.sync_api").expect

WIDGET_CELL = '''\
import anywidget
import traitlets

class Echo(anywidget.AnyWidget):
    """Shows `value`; its JavaScript sends `echo` back to the kernel."""
    _esm = """
    function render({ model, el }) {
      const div = document.createElement("div");
      div.className = "smoke-widget";
      div.textContent = model.get("value");
      el.appendChild(div);
      model.set("echo", "hello from js");
      model.save_changes();
    }
    export default { render };
    """
    value = traitlets.Unicode("hello from python").tag(sync=True)
    echo = traitlets.Unicode("").tag(sync=True)

w = Echo()
w'''

ENV_CELL = 'import os\nprint("GESTURE_BROWSER_LAB=" + os.environ.get("GESTURE_BROWSER_LAB", "unset"))'


def write_smoke_notebook(path: Path) -> str:
    """Write the two-cell smoke notebook; its path relative to the repo root (the server's)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(WIDGET_CELL),
                                         nbformat.v4.new_code_cell(ENV_CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path.relative_to(ROOT).as_posix()


def poll_kernel(page, code: str, want: str, timeout: float = 20) -> str:
    """Run ``code`` in the kernel until its output (stripped) is ``want``; the last output."""
    deadline = time.monotonic() + timeout
    while (out := kernel_execute(page, code).strip()) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    return out


def test_widget_renders_and_round_trips(lab, new_browser):
    relpath = write_smoke_notebook(ARTIFACTS / "smoke.ipynb")
    page = new_browser().new_page()
    errors = watch_errors(page)
    open_notebook(page, lab, relpath)
    assert run_all(page), "a cell raised"
    expect(page.locator(".smoke-widget")).to_have_text("hello from python")
    expect(page.locator(".jp-OutputArea-output", has_text="GESTURE_BROWSER_LAB=1")).to_be_visible()
    assert poll_kernel(page, "print(w.echo)", "hello from js") == "hello from js"
    screenshot(page, "smoke")
    assert errors == []


GET_CAMERA = """async () => {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({video: true});
    const {width, height} = stream.getVideoTracks()[0].getSettings();
    stream.getTracks().forEach(t => t.stop());
    return `${width}x${height}`;
  } catch (e) { return e.name; }
}"""


def test_camera_denied_without_grant(lab, new_browser):
    page = new_browser(grant_camera=False).new_page()
    page.goto(f"{lab.url}/api/status?token={lab.token}")  # same origin as the lab
    assert page.evaluate(GET_CAMERA) == "NotAllowedError"


def test_camera_plays_the_given_file(lab, new_browser, tmp_path):
    from gesture_utils.video import write_y4m

    clip = write_y4m(tmp_path / "red.y4m", np.full((3, 48, 64, 3), (255, 0, 0), np.uint8), 12)
    page = new_browser(video_file=clip, grant_camera=True).new_page()
    page.goto(f"{lab.url}/api/status?token={lab.token}")
    assert page.evaluate(GET_CAMERA) == "64x48"
