"""Gesture recognition with an exported ONNX model and no PyTorch (notebook 04).

NumPy, OpenCV and ONNX Runtime only, so ``gesture-utils predict``, the real-time demo or
an edge device need no PyTorch.  Each ``.onnx`` file from :mod:`gesture_utils.export`
carries its metadata (labels, frame count, image size, normalisation), so the file is
all inference needs.

* :class:`OnnxGestureClassifier`: the clip graph, ``video (B, T, 3, S, S) -> logits (B, K)``.
* :class:`OnnxStreamingModel`: the per-frame encoder ``frames (N, 3, S, S) -> (N, D)`` and
  the temporal head over cached embeddings ``(B, T, D) -> (B, K)``: a new camera frame
  costs one ViT pass instead of ``T``.

Preprocessing is training's: :mod:`gesture_utils.video` decodes, samples and resizes;
:func:`normalize` is the NumPy twin of ``gesture_utils.datasets.to_tensor``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gesture_utils.errors import GestureError, input_error
from gesture_utils.runtime import ort_session
from gesture_utils.video import read_clip, resize_frame, sample_indices

#: Metadata keys every exported graph carries (values are strings; lists are JSON).
REQUIRED_METADATA: tuple[str, ...] = ("labels", "num_frames", "image_size", "mean", "std",
                                      "embed_dim", "causal", "hand_probe")
REEXPORT = "re-export it (notebook 04 or `python -m gesture_utils export ...`)"

ClipLike = str | os.PathLike | np.ndarray


def _flag(value: str) -> bool:
    if value not in ("true", "false"):
        raise ValueError(f"{value!r} is not 'true' or 'false'")
    return value == "true"


def session_metadata(session: Any, path: str | os.PathLike) -> dict[str, Any]:
    """The parsed gesture metadata of an open session; a missing or bad key raises one
    :class:`GestureError` naming ``path``."""
    raw = dict(session.get_modelmeta().custom_metadata_map)
    missing = [k for k in REQUIRED_METADATA if k not in raw]
    if missing:
        raise input_error(path, f"ONNX metadata lacks {', '.join(missing)}", REEXPORT)
    try:
        meta = {**raw, "labels": [str(x) for x in json.loads(raw["labels"])],
                "num_frames": int(raw["num_frames"]), "image_size": int(raw["image_size"]),
                "embed_dim": int(raw["embed_dim"]),
                "mean": tuple(float(x) for x in json.loads(raw["mean"])),
                "std": tuple(float(x) for x in json.loads(raw["std"])),
                "causal": _flag(raw["causal"]), "hand_probe": _flag(raw["hand_probe"])}
    except (ValueError, TypeError) as exc:
        raise input_error(path, f"ONNX metadata is malformed ({exc})", REEXPORT) from exc
    if not meta["labels"] or len(meta["mean"]) != 3 or len(meta["std"]) != 3:
        raise input_error(path, "ONNX metadata has no labels or a mean/std without 3 values",
                          REEXPORT)
    return meta


def normalize(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(..., H, W, 3)`` uint8 RGB -> ``(..., 3, H, W)`` float32, ``(x / 255 - mean) / std``,
    with the float32 operations of ``datasets.to_tensor`` (tests check they agree)."""
    x = np.ascontiguousarray(np.moveaxis(np.asarray(frames), -1, -3)).astype(np.float32)
    x -= np.asarray(mean, dtype=np.float32).reshape(3, 1, 1) * np.float32(255.0)
    x *= np.float32(1.0) / (np.asarray(std, dtype=np.float32).reshape(3, 1, 1) * np.float32(255.0))
    return x


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``."""
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _check_input(session: Any, path: Path, expected: list, what: str) -> str:
    """The name of the graph's one input, whose shape must match ``expected`` (None = any)."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise input_error(path, f"expected one input for a {what} graph, found {len(inputs)}", REEXPORT)
    shape = list(inputs[0].shape)
    if len(shape) != len(expected) or any(e is not None and isinstance(d, int) and d != e
                                          for d, e in zip(shape, expected, strict=False)):
        def fmt(dims: list) -> str:
            return "(" + ", ".join(str(d) if isinstance(d, int) else "*" for d in dims) + ")"

        raise input_error(path, f"input {inputs[0].name!r} has shape {fmt(shape)}, a {what} "
                                f"graph needs {fmt(expected)}",
                          "pass the matching file (clip model: NAME.onnx; streaming: "
                          "NAME.encoder.onnx + NAME.head.onnx)")
    return inputs[0].name


class _OnnxModel:
    """Metadata attributes shared by both models: ``labels``, ``num_frames`` T,
    ``image_size`` S, ``mean``, ``std``, ``metadata`` (all keys)."""

    def _adopt(self, meta: dict[str, Any]) -> None:
        self.metadata = meta
        self.labels: list[str] = meta["labels"]
        self.num_frames: int = meta["num_frames"]
        self.image_size: int = meta["image_size"]
        self.mean: tuple[float, ...] = meta["mean"]
        self.std: tuple[float, ...] = meta["std"]


class OnnxGestureClassifier(_OnnxModel):
    """Classify whole clips with an exported clip graph (notebook 04, ``predict`` CLI)."""

    def __init__(self, model_path: str | os.PathLike, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        self.path = Path(model_path)
        self.session = ort_session(self.path, threads, providers)
        self._adopt(session_metadata(self.session, self.path))
        S = self.image_size
        self.input_name = _check_input(self.session, self.path, [None, self.num_frames, 3, S, S], "clip")
        self.output_name = self.session.get_outputs()[0].name
        self.providers: list[str] = self.session.get_providers()

    def __repr__(self) -> str:
        return (f"OnnxGestureClassifier({self.path.name}, K={len(self.labels)}, "
                f"T={self.num_frames}, S={self.image_size}, providers={self.providers})")

    def preprocess(self, clip: ClipLike) -> np.ndarray:
        """A video, frame folder or ``(N, H, W, 3)`` uint8 array -> ``(1, T, 3, S, S)``
        float32, sampled, resized and normalised as in training."""
        T, S = self.num_frames, self.image_size
        if isinstance(clip, np.ndarray):
            if clip.ndim != 4 or clip.shape[-1] != 3 or len(clip) == 0:
                raise GestureError(f"clip array must have shape (N, H, W, 3), got {clip.shape}")
            if clip.dtype != np.uint8:
                raise GestureError(f"clip array must be uint8 RGB, got {clip.dtype}")
            frames = np.stack([resize_frame(clip[i], S) for i in sample_indices(len(clip), T)])
        elif isinstance(clip, str | os.PathLike):
            frames = read_clip(clip, T, S)
        else:
            raise GestureError(f"a clip must be a path or a uint8 array, got {type(clip).__name__}")
        return normalize(frames, self.mean, self.std)[None]

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed ``(B, T, 3, S, S)`` -> logits ``(B, K)``."""
        batch = np.asarray(batch, dtype=np.float32)
        want = (self.num_frames, 3, self.image_size, self.image_size)
        if batch.ndim != 5 or batch.shape[1:] != want:
            raise GestureError(f"{self.path}: input must have shape (B, {', '.join(map(str, want))}),"
                               f" got {batch.shape}")
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def predict_proba(self, clip: ClipLike) -> np.ndarray:
        """Class probabilities ``(K,)`` of one clip (order = ``labels``)."""
        return softmax(self.logits(self.preprocess(clip)))[0]

    def predict(self, clip: ClipLike) -> tuple[str, float]:
        """``(label, confidence)`` of the most probable class of one clip."""
        p = self.predict_proba(clip)
        k = int(np.argmax(p))
        return self.labels[k], float(p[k])


class OnnxStreamingModel(_OnnxModel):
    """The streaming pair: encode each new frame once, classify a window of cached
    embeddings (notebooks 04 and 06).  Adds ``embed_dim`` D and ``causal``."""

    def __init__(self, encoder_path: str | os.PathLike, head_path: str | os.PathLike,
                 providers: Sequence[str] | None = None, threads: int | None = None) -> None:
        self.encoder_path, self.head_path = Path(encoder_path), Path(head_path)
        self.encoder = ort_session(self.encoder_path, threads, providers)
        self.head = ort_session(self.head_path, threads, providers)
        self._adopt(session_metadata(self.encoder, self.encoder_path))
        head_meta = session_metadata(self.head, self.head_path)
        for key in ("labels", "num_frames", "image_size", "embed_dim"):
            if head_meta[key] != self.metadata[key]:
                raise input_error(self.head_path, f"{key} differs from the encoder's "
                                  f"({head_meta[key]} vs {self.metadata[key]})",
                                  "use the encoder and head exported together")
        self.causal: bool = self.metadata["causal"]
        self.embed_dim: int = self.metadata["embed_dim"]
        S = self.image_size
        self.encoder_input = _check_input(self.encoder, self.encoder_path, [None, 3, S, S],
                                          "per-frame encoder")
        self.head_input = _check_input(self.head, self.head_path,
                                       [None, self.num_frames, self.embed_dim], "temporal-head")
        self.providers: list[str] = self.encoder.get_providers()

    def __repr__(self) -> str:
        return (f"OnnxStreamingModel({self.encoder_path.name} + {self.head_path.name}, "
                f"K={len(self.labels)}, T={self.num_frames}, D={self.embed_dim})")

    def preprocess_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        """One ``(H, W, 3)`` uint8 RGB frame -> ``(1, 3, S, S)`` float32, as in training."""
        frame_rgb = np.asarray(frame_rgb)
        if frame_rgb.ndim != 3 or frame_rgb.shape[-1] != 3 or frame_rgb.dtype != np.uint8:
            raise GestureError(f"a frame must be (H, W, 3) uint8 RGB, got {frame_rgb.shape} "
                               f"{frame_rgb.dtype}")
        return normalize(resize_frame(frame_rgb, self.image_size), self.mean, self.std)[None]

    def encode_frame(self, frame_rgb: np.ndarray) -> np.ndarray:
        """One raw ``(H, W, 3)`` uint8 RGB frame -> its embedding ``(D,)``."""
        return self.encoder.run(None, {self.encoder_input: self.preprocess_frame(frame_rgb)})[0][0]

    def _head(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        emb = np.asarray(emb, dtype=np.float32)
        single = emb.ndim == 2
        batch = emb[None] if single else emb
        if batch.ndim != 3 or batch.shape[1:] != (self.num_frames, self.embed_dim):
            raise GestureError(f"{self.head_path}: a window must be ({self.num_frames}, "
                               f"{self.embed_dim}) embeddings, got {emb.shape}")
        out = self.head.run(None, {self.head_input: batch})
        hand = out[1] if len(out) > 1 and self.metadata["hand_probe"] else None
        if single:
            return out[0][0], None if hand is None else hand[0]
        return out[0], hand

    def classify_window(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """A window ``(T, D)`` (or batch ``(B, T, D)``) -> class probabilities and the hand
        probe's evidence ``(T, 3)`` (``None`` if the probe was never trained)."""
        logits, hand = self._head(emb)
        return softmax(logits), hand


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """``gesture-utils predict MODEL CLIP... [--json] [--top K] [--threads N]``."""
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
        print(json.dumps({"model": str(args.model), "results": results, "failed": failed}, indent=2))
    elif failed:
        print(f"{failed} of {len(args.clips)} clip(s) could not be classified", file=sys.stderr)
    return 1 if failed else 0
