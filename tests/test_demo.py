"""Running it live (gesture_utils.demo), kernel side: the browser is played by a test that
sends the widget the messages camera.js sends (JPEG frames, camera states). The real
browser is in tests/browser."""

from __future__ import annotations

import csv
import time

import cv2
import numpy as np
import pytest
from test_stream import CFG, FakeMotionModel, make_stream

from gesture_utils.demo import CameraWidget, LiveDemo, decode_jpeg, record_clips
from gesture_utils.errors import GestureError
from gesture_utils.stream import ArraySource, StreamingRecognizer
from gesture_utils.video import read_frames, write_video


class Browser:
    """What camera.js does, for one widget: report camera states, send JPEG frames, and
    keep the kernel's replies."""

    def __init__(self, widget: CameraWidget):
        self.widget, self.replies, self.seq = widget, [], 0
        widget.send = lambda content, buffers=None: self.replies.append(content)
        widget.observe(self._running, names="running")

    def _running(self, change) -> None:
        if not change["new"] and self.widget.camera == "live":  # the kernel said stop
            self.state("off")

    def state(self, name: str, error: str = "") -> None:
        self.widget.camera_error = error
        self.widget.camera = name

    def frames(self, frames) -> None:
        for f in frames:
            jpg = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
            self.widget._handle(self.widget, {"type": "frame", "seq": self.seq}, [memoryview(jpg)])
            self.seq += 1

    def events(self) -> list[str]:
        return [r["event"]["label"] for r in self.replies if r.get("event")]


def demo(**kw) -> tuple[LiveDemo, Browser]:
    live = LiveDemo(StreamingRecognizer(FakeMotionModel(), CFG), **kw)
    return live, Browser(live.widget)


def test_camera_run_answers_every_frame_and_ends_on_stop():
    frames, _ = make_stream(("swipe_left", "swipe_right"))
    live, browser = demo(fps=10)
    browser.state("live")
    assert live.widget.source == "browser camera"
    browser.frames(frames)
    assert [r["seq"] for r in browser.replies if "seq" in r] == list(range(len(frames)))
    assert browser.events() == ["swipe_left", "swipe_right"] == [e.label for e in live.events]
    browser.state("off")  # the Stop button
    assert live.result is not None and live.result.num_frames == len(frames)
    assert "2 events" in live.widget.message and live.widget.source == ""
    live.stop()
    assert live.threads == []  # the watchdog saw the run end
    # the model sees the camera's frames: a mirrored preview changes only the display
    mirrored, browser = demo(mirror=True)
    browser.state("live")
    browser.frames(frames)
    assert browser.events() == ["swipe_left", "swipe_right"]
    assert "mirrored" in mirrored.widget.source
    mirrored.stop()


def test_denied_camera_says_so_and_plays_the_fallback(tmp_path):
    frames, _ = make_stream(("swipe_left",))
    video = write_video(tmp_path / "fallback.mp4", frames, fps=24)
    live, browser = demo(fallback=video)
    browser.state("denied", "camera permission denied (NotAllowedError)")
    deadline = time.monotonic() + 10
    while live.threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.threads == []
    assert "permission denied" in live.widget.message and "fallback.mp4" in live.widget.message
    assert [e.label for e in live.result.events] == ["swipe_left"] == browser.events()
    # no fallback: the message alone, and nothing left running
    bare, browser = demo()
    browser.state("missing", "no camera found (NotFoundError)")
    assert bare.widget.message == "no camera found (NotFoundError)" and bare.threads == []


def test_a_silent_browser_ends_the_run_without_a_hung_thread():
    frames, _ = make_stream(("swipe_left",))
    live, browser = demo(idle_timeout_s=0.3, autostart=True)
    browser.state("live")
    browser.frames(frames[:15])  # then the tab closes, or a cell keeps the kernel busy
    deadline = time.monotonic() + 5
    while live.threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.threads == [] and live.result.num_frames == 15
    assert "tab closed, or the kernel busy" in live.widget.message
    assert not live.widget.running and live.widget.camera == "off"  # Start goes on


def test_the_camera_takes_over_from_the_fallback(tmp_path):
    frames, _ = make_stream(("swipe_left",) * 20)
    video = write_video(tmp_path / "fallback.mp4", frames, fps=24)  # 10 s at its own speed
    live, browser = demo(fallback=video)
    browser.state("denied", "camera permission denied (NotAllowedError)")
    time.sleep(0.3)
    assert len(live.threads) == 1 and "fallback.mp4" in live.widget.source
    browser.state("live")  # allowed after all, and Start pressed
    assert len(live.threads) == 1 and live.widget.source == "browser camera"  # the watchdog
    browser.frames(frames[:5])
    assert [r["seq"] for r in browser.replies if "seq" in r] == list(range(5))
    live.stop()
    assert live.threads == [] and live.result.num_frames == 5

def test_play_runs_a_file_through_the_widget(tmp_path):
    frames, _ = make_stream(("swipe_left",))
    video = write_video(tmp_path / "clip.mp4", frames, fps=24)
    live, browser = demo()
    res = live.play(video, realtime=False)
    assert [e.label for e in res.events] == ["swipe_left"] == browser.events()
    assert sum(bool(r.get("image")) for r in browser.replies) == res.num_frames
    with pytest.raises(GestureError, match="no such"):
        live.play(tmp_path / "nope.mp4")


def test_a_frame_that_fails_is_reported_in_the_widget():
    live, browser = demo(autostart=True)
    browser.state("live")
    live.widget._handle(live.widget, {"type": "frame", "seq": 0}, [b"not a jpeg"])
    assert live.widget.running is False and live.widget.camera == "off"  # the camera stopped
    assert live.widget.message.startswith("error while processing a frame") and "not a JPEG" in \
        live.widget.message  # and the error is still what the widget says
    with pytest.raises(GestureError, match="JPEG"):
        decode_jpeg(b"")
    live.stop()


def test_record_clips_writes_dataset_layout(tmp_path):
    from gesture_utils.datasets import load_manifest
    from gesture_utils.splits import check_no_group_leak

    frames, _ = make_stream(("swipe_left",) * 12, idle=0, length=10)
    messages = []
    rec = record_clips(ArraySource(frames, fps=10), tmp_path / "mine", ["wave", "stop"],
                       clips_per_class=3, seconds=0.5, countdown_s=0.5,
                       on_message=messages.append, val_fraction=0.3, test_fraction=0.3)
    out = rec.root
    assert rec.done and (out / "labels.txt").read_text().split() == ["wave", "stop"]
    with (out / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows[:2]] == ["wave/wave_me_000.mp4", "stop/stop_me_000.mp4"]
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    check_no_group_leak(rows)
    # countdown frames are dropped, then 5 frames are recorded: clip 0 = frames 5..9
    np.testing.assert_allclose(read_frames(out / rows[0]["path"]).astype(float),
                               frames[5:10].astype(float), atol=40)
    assert any("get ready for 'stop'" in m for m in messages)
    assert [r.group for r in load_manifest(out)][:2] == ["me-round000"] * 2
    with pytest.raises(GestureError, match="already holds"):
        record_clips(frames, out, ["wave"], clips_per_class=1, seconds=0.1, countdown_s=0)
    with pytest.raises(GestureError, match="ended after 1 clips"):
        record_clips(frames[:8], tmp_path / "short", ["a", "b"], clips_per_class=2,
                     seconds=0.5, fps=10, countdown_s=0, on_message=None)
    assert [r.path.name for r in load_manifest(tmp_path / "short")] == ["a_me_000.mp4"]


def test_recording_in_the_browser_keeps_finished_clips_when_the_camera_stops(tmp_path):
    from gesture_utils.datasets import load_manifest

    frames, _ = make_stream(("swipe_left",) * 6, idle=0, length=10)
    live, browser = demo(fps=10)
    rec = record_clips(live, tmp_path / "mine", ["wave", "stop"], clips_per_class=3,
                       seconds=0.5, countdown_s=0.2, on_message=None)
    assert not rec.done and "recording to mine" in live.widget.source
    assert live.widget.running  # recording asks the browser for the camera
    browser.state("live")
    browser.frames(frames[:20])  # 2 clips of 2 + 5 frames, and a part of the 3rd
    assert "get ready" in live.widget.message or "recording" in live.widget.message
    browser.state("closed")
    assert len(rec.rows) == 2 and "2 finished clips kept" in live.widget.message
    assert [r.path.name for r in load_manifest(rec.root)] == ["wave_me_000.mp4", "stop_me_000.mp4"]
    assert live.widget.on_frame == live._on_frame  # the demo has the widget back
    second = record_clips(live, tmp_path / "again", ["wave"], clips_per_class=1, seconds=0.2)
    with pytest.raises(GestureError, match="already recording"):
        record_clips(live, tmp_path / "third", ["wave"], clips_per_class=1)
    assert not second.done
    live.stop()
    assert live.threads == []
