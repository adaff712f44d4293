"""Gesture recognition with an exported ONNX model and no PyTorch (notebook 04).

Everything here runs on NumPy, OpenCV and ONNX Runtime only, so a deployed recogniser
(``gesture-utils predict``, the real-time demo, an edge device) does not need PyTorch.
The ``.onnx`` files written by :mod:`gesture_utils.export` carry their own metadata —
labels, frame count, image size, normalisation, head type — so a model file is all
inference needs.

* :class:`OnnxGestureClassifier` opens a *clip* graph (``video (B, T, 3, S, S)`` ->
  ``logits (B, K)``) and classifies a video file, a frame folder or an array of frames.
* :class:`OnnxStreamingModel` opens the *streaming pair*: a per-frame encoder
  (``frames (N, 3, S, S)`` -> ``embeddings (N, D)``) and a temporal head over a window of
  cached embeddings (``embeddings (B, T, D)`` -> ``logits (B, K)``), so a new camera frame
  costs one ViT pass instead of ``T``.

Preprocessing is exactly what training does: decoding, frame sampling and resizing go
through :mod:`gesture_utils.video`, and :func:`normalize` is the NumPy twin of
``gesture_utils.datasets.to_tensor`` (tests check they agree).

CUDA is used when ONNX Runtime offers ``CUDAExecutionProvider`` (``onnxruntime-gpu``,
e.g. on Colab), otherwise the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from gesture_utils.errors import GestureError, input_error
from gesture_utils.video import read_clip, resize_frame, sample_indices

#: Metadata keys every exported graph carries (values are strings; lists are JSON).
REQUIRED_METADATA: tuple[str, ...] = ("labels", "num_frames", "image_size", "mean", "std")
_EXPORT_FIX = "export it with `gesture-utils export CHECKPOINT --out DIR`"

ClipLike = str | os.PathLike | np.ndarray


# --------------------------------------------------------------------------- helpers
def default_providers() -> list[str]:
    """``["CUDAExecutionProvider", "CPUExecutionProvider"]`` when ONNX Runtime has CUDA
    (``onnxruntime-gpu``), else ``["CPUExecutionProvider"]``."""
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available:  # pragma: no cover - no GPU in CI
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(path: str | os.PathLike, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> ort.InferenceSession:
    """An ONNX Runtime session for ``path``; a missing or unreadable file raises one
    :class:`GestureError` naming it.  ``threads`` sets intra-op threads (None = ORT's
    default, all physical cores)."""
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "model file not found", _EXPORT_FIX)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.log_severity_level = 3  # errors only: no provider-fallback chatter on CPU hosts
    try:
        return ort.InferenceSession(str(path), sess_options=opts,
                                    providers=list(providers or default_providers()))
    except Exception as exc:  # ORT raises its own pybind exception types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise input_error(path, f"not a loadable ONNX model ({first[:160]})", _EXPORT_FIX) from exc


def session_metadata(session: ort.InferenceSession, path: str | os.PathLike) -> dict:
    """The gesture metadata of an open session, parsed: labels (list[str]), num_frames,
    image_size (int), mean, std (3-tuples of float), plus any other keys as strings.

    Raises :class:`GestureError` naming ``path`` if a required key is missing or bad.
    """
    raw = dict(session.get_modelmeta().custom_metadata_map)
    missing = [k for k in REQUIRED_METADATA if k not in raw]
    if missing:
        raise input_error(path, f"ONNX metadata lacks {', '.join(missing)} (not exported by "
                                "gesture_utils.export?)", _EXPORT_FIX)
    meta: dict = dict(raw)
    try:
        meta["labels"] = [str(x) for x in json.loads(raw["labels"])]
        meta["num_frames"] = int(raw["num_frames"])
        meta["image_size"] = int(raw["image_size"])
        meta["mean"] = tuple(float(x) for x in json.loads(raw["mean"]))
        meta["std"] = tuple(float(x) for x in json.loads(raw["std"]))
    except (ValueError, TypeError) as exc:
        raise input_error(path, f"ONNX metadata is malformed ({exc})", _EXPORT_FIX) from exc
    if not meta["labels"] or len(meta["mean"]) != 3 or len(meta["std"]) != 3:
        raise input_error(path, "ONNX metadata has no labels or a mean/std without 3 values",
                          _EXPORT_FIX)
    meta["causal"] = raw.get("causal", "false").lower() == "true"
    meta["hand_probe"] = raw.get("hand_probe", "false").lower() == "true"
    return meta


def normalize(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(..., H, W, 3)`` uint8 RGB -> ``(..., 3, H, W)`` float32, ``(x / 255 - mean) / std``.

    The NumPy twin of ``gesture_utils.datasets.to_tensor``: the same float32 operations,
    ``(x - 255 * mean) * (1 / (255 * std))``, so results agree to float32 rounding (tests
    check it).
    """
    x = np.ascontiguousarray(np.moveaxis(np.asarray(frames), -1, -3)).astype(np.float32)
    x -= np.asarray(mean, dtype=np.float32).reshape(3, 1, 1) * np.float32(255.0)
    x *= np.float32(1.0) / (np.asarray(std, dtype=np.float32).reshape(3, 1, 1) * np.float32(255.0))
    return x


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (float32 in, float32 out)."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _dims(node) -> list:
    """Shape of an ORT input/output as a list of ints and symbolic names (str / None)."""
    return list(node.shape)


def _check_input(session: ort.InferenceSession, path, expected: list, what: str) -> str:
    """Verify the first graph input matches ``expected`` (ints must match, None = any)."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise input_error(path, f"expected one input for a {what} graph, found {len(inputs)}",
                          _EXPORT_FIX)
    shape = _dims(inputs[0])
    ok = len(shape) == len(expected) and all(
        e is None or not isinstance(d, int) or d == e for d, e in zip(shape, expected, strict=False))
    if not ok:
        def fmt(dims: list) -> str:
            return "(" + ", ".join(str(d) if isinstance(d, int) else "*" for d in dims) + ")"

        raise input_error(path, f"input {inputs[0].name!r} has shape {fmt(shape)}, a {what} "
                                f"graph needs {fmt(expected)}",
                          "pass the matching file (clip model: NAME.onnx; streaming: "
                          "NAME.encoder.onnx + NAME.head.onnx)")
    return inputs[0].name


# --------------------------------------------------------------------------- clip model
class OnnxGestureClassifier:
    """Classify whole clips with an exported clip graph (notebook 04, ``predict`` CLI).

    Attributes: ``labels`` (K names), ``num_frames`` T, ``image_size`` S, ``mean``,
    ``std``, ``metadata`` (all keys), ``providers`` (what ORT actually uses), ``path``.
    """

    def __init__(self, model_path: str | os.PathLike, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        self.path = Path(model_path)
        self.session = open_session(self.path, providers, threads)
        self.metadata = session_metadata(self.session, self.path)
        self.labels: list[str] = self.metadata["labels"]
        self.num_frames: int = self.metadata["num_frames"]
        self.image_size: int = self.metadata["image_size"]
        self.mean: tuple[float, ...] = self.metadata["mean"]
        self.std: tuple[float, ...] = self.metadata["std"]
        self.resize_mode: str = self.metadata.get("resize_mode", "stretch")
        S = self.image_size
        self.input_name = _check_input(self.session, self.path,
                                       [None, self.num_frames, 3, S, S], "clip")
        self.output_name = self.session.get_outputs()[0].name
        self.providers: list[str] = self.session.get_providers()

    def __repr__(self) -> str:
        return (f"OnnxGestureClassifier({self.path.name}, K={len(self.labels)}, "
                f"T={self.num_frames}, S={self.image_size}, providers={self.providers})")

    def frames_uint8(self, clip: ClipLike) -> np.ndarray:
        """The ``(T, S, S, 3)`` uint8 frames the model sees, sampled and resized exactly as
        in training (:func:`gesture_utils.video.read_clip`)."""
        T, S = self.num_frames, self.image_size
        if isinstance(clip, np.ndarray):
            if clip.ndim != 4 or clip.shape[-1] != 3 or len(clip) == 0:
                raise GestureError(f"clip array must have shape (N, H, W, 3), got {clip.shape}")
            if clip.dtype != np.uint8:
                raise GestureError(f"clip array must be uint8 RGB, got {clip.dtype}")
            idx = sample_indices(len(clip), T)
            return np.stack([resize_frame(clip[i], S, self.resize_mode) for i in idx])
        if isinstance(clip, str | os.PathLike):
            return read_clip(clip, T, S, mode=self.resize_mode)
        raise GestureError(f"a clip must be a path or a uint8 array, got {type(clip).__name__}")

    def preprocess(self, clip: ClipLike) -> np.ndarray:
        """A video path, frame-folder path or ``(N, H, W, 3)`` uint8 RGB array ->
        ``(1, T, 3, S, S)`` float32, normalised exactly as in training."""
        return normalize(self.frames_uint8(clip), self.mean, self.std)[None]

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw model output for a preprocessed batch ``(B, T, 3, S, S)`` -> ``(B, K)``."""
        batch = np.asarray(batch, dtype=np.float32)
        want = (self.num_frames, 3, self.image_size, self.image_size)
        if batch.ndim != 5 or batch.shape[1:] != want:
            raise GestureError(f"{self.path}: input must have shape (B, {', '.join(map(str, want))}),"
                               f" got {batch.shape}")
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def predict_proba(self, clip: ClipLike) -> np.ndarray:
        """Class probabilities ``(K,)`` for one clip (order = ``labels``)."""
        return softmax(self.logits(self.preprocess(clip)))[0]

    def predict(self, clip: ClipLike) -> tuple[str, float]:
        """``(label, confidence)`` of the most probable class for one clip."""
        p = self.predict_proba(clip)
        k = int(np.argmax(p))
        return self.labels[k], float(p[k])


# --------------------------------------------------------------------------- streaming
class OnnxStreamingModel:
    """The streaming pair: encode each new frame once, classify a window of cached
    embeddings (notebooks 04 and 06).

    Attributes as :class:`OnnxGestureClassifier` plus ``embed_dim`` D.
    """

    def __init__(self, encoder_path: str | os.PathLike, head_path: str | os.PathLike,
                 providers: Sequence[str] | None = None, threads: int | None = None) -> None:
        self.encoder_path, self.head_path = Path(encoder_path), Path(head_path)
        self.encoder = open_session(self.encoder_path, providers, threads)
        self.head = open_session(self.head_path, providers, threads)
        self.metadata = session_metadata(self.encoder, self.encoder_path)
        head_meta = session_metadata(self.head, self.head_path)
        for key in ("labels", "num_frames", "image_size"):
            if head_meta[key] != self.metadata[key]:
                raise input_error(self.head_path, f"{key} differs from the encoder's "
                                  f"({head_meta[key]} vs {self.metadata[key]})",
                                  "use the encoder and head exported together")
        self.labels: list[str] = self.metadata["labels"]
        self.num_frames: int = self.metadata["num_frames"]
        self.image_size: int = self.metadata["image_size"]
        self.mean: tuple[float, ...] = self.metadata["mean"]
        self.std: tuple[float, ...] = self.metadata["std"]
        self.causal: bool = bool(self.metadata["causal"])
        self.resize_mode: str = self.metadata.get("resize_mode", "stretch")
        S = self.image_size
        self.encoder_input = _check_input(self.encoder, self.encoder_path, [None, 3, S, S],
                                          "per-frame encoder")
        dim = self.encoder.get_outputs()[0].shape[-1]
        self.embed_dim: int = int(dim) if isinstance(dim, int) else int(self.metadata["embed_dim"])
        self.head_input = _check_input(self.head, self.head_path,
                                       [None, self.num_frames, self.embed_dim], "temporal-head")
        self.providers: list[str] = self.encoder.get_providers()

    def __repr__(self) -> str:
        return (f"OnnxStreamingModel({self.encoder_path.name} + {self.head_path.name}, "
                f"K={len(self.labels)}, T={self.num_frames}, D={self.embed_dim})")

    def preprocess_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        """One ``(H, W, 3)`` uint8 RGB frame -> ``(1, 3, S, S)`` float32 (training's resize
        and normalisation)."""
        frame_rgb = np.asarray(frame_rgb)
        if frame_rgb.ndim != 3 or frame_rgb.shape[-1] != 3 or frame_rgb.dtype != np.uint8:
            raise GestureError(f"a frame must be (H, W, 3) uint8 RGB, got {frame_rgb.shape} "
                               f"{frame_rgb.dtype}")
        small = resize_frame(frame_rgb, self.image_size, self.resize_mode)
        return normalize(small, self.mean, self.std)[None]

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Preprocessed frames ``(N, 3, S, S)`` float32 -> embeddings ``(N, D)``."""
        frames = np.asarray(frames, dtype=np.float32)
        S = self.image_size
        if frames.ndim != 4 or frames.shape[1:] != (3, S, S):
            raise GestureError(f"{self.encoder_path}: frames must be (N, 3, {S}, {S}), "
                               f"got {frames.shape}")
        return self.encoder.run(None, {self.encoder_input: frames})[0]

    def encode_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        """One raw ``(H, W, 3)`` uint8 RGB frame -> its embedding ``(D,)``."""
        return self.encode(self.preprocess_frame(frame_rgb))[0]

    def _head(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        emb = np.asarray(emb, dtype=np.float32)
        single = emb.ndim == 2
        batch = emb[None] if single else emb
        if batch.ndim != 3 or batch.shape[1:] != (self.num_frames, self.embed_dim):
            raise GestureError(f"{self.head_path}: a window must be ({self.num_frames}, "
                               f"{self.embed_dim}) embeddings, got {emb.shape}")
        out = self.head.run(None, {self.head_input: batch})
        hand = out[1] if len(out) > 1 and self.metadata.get("hand_probe") else None
        if single:
            return out[0][0], None if hand is None else hand[0]
        return out[0], hand

    def window_logits(self, emb: np.ndarray) -> np.ndarray:
        """Embeddings ``(T, D)`` or ``(B, T, D)`` -> logits ``(K,)`` or ``(B, K)``."""
        return self._head(emb)[0]

    def classify_window(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """A window of ``T`` cached embeddings ``(T, D)`` -> class probabilities ``(K,)``
        and the hand probe's evidence ``(T, 3)`` (``None`` if the probe was never
        trained); a batch ``(B, T, D)`` gives ``(B, K)`` and ``(B, T, 3)``."""
        logits, hand = self._head(emb)
        return softmax(logits), hand


# --------------------------------------------------------------------------- CLI
def configure_cli(parser: argparse.ArgumentParser) -> None:
    """``gesture-utils predict MODEL CLIP... [--json] [--threads N]``."""
    parser.add_argument("model", type=Path, help="exported clip model (NAME.onnx or NAME.int8.onnx)")
    parser.add_argument("clips", nargs="+", type=Path, metavar="CLIP",
                        help="video files or frame folders")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--top", type=int, default=1, help="also list the top-k classes")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    clf = OnnxGestureClassifier(args.model, threads=args.threads)
    results, failed = [], 0
    for clip in args.clips:
        try:
            p = clf.predict_proba(clip)
        except GestureError as exc:
            failed += 1
            results.append({"clip": str(clip), "error": str(exc)})
            if not args.json:
                print(f"{clip}: error: {exc}", file=sys.stderr)
            continue
        order = np.argsort(-p)[: max(1, args.top)]
        top = [{"label": clf.labels[k], "confidence": round(float(p[k]), 6)} for k in order]
        results.append({"clip": str(clip), **top[0], "top": top})
        if not args.json:
            extra = "  ".join(f"{t['label']}={t['confidence']:.3f}" for t in top[1:])
            print(f"{clip}\t{top[0]['label']}\t{top[0]['confidence']:.3f}"
                  + (f"\t{extra}" if extra else ""))
    if args.json:
        print(json.dumps({"model": str(args.model), "results": results,
                          "failed": failed}, indent=2))
    elif failed:
        print(f"{failed} of {len(args.clips)} clip(s) could not be classified", file=sys.stderr)
    return 1 if failed else 0


__all__ = [
    "REQUIRED_METADATA",
    "OnnxGestureClassifier",
    "OnnxStreamingModel",
    "default_providers",
    "normalize",
    "open_session",
    "session_metadata",
    "softmax",
]
