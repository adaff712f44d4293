"""Clip reading/writing: colour, sampling, odd sizes, frame folders and every bad-input kind."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from gesture_utils import video
from gesture_utils.errors import GestureError
from gesture_utils.video import (
    read_clip,
    read_frames,
    resize_frame,
    sample_indices,
    to_rgb,
    write_video,
)


def moving_square(n: int = 24, h: int = 48, w: int = 64, side: int = 10) -> np.ndarray:
    """A white square moving left -> right on black: (n, h, w, 3) uint8."""
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        x = round(i * (w - side) / max(1, n - 1))
        frames[i, h // 2 - side // 2 : h // 2 + side // 2, x : x + side] = 255
    return frames


def centroid_x(frame: np.ndarray) -> float:
    gray = frame.mean(axis=-1)
    mask = gray > 128
    return float(np.nonzero(mask)[1].mean())


@pytest.fixture(scope="module")
def square_mp4(tmp_path_factory):
    path = tmp_path_factory.mktemp("vid") / "square.mp4"
    return write_video(path, moving_square(), fps=12)


# ---------------------------------------------------------------- writing and reading


def test_write_read_roundtrip_keeps_count_order_and_rgb(tmp_path):
    frames = moving_square()
    frames[:, :4, :4] = (255, 0, 0)  # a red corner: RGB order must survive BGR codecs
    path = write_video(tmp_path / "a.mp4", frames, fps=12)
    back = read_frames(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    xs = [centroid_x(f) for f in back]
    assert all(b > a for a, b in zip(xs, xs[1:], strict=False))
    r, g, b = back[:, 1, 1].mean(axis=0)
    assert r > 180 and g < 80 and b < 80
    # mp4v is lossy, but close to the input
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 8


def test_write_video_validates_and_leaves_no_temp(tmp_path):
    write_video(tmp_path / "a.avi", moving_square(6), fps=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.avi"]  # no temp left behind
    with pytest.raises(GestureError, match="suffix"):
        write_video(tmp_path / "b.gif", moving_square(6), fps=10)
    with pytest.raises(GestureError, match="uint8"):
        write_video(tmp_path / "c.mp4", moving_square(6).astype(np.float32), fps=10)
    with pytest.raises(GestureError, match=r"\(N, H, W, 3\)"):
        write_video(tmp_path / "d.mp4", moving_square(6)[..., 0], fps=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.avi"]


class _Cv2Proxy:
    """Stands in for the ``cv2`` module inside ``gesture_utils.video``: every attribute is
    the real one unless set on the proxy (so a test can break one function there only)."""

    def __init__(self, **overrides):
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(cv2, name)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_write_video_failing_mid_clip_leaves_no_file(tmp_path, monkeypatch, exc):
    """The encoder has already written frames to the temp file when frame 3 fails: neither
    the clip nor the temp file may remain (also for Ctrl-C)."""
    calls = []
    temp_sizes = []

    def cvt(frame, code):
        calls.append(code)
        if len(calls) == 3:
            temp_sizes.extend(p.stat().st_size for p in tmp_path.iterdir())
            raise exc("disk on fire")
        return cv2.cvtColor(frame, code)

    monkeypatch.setattr(video, "cv2", _Cv2Proxy(cvtColor=cvt))
    with pytest.raises(exc):
        write_video(tmp_path / "a.mp4", moving_square(12), fps=12)
    assert len(temp_sizes) == 1  # the temp file existed when it failed ...
    assert _leftovers(tmp_path) == []  # ... and is gone, and no a.mp4 either


def test_write_video_that_writes_nothing_raises(tmp_path, monkeypatch):
    """An OpenCV build without the codec may open a writer, accept frames, write 0 bytes."""

    class SilentWriter:
        def __init__(self, filename, *args):
            open(filename, "wb").close()

        def isOpened(self):  # noqa: N802 (OpenCV's name)
            return True

        def write(self, frame):
            pass

        def release(self):
            pass

    monkeypatch.setattr(video, "cv2", _Cv2Proxy(VideoWriter=SilentWriter))
    with pytest.raises(GestureError, match=r"a\.mp4: the video encoder \(mp4v\) wrote nothing"):
        write_video(tmp_path / "a.mp4", moving_square(4), fps=12)
    assert _leftovers(tmp_path) == []


def test_frame_count_metadata_is_not_trusted(square_mp4, monkeypatch):
    real = cv2.VideoCapture

    class LyingCapture:
        def __init__(self, *a):
            self._cap = real(*a)

        def get(self, prop):
            return 0.0 if prop == cv2.CAP_PROP_FRAME_COUNT else self._cap.get(prop)

        def __getattr__(self, name):
            return getattr(self._cap, name)

    monkeypatch.setattr(video.cv2, "VideoCapture", LyingCapture)
    assert len(read_frames(square_mp4)) == 24
    clip = read_clip(square_mp4, 8, 32)
    xs = [centroid_x(f) for f in clip]
    assert xs[0] < 10 and xs[-1] > 22  # spans the whole clip, not its first frames


def test_read_clip_shape_and_uniform_sampling(square_mp4):
    full = read_frames(square_mp4)
    clip = read_clip(square_mp4, num_frames=8, image_size=32)
    assert clip.shape == (8, 32, 32, 3) and clip.dtype == np.uint8
    expected = np.stack([resize_frame(full[i], 32) for i in sample_indices(24, 8)])
    np.testing.assert_array_equal(clip, expected)


@pytest.mark.parametrize(
    ("n", "t", "expected"),
    [
        (3, 8, [0, 0, 0, 1, 1, 2, 2, 2]),
        (24, 8, [1, 4, 7, 10, 13, 16, 19, 22]),
        (8, 8, list(range(8))),
        (1, 4, [0, 0, 0, 0]),
        (10, 4, [1, 3, 6, 8]),
    ],
)
def test_sample_indices_known_values(n, t, expected):
    idx = sample_indices(n, t)
    assert idx.dtype == np.int64
    assert idx.tolist() == expected


@pytest.mark.parametrize("n", [1, 2, 5, 7, 9, 16, 33, 100])
def test_sample_indices_invariants(n):
    t = 8
    idx = sample_indices(n, t)
    assert len(idx) == t and idx.min() >= 0 and idx.max() <= n - 1
    assert np.all(np.diff(idx) >= 0)  # time runs forward
    if n >= t:
        assert len(set(idx.tolist())) == t  # no repeats when there are enough frames
    else:
        counts = np.bincount(idx, minlength=n)
        assert counts.max() - counts.min() <= 1  # padding spread evenly
    with pytest.raises(GestureError):
        sample_indices(0, t)


# ---------------------------------------------------------------- frame folders, colour


def test_frame_folder_natural_order_gray_and_bgra(tmp_path):
    frames = moving_square(12, 40, 40, 8)
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, f in enumerate(frames, start=1):  # 1.png .. 12.png: "10" must come after "9"
        bgr = cv2.cvtColor(f, cv2.COLOR_RGB2BGR)
        if i % 3 == 0:
            img = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        elif i % 3 == 1:
            img = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
        else:
            img = bgr
        cv2.imwrite(str(folder / f"{i}.png"), img)
    (folder / "notes.txt").write_text("not a frame")
    back = read_frames(folder)
    assert back.shape == (12, 40, 40, 3)
    np.testing.assert_array_equal(back, frames)  # png is lossless; gray of b/w is exact


def test_gray_video_reads_as_rgb(tmp_path):
    """A single-channel (gray) MJPG video: (T, H, W, 3) with three equal channels."""
    path = tmp_path / "gray.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (40, 30),
                             isColor=False)
    assert writer.isOpened()
    levels = [20, 60, 100, 140, 180, 220]
    for v in levels:
        writer.write(np.full((30, 40), v, np.uint8))
    writer.release()
    back = read_frames(path)
    assert back.shape == (6, 30, 40, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - back[..., :1]).max() <= 2  # R = G = B (up to JPEG)
    np.testing.assert_allclose(back.mean(axis=(1, 2, 3)), levels, atol=3)
    assert read_clip(path, 4, 16).shape == (4, 16, 16, 3)


def test_uninterpretable_frame_error_names_the_file(tmp_path, monkeypatch):
    folder = tmp_path / "clip"
    folder.mkdir()
    cv2.imwrite(str(folder / "00001.png"), np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setattr(video, "cv2", _Cv2Proxy(imread=lambda *a: np.zeros((8, 8, 2), np.uint8)))
    with pytest.raises(GestureError, match=r"00001\.png: cannot interpret an image of shape"):
        read_frames(folder)


def test_still_image_renamed_mp4_warns_that_it_is_short(tmp_path):
    path = tmp_path / "photo.mp4"
    ok, jpg = cv2.imencode(".jpg", np.full((32, 32, 3), 128, np.uint8))
    path.write_bytes(jpg.tobytes())
    assert len(read_frames(path)) == 1
    with pytest.warns(UserWarning, match=r"photo\.mp4: only 1 frame\(s\), fewer than the 8"):
        clip = read_clip(path, 8, 16)
    assert clip.shape == (8, 16, 16, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clip long enough is read silently
        read_clip(write_video(tmp_path / "ok.mp4", moving_square(8), 8), 8, 16)


def test_ffmpeg_noise_is_silenced_on_bad_files(tmp_path):
    """A broken file gives our one-line error and nothing else on stderr (FFmpeg would
    print e.g. "moov atom not found")."""
    bad = tmp_path / "text.mp4"
    bad.write_bytes(b"hello, I am a text file")
    code = ("import sys\nfrom gesture_utils.video import read_frames\n"
            "try:\n    read_frames(sys.argv[1])\nexcept Exception as e:\n"
            "    print(type(e).__name__)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    out = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, env=env,
                         timeout=60, cwd=Path(video.__file__).resolve().parents[1])
    assert out.stdout.strip() == "GestureError"
    assert out.stderr == "", out.stderr


def test_to_rgb_conversions():
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV order
    np.testing.assert_array_equal(to_rgb(bgr)[..., 2], 200)
    bgra = np.concatenate([bgr, np.full((2, 3, 1), 7, np.uint8)], axis=-1)
    assert to_rgb(bgra).shape == (2, 3, 3) and to_rgb(bgra)[0, 0].tolist() == [0, 0, 200]
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    out = to_rgb(gray)
    assert out.shape == (2, 3, 3) and np.all(out == gray[..., None])
    g16 = (gray.astype(np.uint16) << 8) | 0xFF
    np.testing.assert_array_equal(to_rgb(g16)[..., 0], gray)


def test_odd_sizes_stretch_keeps_edges_crop_cuts_them():
    frame = np.zeros((37, 81, 3), np.uint8)  # odd, non-square
    frame[:, :8] = 255  # content at the left edge, like a swipe's first frame
    stretched = resize_frame(frame, 32)
    cropped = resize_frame(frame, 32, mode="crop")
    assert stretched.shape == cropped.shape == (32, 32, 3)
    assert stretched[:, 0].min() > 200  # nothing cut
    assert cropped.max() == 0  # the centre square does not contain the edge
    ref = cv2.resize(frame, (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(stretched, ref)
    with pytest.raises(GestureError):
        resize_frame(frame, 32, mode="squash")


def test_odd_sizes_read_to_model_size(tmp_path):
    frames = moving_square(10, 27, 45, 6)
    # codecs need even sizes: write_video drops the odd last row/column, for every codec
    for name in ("odd.avi", "odd.mp4"):
        path = write_video(tmp_path / name, frames, fps=8)
        assert read_frames(path).shape == (10, 26, 44, 3)
        assert read_clip(path, 4, 16).shape == (4, 16, 16, 3)
    folder = tmp_path / "frames"  # frame folders keep any size
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.png"), f)
    assert read_frames(folder).shape == (10, 27, 45, 3)
    with pytest.warns(UserWarning, match="only 10 frame"):  # 10 frames padded to 16
        assert read_clip(folder, 16, 20).shape == (16, 20, 20, 3)


# ---------------------------------------------------------------- bad input -> one clear error


def _truncated_avi(tmp_path, keep: float | None = None, after_movi: bool = False):
    good = write_video(tmp_path / "good.avi", moving_square(24), fps=12)
    data = good.read_bytes()
    cut = data.find(b"movi") + 4 if after_movi else int(len(data) * keep)
    bad = tmp_path / "bad.avi"
    bad.write_bytes(data[:cut])
    return bad


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _cut_mp4(tmp_path):
    """An mp4 with its second half cut off (OpenCV's mp4 index sits at the end)."""
    data = write_video(tmp_path / "full.mp4", moving_square(), 12).read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 2])
    return bad


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: _write(d / "empty.mp4", b""), "empty"),
        (lambda d: _write(d / "text.mp4", b"hello, I am a text file"), "cannot be opened"),
        (_cut_mp4, "cannot be opened"),
        (lambda d: _truncated_avi(d, keep=0.9), "truncated"),
        (lambda d: _truncated_avi(d, after_movi=True), "zero decodable frames"),
        (lambda d: (d / "frames").mkdir() or d / "frames", "no images"),
    ],
    ids=["missing", "empty", "text-as-mp4", "cut-mp4", "truncated-avi", "zero-frames",
         "empty-folder"],
)
def test_bad_input_raises_one_clear_error(tmp_path, make, problem):
    path = make(tmp_path)
    for fn in (read_frames, lambda p: read_clip(p, 8, 32)):
        with pytest.raises(GestureError, match=problem) as err:
            fn(path)
        assert str(path) in str(err.value)  # names the file
        assert "\n" not in str(err.value)  # one line


def test_bad_frame_in_folder_is_named(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    cv2.imwrite(str(folder / "00001.jpg"), np.zeros((20, 20, 3), np.uint8))
    (folder / "00002.jpg").write_text("not a jpeg")
    with pytest.raises(GestureError, match="00002.jpg: not a readable image"):
        read_frames(folder)
    (folder / "00002.jpg").unlink()
    cv2.imwrite(str(folder / "00002.jpg"), np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(GestureError, match="00002.jpg: frame size"):
        read_frames(folder)


def test_y4m_round_trip_header_and_size(tmp_path):
    """write_y4m -> read_frames (FFmpeg's y4m reader, inside OpenCV): grey frames come back
    within rounding of the limited-range YUV, colour in 2 x 2 blocks (what 4:2:0 keeps)
    too; the header carries the size and a rational fps; the file is exactly header +
    N x (FRAME line + I420 planes)."""
    grey = moving_square(5, 48, 64)
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (3, 12, 16, 3), dtype=np.uint8).repeat(2, 1).repeat(2, 2)
    for frames, fps, rate in ((grey, 12, "F12:1"), (colour, 30000 / 1001, "F30000:1001"),
                              (colour, 29.97, "F2997:100")):
        path = video.write_y4m(tmp_path / "cam.y4m", frames, fps)
        n, h, w = frames.shape[:3]
        data = path.read_bytes()
        header = f"YUV4MPEG2 W{w} H{h} {rate} Ip A1:1 C420jpeg\n".encode()
        assert data.startswith(header) and len(data) == len(header) + n * (6 + h * w * 3 // 2)
        back = read_frames(path)
        assert back.shape == frames.shape
        assert np.abs(back.astype(int) - frames).max() <= (2 if frames is grey else 4)
    assert [p.name for p in tmp_path.iterdir()] == ["cam.y4m"]  # no temp file left


def test_y4m_rejects_odd_sizes_and_bad_input(tmp_path):
    path = tmp_path / "odd.y4m"
    for frames, words in ((np.zeros((2, 47, 64, 3), np.uint8), "even width and height, got 64x47"),
                          (np.zeros((2, 48, 64), np.uint8), "expected uint8 frames")):
        with pytest.raises(GestureError, match=words) as err:
            video.write_y4m(path, frames, 12)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(GestureError, match="fps"):
        video.write_y4m(path, np.zeros((1, 4, 4, 3), np.uint8), 0)
    assert not list(tmp_path.iterdir())
