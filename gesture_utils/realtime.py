"""Real-time recognition from a frame stream (notebook 06).

A clip model answers "which gesture is this 2-second clip?".  A live system must answer
"did a gesture just happen?" many times a second, cheaply, and say it *once*.  This
module does that in four separable layers:

1. **Sources** (:func:`open_source`): a webcam index, a video file, a folder of frames
   or any array/iterator, all yielding ``(H, W, 3)`` uint8 RGB frames.  Mirroring is
   explicit (``mirror=True`` flips every frame horizontally, which turns a left swipe
   into a right swipe).
2. **Streaming model** (:class:`StreamingRecognizer`): a ring buffer of per-frame
   embeddings.  Each new frame costs one encoder pass; the temporal head re-reads the
   last ``T`` embeddings (cheap).  Recomputing the whole clip would cost ``T`` encoder
   passes per frame.  Works with anything that has ``encode_frame`` and
   ``classify_window`` — the ONNX :class:`~gesture_utils.inference.OnnxStreamingModel`
   or :class:`TorchStreamingAdapter`.
3. **Decisions** (:class:`EventDecider`, pure: probabilities in, events out): EMA
   smoothing, an enter threshold with ``no_gesture`` as the resting state, a lower exit
   threshold (hysteresis), N consecutive updates, and a cooldown.  Every knob lives in
   :class:`~gesture_utils.config.StreamConfig`.
4. **Online metrics** (:func:`event_metrics`): event-level precision / recall / F1 with a
   tolerance window, detection delay in frames, and Levenshtein accuracy of the event
   sequence — measured on long synthetic streams with known ground truth.

Plus notebook helpers: :func:`plot_timeline`, the ipywidgets :class:`LiveView`
(falls back to a video file without a camera), :class:`ColabCameraSource` (browser
camera on Colab) and :func:`record_clips` (record your own gestures into the dataset
layout).
"""

from __future__ import annotations

import argparse
import base64
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from gesture_utils.config import HFLIP_PAIRS, StreamConfig
from gesture_utils.errors import GestureError, input_error
from gesture_utils.inference import normalize, softmax
from gesture_utils.video import IMAGE_SUFFIXES, iter_frames, resize_frame, to_rgb, write_video

# ----------------------------------------------------------------------------- sources


def mirror_frame(frame: np.ndarray) -> np.ndarray:
    """Horizontal flip of one ``(H, W, 3)`` frame (what a selfie preview shows)."""
    return np.ascontiguousarray(frame[:, ::-1])


def mirror_label(label: str) -> str:
    """The label a horizontally flipped gesture carries: ``swipe_left`` <-> ``swipe_right``."""
    return HFLIP_PAIRS.get(label, label)


class FrameSource:
    """An iterable of ``(H, W, 3)`` uint8 RGB frames with a ``name`` (identity) and ``fps``.

    Subclasses implement :meth:`_frames`.  ``mirror=True`` flips every frame
    horizontally.  ``max_frames`` stops after that many frames.  Use as a context manager
    (or call :meth:`close`) to release cameras and files.
    """

    def __init__(self, name: str, fps: float | None = None, mirror: bool = False,
                 max_frames: int | None = None):
        self.name = name
        self.fps = fps
        self.mirror = mirror
        self.max_frames = max_frames
        self._stop = threading.Event()

    def _frames(self) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        self._stop.clear()
        frames = self._frames()
        try:
            n = 0
            while not self._stop.is_set() and (self.max_frames is None or n < self.max_frames):
                try:
                    frame = np.asarray(next(frames))
                except StopIteration:
                    break
                n += 1
                if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                    frame = to_rgb(frame, bgr=False)
                yield mirror_frame(frame) if self.mirror else frame
        finally:
            if hasattr(frames, "close"):
                frames.close()  # release a file decoder stopped half-way
            self.close()

    def stop(self) -> None:
        """Ask a running iteration to end after the current frame (thread-safe)."""
        self._stop.set()

    def close(self) -> None:
        """Release the underlying device/file (idempotent)."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, fps={self.fps}, mirror={self.mirror})"


class ArraySource(FrameSource):
    """Frames from an array ``(N, H, W, 3)`` uint8 RGB or any iterable of frames."""

    def __init__(self, frames: np.ndarray | Iterable[np.ndarray], fps: float | None = None,
                 mirror: bool = False, max_frames: int | None = None, name: str | None = None):
        super().__init__(name or f"array-{id(frames):x}", fps, mirror, max_frames)
        self._data = frames

    def _frames(self) -> Iterator[np.ndarray]:
        yield from self._data


class VideoFileSource(FrameSource):
    """Frames of a video file, decoded one at a time (never all in memory)."""

    def __init__(self, path: str | os.PathLike[str], mirror: bool = False,
                 max_frames: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise input_error(self.path, "video file not found", "check the path")
        cap = cv2.VideoCapture(str(self.path))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0) if cap.isOpened() else 0.0
        cap.release()
        super().__init__(str(self.path.resolve()), fps or None, mirror, max_frames)

    def _frames(self) -> Iterator[np.ndarray]:
        yield from iter_frames(self.path)


class FolderSource(FrameSource):
    """Frame images in a folder, natural order (``2.jpg`` before ``10.jpg``)."""

    def __init__(self, path: str | os.PathLike[str], fps: float | None = None,
                 mirror: bool = False, max_frames: int | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise input_error(self.path, "frame folder not found", "check the path")
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in self.path.iterdir()):
            raise input_error(self.path, "frame folder holds no images",
                              "expected files like 00001.jpg")
        super().__init__(str(self.path.resolve()), fps, mirror, max_frames)

    def _frames(self) -> Iterator[np.ndarray]:
        yield from iter_frames(self.path)


class WebcamSource(FrameSource):
    """Frames from a local camera through ``cv2.VideoCapture(index)``.

    Opening fails with :class:`GestureError` when there is no camera (CI, servers,
    Colab - use :class:`ColabCameraSource` there, or a video file).
    """

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
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
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


#: JavaScript for :class:`ColabCameraSource`: one hidden <video> fed by getUserMedia and
#: a canvas that returns the current frame as a JPEG data URL on each call.
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
    """Frames from the browser's camera on Google Colab (``google.colab.output.eval_js``).

    Each frame is one round trip to the browser (JPEG), so expect roughly 5-15 FPS.
    Only works inside Colab; the browser asks for camera permission on first use.
    """

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


def open_source(source: Any, *, mirror: bool = False, max_frames: int | None = None,
                fps: float | None = None) -> FrameSource:
    """One interface for every frame source.

    ``source``: a :class:`FrameSource` (returned as is, mirror/max_frames updated when
    given), an ``int`` (webcam index), a path to a video file or a frame folder, an
    array ``(N, H, W, 3)``, or any iterable of frames.
    """
    if isinstance(source, FrameSource):
        source.mirror = mirror or source.mirror
        if max_frames is not None:
            source.max_frames = max_frames
        return source
    if isinstance(source, (bool, np.bool_)):
        raise GestureError(f"not a frame source: {source!r}")
    if isinstance(source, (int, np.integer)):
        return WebcamSource(int(source), mirror=mirror, max_frames=max_frames)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return FolderSource(path, fps=fps, mirror=mirror, max_frames=max_frames)
        if path.is_file():
            return VideoFileSource(path, mirror=mirror, max_frames=max_frames)
        if isinstance(source, str) and source.isdigit():
            return WebcamSource(int(source), mirror=mirror, max_frames=max_frames)
        raise input_error(path, "no such video file or frame folder", "check the path")
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[-1] != 3:
            raise GestureError(f"frame array must be (N, H, W, 3), got {source.shape}")
        return ArraySource(source, fps=fps, mirror=mirror, max_frames=max_frames)
    if isinstance(source, Iterable):
        return ArraySource(source, fps=fps, mirror=mirror, max_frames=max_frames)
    raise GestureError(f"not a frame source: {type(source).__name__} (pass a camera index, a "
                       "video file, a frame folder, an array or an iterator of frames)")


# --------------------------------------------------------------------- streaming models


@runtime_checkable
class StreamingModel(Protocol):
    """What the recogniser needs: per-frame encoder + temporal head over ``T`` embeddings."""

    labels: list[str]
    num_frames: int

    def encode_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB -> ``(D,)`` float32 embedding."""
        ...

    def classify_window(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(T, D)`` embeddings, oldest first -> ``(K,)`` probabilities and the hand
        probe's ``(T, 3)`` evidence ``(P(hand), x, y)``, or ``None`` without a probe."""
        ...


class TorchStreamingAdapter:
    """Streaming interface over a PyTorch ``ViTTemporal``-style model (for tests/notebooks).

    ``model`` must have ``encode_frames(x (B, T, 3, S, S)) -> (B, T, D)`` and
    ``classify_embeddings(emb (B, T, D)) -> (B, K)`` logits, like
    :class:`gesture_utils.models.ViTTemporal` (use :meth:`from_model` for one).  Preprocessing is the
    training one (:func:`gesture_utils.video.resize_frame`, then
    :func:`gesture_utils.inference.normalize`), as in :class:`OnnxStreamingModel`.
    """

    def __init__(self, model: Any, labels: Sequence[str], num_frames: int, image_size: int,
                 mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                 device: str = "cpu", resize_mode: str = "stretch"):
        import torch  # only here: the ONNX path of this module needs no torch

        self._torch = torch
        self.model = model.to(device).eval()
        self.labels = list(labels)
        self.num_frames, self.image_size = int(num_frames), int(image_size)
        self.mean, self.std = tuple(mean), tuple(std)
        self.device, self.resize_mode = device, resize_mode

    @classmethod
    def from_model(cls, model: Any, device: str = "cpu") -> TorchStreamingAdapter:
        """Adapter for a :class:`~gesture_utils.models.ViTTemporal` (labels, frames, size
        and normalisation from its ``labels`` and ``clip`` attributes)."""
        clip = model.clip
        return cls(model, model.labels, clip.num_frames, clip.image_size, clip.mean, clip.std,
                   device=device)

    def preprocess_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 -> ``(1, 3, S, S)`` float32, normalised."""
        small = resize_frame(np.asarray(frame_rgb), self.image_size, self.resize_mode)
        return normalize(small, self.mean, self.std)[None]

    def encode_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            x = self._torch.from_numpy(self.preprocess_frame(frame_rgb)).to(self.device)
            return self.model.encode_frames(x[None]).reshape(-1).float().cpu().numpy()

    def classify_window(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(T, D)`` embeddings -> class probabilities ``(K,)`` and the hand probe's
        evidence ``(T, 3)`` (``None`` when the model's probe was never trained)."""
        with self._torch.inference_mode():
            e = self._torch.from_numpy(np.asarray(emb, dtype=np.float32)[None]).to(self.device)
            logits = self.model.classify_embeddings(e)[0].float().cpu().numpy()
            probe = getattr(self.model, "hand_probe", None)
            hand = (self.model.locate_hand(e)[0].float().cpu().numpy()
                    if probe is not None and bool(probe.trained) else None)
        return softmax(logits.astype(np.float32)), hand


class EmbeddingRing:
    """Fixed-size ring buffer of the last ``T`` embeddings ``(T, D)``."""

    def __init__(self, num_frames: int):
        if num_frames < 1:
            raise GestureError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames = int(num_frames)
        self._buf: np.ndarray | None = None
        self._next = 0
        self.count = 0

    def reset(self) -> None:
        self._buf, self._next, self.count = None, 0, 0

    @property
    def full(self) -> bool:
        return self.count >= self.num_frames

    def push(self, emb: np.ndarray) -> None:
        emb = np.asarray(emb, dtype=np.float32).reshape(-1)
        if self._buf is None:
            self._buf = np.zeros((self.num_frames, emb.shape[0]), dtype=np.float32)
        self._buf[self._next] = emb
        self._next = (self._next + 1) % self.num_frames
        self.count += 1

    def window(self) -> np.ndarray:
        """The buffered embeddings oldest-first, ``(T, D)``; before the buffer is full the
        oldest embedding is repeated at the front."""
        if self._buf is None:
            raise GestureError("embedding buffer is empty: push at least one frame first")
        if self.full:
            return np.concatenate([self._buf[self._next:], self._buf[: self._next]])
        have = self._buf[: self.count]
        pad = np.repeat(have[:1], self.num_frames - self.count, axis=0)
        return np.concatenate([pad, have])


# ----------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class GestureEvent:
    """One recognised gesture: fired at source ``frame`` with smoothed ``confidence``."""

    label: str
    frame: int
    confidence: float


#: where each swipe moves the hand: (axis, sign) in frame coordinates (x right, y down)
SWIPE_DIRECTIONS: dict[str, tuple[int, int]] = {
    "swipe_left": (0, -1), "swipe_right": (0, 1), "swipe_up": (1, -1), "swipe_down": (1, 1)}


def hand_supports(label: str, hand: np.ndarray, min_frames: int, min_travel: float) -> bool:
    """Does the hand probe's evidence ``(T, 3)`` rows ``(P(hand), x, y)`` back an event
    of ``label``?  The hand must be in view (P >= 0.5) in ``min_frames`` frames at least;
    for a swipe, it must also travel ``min_travel`` in the swipe's direction, from the
    first two frames that show it to the last two."""
    hand = np.asarray(hand, dtype=np.float64)
    seen = hand[:, 0] >= 0.5
    if int(seen.sum()) < min_frames:
        return False
    if label not in SWIPE_DIRECTIONS:
        return True
    axis, sign = SWIPE_DIRECTIONS[label]
    track = hand[seen, 1 + axis]
    k = min(2, len(track) // 2)
    return sign * (track[-k:].mean() - track[:k].mean()) >= min_travel


class EventDecider:
    """Turns a stream of class probabilities into discrete gesture events (pure logic).

    Per :meth:`update` (one temporal-head output):

    1. smooth: ``s = alpha * p + (1 - alpha) * s`` (the first update sets ``s = p``);
    2. while a gesture is *active*, wait until its smoothed probability drops below
       ``exit_threshold`` (hysteresis: lower than the enter threshold, so a wobbling
       probability does not fire twice) - then return to rest;
    3. at rest, the best non-rest class must stay above ``enter_threshold`` for
       ``min_consecutive`` updates in a row, at least ``cooldown_frames`` source
       frames must have passed since the last event and, when the update brings the
       hand probe's evidence (``hand``) and ``hand_evidence`` is on, the evidence must
       back the class (:func:`hand_supports`); then it fires one event and becomes
       active.

    The rest class (``cfg.rest_label``, e.g. ``no_gesture``) never fires.
    """

    def __init__(self, labels: Sequence[str], cfg: StreamConfig | None = None):
        cfg = cfg or StreamConfig()
        if not 0.0 < cfg.ema_alpha <= 1.0:
            raise GestureError(f"StreamConfig.ema_alpha must be in (0, 1], got {cfg.ema_alpha}")
        if cfg.exit_threshold > cfg.enter_threshold:
            raise GestureError(f"StreamConfig.exit_threshold ({cfg.exit_threshold}) must be <= "
                               f"enter_threshold ({cfg.enter_threshold})")
        if cfg.min_consecutive < 1 or cfg.cooldown_frames < 0:
            raise GestureError("StreamConfig.min_consecutive must be >= 1 and "
                               "cooldown_frames >= 0")
        self.labels = list(labels)
        self.cfg = cfg
        self.rest = self.labels.index(cfg.rest_label) if cfg.rest_label in self.labels else None
        self._gesture_idx = np.array([i for i in range(len(self.labels)) if i != self.rest])
        if self._gesture_idx.size == 0:
            raise GestureError(f"labels {self.labels} hold no gesture besides the rest class")
        self.reset()

    def reset(self) -> None:
        """Forget everything (new source)."""
        self.smoothed: np.ndarray | None = None
        self.active: int | None = None
        self._streak_label: int | None = None
        self._streak = 0
        self._last_event_frame: int | None = None
        self._updates = 0

    @property
    def rest_label(self) -> str:
        return self.cfg.rest_label

    @property
    def state(self) -> str:
        """The active gesture's label, or the rest label."""
        return self.labels[self.active] if self.active is not None else self.cfg.rest_label

    def update(self, probs: np.ndarray, frame: int | None = None,
               hand: np.ndarray | None = None) -> GestureEvent | None:
        """Feed one ``(K,)`` probability vector observed at source ``frame`` (default: the
        update count), with the window's ``(T, 3)`` hand evidence if the model has it;
        returns the event it fires, if any."""
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if p.shape[0] != len(self.labels):
            raise GestureError(f"got {p.shape[0]} probabilities for {len(self.labels)} labels")
        frame = self._updates if frame is None else int(frame)
        self._updates += 1
        a = self.cfg.ema_alpha
        self.smoothed = p.copy() if self.smoothed is None else a * p + (1 - a) * self.smoothed
        s = self.smoothed

        if self.active is not None:
            if s[self.active] >= self.cfg.exit_threshold:
                return None
            self.active = None  # back to rest; fall through, another gesture may start

        best = int(self._gesture_idx[np.argmax(s[self._gesture_idx])])
        if s[best] >= self.cfg.enter_threshold:
            self._streak = self._streak + 1 if best == self._streak_label else 1
            self._streak_label = best
        else:
            self._streak, self._streak_label = 0, None
        cooled = (self._last_event_frame is None
                  or frame - self._last_event_frame >= self.cfg.cooldown_frames)
        backed = (hand is None or not self.cfg.hand_evidence
                  or hand_supports(self.labels[best], hand, self.cfg.min_hand_frames,
                                   self.cfg.min_travel))
        if self._streak >= self.cfg.min_consecutive and cooled and backed:
            self.active = best
            self._last_event_frame = frame
            self._streak, self._streak_label = 0, None
            return GestureEvent(self.labels[best], frame, float(s[best]))
        return None


# ------------------------------------------------------------------------ the recogniser


def latency_summary(encode_ms: Sequence[float | None], head_ms: Sequence[float | None],
                    total_ms: Sequence[float], starts: Sequence[float] | None = None
                    ) -> dict[str, float]:
    """Latency figures (ms) of a run of frames; ``None``/``nan`` = that stage did not run.

    ``encode_*``/``head_*``: p50/p95 over the frames where the stage ran; ``work_*``:
    p50/p95 of the whole step on frames that ran the encoder (what one processed frame
    costs - it must fit in a frame interval); ``mean_ms``: average over *all* frames
    (the amortised cost with ``frame_step > 1``); ``capacity_fps`` = 1000 / mean_ms;
    ``fps``: frames per wall-clock second between step starts (``nan`` without them).
    """
    def stage(values: Sequence[float | None]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    enc, head, total = stage(encode_ms), stage(head_ms), np.asarray(total_ms, dtype=np.float64)
    out: dict[str, float] = {}
    for name, arr in (("encode", enc[~np.isnan(enc)]), ("head", head[~np.isnan(head)]),
                      ("work", total[~np.isnan(enc)] if enc.size == total.size else total)):
        out[f"{name}_p50_ms"] = float(np.percentile(arr, 50)) if arr.size else float("nan")
        out[f"{name}_p95_ms"] = float(np.percentile(arr, 95)) if arr.size else float("nan")
    out["mean_ms"] = float(total.mean()) if total.size else float("nan")
    out["capacity_fps"] = 1000.0 / out["mean_ms"] if total.size and out["mean_ms"] > 0 \
        else float("nan")
    st = np.asarray(starts if starts is not None else [], dtype=np.float64)
    out["fps"] = (float((st.size - 1) / (st[-1] - st[0])) if st.size >= 2 and st[-1] > st[0]
                  else float("nan"))
    return out


class LatencyStats:
    """Running per-frame latency (ms) and achieved FPS over the last ``window`` frames
    (what a live display shows; see :func:`latency_summary` for the figures)."""

    def __init__(self, window: int = 60):
        self.window = int(window)
        self.reset()

    def reset(self) -> None:
        self._starts: deque[float] = deque(maxlen=self.window)
        self._encode: deque[float | None] = deque(maxlen=self.window)
        self._head: deque[float | None] = deque(maxlen=self.window)
        self._total: deque[float] = deque(maxlen=self.window)
        self.frames = 0

    def add(self, start: float, encode_ms: float | None, head_ms: float | None,
            total_ms: float) -> None:
        self._starts.append(start)
        self._encode.append(encode_ms)
        self._head.append(head_ms)
        self._total.append(total_ms)
        self.frames += 1

    @property
    def fps(self) -> float:
        """Frames per wall-clock second between recent :meth:`add` calls (includes the
        time spent reading the source); ``nan`` before two frames."""
        if len(self._starts) < 2 or self._starts[-1] <= self._starts[0]:
            return float("nan")
        return (len(self._starts) - 1) / (self._starts[-1] - self._starts[0])

    @property
    def capacity_fps(self) -> float:
        """Frames per second the recogniser alone could process (1000 / mean step ms)."""
        return 1000.0 / float(np.mean(self._total)) if self._total else float("nan")

    def summary(self) -> dict[str, float]:
        """:func:`latency_summary` of the frames in the window."""
        return latency_summary(list(self._encode), list(self._head), list(self._total),
                               list(self._starts))


@dataclass
class StepResult:
    """What one source frame produced.

    ``probs``/``smoothed`` are ``(K,)`` when the head ran on this frame, else ``None``
    (``smoothed`` then holds the last value).  ``label`` is the decider's state
    (active gesture or rest); ``top`` the argmax of the smoothed probabilities.
    Latencies in milliseconds; ``fps`` is the running achieved rate.
    """

    frame_index: int
    probs: np.ndarray | None
    smoothed: np.ndarray | None
    label: str
    top: str
    event: GestureEvent | None
    encode_ms: float | None
    head_ms: float | None
    total_ms: float
    fps: float


@dataclass
class StreamResult:
    """Everything a run over one source produced (see :meth:`StreamingRecognizer.run`).

    ``head_frames (M,)`` source frames where the head ran, ``probs``/``smoothed``
    ``(M, K)``; ``frame_labels``/``frame_top`` one label per source frame (decider state
    / held argmax); ``events`` in firing order; ``latency``: :func:`latency_summary` of
    the whole run; per-frame ``encode_ms``/``head_ms`` (``nan`` where the stage did not
    run) and ``total_ms``, each ``(N,)``.
    """

    labels: list[str]
    head_frames: np.ndarray
    probs: np.ndarray
    smoothed: np.ndarray
    frame_labels: list[str]
    frame_top: list[str]
    events: list[GestureEvent]
    latency: dict[str, float]
    total_ms: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    encode_ms: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    head_ms: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def num_frames(self) -> int:
        return len(self.frame_labels)


class StreamingRecognizer:
    """Streaming gesture recognition: ring buffer + encoder per frame + head every k frames.

    ``model`` has ``labels``, ``num_frames``, ``encode_frame`` and ``classify_window``
    (:class:`StreamingModel`).  Call :meth:`step` per frame (pass ``source_id`` and the
    state resets whenever it changes) or :meth:`run` over a whole source.
    """

    def __init__(self, model: StreamingModel, cfg: StreamConfig | None = None):
        cfg = cfg or StreamConfig()
        if cfg.frame_step < 0 or cfg.head_every < 1:
            raise GestureError("StreamConfig.frame_step must be >= 0 and head_every >= 1")
        self.model = model
        self.cfg = cfg
        self.labels = list(model.labels)
        self.num_frames = int(model.num_frames)
        self.ring = EmbeddingRing(self.num_frames)
        self.decider = EventDecider(self.labels, cfg)
        self.stats = LatencyStats(cfg.stats_window)
        self.source_id: Any = None
        self.frame_step = self.step_for(None)
        self.reset()

    def step_for(self, fps: float | None) -> int:
        """The encoder's frame step for a source at ``fps`` (``cfg.frame_step`` unless 0)."""
        if self.cfg.frame_step:
            return self.cfg.frame_step
        return max(1, round((fps or 12.0) * self.cfg.window_seconds / self.num_frames))

    def reset(self) -> None:
        """Clear the buffer, the smoothing state and the frame counter (new source)."""
        self.ring.reset()
        self.decider.reset()
        self.stats.reset()
        self.frame_index = 0
        self._encoded = 0

    def step(self, frame_rgb: np.ndarray, source_id: Any = None) -> StepResult:
        """Process one ``(H, W, 3)`` uint8 RGB frame.

        Every ``self.frame_step``-th frame (:meth:`step_for`) is encoded and pushed into
        the ring; every ``head_every``-th encoded frame the head classifies the window
        (once it is full, unless ``wait_for_full_window=False``) and the decider updates.
        """
        if source_id is not None and source_id != self.source_id:
            self.reset()
            self.source_id = source_id
        start = time.perf_counter()
        idx = self.frame_index
        self.frame_index += 1
        encode_ms = head_ms = None
        probs = None
        event = None
        if idx % self.frame_step == 0:
            t0 = time.perf_counter()
            self.ring.push(self.model.encode_frame(frame_rgb))
            encode_ms = (time.perf_counter() - t0) * 1e3
            self._encoded += 1
            ready = self.ring.full or not self.cfg.wait_for_full_window
            first = self.num_frames if self.cfg.wait_for_full_window else 1
            if ready and (self._encoded - first) % self.cfg.head_every == 0:
                t0 = time.perf_counter()
                probs, hand = self.model.classify_window(self.ring.window())
                probs = np.asarray(probs, dtype=np.float32)
                head_ms = (time.perf_counter() - t0) * 1e3
                event = self.decider.update(probs, idx, hand)
        total_ms = (time.perf_counter() - start) * 1e3
        self.stats.add(start, encode_ms, head_ms, total_ms)
        sm = self.decider.smoothed
        top = self.labels[int(np.argmax(sm))] if sm is not None else self.decider.rest_label
        return StepResult(idx, probs, None if sm is None else sm.astype(np.float32),
                          self.decider.state, top, event, encode_ms, head_ms, total_ms,
                          self.stats.fps)

    def run(self, source: Any, *, max_frames: int | None = None,
            on_step: Callable[[np.ndarray, StepResult], Any] | None = None,
            on_event: Callable[[GestureEvent], Any] | None = None) -> StreamResult:
        """Run over a whole source (anything :func:`open_source` accepts), starting fresh.

        ``cfg.mirror`` flips frames.  ``on_step(frame, step)`` is called for every frame
        (e.g. to update a widget); ``on_event(event)`` for every event.
        """
        src = open_source(source, mirror=self.cfg.mirror, max_frames=max_frames)
        self.reset()
        self.source_id = src.name
        self.frame_step = self.step_for(src.fps)
        head_frames, probs, smoothed, events = [], [], [], []
        frame_labels, frame_top, total, enc, head, starts = [], [], [], [], [], []
        with src:
            for frame in src:
                starts.append(time.perf_counter())
                st = self.step(frame)
                frame_labels.append(st.label)
                frame_top.append(st.top)
                total.append(st.total_ms)
                enc.append(np.nan if st.encode_ms is None else st.encode_ms)
                head.append(np.nan if st.head_ms is None else st.head_ms)
                if st.probs is not None:
                    head_frames.append(st.frame_index)
                    probs.append(st.probs)
                    smoothed.append(st.smoothed)
                if st.event is not None:
                    events.append(st.event)
                    if on_event is not None:
                        on_event(st.event)
                if on_step is not None:
                    on_step(frame, st)
        k = len(self.labels)
        return StreamResult(
            labels=list(self.labels),
            head_frames=np.asarray(head_frames, dtype=np.int64),
            probs=np.asarray(probs, dtype=np.float32).reshape(-1, k),
            smoothed=np.asarray(smoothed, dtype=np.float32).reshape(-1, k),
            frame_labels=frame_labels, frame_top=frame_top, events=events,
            latency=latency_summary(enc, head, total, starts),
            total_ms=np.asarray(total, dtype=np.float64),
            encode_ms=np.asarray(enc, dtype=np.float64), head_ms=np.asarray(head, dtype=np.float64))


# ------------------------------------------------------------------------ online metrics


@dataclass(frozen=True)
class Segment:
    """A ground-truth gesture occupying source frames ``start <= f < end``; ``onset`` is
    the frame its motion begins (detection delay is measured from it; default ``start``)."""

    label: str
    start: int
    end: int
    onset: int | None = None

    @property
    def reference(self) -> int:
        return self.start if self.onset is None else self.onset


def segments_from_frame_labels(frame_labels: Sequence[str],
                               rest_label: str = "no_gesture") -> list[Segment]:
    """Runs of equal non-rest labels in a per-frame label list, as :class:`Segment`\\ s."""
    out: list[Segment] = []
    start = 0
    for i in range(1, len(frame_labels) + 1):
        if i == len(frame_labels) or frame_labels[i] != frame_labels[start]:
            if frame_labels[start] != rest_label:
                out.append(Segment(str(frame_labels[start]), start, i))
            start = i
    return out


def segments_from_events(events: Sequence[dict[str, Any]]) -> list[Segment]:
    """Segments from :class:`gesture_utils.generation.Stream` events (dicts with
    ``label``, ``start``, ``end`` and optionally ``motion_start``)."""
    return [Segment(str(e["label"]), int(e["start"]), int(e["end"]),
                    None if e.get("motion_start") is None else int(e["motion_start"]))
            for e in events]


def levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1) between sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class EventMetrics:
    """Event-level scores of one stream.

    ``tp`` events matched to a ground-truth gesture of the same class fired inside
    ``[start, end + tolerance)`` (each gesture matched at most once); ``fp`` other events
    (false alarms, duplicates, wrong class); ``fn`` gestures never matched.
    ``delays`` = event frame - gesture onset (motion start, else start), per match.  ``levenshtein_accuracy`` =
    1 - edit distance / number of true gestures (can be negative with many false alarms).
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    delays: tuple[int, ...]
    mean_delay: float
    levenshtein: int
    levenshtein_accuracy: float
    wrong_label: int

    def as_dict(self) -> dict[str, float]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision,
                "recall": self.recall, "f1": self.f1, "mean_delay": self.mean_delay,
                "levenshtein": self.levenshtein,
                "levenshtein_accuracy": self.levenshtein_accuracy,
                "wrong_label": self.wrong_label}


def match_events(events: Sequence[GestureEvent], segments: Sequence[Segment],
                 tolerance: int) -> list[tuple[int, int]]:
    """Pairs ``(event index, segment index)``: each event, in time order, takes the earliest
    unmatched same-class segment whose window ``[start, end + tolerance)`` contains it."""
    used: set[int] = set()
    pairs = []
    for ei in sorted(range(len(events)), key=lambda i: events[i].frame):
        ev = events[ei]
        for si, seg in enumerate(segments):
            if si in used or seg.label != ev.label:
                continue
            if seg.start <= ev.frame < seg.end + tolerance:
                used.add(si)
                pairs.append((ei, si))
                break
    return pairs


def event_metrics(events: Sequence[GestureEvent], truth: Sequence[Segment] | Sequence[str],
                  tolerance: int = StreamConfig.tolerance_frames,
                  rest_label: str = "no_gesture") -> EventMetrics:
    """Score predicted ``events`` against ``truth`` (segments, or one label per frame)."""
    if len(truth) and isinstance(truth[0], str):
        segments = segments_from_frame_labels(list(truth), rest_label)  # type: ignore[arg-type]
    else:
        segments = list(truth)  # type: ignore[arg-type]
    pairs = match_events(events, segments, tolerance)
    tp = len(pairs)
    fp, fn = len(events) - tp, len(segments) - tp
    precision = tp / len(events) if events else 0.0
    recall = tp / len(segments) if segments else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    delays = tuple(int(events[e].frame - segments[s].reference) for e, s in pairs)
    matched = {e for e, _ in pairs}
    wrong = sum(1 for i, ev in enumerate(events) if i not in matched and any(
        seg.start <= ev.frame < seg.end + tolerance and seg.label != ev.label
        for seg in segments))
    pred_seq = [ev.label for ev in sorted(events, key=lambda e: e.frame)]
    true_seq = [seg.label for seg in segments]
    dist = levenshtein(pred_seq, true_seq)
    lev_acc = 1.0 - dist / len(true_seq) if true_seq else float(not pred_seq)
    return EventMetrics(tp, fp, fn, precision, recall, f1, delays,
                        float(np.mean(delays)) if delays else float("nan"), dist, lev_acc, wrong)


def stream_scores(events: Sequence[GestureEvent], stream: Any,
                  tolerance: int = StreamConfig.tolerance_frames,
                  rest_label: str = "no_gesture") -> dict[str, float]:
    """Everything the series reports for one stream (a
    :class:`~gesture_utils.generation.Stream`): event counts, precision, recall, F1,
    Levenshtein accuracy, false events per minute, and the mean delay in seconds from
    the end of a gesture's motion to its event.  :func:`pool_scores` adds streams up."""
    segments = segments_from_events(stream.events)
    m = event_metrics(events, segments, tolerance, rest_label)
    pairs = match_events(events, segments, tolerance)
    after_end = sum(events[e].frame - stream.events[s].get("motion_end", segments[s].end)
                    for e, s in pairs)
    return pool_scores([{"tp": m.tp, "fp": m.fp, "fn": m.fn, "levenshtein": m.levenshtein,
                         "gestures": len(segments), "minutes": len(stream.labels) / stream.fps / 60,
                         "delay_sum_s": after_end / stream.fps}])


def _rates(tp: int, fp: int, fn: int, lev: int, gestures: int, minutes: float,
           delay_sum_s: float) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else float(gestures == 0)
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "fp_per_min": fp / minutes if minutes else float("nan"),
            "levenshtein_accuracy": 1 - lev / gestures if gestures else float(tp + fp == 0),
            "delay_after_end_s": delay_sum_s / tp if tp else float("nan")}


def pool_scores(scores: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """:func:`stream_scores` of several streams, summed into one (counts and minutes add
    up; the rates are recomputed from the sums)."""
    keys = ("tp", "fp", "fn", "levenshtein", "gestures", "minutes", "delay_sum_s")
    total = {k: sum(s[k] for s in scores) for k in keys}
    return {**total, "streams": len(scores), **_rates(*(total[k] for k in keys))}  # type: ignore[arg-type]


def score_streams(model: StreamingModel, streams: Sequence[Any], cfg: StreamConfig,
                  tolerance_s: float | None = None) -> tuple[dict[str, float], list[StreamResult]]:
    """Run a fresh recogniser over each :class:`~gesture_utils.generation.Stream` at its own
    frame rate; returns the pooled :func:`stream_scores` and the runs.  ``tolerance_s``:
    how late an event may match, in seconds (default ``cfg.tolerance_frames`` frames)."""
    runs, scores = [], []
    for stream in streams:
        result = StreamingRecognizer(model, cfg).run(ArraySource(stream.frames, fps=stream.fps))
        tol = cfg.tolerance_frames if tolerance_s is None else round(tolerance_s * stream.fps)
        runs.append(result)
        scores.append(stream_scores(result.events, stream, tol, cfg.rest_label))
    return pool_scores(scores), runs


def frame_accuracy(pred: Sequence[str], truth: Sequence[str]) -> float:
    """Fraction of frames whose predicted label equals the true one."""
    if len(pred) != len(truth) or not len(truth):
        raise GestureError(f"need equal, non-empty label lists, got {len(pred)} and {len(truth)}")
    return float(np.mean([p == t for p, t in zip(pred, truth, strict=True)]))


# -------------------------------------------------------------------------- plotting


def plot_timeline(result: StreamResult, truth: Sequence[str] | None = None,
                  rest_label: str = "no_gesture", ax: Any = None, title: str | None = None):
    """Smoothed probabilities over time, fired events (triangles) and ground-truth
    gestures (shaded spans, same colour per class).  Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.5))
    colours = {lab: plt.cm.tab10(i % 10) for i, lab in enumerate(result.labels)}
    if truth is not None:
        for seg in segments_from_frame_labels(list(truth), rest_label):
            ax.axvspan(seg.start, seg.end, color=colours.get(seg.label, "grey"), alpha=0.15, lw=0)
    for k, lab in enumerate(result.labels):
        style = ":" if lab == rest_label else "-"
        ax.plot(result.head_frames, result.smoothed[:, k], style, color=colours[lab], label=lab,
                lw=1.5)
    for ev in result.events:
        ax.plot([ev.frame], [1.04], "v", color=colours[ev.label], ms=9, clip_on=False)
    ax.set_ylim(0, 1.08)
    ax.set_xlim(0, max(result.num_frames, 1))
    ax.set_xlabel("source frame")
    ax.set_ylabel("smoothed probability")
    ax.set_title(title or "shaded: true gestures · ▼: events fired")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return ax


# -------------------------------------------------------------------------- live view


class LiveView:
    """An ipywidgets live demo: frame + current label, probability bars, event log,
    latency/FPS line, Start/Stop buttons.

    ``source`` is tried first (default: webcam 0, flipped when ``mirror=True`` - a selfie
    camera); when it cannot be opened the view falls back to ``fallback`` (a video file /
    frame folder / array, never flipped) and says so.  A run ends with its source, after
    ``max_frames`` frames or ``max_seconds`` of wall time, or on Stop.  :meth:`launch` runs a live camera
    in a background thread (the buttons stay responsive) and a fallback file in the
    foreground (what CI executes).  :meth:`show_step` holds all the drawing logic, so it
    is testable without a camera or a display.  The recogniser's own ``cfg.mirror``
    should be False here (the view decides what to flip).
    """

    def __init__(self, recognizer: StreamingRecognizer, source: Any = 0, fallback: Any = None,
                 mirror: bool = False, display_size: int = 224, log_size: int = 8,
                 max_frames: int | None = None, max_seconds: float | None = None,
                 realtime_fallback: bool = True):
        import ipywidgets as w

        self.recognizer = recognizer
        self.source, self.fallback, self.mirror = source, fallback, mirror
        self.display_size, self.log_size = int(display_size), int(log_size)
        self.max_frames, self.max_seconds = max_frames, max_seconds
        self.realtime_fallback = realtime_fallback
        self.events: list[GestureEvent] = []
        self.fell_back = False
        self.result: StreamResult | None = None
        self._thread: threading.Thread | None = None
        self._src: FrameSource | None = None
        self.image = w.Image(format="jpeg", width=self.display_size, height=self.display_size)
        self.label = w.HTML(value=self._label_html(recognizer.decider.rest_label, None))
        self.bars = {lab: w.FloatProgress(value=0.0, min=0.0, max=1.0, description=lab,
                                          style={"description_width": "90px"},
                                          layout=w.Layout(width="320px"))
                     for lab in recognizer.labels}
        self.log = w.HTML(value="<i>no events yet</i>")
        self.status = w.HTML(value="stopped")
        self.source_note = w.HTML(value="")
        self.start_button = w.Button(description="Start", icon="play", button_style="success")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger")
        self.start_button.on_click(lambda _: self.launch(background=True))
        self.stop_button.on_click(lambda _: self.stop())
        right = w.VBox([self.label, *self.bars.values(), self.status, self.source_note])
        self.widget = w.VBox([w.HBox([self.start_button, self.stop_button]),
                              w.HBox([self.image, right]), self.log])

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
            return src
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
        small = resize_frame(frame, self.display_size)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        if ok:
            self.image.value = jpg.tobytes()
        self.label.value = self._label_html(step.label, step.event)
        if step.smoothed is not None:
            for lab, p in zip(self.recognizer.labels, step.smoothed, strict=True):
                self.bars[lab].value = float(p)
        if step.event is not None:
            self.events.append(step.event)
            lines = [f"frame {e.frame:5d} · <b>{e.label}</b> ({e.confidence:.2f})"
                     for e in reversed(self.events[-self.log_size:])]
            self.log.value = "<br>".join(lines)
        stats = self.recognizer.stats
        self.status.value = (f"frame {step.frame_index} · {step.total_ms:5.1f} ms · "
                             f"{stats.fps:5.1f} fps achieved · "
                             f"{stats.capacity_fps:5.0f} fps capacity")

    def run(self, source: FrameSource | None = None,
            max_frames: int | None = None) -> StreamResult | None:
        """Run in the foreground until the source ends, ``max_frames``, ``max_seconds``,
        :meth:`stop` or an interrupt (Ctrl-C / the notebook's stop button); returns the
        run's result."""
        self._src = source or self.open()
        pace = (self._src.fps if self.realtime_fallback and self.fell_back and self._src.fps
                else None)
        begin = time.perf_counter()
        last = [begin]

        def on_step(frame: np.ndarray, step: StepResult) -> None:
            self.show_step(frame, step)
            if self.max_seconds is not None and time.perf_counter() - begin > self.max_seconds:
                self._src.stop()
            if pace:  # play a file at its own speed, as a camera would deliver it
                wait = 1.0 / pace - (time.perf_counter() - last[0])
                if wait > 0:
                    time.sleep(wait)
                last[0] = time.perf_counter()

        try:
            self.result = self.recognizer.run(self._src, max_frames=max_frames or self.max_frames,
                                              on_step=on_step)
        except KeyboardInterrupt:
            self._src.close()
            self.status.value += " · interrupted"
            return None
        self.status.value += " · stopped"
        return self.result

    def launch(self, background: bool | None = None) -> StreamResult | None:
        """Open the source and run it: in a background thread for a live camera (default)
        or when ``background=True``; in the foreground for the fallback file."""
        if self._thread is not None and self._thread.is_alive():
            return None
        src = self.open()
        if background is None:
            background = not self.fell_back
        if not background:
            return self.run(src)
        self._thread = threading.Thread(target=self._run_safely, args=(src,), daemon=True)
        self._thread.start()
        return None

    def start(self) -> None:
        """Run in a background thread (returns at once); :meth:`stop` ends it."""
        self.launch(background=True)

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


# -------------------------------------------------------------------------- recorder


def record_clips(source: Any, out_dir: str | os.PathLike[str], classes: Sequence[str],
                 clips_per_class: int = 5, seconds: float = 2.0, fps: float | None = None,
                 countdown_s: float = 3.0, *, session: str = "me",
                 on_message: Callable[[str], Any] | None = print,
                 on_frame: Callable[[np.ndarray], Any] | None = None,
                 val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0,
                 overwrite: bool = False) -> Path:
    """Record your own gesture clips from a frame source into the dataset layout.

    Records in *rounds*: round ``r`` takes one clip of every class, so slow changes
    (light, posture, fatigue) are spread over all classes instead of tagging one of them.
    Before each clip, ``countdown_s`` seconds of frames are read and dropped (shown via
    ``on_frame``; on a camera that is a real-time countdown).  Each clip
    (``seconds * fps`` frames) goes to ``out_dir/<class>/<class>_<session>_<r>.mp4``.
    A round is one group (its clips share a split).  Writes labels.txt + manifest.csv at
    the end; returns ``out_dir``.  ``fps`` defaults to the source's, else 12.
    """
    from gesture_utils.importers import ManifestRow, write_dataset_index
    from gesture_utils.splits import assign_splits

    out_dir = Path(out_dir)
    if (out_dir / "manifest.csv").exists() and not overwrite:
        raise input_error(out_dir, "already holds a dataset",
                          "pick another name, or pass overwrite=True")
    classes = list(classes)
    if not classes or clips_per_class < 1:
        raise GestureError("record_clips needs at least one class and clips_per_class >= 1")
    src = open_source(source)
    fps = float(fps or src.fps or 12.0)
    n_clip = max(1, round(seconds * fps))
    n_count = max(0, round(countdown_s * fps))
    say = on_message or (lambda _msg: None)
    frames_iter = iter(src)
    rows: list[ManifestRow] = []

    def take(n: int) -> list[np.ndarray]:
        got = []
        for _ in range(n):
            try:
                frame = next(frames_iter)
            except StopIteration:
                raise GestureError(f"frame source {src.name} ended after {len(rows)} clips "
                                   "(record fewer clips, or use a longer source)") from None
            if on_frame is not None:
                on_frame(frame)
            got.append(frame)
        return got

    try:
        for r in range(clips_per_class):
            for label in classes:
                say(f"round {r + 1}/{clips_per_class}: get ready for '{label}' "
                    f"({countdown_s:.0f} s)")
                take(n_count)
                say(f"recording '{label}' for {seconds:.1f} s")
                clip = np.stack(take(n_clip))
                rel = f"{label}/{label}_{session}_{r:03d}.mp4"
                write_video(out_dir / rel, clip, fps)
                rows.append(ManifestRow(rel, label, "", f"{session}-round{r:03d}",
                                        {"source": "recorded", "session": session, "round": r,
                                         "fps": fps, "frames": n_clip}))
    finally:
        src.close()
    if clips_per_class >= 3:
        splits = assign_splits([x.label for x in rows], [x.group for x in rows],
                               val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    else:
        splits = ["train"] * len(rows)
    rows = [ManifestRow(x.path, x.label, s, x.group, x.params)
            for x, s in zip(rows, splits, strict=True)]
    say(f"saved {len(rows)} clips to {out_dir}")
    return write_dataset_index(out_dir, classes, rows)


# ------------------------------------------------------------------------------- CLI


def load_streaming_model(model: str | os.PathLike[str], threads: int | None = None) -> Any:
    """An :class:`~gesture_utils.inference.OnnxStreamingModel` from ``<name>.encoder.onnx``
    + ``<name>.head.onnx``; ``model`` is ``<name>``, ``<name>.onnx`` or either graph."""
    from gesture_utils.inference import OnnxStreamingModel

    p = str(model)
    for suffix in (".encoder.onnx", ".head.onnx", ".onnx"):
        if p.endswith(suffix):
            p = p[: -len(suffix)]
            break
    enc, head = Path(p + ".encoder.onnx"), Path(p + ".head.onnx")
    for f in (enc, head):
        if not f.is_file():
            raise input_error(f, "streaming graph not found",
                              "export the model first (notebook 04 / gesture_utils.export)")
    return OnnxStreamingModel(enc, head, threads=threads)


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """``gesture-utils stream SOURCE --model artifacts/vit_temporal [--mirror] ...``."""
    d = StreamConfig()
    parser.add_argument("source", help="webcam index (0), a video file or a frame folder")
    parser.add_argument("--model", required=True,
                        help="exported model prefix, e.g. artifacts/vit_temporal")
    parser.add_argument("--mirror", action="store_true", help="flip frames (selfie camera)")
    parser.add_argument("--frame-step", type=int, default=d.frame_step,
                        help="encode every k-th frame (0: from the source's fps)")
    parser.add_argument("--head-every", type=int, default=d.head_every)
    parser.add_argument("--alpha", type=float, default=d.ema_alpha, help="EMA weight")
    parser.add_argument("--enter", type=float, default=d.enter_threshold)
    parser.add_argument("--exit", type=float, default=d.exit_threshold)
    parser.add_argument("--min-consecutive", type=int, default=d.min_consecutive)
    parser.add_argument("--cooldown", type=int, default=d.cooldown_frames)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = StreamConfig(frame_step=args.frame_step, head_every=args.head_every,
                       ema_alpha=args.alpha, enter_threshold=args.enter,
                       exit_threshold=args.exit, min_consecutive=args.min_consecutive,
                       cooldown_frames=args.cooldown, mirror=args.mirror)
    model = load_streaming_model(args.model, threads=args.threads)
    source = int(args.source) if str(args.source).isdigit() else args.source
    rec = StreamingRecognizer(model, cfg)
    src = open_source(source, mirror=cfg.mirror, max_frames=args.max_frames)
    fps = src.fps or 0.0

    def on_event(ev: GestureEvent) -> None:
        when = f" t={ev.frame / fps:7.2f}s" if fps else ""
        print(f"frame {ev.frame:6d}{when}  {ev.label:<14s} {ev.confidence:.2f}", flush=True)

    result = rec.run(src, on_event=on_event)
    lat = result.latency
    print(f"{result.num_frames} frames, {len(result.events)} events · per encoded frame p50 "
          f"{lat['work_p50_ms']:.1f} ms (encoder {lat['encode_p50_ms']:.1f}, head "
          f"{lat['head_p50_ms']:.1f}) · {lat['mean_ms']:.1f} ms per frame on average · "
          f"{lat['fps']:.1f} fps achieved")
    return 0


__all__ = [
    "SWIPE_DIRECTIONS",
    "ArraySource",
    "ColabCameraSource",
    "EmbeddingRing",
    "EventDecider",
    "EventMetrics",
    "FolderSource",
    "FrameSource",
    "GestureEvent",
    "LatencyStats",
    "LiveView",
    "Segment",
    "StepResult",
    "StreamResult",
    "StreamingModel",
    "StreamingRecognizer",
    "TorchStreamingAdapter",
    "VideoFileSource",
    "WebcamSource",
    "configure_cli",
    "decode_data_url",
    "event_metrics",
    "frame_accuracy",
    "hand_supports",
    "latency_summary",
    "levenshtein",
    "load_streaming_model",
    "match_events",
    "mirror_frame",
    "mirror_label",
    "open_source",
    "plot_timeline",
    "pool_scores",
    "record_clips",
    "score_streams",
    "segments_from_events",
    "segments_from_frame_labels",
    "stream_scores",
]
