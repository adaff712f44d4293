"""Reading and writing gesture clips: one reader for video files and frame folders (notebook 01).

A clip is ``(T, H, W, 3)`` uint8 RGB.  Everything that reads clips goes through
:func:`read_frames` / :func:`read_clip`, and every camera frame becomes a model input
through :func:`resize_frame`, so training and inference prepare pixels the same way:

* any clip source: a video file OpenCV opens, or a folder of frame images in natural
  order (``2.jpg`` before ``10.jpg``);
* never trust the frame count: decode every frame, then subsample
  (:func:`sample_indices`); the count only detects a truncated file;
* RGB out (gray, BGRA and 16-bit images converted); frames are *resized* to ``S x S``
  without cropping (a swipe starts and ends near the edge), ``mode="crop"`` on request;
* bad input raises one :class:`~gesture_utils.errors.GestureError` naming the file
  (FFmpeg's own log lines are silenced); a too-short clip is padded with a warning.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

# FFmpeg (inside OpenCV) prints its own messages to stderr for every broken file, next to
# the one clear error we raise. -8 = AV_LOG_QUIET; read when OpenCV opens a file, so
# this also works when cv2 was imported first. setdefault: a user's own choice wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from gesture_utils.errors import GestureError, input_error
from gesture_utils.paths import atomic_path

#: File suffixes treated as frame images inside a frame folder (lower case).
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
)
#: File suffixes treated as video files during discovery (lower case).
VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
)
#: A decoded file may have this fraction of its *reported* frames missing before we call
#: it truncated (containers often report an estimated count that is off by a frame or two).
TRUNCATION_TOLERANCE = 0.05
#: FourCC used by :func:`write_video` per suffix (OpenCV's bundled FFmpeg supports these).
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
RESIZE_MODES = ("stretch", "crop")


def natural_key(name: str) -> tuple:
    """Sort key that orders ``frame2`` before ``frame10`` (digits compared as numbers)."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p), p) if p.isdigit() else (1, p.lower(), p) for p in parts)


def to_rgb(frame: np.ndarray, bgr: bool = True) -> np.ndarray:
    """One image as ``(H, W, 3)`` uint8 RGB, from gray, BGR (RGB with ``bgr=False``),
    BGRA/RGBA, uint8 or uint16 (scaled to 8 bits)."""
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    elif frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating) and frame.size and float(frame.max()) <= 1.0:
            frame = frame * 255.0
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise GestureError(f"cannot interpret an image of shape {frame.shape} as a colour frame")
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if bgr else np.ascontiguousarray(frame)


def resize_frame(frame: np.ndarray, size: int, mode: str = "stretch") -> np.ndarray:
    """``(H, W, 3)`` -> ``(size, size, 3)``, the one resize of training and inference:
    ``stretch`` the whole frame or ``crop`` the centre square first; ``INTER_AREA`` when
    shrinking, ``INTER_LINEAR`` when enlarging."""
    if mode not in RESIZE_MODES:
        raise GestureError(f"resize mode {mode!r} is not one of {RESIZE_MODES}")
    if size < 1:
        raise GestureError(f"image size must be >= 1, got {size}")
    h, w = frame.shape[:2]
    if mode == "crop" and h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        frame = frame[top : top + side, left : left + side]
        h = w = side
    if (h, w) == (size, size):
        return np.ascontiguousarray(frame)
    interp = cv2.INTER_AREA if size < max(h, w) else cv2.INTER_LINEAR
    return cv2.resize(frame, (size, size), interpolation=interp)


def frame_files(folder: Path) -> list[Path]:
    """The frame images of a frame folder, in natural order (hidden files skipped)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
             and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def _rgb_of(img: np.ndarray, path: Path) -> np.ndarray:
    """:func:`to_rgb`, with its error naming the file the image came from."""
    try:
        return to_rgb(img)
    except GestureError as e:
        raise input_error(path, str(e), "re-export the clip as 8-bit RGB or gray") from None


def _folder_frames(path: Path) -> Iterator[np.ndarray]:
    files = frame_files(path)
    if not files:
        raise input_error(path, "frame folder holds no images",
                          f"expected files like 00001.jpg ({', '.join(sorted(IMAGE_SUFFIXES))})")
    shape = None
    for f in files:
        if f.stat().st_size == 0:
            raise input_error(f, "image file is empty (0 bytes)", "re-extract the frames")
        img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise input_error(f, "not a readable image", "re-extract the frames")
        rgb = _rgb_of(img, f)
        shape = rgb.shape if shape is None else shape
        if rgb.shape != shape:
            raise input_error(f, f"frame size {rgb.shape[:2]} differs from the first "
                                 f"frame's {shape[:2]}", "all frames of a clip must match")
        yield rgb


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise input_error(path, "cannot be opened as a video (not a video, or truncated/corrupt)",
                              "check that the file plays; re-export it as .mp4")
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            n += 1
            yield _rgb_of(frame, path)
    finally:
        cap.release()
    if n == 0:
        raise input_error(path, "video has zero decodable frames", "re-export or delete this clip")
    if reported > 0 and reported - n > max(1.0, TRUNCATION_TOLERANCE * reported):
        raise input_error(path, f"video is truncated or corrupt: decoded {n} of {reported} frames",
                          "re-export or delete this clip")


def iter_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Every decodable frame of a clip as ``(H, W, 3)`` uint8 RGB, in order.  A missing,
    empty, unreadable, mixed-size or truncated clip raises :class:`GestureError`."""
    path = Path(path)
    if not path.exists():
        raise input_error(path, "clip not found", "check the path / manifest entry")
    if path.is_file() and path.stat().st_size == 0:
        raise input_error(path, "file is empty (0 bytes)", "re-export or delete this clip")
    yield from (_folder_frames(path) if path.is_dir() else _video_frames(path))


def read_frames(path: str | os.PathLike[str]) -> np.ndarray:
    """Every decodable frame of a video file or frame folder: ``(N, H, W, 3)`` uint8 RGB."""
    return np.stack(list(iter_frames(path)))


def sample_indices(n_available: int, num_frames: int) -> np.ndarray:
    """``num_frames`` indices spread uniformly over ``n_available`` frames:
    ``floor((i + 0.5) * N / T)``; a short clip repeats frames evenly (``N=3, T=8`` ->
    ``0 0 0 1 1 2 2 2``)."""
    if n_available < 1:
        raise GestureError(f"cannot sample frames from a clip with {n_available} frames")
    if num_frames < 1:
        raise GestureError(f"num_frames must be >= 1, got {num_frames}")
    idx = np.floor((np.arange(num_frames) + 0.5) * n_available / num_frames).astype(np.int64)
    return np.minimum(idx, n_available - 1)


def read_clip(path: str | os.PathLike[str], num_frames: int, image_size: int,
              mode: str = "stretch") -> np.ndarray:
    """A model-ready clip ``(T, S, S, 3)`` uint8 RGB: every frame decoded and resized, then
    :func:`sample_indices`; a clip shorter than ``T`` is padded, with a warning naming it."""
    frames = [resize_frame(f, image_size, mode) for f in iter_frames(path)]
    if len(frames) < num_frames:
        warnings.warn(f"{path}: only {len(frames)} frame(s), fewer than the {num_frames} asked "
                      "for; frames are repeated to pad it (is this really a video clip?)",
                      stacklevel=2)
    idx = sample_indices(len(frames), num_frames)
    return np.stack([frames[i] for i in idx])


def write_video(path: str | os.PathLike[str], frames_rgb: np.ndarray, fps: float) -> Path:
    """Write ``(N, H, W, 3)`` uint8 RGB frames as a video (atomically); returns the path.
    ``.mp4`` uses ``mp4v``, ``.avi`` MJPG; an odd height/width loses its last row/column."""
    path = Path(path)
    frames_rgb = np.asarray(frames_rgb)
    if frames_rgb.ndim != 4 or frames_rgb.shape[-1] != 3 or len(frames_rgb) == 0:
        raise GestureError(f"{path}: expected frames of shape (N, H, W, 3), got {frames_rgb.shape}")
    if frames_rgb.dtype != np.uint8:
        raise GestureError(f"{path}: expected uint8 frames, got {frames_rgb.dtype}")
    suffix = path.suffix.lower()
    if suffix not in _FOURCC:
        raise input_error(path, f"unsupported video suffix {path.suffix!r}",
                          f"use one of {sorted(_FOURCC)}")
    if fps <= 0:
        raise input_error(path, f"fps must be > 0, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The encoders need even sizes and would silently drop an odd last row/column; do it
    # here explicitly so every codec behaves alike.
    h, w = (d - d % 2 for d in frames_rgb.shape[1:3])
    if h < 2 or w < 2:
        raise input_error(path, f"frames of size {frames_rgb.shape[1:3]} are too small to encode")
    frames_rgb = frames_rgb[:, :h, :w]
    with atomic_path(path) as tmp:  # same suffix: OpenCV picks the container from it
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*_FOURCC[suffix]), float(fps), (w, h))
        if not writer.isOpened():
            raise input_error(path, "OpenCV could not open a video writer",
                              "check the folder is writable and the codec is available")
        try:
            for frame in frames_rgb:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise input_error(path, f"the video encoder ({_FOURCC[suffix]}) wrote nothing",
                              "this OpenCV build may lack the codec; try .avi (MJPG) or "
                              "reinstall opencv-python")
    return path


def write_y4m(path: str | os.PathLike[str], frames: np.ndarray, fps: float) -> Path:
    """Write ``(N, H, W, 3)`` uint8 RGB frames as a YUV4MPEG2 file (I420, 4:2:0, so
    ``H`` and ``W`` must be even; ``fps`` may be fractional), atomically; returns the path.
    Chromium's ``--use-file-for-fake-video-capture=<file>.y4m`` plays it as a webcam."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0 or frames.dtype != np.uint8:
        raise input_error(path, f"expected uint8 frames of shape (N, H, W, 3), got "
                                f"{frames.dtype} {frames.shape}")
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise input_error(path, f"Y4M (4:2:0) needs an even width and height, got {w}x{h}",
                          "crop or resize the frames")
    if fps <= 0:
        raise input_error(path, f"fps must be > 0, got {fps}")
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path

