"""Running it live (gesture_utils.demo): the live view, the browser camera's frames and
the recorder -- no camera needed."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from test_stream import CFG, FakeMotionModel, make_stream

from gesture_utils.demo import LiveView, decode_data_url, record_clips
from gesture_utils.errors import GestureError
from gesture_utils.stream import ArraySource, StreamingRecognizer
from gesture_utils.video import read_frames, write_video


def test_live_view_falls_back_to_a_file_and_draws(tmp_path):
    frames, _ = make_stream(("swipe_left",))
    video = write_video(tmp_path / "fallback.mp4", frames, fps=24)
    rec = StreamingRecognizer(FakeMotionModel(), CFG)
    view = LiveView(rec, source=tmp_path / "no_camera_here.mp4", fallback=video, mirror=True,
                    realtime_fallback=False)
    res = view.launch()  # the fallback runs in the foreground, never mirrored
    assert view.fell_back and view.result is res
    assert "no camera" in view.source_note.value and "fallback.mp4" in view.source_note.value
    assert [e.label for e in res.events] == ["swipe_left"] == [e.label for e in view.events]
    assert "swipe_left" in view.log.value and view.image.value[:2] == b"\xff\xd8"  # a JPEG
    assert view.bars["no_gesture"].value == pytest.approx(res.smoothed[-1, 2])
    with pytest.raises(GestureError):
        LiveView(rec, source=tmp_path / "nope.mp4", fallback=None).run()


def test_live_view_start_stop_in_a_thread():
    import itertools
    import time

    frames, _ = make_stream(("swipe_left",))
    endless = itertools.cycle(frames)  # like a camera: only stop() ends it
    view = LiveView(StreamingRecognizer(FakeMotionModel(), CFG), source=endless, mirror=True,
                    realtime_fallback=False)
    view.launch(background=True)
    time.sleep(0.2)
    view.stop()
    assert view._thread is None and "stopped" in view.status.value
    assert not view.fell_back and "(mirrored)" in view.source_note.value
    assert view.result is not None and view.result.num_frames > 0
    assert {e.label for e in view.events} == {"swipe_right"}  # mirrored left swipes
    timed = LiveView(StreamingRecognizer(FakeMotionModel(), CFG), source=itertools.cycle(frames),
                     max_seconds=0.2)
    t0 = time.perf_counter()
    assert timed.launch(background=False).num_frames > 0 and time.perf_counter() - t0 < 5


def test_decode_data_url_round_trip():
    import base64

    img = np.zeros((8, 10, 3), np.uint8)
    img[:, :5] = (255, 0, 0)  # red in RGB
    ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    url = "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()
    np.testing.assert_array_equal(decode_data_url(url), img)
    with pytest.raises(GestureError, match="camera"):
        decode_data_url("")


def test_record_clips_writes_dataset_layout(tmp_path):
    from gesture_utils.splits import check_no_group_leak

    frames, _ = make_stream(("swipe_left",) * 12, idle=0, length=10)
    messages = []
    out = record_clips(ArraySource(frames, fps=10), tmp_path / "mine", ["wave", "stop"],
                       clips_per_class=3, seconds=0.5, countdown_s=0.5,
                       on_message=messages.append, val_fraction=0.3, test_fraction=0.3)
    assert (out / "labels.txt").read_text().split() == ["wave", "stop"]
    with (out / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["path"] for r in rows[:2]] == ["wave/wave_me_000.mp4", "stop/stop_me_000.mp4"]
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    check_no_group_leak(rows)
    # countdown frames are dropped, then 5 frames are recorded: clip 0 = frames 5..9
    np.testing.assert_allclose(read_frames(out / rows[0]["path"]).astype(float),
                               frames[5:10].astype(float), atol=40)
    assert any("get ready for 'stop'" in m for m in messages)
    from gesture_utils.datasets import load_manifest

    assert [r.group for r in load_manifest(out)][:2] == ["me-round000"] * 2
    with pytest.raises(GestureError, match="already holds"):
        record_clips(frames, out, ["wave"], clips_per_class=1, seconds=0.1, countdown_s=0)
    with pytest.raises(GestureError, match="ended after"):
        record_clips(frames[:8], tmp_path / "short", ["a", "b"], clips_per_class=2,
                     seconds=0.5, fps=10, countdown_s=0, on_message=None)
