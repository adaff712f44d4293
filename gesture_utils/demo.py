"""Running it live (notebook 06): the browser camera widget, the live demo over it, the
recorder of your own gestures and the timeline plot. The recogniser itself is
:mod:`gesture_utils.stream`.

The camera is read by the browser (``camera.js``, an anywidget module), not by the
kernel, so the same demo runs in a local JupyterLab, on a JupyterHub and on Colab (VS
Code draws it, but its notebook view may refuse the camera): the kernel only ever sees
small JPEG frames arriving as widget messages.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anywidget
import cv2
import numpy as np
import traitlets

from gesture_utils.errors import GestureError, input_error
from gesture_utils.stream import (
    GestureEvent,
    StepResult,
    StreamingRecognizer,
    StreamResult,
    open_source,
)
from gesture_utils.video import resize_frame, to_rgb, write_video

_HERE = Path(__file__).parent
#: camera states the browser reports that end a run (``live`` starts one)
CAMERA_FAILURES = ("denied", "missing", "unsupported", "busy", "ended", "error")


# ------------------------------------------------------------------------ the widget
def decode_jpeg(data: bytes | memoryview) -> np.ndarray:
    """JPEG bytes (a browser frame) -> ``(H, W, 3)`` uint8 RGB."""
    raw = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
    if bgr is None:
        raise GestureError("the browser sent a frame that is not a JPEG image")
    return to_rgb(bgr)


def encode_jpeg(frame: np.ndarray, size: int, quality: int = 85) -> bytes:
    """``(H, W, 3)`` RGB -> JPEG bytes of a ``size`` x ``size`` copy (what the widget draws)."""
    bgr = cv2.cvtColor(resize_frame(np.asarray(frame), size), cv2.COLOR_RGB2BGR)
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


class CameraWidget(anywidget.AnyWidget):
    """The browser's camera as a frame source for the kernel, and the live display.

    The browser captures with ``getUserMedia`` and sends a ``size``-pixel JPEG every
    ``1/fps`` s (at most ``max_in_flight`` unanswered) while ``running`` (the Start and
    Stop buttons, :meth:`start` and :meth:`stop` set it; a state, so a request made
    before the browser has drawn the widget is not lost); each frame goes to
    ``on_frame(frame) -> dict`` and the dict (``label``, ``probs``, ``event``) goes back
    and is drawn: label, one bar per ``labels`` entry, event log, fps and the
    capture-to-label delay. ``mirror`` flips the preview and the left/right names it
    shows; the kernel always gets what the camera sees. ``camera`` is the browser's
    state (``off``, ``starting``, ``live``, ``closed`` or one of :data:`CAMERA_FAILURES`),
    ``camera_error`` its message.
    """

    _esm = _HERE / "camera.js"
    _css = _HERE / "camera.css"
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    fps = traitlets.Float(12.0).tag(sync=True)
    size = traitlets.Int(160).tag(sync=True)
    quality = traitlets.Float(0.85).tag(sync=True)
    max_in_flight = traitlets.Int(2).tag(sync=True)
    mirror = traitlets.Bool(False).tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    log_size = traitlets.Int(8).tag(sync=True)
    source = traitlets.Unicode("").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    camera = traitlets.Unicode("off").tag(sync=True)
    camera_error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, on_frame: Callable[[np.ndarray], dict] | None = None, **traits: Any):
        super().__init__(**traits)
        self.on_frame = on_frame
        self.frames_received, self.last_frame_at = 0, 0.0
        self.error = ""  # the kernel's last error, kept until the camera is live again
        self.recorder: ClipRecorder | None = None  # the recording in progress, if any
        self.on_msg(self._handle)

    def _handle(self, _widget: Any, content: dict, buffers: Sequence[Any]) -> None:
        if content.get("type") == "closed":
            self.camera = "closed"
        if content.get("type") != "frame" or not buffers:
            return
        self.frames_received += 1
        self.last_frame_at = time.monotonic()
        try:
            reply = self.on_frame(decode_jpeg(buffers[0])) if self.on_frame else {}
            self.send({"type": "result", "seq": content.get("seq"), **(reply or {})})
        except Exception as exc:  # noqa: BLE001 - shown in the widget, not lost in a log
            self.error = f"error while processing a frame: {type(exc).__name__}: {exc}"
            self.message = self.error
            self.stop()

    def show(self, frame: np.ndarray | None = None, **reply: Any) -> None:
        """Draw a kernel-side frame (a file being played) with its ``label``/``probs``/``event``."""
        image = [encode_jpeg(frame, 240)] if frame is not None else None
        self.send({"type": "result", "image": image is not None, **reply}, buffers=image)

    def start(self) -> None:
        """Ask the browser to start the camera (the Start button does the same)."""
        self.running = True

    def stop(self) -> None:
        """Ask the browser to stop the camera."""
        self.running = False


def camera_source(widget: CameraWidget) -> str:
    """How the widget names a live browser camera."""
    return "browser camera" + (" (preview mirrored)" if widget.mirror else "")


def step_reply(step: StepResult) -> dict:
    """What the widget draws of one recogniser step."""
    ev = step.event
    return {"label": step.label,
            "probs": None if step.smoothed is None else [round(float(p), 4) for p in step.smoothed],
            "event": None if ev is None else {"label": ev.label, "frame": ev.frame,
                                              "confidence": round(ev.confidence, 3)}}


# ---------------------------------------------------------------------------- live demo
class LiveDemo:
    """The recogniser behind a :class:`CameraWidget`: the browser camera while it is live,
    else ``fallback`` (a clip file or a frame folder) played through the same widget, which
    always says which source is live.

    A camera run starts when the browser reports ``live`` and ends when the camera stops
    or fails, or when no frame arrives for ``idle_timeout_s`` (a closed tab); its
    :class:`StreamResult` is then :attr:`result`. A failed camera plays the fallback in a
    background thread. :meth:`play` runs a file in the foreground (CI, no browser).
    """

    def __init__(self, recognizer: StreamingRecognizer, fallback: Any = None, *,
                 mirror: bool = False, fps: float = 12.0, size: int | None = None,
                 autostart: bool = False, idle_timeout_s: float = 3.0):
        self.recognizer, self.fallback, self.idle_timeout_s = recognizer, fallback, idle_timeout_s
        size = size or int(getattr(recognizer.model, "image_size", 160))  # the model's input
        self.widget = CameraWidget(on_frame=self._on_frame, labels=list(recognizer.labels),
                                   fps=fps, size=size, mirror=mirror, running=autostart)
        self.widget.observe(self._camera_changed, names="camera")
        self.events: list[GestureEvent] = []
        self.result: StreamResult | None = None
        self._steps: list[StepResult] = []
        self._starts: list[float] = []
        self._lock, self._live = threading.Lock(), threading.Event()
        self._runs, self._run_id, self._begun = itertools.count(), None, 0.0
        self._threads: list[threading.Thread] = []
        self._playing: Any = None

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a notebook front end
        from IPython.display import display

        display(self.widget)

    # camera runs: begun by the browser's "live", ended by a stop, a failure or silence
    def _camera_changed(self, change: dict) -> None:
        state, w = change["new"], self.widget
        if state == "live":
            return self._begin()
        note = w.error or w.camera_error or f"camera {state}"
        self._end(note)
        if state in CAMERA_FAILURES and self._playing is None:
            if self.fallback is None:
                w.message = note
                return
            w.message = f"{note} · playing {Path(str(self.fallback)).name} instead"
            self._spawn(self.play, self.fallback)

    def _begin(self) -> None:
        rec, w = self.recognizer, self.widget
        if self._playing is not None:  # the fallback gives way to the camera
            self._playing.stop()
            self._join()
        with self._lock:
            self._run_id = run = f"browser-camera-{next(self._runs)}"  # a new id resets rec
            rec.frame_step = rec.step_for(w.fps)
            self._steps, self._starts, self.events = [], [], []
            self._begun = time.monotonic()
            self._live.set()
        if w.recorder is None:
            w.source = camera_source(w)
        w.message = w.error = ""
        self._spawn(self._watch, run)

    def _on_frame(self, frame: np.ndarray) -> dict:
        with self._lock:
            if not self._live.is_set():
                return {}
            self._starts.append(time.perf_counter())
            step = self.recognizer.step(frame, source_id=self._run_id)
            self._steps.append(step)
            if step.event is not None:
                self.events.append(step.event)
        return step_reply(step)

    def _watch(self, run: str) -> None:
        """End run ``run`` when the browser goes silent: a closed tab sends nothing, and a
        kernel busy with another cell reads nothing."""
        while self._live.is_set() and self._run_id == run and not self._silent():
            time.sleep(0.2)
        if self._run_id == run and self._end(f"no frames for {self.idle_timeout_s:g} s (tab closed, "
                                             "or the kernel busy with another cell?)"):
            self.widget.stop()  # press Start again to go on

    def _silent(self) -> bool:
        last = max(self._begun, self.widget.last_frame_at)
        return time.monotonic() - last > self.idle_timeout_s

    def _end(self, note: str) -> bool:
        """End the camera run, if one is going: its result, and ``note`` in the widget."""
        with self._lock:
            if not self._live.is_set():
                return False
            self._live.clear()
            self.result = StreamResult.of_steps(self.recognizer.labels, self._steps, self._starts)
        if self.widget.recorder is None:
            self.widget.source = ""
        self.widget.message = f"{note} · {len(self.events)} events in {len(self._steps)} frames"
        return True

    # files, threads, stopping
    def play(self, source: Any, realtime: bool = True,
             max_frames: int | None = None) -> StreamResult:
        """Run a clip file / frame folder / array (its first ``max_frames``) through the
        recogniser and the widget, in the foreground (at the source's own fps when
        ``realtime``); returns the result."""
        src = self._playing = open_source(source, max_frames=max_frames)
        pace, last = (src.fps if realtime else None), time.perf_counter()
        self.widget.source = f"file: {Path(str(src.name)).name}"

        def draw(frame: np.ndarray, step: StepResult) -> None:
            nonlocal last
            self.widget.show(frame, **step_reply(step))
            if pace:  # as a camera would deliver it
                time.sleep(max(0.0, 1.0 / pace - (time.perf_counter() - last)))
                last = time.perf_counter()

        try:
            self.result = self.recognizer.run(src, on_step=draw)
        finally:
            self.widget.source, self._playing = "", None
        self.events = list(self.result.events)
        return self.result

    def _spawn(self, target: Callable[..., Any], *args: Any) -> None:
        def guarded() -> None:
            try:
                target(*args)
            except Exception as exc:  # noqa: BLE001 - a thread's error goes to the widget
                self.widget.message = f"error: {type(exc).__name__}: {exc}"

        thread = threading.Thread(target=guarded, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    @property
    def threads(self) -> list[threading.Thread]:
        """The demo's background threads still running (none once :meth:`stop` returns)."""
        return [t for t in self._threads if t.is_alive()]

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the camera or the file, end the run and wait for the demo's threads."""
        self.widget.stop()
        if self._playing is not None:
            self._playing.stop()
        self._end("stopped")
        self._join(timeout)

    def _join(self, timeout: float = 5.0) -> None:
        for t in self.threads:
            if t is not threading.current_thread():
                t.join(timeout)


# -------------------------------------------------------------------------- recorder
class ClipRecorder:
    """Your own gesture clips, from frames fed one at a time (:meth:`feed`).

    In *rounds*: round ``r`` takes one clip of every class (so slow changes of light or
    posture do not tag one class) and is one group (its clips share a split). Before each
    clip ``countdown_s`` of frames are dropped; the clip (``seconds * fps`` frames) goes
    to ``out_dir/<class>/<class>_<session>_<r>.mp4``, and labels.txt + manifest.csv
    (group-aware splits from 3 rounds on, or ``split`` for every clip: ``"test"`` for a
    held-out session) are rewritten after every clip, so a recording cut short keeps
    every finished clip. ``on_message`` hears the countdowns.
    """

    def __init__(self, out_dir: str | os.PathLike[str], classes: Sequence[str],
                 clips_per_class: int = 5, seconds: float = 2.0, fps: float = 12.0,
                 countdown_s: float = 3.0, *, session: str = "me",
                 on_message: Callable[[str], Any] | None = print, split: str | None = None,
                 val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0,
                 overwrite: bool = False):
        self.root, self.classes = Path(out_dir), list(classes)
        if (self.root / "manifest.csv").exists() and not overwrite:
            raise input_error(self.root, "already holds a dataset",
                              "pick another name, or pass overwrite=True to replace it")
        if not self.classes or clips_per_class < 1:
            raise GestureError("record_clips needs at least one class and clips_per_class >= 1")
        self.fps, self.seconds, self.session = float(fps), float(seconds), session
        self.n_clip, self.n_count = max(1, round(seconds * fps)), max(0, round(countdown_s * fps))
        self.plan = [(r, c) for r in range(clips_per_class) for c in self.classes]
        self.say = on_message or (lambda _msg: None)
        self.split, self.splits = split, (val_fraction, test_fraction, seed)
        self.rows: list[Any] = []
        self._frames: list[np.ndarray] = []
        self._wait = -1  # countdown frames still to drop; -1: announce the next clip first

    @property
    def done(self) -> bool:
        return len(self.rows) == len(self.plan)

    @property
    def phase(self) -> str:
        """``get ready`` (a countdown), ``recording`` or ``saved`` (done)."""
        return "saved" if self.done else "recording" if self._wait == 0 else "get ready"

    def feed(self, frame: np.ndarray) -> str:
        """One frame in; returns what to tell the user now (the countdown or the clip)."""
        if self.done:
            return f"saved {len(self.rows)} clips to {self.root}"
        r, label = self.plan[len(self.rows)]
        where = f"round {r + 1}/{self.plan[-1][0] + 1}"
        if self._wait < 0:
            self._wait = self.n_count
            self.say(f"{where}: get ready for '{label}'")
        if self._wait > 0:
            self._wait -= 1
            return f"get ready for '{label}': {math.ceil((self._wait + 1) / self.fps)} s · {where}"
        if not self._frames:
            self.say(f"recording '{label}' for {self.seconds:.1f} s")
        self._frames.append(frame)
        if len(self._frames) == self.n_clip:
            self._save(r, label)
        return f"recording '{label}' · {where}" if not self.done else f"saved {len(self.rows)} clips"

    def _save(self, r: int, label: str) -> None:
        from gesture_utils.importers import ManifestRow

        rel = f"{label}/{label}_{self.session}_{r:03d}.mp4"
        write_video(self.root / rel, np.stack(self._frames), self.fps)
        self.rows.append(ManifestRow(rel, label, "train", f"{self.session}-round{r:03d}",
                                     {"source": "recorded", "session": self.session, "round": r,
                                      "fps": self.fps, "frames": self.n_clip}))
        self._frames, self._wait = [], -1
        self.write_index()
        if self.done:
            self.say(f"saved {len(self.rows)} clips to {self.root}")

    def write_index(self) -> Path:
        """labels.txt + manifest.csv of the clips so far (``split``, else by round from 3 on;
        only the classes recorded so far, so a recording cut short is a loadable dataset)."""
        from gesture_utils.importers import ManifestRow, write_dataset_index
        from gesture_utils.splits import assign_splits

        rows, groups = self.rows, {x.group for x in self.rows}
        if self.split is not None:
            rows = [ManifestRow(x.path, x.label, self.split, x.group, x.params) for x in rows]
        elif len(groups) >= 3:
            val, test, seed = self.splits
            with warnings.catch_warnings():  # a round half done may leave a split short
                warnings.simplefilter("default" if self.done else "ignore")
                splits = assign_splits([x.label for x in rows], [x.group for x in rows],
                                       val_fraction=val, test_fraction=test, seed=seed)
            rows = [ManifestRow(x.path, x.label, s, x.group, x.params)
                    for x, s in zip(rows, splits, strict=True)]
        recorded = [c for c in self.classes if any(x.label == c for x in rows)]
        return write_dataset_index(self.root, recorded, rows)


def record_clips(source: Any, out_dir: str | os.PathLike[str], classes: Sequence[str],
                 clips_per_class: int = 5, seconds: float = 2.0, fps: float | None = None,
                 countdown_s: float = 3.0, **options: Any) -> ClipRecorder:
    """Record your own gesture clips (:class:`ClipRecorder`) from ``source``.

    A :class:`CameraWidget` (or a :class:`LiveDemo`) records in the browser: this starts
    the camera and returns at once; the widget shows the countdowns, frames are recorded
    as they arrive (``recorder.done`` when finished), and the widget then goes back to its
    demo.
    Any other frame source (:func:`~gesture_utils.stream.open_source`) is recorded here
    and now; a source that ends early raises, keeping the clips already saved. Clips are
    what the camera sees, under the names you give: name left/right gestures as the
    camera sees them (a mirrored preview shows them the other way round).
    """
    widget = source.widget if isinstance(source, LiveDemo) else source
    if isinstance(widget, CameraWidget):
        options.setdefault("on_message", None)  # the widget shows the messages
        rec = ClipRecorder(out_dir, classes, clips_per_class, seconds, fps or widget.fps,
                           countdown_s, **options)
        return _record_in_browser(widget, rec)
    src = open_source(source)
    rec = ClipRecorder(out_dir, classes, clips_per_class, seconds, fps or src.fps or 12.0,
                       countdown_s, **options)
    with src:
        for frame in src:
            rec.feed(frame)
            if rec.done:
                break
    if not rec.done:
        raise GestureError(f"frame source {src.name} ended after {len(rec.rows)} clips, kept in "
                           f"{rec.root} (record fewer clips, or use a longer source)")
    return rec


def _record_in_browser(widget: CameraWidget, rec: ClipRecorder) -> ClipRecorder:
    if widget.recorder is not None and not widget.recorder.done:
        raise GestureError(f"this widget is already recording to {widget.recorder.root}: wait "
                           "for it to finish, or press Stop")
    demo_frame, widget.recorder = widget.on_frame, rec

    def restore() -> None:
        widget.on_frame, widget.recorder = demo_frame, None
        widget.source = camera_source(widget) if widget.camera == "live" else ""
        widget.unobserve(on_camera, names="camera")

    def on_frame(frame: np.ndarray) -> dict:
        widget.message = rec.feed(frame)
        if rec.done:
            restore()
        return {"label": rec.phase}

    def on_camera(change: dict) -> None:
        if change["new"] not in ("live", "starting") and not rec.done:  # stopped, failed, closed
            restore()
            widget.message = (f"recording stopped ({widget.error or change['new']}): "
                              f"{len(rec.rows)} finished clips kept in {rec.root}")

    widget.on_frame, widget.source = on_frame, f"browser camera, recording to {rec.root.name}"
    widget.observe(on_camera, names="camera")
    widget.start()  # the browser asks for the camera if it is not live yet
    return rec


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


