"""Running it live (notebook 06): cameras, the ipywidgets live view, the recorder of your
own gestures, and the timeline plot. The recogniser itself is :mod:`gesture_utils.stream`.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gesture_utils.errors import GestureError, input_error
from gesture_utils.stream import (
    FrameSource,
    GestureEvent,
    StepResult,
    StreamingRecognizer,
    StreamResult,
    open_source,
)
from gesture_utils.video import resize_frame, to_rgb, write_video


# ----------------------------------------------------------------------------- cameras
class WebcamSource(FrameSource):
    """Frames of a local camera (``cv2.VideoCapture(index)``); a :class:`GestureError` when
    there is none (CI, servers, Colab: use :class:`ColabCameraSource` or a video file)."""

    def __init__(self, index: int = 0, mirror: bool = False, max_frames: int | None = None,
                 width: int | None = None, height: int | None = None):
        self.index = int(index)
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # no C++ noise
        try:
            self._cap = cv2.VideoCapture(self.index)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self._cap.isOpened():
            self._cap.release()
            raise input_error(f"camera {self.index}", "could not be opened (no camera, or in use)",
                              "pass a video file or frame folder instead; on Colab use "
                              "ColabCameraSource")
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height)):
            if value:
                self._cap.set(prop, value)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0) or None
        super().__init__(f"camera:{self.index}", fps, mirror, max_frames)

    def _frames(self) -> Iterator[np.ndarray]:
        while self._cap is not None and self._cap.isOpened():
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                break
            yield to_rgb(bgr)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


#: one hidden <video> fed by getUserMedia; each call returns the current frame as a JPEG URL
_COLAB_CAMERA_JS = """
window.gestureCamFrame = async function(width, quality) {
  if (!window._gestureCam) {
    const stream = await navigator.mediaDevices.getUserMedia({video: {width: width}});
    const video = document.createElement('video');
    video.setAttribute('playsinline', '');
    video.muted = true;
    video.srcObject = stream;
    await video.play();
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    window._gestureCam = {stream: stream, video: video, canvas: canvas};
  }
  const cam = window._gestureCam;
  cam.canvas.getContext('2d').drawImage(cam.video, 0, 0, cam.canvas.width, cam.canvas.height);
  return cam.canvas.toDataURL('image/jpeg', quality);
};
window.gestureCamStop = function() {
  if (window._gestureCam) {
    window._gestureCam.stream.getTracks().forEach(t => t.stop());
    window._gestureCam = null;
  }
  return true;
};
"""


def decode_data_url(url: str) -> np.ndarray:
    """A ``data:image/...;base64,...`` URL (what a browser canvas returns) -> RGB frame."""
    if not isinstance(url, str) or "," not in url or not url.startswith("data:image"):
        raise GestureError("browser camera returned no image (was camera access allowed?)")
    raw = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), dtype=np.uint8)
    bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if bgr is None:
        raise GestureError("browser camera returned an image OpenCV cannot decode")
    return to_rgb(bgr)


class ColabCameraSource(FrameSource):
    """The browser's camera on Google Colab: one JPEG round trip per frame (about 5-15 FPS);
    the browser asks for permission on first use."""

    def __init__(self, width: int = 320, quality: float = 0.8, mirror: bool = False,
                 max_frames: int | None = None, fps: float | None = None):
        self.width, self.quality = int(width), float(quality)
        super().__init__("colab-camera", fps, mirror, max_frames)

    def _frames(self) -> Iterator[np.ndarray]:  # pragma: no cover - needs Colab + a browser
        from google.colab.output import eval_js  # type: ignore[import-not-found]
        from IPython.display import Javascript, display

        display(Javascript(_COLAB_CAMERA_JS))
        try:
            while True:
                yield decode_data_url(eval_js(f"gestureCamFrame({self.width}, {self.quality})"))
        finally:
            eval_js("gestureCamStop()")


# --------------------------------------------------------------------------- live view
class LiveView:
    """An ipywidgets live demo: the frame and current label, a probability bar per class,
    the event log, latency/FPS, Start/Stop.

    ``source`` (default webcam 0, flipped when ``mirror=True``) is tried first; when it
    cannot be opened the view plays ``fallback`` (never flipped; at its own fps when
    ``realtime_fallback``) and says so. A run ends with its source, after ``max_frames``
    or ``max_seconds``, or on Stop. :meth:`launch` runs a camera in a background thread
    and a fallback in the foreground. The recogniser's ``cfg.mirror`` should be False.
    """

    def __init__(self, recognizer: StreamingRecognizer, source: Any = 0, fallback: Any = None,
                 mirror: bool = False, display_size: int = 224, log_size: int = 8,
                 max_frames: int | None = None, max_seconds: float | None = None,
                 realtime_fallback: bool = True):
        import ipywidgets as w

        self.recognizer, self.source, self.fallback, self.mirror = recognizer, source, fallback, mirror
        self.display_size, self.log_size = int(display_size), int(log_size)
        self.max_frames, self.max_seconds = max_frames, max_seconds
        self.realtime_fallback, self.fell_back = realtime_fallback, False
        self.events: list[GestureEvent] = []
        self.result: StreamResult | None = None
        self._thread: threading.Thread | None = None
        self._src: FrameSource | None = None
        self.image = w.Image(format="jpeg", width=self.display_size, height=self.display_size)
        self.label = w.HTML(value=self._label_html(recognizer.cfg.rest_label, None))
        self.bars = {lab: w.FloatProgress(value=0.0, min=0.0, max=1.0, description=lab,
                                          style={"description_width": "90px"},
                                          layout=w.Layout(width="320px"))
                     for lab in recognizer.labels}
        self.log, self.status = w.HTML(value="<i>no events yet</i>"), w.HTML(value="stopped")
        self.source_note = w.HTML(value="")
        start = w.Button(description="Start", icon="play", button_style="success")
        stop = w.Button(description="Stop", icon="stop", button_style="danger")
        start.on_click(lambda _: self.launch(background=True))
        stop.on_click(lambda _: self.stop())
        right = w.VBox([self.label, *self.bars.values(), self.status, self.source_note])
        self.widget = w.VBox([w.HBox([start, stop]), w.HBox([self.image, right]), self.log])

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a notebook front end
        from IPython.display import display

        display(self.widget)

    @staticmethod
    def _label_html(label: str, event: GestureEvent | None) -> str:
        colour = "#1a7f37" if event is not None else "#444"
        return f"<h3 style='margin:2px;color:{colour}'>{label}</h3>"

    def open(self) -> FrameSource:
        """The source to run: ``source`` (mirrored if asked), or ``fallback`` if that fails."""
        try:
            src = open_source(self.source, mirror=self.mirror, max_frames=self.max_frames)
            self.fell_back = False
            self.source_note.value = f"source: {src.name}" + (" (mirrored)" if src.mirror else "")
        except GestureError as exc:
            if self.fallback is None:
                raise
            src = open_source(self.fallback, max_frames=self.max_frames)
            self.fell_back = True
            self.source_note.value = (f"<b>no camera</b> ({exc}); playing the fallback "
                                      f"{Path(str(src.name)).name}")
        return src

    def show_step(self, frame: np.ndarray, step: StepResult) -> None:
        """Draw one frame and its step result into the widgets."""
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(resize_frame(frame, self.display_size),
                                                    cv2.COLOR_RGB2BGR))
        if ok:
            self.image.value = jpg.tobytes()
        self.label.value = self._label_html(step.label, step.event)
        if step.smoothed is not None:
            for lab, p in zip(self.recognizer.labels, step.smoothed, strict=True):
                self.bars[lab].value = float(p)
        if step.event is not None:
            self.events.append(step.event)
            self.log.value = "<br>".join(f"frame {e.frame:5d} · <b>{e.label}</b> ({e.confidence:.2f})"
                                         for e in reversed(self.events[-self.log_size:]))
        self.status.value = (f"frame {step.frame_index} · {step.total_ms:5.1f} ms · "
                             f"{step.fps:5.1f} fps achieved · "
                             f"{self.recognizer.stats.capacity_fps:5.0f} fps capacity")

    def run(self, source: FrameSource | None = None,
            max_frames: int | None = None) -> StreamResult | None:
        """Run in the foreground until the source ends, ``max_frames``, ``max_seconds``,
        :meth:`stop` or an interrupt; returns the run's result (``None`` if interrupted)."""
        self._src = src = source or self.open()
        pace = src.fps if self.realtime_fallback and self.fell_back and src.fps else None
        begin = last = time.perf_counter()

        def on_step(frame: np.ndarray, step: StepResult) -> None:
            nonlocal last
            self.show_step(frame, step)
            if self.max_seconds is not None and time.perf_counter() - begin > self.max_seconds:
                src.stop()
            if pace:  # play a file at its own speed, as a camera would deliver it
                time.sleep(max(0.0, 1.0 / pace - (time.perf_counter() - last)))
                last = time.perf_counter()

        try:
            self.result = self.recognizer.run(src, max_frames=max_frames or self.max_frames,
                                              on_step=on_step)
        except KeyboardInterrupt:
            src.close()
            self.status.value += " · interrupted"
            return None
        self.status.value += " · stopped"
        return self.result

    def launch(self, background: bool | None = None) -> StreamResult | None:
        """Open the source and run it: in a background thread for a live camera (default)
        or with ``background=True``, else in the foreground (the fallback file)."""
        if self._thread is not None and self._thread.is_alive():
            return None
        src = self.open()
        if not (background if background is not None else not self.fell_back):
            return self.run(src)
        self._thread = threading.Thread(target=self._run_safely, args=(src,), daemon=True)
        self._thread.start()
        return None

    def _run_safely(self, src: FrameSource) -> None:
        try:
            self.run(src)
        except GestureError as exc:
            self.status.value = f"error: {exc}"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop a running view and wait for its thread."""
        if self._src is not None:
            self._src.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def plot_timeline(result: StreamResult, truth: Sequence[str] | None = None,
                  rest_label: str = "no_gesture", ax: Any = None, title: str | None = None):
    """Smoothed probabilities over time, events fired (triangles) and true gestures
    (shaded, same colour per class). Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    from gesture_utils.evaluation import segments_from_frame_labels

    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.5))
    colours = {lab: plt.cm.tab10(i % 10) for i, lab in enumerate(result.labels)}
    for seg in segments_from_frame_labels(list(truth) if truth is not None else [], rest_label):
        ax.axvspan(seg.start, seg.end, color=colours.get(seg.label, "grey"), alpha=0.15, lw=0)
    for k, lab in enumerate(result.labels):
        ax.plot(result.head_frames, result.smoothed[:, k], ":" if lab == rest_label else "-",
                color=colours[lab], label=lab, lw=1.5)
    for ev in result.events:
        ax.plot([ev.frame], [1.04], "v", color=colours[ev.label], ms=9, clip_on=False)
    ax.set(ylim=(0, 1.08), xlim=(0, max(result.num_frames, 1)), xlabel="source frame",
           ylabel="smoothed probability", title=title or "shaded: true gestures · ▼: events fired")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return ax


# -------------------------------------------------------------------------- recorder
def _take(frames: Iterator[np.ndarray], n: int, on_frame: Callable[[np.ndarray], Any] | None,
          ended: str) -> list[np.ndarray]:
    """The next ``n`` frames, each shown via ``on_frame``; ``ended`` is the error if the
    source runs out."""
    got = []
    for _ in range(n):
        frame = next(frames, None)
        if frame is None:
            raise GestureError(ended)
        if on_frame is not None:
            on_frame(frame)
        got.append(frame)
    return got


def record_clips(source: Any, out_dir: str | os.PathLike[str], classes: Sequence[str],
                 clips_per_class: int = 5, seconds: float = 2.0, fps: float | None = None,
                 countdown_s: float = 3.0, *, session: str = "me",
                 on_message: Callable[[str], Any] | None = print,
                 on_frame: Callable[[np.ndarray], Any] | None = None,
                 val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0,
                 overwrite: bool = False) -> Path:
    """Record your own gesture clips from a frame source into the dataset layout.

    In *rounds*: round ``r`` takes one clip of every class (so slow changes of light or
    posture do not tag one class) and is one group (its clips share a split). Before each
    clip ``countdown_s`` of frames are shown via ``on_frame`` and dropped; the clip
    (``seconds * fps`` frames; ``fps`` defaults to the source's, else 12) goes to
    ``out_dir/<class>/<class>_<session>_<r>.mp4``. Writes labels.txt + manifest.csv
    (group-aware splits from 3 rounds on); returns ``out_dir``.
    """
    from gesture_utils.importers import ManifestRow, write_dataset_index
    from gesture_utils.splits import assign_splits

    out_dir, classes = Path(out_dir), list(classes)
    if (out_dir / "manifest.csv").exists() and not overwrite:
        raise input_error(out_dir, "already holds a dataset",
                          "pick another name, or pass overwrite=True")
    if not classes or clips_per_class < 1:
        raise GestureError("record_clips needs at least one class and clips_per_class >= 1")
    src = open_source(source)
    fps = float(fps or src.fps or 12.0)
    n_clip, n_count = max(1, round(seconds * fps)), max(0, round(countdown_s * fps))
    say, frames, rows = on_message or (lambda _msg: None), iter(src), []
    try:
        for r in range(clips_per_class):
            for label in classes:
                ended = (f"frame source {src.name} ended after {len(rows)} clips "
                         "(record fewer clips, or use a longer source)")
                say(f"round {r + 1}/{clips_per_class}: get ready for '{label}' "
                    f"({countdown_s:.0f} s)")
                _take(frames, n_count, on_frame, ended)
                say(f"recording '{label}' for {seconds:.1f} s")
                rel = f"{label}/{label}_{session}_{r:03d}.mp4"
                write_video(out_dir / rel, np.stack(_take(frames, n_clip, on_frame, ended)), fps)
                rows.append(ManifestRow(rel, label, "train", f"{session}-round{r:03d}",
                                        {"source": "recorded", "session": session, "round": r,
                                         "fps": fps, "frames": n_clip}))
    finally:
        src.close()
    if clips_per_class >= 3:
        splits = assign_splits([x.label for x in rows], [x.group for x in rows],
                               val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
        rows = [ManifestRow(x.path, x.label, s, x.group, x.params)
                for x, s in zip(rows, splits, strict=True)]
    say(f"saved {len(rows)} clips to {out_dir}")
    return write_dataset_index(out_dir, classes, rows)
