"""The stream core (notebook 06): frame sources, the ring of frame embeddings, the
decision rule and the recogniser that glues model, ring and rule together.

Per new frame: one encoder pass into :class:`EmbeddingRing`, the temporal head over the
last ``T`` embeddings, and :class:`EventDecider` turns probabilities into events, once per
gesture. Knobs: :class:`~gesture_utils.config.StreamConfig`. Event metrics are in
:mod:`gesture_utils.evaluation`; the browser camera, live demo and recorder in
:mod:`gesture_utils.demo`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gesture_utils.config import HFLIP_PAIRS, StreamConfig
from gesture_utils.errors import GestureError, input_error
from gesture_utils.inference import normalize, softmax
from gesture_utils.video import frame_files, iter_frames, resize_frame, to_rgb


# ----------------------------------------------------------------------------- sources
def mirror_label(label: str) -> str:
    """The label a horizontally flipped gesture carries: ``swipe_left`` <-> ``swipe_right``."""
    return HFLIP_PAIRS.get(label, label)


class FrameSource:
    """``(H, W, 3)`` uint8 RGB frames with a ``name`` (identity) and ``fps``; subclasses
    implement :meth:`_frames`. ``mirror`` flips frames horizontally, ``max_frames`` stops
    early, :meth:`stop` ends a running iteration, :meth:`close` (or ``with``) releases it."""

    def __init__(self, name: str, fps: float | None = None, mirror: bool = False,
                 max_frames: int | None = None):
        self.name, self.fps, self.mirror, self.max_frames = name, fps, mirror, max_frames
        self._stop = threading.Event()

    def _frames(self) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        self._stop.clear()
        frames = self._frames()
        try:
            for _ in itertools.count() if self.max_frames is None else range(self.max_frames):
                frame = None if self._stop.is_set() else next(frames, None)
                if frame is None:
                    break
                frame = np.asarray(frame)
                if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                    frame = to_rgb(frame, bgr=False)
                yield np.ascontiguousarray(frame[:, ::-1]) if self.mirror else frame
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
    """Frames from an array ``(N, H, W, 3)`` uint8 RGB (a rendered stream) or any iterable."""

    def __init__(self, frames: np.ndarray | Iterable[np.ndarray], fps: float | None = None,
                 mirror: bool = False, max_frames: int | None = None, name: str | None = None):
        super().__init__(name or f"array-{id(frames):x}", fps, mirror, max_frames)
        self._data = frames

    def _frames(self) -> Iterator[np.ndarray]:
        yield from self._data


class PathSource(FrameSource):
    """Frames of a video file (at the file's fps) or of a folder of frame images (natural
    order: ``2.jpg`` before ``10.jpg``), decoded one at a time."""

    def __init__(self, path: str | os.PathLike[str], fps: float | None = None,
                 mirror: bool = False, max_frames: int | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise input_error(self.path, "no such video file or frame folder", "check the path")
        if self.path.is_dir() and not frame_files(self.path):
            raise input_error(self.path, "frame folder holds no images",
                              "expected files like 00001.jpg")
        if self.path.is_file():
            cap = cv2.VideoCapture(str(self.path))
            fps = (float(cap.get(cv2.CAP_PROP_FPS) or 0) if cap.isOpened() else 0.0) or None
            cap.release()
        super().__init__(str(self.path.resolve()), fps, mirror, max_frames)

    def _frames(self) -> Iterator[np.ndarray]:
        yield from iter_frames(self.path)


class WebcamSource(FrameSource):
    """Frames of a local camera (``cv2.VideoCapture(index)``); for the command line
    (``gesture-utils stream 0``) on the machine the camera is plugged into; notebooks use
    the browser's camera (:class:`gesture_utils.demo.CameraWidget`). A
    :class:`GestureError` when there is none."""

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
                              "pass a video file or frame folder instead")
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


def open_source(source: Any, *, mirror: bool = False, max_frames: int | None = None,
                fps: float | None = None) -> FrameSource:
    """One interface for every frame source: a :class:`FrameSource` (returned as is,
    ``mirror``/``max_frames`` updated when given), an ``int`` (webcam index), a path to a
    video file or a frame folder, an array ``(N, H, W, 3)`` or any iterable of frames."""
    if isinstance(source, FrameSource):
        source.mirror = mirror or source.mirror
        if max_frames is not None:
            source.max_frames = max_frames
        return source
    if isinstance(source, (bool, np.bool_)):
        raise GestureError(f"not a frame source: {source!r}")
    if isinstance(source, (str, os.PathLike)):
        if Path(source).exists() or not (isinstance(source, str) and source.isdigit()):
            return PathSource(source, fps=fps, mirror=mirror, max_frames=max_frames)
    if isinstance(source, (int, np.integer, str)):
        return WebcamSource(int(source), mirror=mirror, max_frames=max_frames)
    if isinstance(source, np.ndarray) and (source.ndim != 4 or source.shape[-1] != 3):
        raise GestureError(f"frame array must be (N, H, W, 3), got {source.shape}")
    if isinstance(source, Iterable):
        return ArraySource(source, fps=fps, mirror=mirror, max_frames=max_frames)
    raise GestureError(f"not a frame source: {type(source).__name__} (pass a camera index, a "
                       "video file, a frame folder, an array or an iterator of frames)")


# --------------------------------------------------------------------- streaming models
class TorchStreamingAdapter:
    """The streaming interface over a PyTorch :class:`~gesture_utils.models.ViTTemporal`,
    with the training preprocessing (:func:`~gesture_utils.video.resize_frame`, then
    :func:`~gesture_utils.inference.normalize` with the model's ``clip`` settings)."""

    def __init__(self, model: Any, device: str = "cpu"):
        import torch  # only here: the ONNX path needs no torch

        self._torch, self.device = torch, device
        self.model = model.to(device).eval()
        self.labels, clip = list(model.labels), model.clip
        self.num_frames, self.image_size = int(clip.num_frames), int(clip.image_size)
        self.mean, self.std = tuple(clip.mean), tuple(clip.std)

    def encode_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        x = normalize(resize_frame(np.asarray(frame_rgb), self.image_size), self.mean, self.std)
        with self._torch.inference_mode():
            x = self._torch.from_numpy(x[None, None]).to(self.device)
            return self.model.encode_frames(x).reshape(-1).float().cpu().numpy()

    def classify_window(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with self._torch.inference_mode():
            e = self._torch.from_numpy(np.asarray(emb, dtype=np.float32)[None]).to(self.device)
            logits = self.model.classify_embeddings(e)[0].float().cpu().numpy()
            probe = getattr(self.model, "hand_probe", None)
            hand = (self.model.locate_hand(e)[0].float().cpu().numpy()
                    if probe is not None and bool(probe.trained) else None)
        return softmax(logits), hand


class EmbeddingRing:
    """The last ``T`` embeddings, oldest first (notebook 06's ``Ring``); before ``T``
    pushes the window repeats the oldest embedding at the front."""

    def __init__(self, num_frames: int):
        self.num_frames = int(num_frames)
        self.reset()

    def reset(self) -> None:
        self.buf: np.ndarray | None = None
        self.pos = 0  # next slot to overwrite = the oldest entry once full
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count >= self.num_frames

    def push(self, emb: np.ndarray) -> None:
        emb = np.asarray(emb, dtype=np.float32).reshape(-1)
        if self.buf is None:
            self.buf = np.zeros((self.num_frames, emb.size), np.float32)
        self.buf[self.pos] = emb
        self.pos = (self.pos + 1) % self.num_frames
        self.count += 1

    def window(self) -> np.ndarray:
        if self.buf is None:
            raise GestureError("embedding buffer is empty: push at least one frame first")
        if self.full:
            return np.roll(self.buf, -self.pos, axis=0)
        return self.buf[np.maximum(np.arange(self.num_frames) + self.count - self.num_frames, 0)]


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
    """Does the hand probe's evidence ``(T, 3)``, rows ``(P(hand), x, y)``, back an event of
    ``label``? A hand in view (P >= 0.5) in ``min_frames`` frames and, for a swipe,
    ``min_travel`` its way from the first two frames that show it to the last two."""
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
    """Head outputs in, events out (pure): notebook 06's ``decide``, one update at a time.

    1. smoothing ``s = alpha * p + (1 - alpha) * s``; 2. a gesture class must reach
    ``enter_threshold`` ``min_consecutive`` updates in a row (the rest class never fires);
    3. hysteresis: an active gesture holds until it falls below ``exit_threshold``;
    4. ``cooldown_frames`` source frames between events; 5. with ``hand_evidence``, the
    window's hand evidence must back the class (:func:`hand_supports`).
    """

    def __init__(self, labels: Sequence[str], cfg: StreamConfig | None = None):
        self.labels, self.cfg = list(labels), cfg or StreamConfig()
        c = self.cfg
        if not 0.0 < c.ema_alpha <= 1.0:
            raise GestureError(f"StreamConfig.ema_alpha must be in (0, 1], got {c.ema_alpha}")
        if c.exit_threshold > c.enter_threshold:
            raise GestureError(f"StreamConfig.exit_threshold ({c.exit_threshold}) must be <= "
                               f"enter_threshold ({c.enter_threshold})")
        if c.min_consecutive < 1 or c.cooldown_frames < 0:
            raise GestureError("StreamConfig.min_consecutive must be >= 1 and cooldown_frames >= 0")
        self.gestures = [k for k, lab in enumerate(self.labels) if lab != c.rest_label]
        if not self.gestures:
            raise GestureError(f"labels {self.labels} hold no gesture besides the rest class")
        self.reset()

    def reset(self) -> None:
        """Forget everything (new source)."""
        self.smoothed: np.ndarray | None = None
        self.active: int | None = None
        self.last_label: int | None = None
        self.last_event: int | None = None
        self.streak = self.updates = 0

    @property
    def state(self) -> str:
        """The active gesture's label, or the rest label."""
        return self.labels[self.active] if self.active is not None else self.cfg.rest_label

    def update(self, probs: np.ndarray, frame: int | None = None,
               hand: np.ndarray | None = None) -> GestureEvent | None:
        """Feed one ``(K,)`` head output seen at source ``frame`` (default: the update
        count) with its window's ``(T, 3)`` hand evidence, if any; returns the event fired."""
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if p.shape[0] != len(self.labels):
            raise GestureError(f"got {p.shape[0]} probabilities for {len(self.labels)} labels")
        c, f = self.cfg, self.updates if frame is None else int(frame)
        self.updates += 1
        s = self.smoothed = (p.copy() if self.smoothed is None
                             else c.ema_alpha * p + (1 - c.ema_alpha) * self.smoothed)
        if self.active is not None:
            if s[self.active] >= c.exit_threshold:
                return None
            self.active = None
        best = max(self.gestures, key=lambda k: s[k])
        if s[best] >= c.enter_threshold:
            self.streak = self.streak + 1 if best == self.last_label else 1
            self.last_label = best
        else:
            self.streak, self.last_label = 0, None
        cooled = self.last_event is None or f - self.last_event >= c.cooldown_frames
        backed = (hand is None or not c.hand_evidence
                  or hand_supports(self.labels[best], hand, c.min_hand_frames, c.min_travel))
        if self.streak >= c.min_consecutive and cooled and backed:
            self.active, self.last_event, self.streak, self.last_label = best, f, 0, None
            return GestureEvent(self.labels[best], f, float(s[best]))
        return None


# ------------------------------------------------------------------------------ latency
def latency_summary(encode_ms: Sequence[float | None], head_ms: Sequence[float | None],
                    total_ms: Sequence[float], starts: Sequence[float] | None = None
                    ) -> dict[str, float]:
    """Latency (ms) of a run's frames (``None``/``nan``: the stage did not run): p50/p95 of
    ``encode``, ``head`` and ``work`` (whole steps that ran the encoder); ``mean_ms`` over
    all frames, ``capacity_fps`` = 1000 / mean_ms, ``fps`` between step ``starts``."""
    enc, head, total = (np.asarray(x, dtype=np.float64) for x in (encode_ms, head_ms, total_ms))
    out: dict[str, float] = {}
    for name, arr in (("encode", enc[~np.isnan(enc)]), ("head", head[~np.isnan(head)]),
                      ("work", total[~np.isnan(enc)])):
        p50, p95 = np.percentile(arr, [50, 95]) if arr.size else (np.nan, np.nan)
        out[f"{name}_p50_ms"], out[f"{name}_p95_ms"] = float(p50), float(p95)
    out["mean_ms"] = float(total.mean()) if total.size else float("nan")
    out["capacity_fps"] = (1000.0 / out["mean_ms"] if total.size and out["mean_ms"] > 0
                           else float("nan"))
    st = np.asarray(starts if starts is not None else [], dtype=np.float64)
    out["fps"] = (float((st.size - 1) / (st[-1] - st[0])) if st.size >= 2 and st[-1] > st[0]
                  else float("nan"))
    return out


class RunningLatency:
    """Latency and achieved FPS over the last ``window`` frames (what a live display shows):
    :meth:`summary` is :func:`latency_summary` of them."""

    def __init__(self, window: int = 60):
        self.rows: deque[tuple[float, float | None, float | None, float]] = deque(maxlen=window)

    def reset(self) -> None:
        self.rows.clear()

    def add(self, start: float, encode_ms: float | None, head_ms: float | None,
            total_ms: float) -> None:
        self.rows.append((start, encode_ms, head_ms, total_ms))

    def summary(self) -> dict[str, float]:
        starts, enc, head, total = zip(*self.rows, strict=True) if self.rows else ((),) * 4
        return latency_summary(enc, head, total, starts)

    @property
    def fps(self) -> float:
        """Frames per wall-clock second between recent steps (reading the source included);
        read on every step, so computed from the first and last start alone."""
        if len(self.rows) < 2 or self.rows[-1][0] <= self.rows[0][0]:
            return float("nan")
        return (len(self.rows) - 1) / (self.rows[-1][0] - self.rows[0][0])

    @property
    def capacity_fps(self) -> float:
        """Frames per second the recogniser alone could process (1000 / mean step ms)."""
        mean = float(np.mean([r[3] for r in self.rows])) if self.rows else 0.0
        return 1000.0 / mean if mean > 0 else float("nan")


# ------------------------------------------------------------------------ the recogniser
@dataclass
class StepResult:
    """What one source frame produced: ``probs`` ``(K,)`` when the head ran on it, else
    ``None``; ``smoothed`` the decider's latest (held) value; ``label`` the decider's state
    (active gesture or rest), ``top`` the smoothed argmax; latencies in ms, running ``fps``."""

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
    """A run over one source (:meth:`StreamingRecognizer.run`): ``head_frames (M,)`` where
    the head ran and its ``probs``/``smoothed`` ``(M, K)``; one ``frame_labels`` /
    ``frame_top`` entry per source frame; ``events`` in firing order; ``latency`` of the
    run (:func:`latency_summary`); per-frame ``total_ms``, ``encode_ms``, ``head_ms``
    ``(N,)`` (``nan`` where the stage did not run)."""

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

    @classmethod
    def of_steps(cls, labels: list[str], steps: list[StepResult],
                 starts: list[float]) -> StreamResult:
        """The result of a run's steps (``starts``: when each step began)."""
        k, heads = len(labels), [st for st in steps if st.probs is not None]
        enc, head, total = (np.asarray([getattr(st, f) for st in steps], dtype=np.float64)
                            for f in ("encode_ms", "head_ms", "total_ms"))
        return cls(labels=list(labels),
                   head_frames=np.asarray([st.frame_index for st in heads], dtype=np.int64),
                   probs=np.asarray([st.probs for st in heads], np.float32).reshape(-1, k),
                   smoothed=np.asarray([st.smoothed for st in heads], np.float32).reshape(-1, k),
                   frame_labels=[st.label for st in steps], frame_top=[st.top for st in steps],
                   events=[st.event for st in steps if st.event is not None],
                   latency=latency_summary(enc, head, total, starts),
                   total_ms=total, encode_ms=enc, head_ms=head)


class StreamingRecognizer:
    """Model + ring + decider: the encoder on every ``frame_step``-th frame, the head every
    ``head_every``-th encoded frame once the ring is full (``wait_for_full_window``), the
    decider on each head output. :meth:`step` takes one frame (a new ``source_id``
    resets the state), :meth:`run` a whole source."""

    def __init__(self, model: Any, cfg: StreamConfig | None = None):
        cfg = cfg or StreamConfig()
        if cfg.frame_step < 0 or cfg.head_every < 1:
            raise GestureError("StreamConfig.frame_step must be >= 0 and head_every >= 1")
        self.model, self.cfg = model, cfg
        self.labels, self.num_frames = list(model.labels), int(model.num_frames)
        self.ring = EmbeddingRing(self.num_frames)
        self.decider = EventDecider(self.labels, cfg)
        self.stats = RunningLatency(cfg.stats_window)
        self.source_id: Any = None
        self.frame_step = self.step_for(None)
        self.reset()

    def step_for(self, fps: float | None) -> int:
        """The encoder's frame step for a source at ``fps`` (``cfg.frame_step`` unless 0:
        then a window spans ``cfg.window_seconds``, at 12 fps when ``fps`` is unknown)."""
        if self.cfg.frame_step:
            return self.cfg.frame_step
        return max(1, round((fps or 12.0) * self.cfg.window_seconds / self.num_frames))

    def reset(self) -> None:
        """Clear the ring, the decider, the statistics and the frame counter (new source)."""
        self.ring.reset()
        self.decider.reset()
        self.stats.reset()
        self.frame_index = self._encoded = 0

    def step(self, frame_rgb: np.ndarray, source_id: Any = None) -> StepResult:
        """Process one ``(H, W, 3)`` uint8 RGB frame."""
        if source_id is not None and source_id != self.source_id:
            self.reset()
            self.source_id = source_id
        start = time.perf_counter()
        idx, self.frame_index = self.frame_index, self.frame_index + 1
        encode_ms = head_ms = probs = event = None
        if idx % self.frame_step == 0:
            self.ring.push(self.model.encode_frame(frame_rgb))
            encode_ms = (time.perf_counter() - start) * 1e3
            self._encoded += 1
            first = self.num_frames if self.cfg.wait_for_full_window else 1
            if self._encoded >= first and (self._encoded - first) % self.cfg.head_every == 0:
                t0 = time.perf_counter()
                probs, hand = self.model.classify_window(self.ring.window())
                probs = np.asarray(probs, dtype=np.float32)
                head_ms = (time.perf_counter() - t0) * 1e3
                event = self.decider.update(probs, idx, hand)
        total_ms = (time.perf_counter() - start) * 1e3
        self.stats.add(start, encode_ms, head_ms, total_ms)
        sm = self.decider.smoothed
        top = self.labels[int(np.argmax(sm))] if sm is not None else self.cfg.rest_label
        return StepResult(idx, probs, None if sm is None else sm.astype(np.float32),
                          self.decider.state, top, event, encode_ms, head_ms, total_ms,
                          self.stats.fps)

    def run(self, source: Any, *, max_frames: int | None = None,
            on_step: Callable[[np.ndarray, StepResult], Any] | None = None,
            on_event: Callable[[GestureEvent], Any] | None = None) -> StreamResult:
        """Run over a whole source (anything :func:`open_source` takes; ``cfg.mirror``
        flips it), starting fresh; ``on_step(frame, step)`` after every frame (e.g. to
        draw it), ``on_event(event)`` for every event."""
        src = open_source(source, mirror=self.cfg.mirror, max_frames=max_frames)
        self.reset()
        self.source_id, self.frame_step = src.name, self.step_for(src.fps)
        steps, starts = [], []
        with src:
            for frame in src:
                starts.append(time.perf_counter())
                steps.append(st := self.step(frame))
                if st.event is not None and on_event is not None:
                    on_event(st.event)
                if on_step is not None:
                    on_step(frame, st)
        return StreamResult.of_steps(self.labels, steps, starts)


def score_streams(model: Any, streams: Sequence[Any], cfg: StreamConfig,
                  tolerance_s: float | None = None) -> tuple[dict[str, float], list[StreamResult]]:
    """Run a fresh recogniser over each :class:`~gesture_utils.generation.Stream` at its own
    frame rate: the pooled :func:`~gesture_utils.evaluation.stream_scores` and the runs.
    ``tolerance_s``: how late an event may match (default ``cfg.tolerance_frames`` frames)."""
    from gesture_utils.evaluation import pool_scores, stream_scores

    runs, scores = [], []
    for stream in streams:
        result = StreamingRecognizer(model, cfg).run(ArraySource(stream.frames, fps=stream.fps))
        tol = cfg.tolerance_frames if tolerance_s is None else round(tolerance_s * stream.fps)
        runs.append(result)
        scores.append(stream_scores(result.events, stream, tol, cfg.rest_label))
    return pool_scores(scores), runs


# ------------------------------------------------------------------------------- CLI
def load_streaming_model(model: str | os.PathLike[str], threads: int | None = None) -> Any:
    """An :class:`~gesture_utils.inference.OnnxStreamingModel` from ``<name>.encoder.onnx``
    + ``<name>.head.onnx``; ``model`` is ``<name>``, ``<name>.onnx`` or either graph."""
    from gesture_utils.inference import OnnxStreamingModel

    p = str(model)
    p = next((p[: -len(s)] for s in (".encoder.onnx", ".head.onnx", ".onnx") if p.endswith(s)), p)
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
