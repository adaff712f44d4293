"""Export a trained gesture model to ONNX, prove the export is faithful, quantise it to
INT8 (notebook 04, ``gesture-utils export``).

Three fp32 graphs come out of one :class:`~gesture_utils.models.ViTTemporal`:

* ``NAME.onnx`` — the clip model, ``video (B, T, 3, S, S) -> logits (B, K)``;
* ``NAME.encoder.onnx`` — per-frame encoder, ``frames (N, 3, S, S) -> embeddings (N, D)``;
* ``NAME.head.onnx`` — temporal head over a window of cached embeddings,
  ``embeddings (B, T, D) -> logits (B, K)``.

With INT8: ``NAME.int8.onnx``, ``NAME.encoder.int8.onnx``, ``NAME.head.int8.onnx``; and
``NAME.export.json`` holds every measured figure.

The batch axis (``B`` / ``N``) is dynamic; ``T``, ``S`` and ``D`` are fixed by the model.
Every graph carries its own metadata (labels, frame count, image size, mean/std, head
type, causal flag, source checkpoint), so :mod:`gesture_utils.inference` needs no side
files and no PyTorch.

Decisions (taught in notebook 04):

* **Exporter.**  ``torch.onnx.export(..., dynamo=True)`` (``torch.export`` + onnxscript),
  the exporter PyTorch maintains; the legacy TorchScript exporter is only a fallback when
  the new one fails on some backbone (a warning says so).  Opset 18.  Shape hints the
  exporter leaves in ``graph.value_info`` are dropped: ONNX Runtime re-infers them, and
  stale ones broke the INT8 quantiser's shape inference.
* **Parity is measured, not assumed.**  :func:`parity_report` compares ONNX Runtime with
  PyTorch on real clips: max absolute logit difference (bound ``1e-4`` in fp32) and
  top-1 agreement (must be 100 %); the streaming pair is compared with the clip graph
  on the same windows.
* **INT8 is accepted only on evidence.**  :func:`quantize_int8` makes a *dynamic*
  (weights int8, activation ranges computed at run time) or a *static* per-channel QDQ
  model (activation ranges calibrated on training clips via a
  :class:`ArrayCalibrationReader`); :func:`compare_int8` measures accuracy, agreement with
  fp32, batch-1 latency and file size in one run and gives a verdict.  Small ViTs are
  often *not* faster in INT8 on a CPU (quantise/dequantise overhead, few large matmuls),
  so the verdict can be "rejected".
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch import nn

from gesture_utils import __version__
from gesture_utils.config import ClipConfig, ExportConfig
from gesture_utils.errors import GestureError, input_error

#: The three fp32 graphs: kind -> (file suffix, input name, output name, batch-axis name).
#: kind: (file suffix, input, outputs, dynamic axis).  The head also gives the hand
#: probe's per-frame evidence ``hand (B, T, 3)`` that the stream decisions check.
GRAPHS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "clip": (".onnx", "video", ("logits",), "batch"),
    "encoder": (".encoder.onnx", "frames", ("embeddings",), "frames"),
    "head": (".head.onnx", "embeddings", ("logits", "hand"), "batch"),
}
INT8_MODES: tuple[str, ...] = ("dynamic", "static")


# --------------------------------------------------------------------------- wrappers
class ClipGraph(nn.Module):
    """``video (B, T, 3, S, S) -> logits (B, K)``: the whole model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.model(video)


class EncoderGraph(nn.Module):
    """``frames (N, 3, S, S) -> embeddings (N, D)`` via ``model.encode_frames``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model.encode_frames(frames.unsqueeze(0)).squeeze(0)


class HeadGraph(nn.Module):
    """``embeddings (B, T, D) -> logits (B, K), hand (B, T, 3)`` via
    ``model.classify_embeddings`` and ``model.locate_hand``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.classify_embeddings(embeddings), self.model.locate_hand(embeddings)


_WRAPPERS = {"clip": ClipGraph, "encoder": EncoderGraph, "head": HeadGraph}


# --------------------------------------------------------------------------- helpers
def graph_paths(out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """Where the fp32 graphs of ``name`` live: ``{'clip', 'encoder', 'head'} -> Path``."""
    out_dir = Path(out_dir)
    return {kind: out_dir / f"{name}{spec[0]}" for kind, spec in GRAPHS.items()}


def int8_path(fp32_path: str | os.PathLike) -> Path:
    """``NAME.onnx -> NAME.int8.onnx``, ``NAME.encoder.onnx -> NAME.encoder.int8.onnx``."""
    p = Path(fp32_path)
    return p.with_name(p.name[: -len(".onnx")] + ".int8.onnx")


def file_size_mb(path: str | os.PathLike) -> float:
    """Size of a file in MB (10^6 bytes)."""
    return Path(path).stat().st_size / 1e6


def _atomic_save(proto: onnx.ModelProto, path: Path) -> Path:
    """Write an ONNX model via a temp file in the same folder + ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        onnx.save_model(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence exporter / quantiser chatter (warnings, root-logger WARNINGs, progress
    prints) for the duration of the block; errors still raise."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def session(path: str | os.PathLike, threads: int | None = None,
            providers: Sequence[str] | None = None) -> ort.InferenceSession:
    """A CPU (or given providers) ONNX Runtime session; ``threads`` = intra-op threads."""
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts,
                                providers=list(providers or ["CPUExecutionProvider"]))


# --------------------------------------------------------------------------- metadata
def export_metadata(model: nn.Module, kind: str = "clip", source: str | None = None,
                    clip: ClipConfig | None = None, precision: str = "fp32") -> dict[str, str]:
    """The metadata every exported graph carries (all values are strings; lists JSON).

    Keys: ``labels``, ``num_frames``, ``image_size``, ``mean``, ``std``,
    ``head``, ``causal``, ``backbone``, ``embed_dim``, ``hand_probe`` (whether the head's
    ``hand`` output was trained), ``graph`` (clip/encoder/head),
    ``precision``, ``source`` (checkpoint file name), ``producer``.
    """
    clip = clip or getattr(model, "clip", None)
    if clip is None:
        raise GestureError("the model has no ClipConfig (model.clip); pass clip=")
    cfg = getattr(model, "cfg", None)
    return {
        "labels": json.dumps(list(model.labels)),
        "num_frames": str(int(clip.num_frames)),
        "image_size": str(int(clip.image_size)),
        "mean": json.dumps([float(v) for v in clip.mean]),
        "std": json.dumps([float(v) for v in clip.std]),
        "head": str(getattr(cfg, "head", "unknown")),
        "causal": str(bool(getattr(cfg, "causal", False))).lower(),
        "backbone": str(getattr(cfg, "backbone", "unknown")),
        "embed_dim": str(int(getattr(model, "embed_dim", 0))),
        "hand_probe": str(bool(getattr(getattr(model, "hand_probe", None), "trained", False))).lower(),
        "graph": kind,
        "precision": precision,
        "source": source or "",
        "producer": f"gesture_utils {__version__} (torch {torch.__version__}, onnx {onnx.__version__})",
    }


def set_metadata(proto: onnx.ModelProto, metadata: Mapping[str, str]) -> onnx.ModelProto:
    """Replace the model's ``metadata_props`` with ``metadata`` (in place; returned)."""
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    return proto


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The raw ``metadata_props`` of an ONNX file as a dict of strings."""
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


# --------------------------------------------------------------------------- export
def _example(model: nn.Module, kind: str, clip: ClipConfig) -> torch.Tensor:
    T, S = clip.num_frames, clip.image_size
    g = torch.Generator().manual_seed(0)
    if kind == "clip":
        return torch.randn(2, T, 3, S, S, generator=g)
    if kind == "encoder":
        return torch.randn(3, 3, S, S, generator=g)
    return torch.randn(2, T, int(model.embed_dim), generator=g)


def to_onnx(module: nn.Module, example: torch.Tensor, input_name: str,
            output_names: Sequence[str], axis_name: str, opset: int = 18,
            dynamo: bool = True) -> onnx.ModelProto:
    """Export ``module(example)`` with a dynamic axis 0 named ``axis_name``; checked.

    ``dynamo=True``: ``torch.export`` + onnxscript (PyTorch's maintained exporter); on
    failure a warning is issued and the legacy TorchScript exporter is tried.  The
    forward's argument must be called ``input_name``.  Raises :class:`GestureError` if no
    exporter succeeds or ``onnx.checker`` rejects the result.
    """
    module = module.eval()
    errors = []
    proto = None
    for use_dynamo in ((True, False) if dynamo else (False,)):
        try:
            with _quiet(), torch.no_grad():
                if use_dynamo:
                    dim = torch.export.Dim(axis_name, min=1, max=1 << 16)
                    prog = torch.onnx.export(
                        module, (example,), None, input_names=[input_name],
                        output_names=list(output_names), opset_version=opset, dynamo=True,
                        external_data=False, dynamic_shapes={input_name: {0: dim}},
                        verbose=False, optimize=True)
                    proto = prog.model_proto
                else:
                    buf = io.BytesIO()
                    torch.onnx.export(
                        module, (example,), buf, input_names=[input_name],
                        output_names=list(output_names), opset_version=opset, dynamo=False,
                        dynamic_axes={name: {0: axis_name} for name in (input_name, *output_names)},
                        do_constant_folding=True)
                    proto = onnx.load_from_string(buf.getvalue())
            break
        except Exception as exc:  # noqa: BLE001 - report every exporter's failure
            errors.append(f"{'dynamo' if use_dynamo else 'torchscript'}: {type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}")
            if use_dynamo and dynamo:
                warnings.warn(f"dynamo ONNX export failed ({errors[-1]}); trying the legacy "
                              "TorchScript exporter", stacklevel=2)
    if proto is None:
        raise GestureError("ONNX export failed: " + " | ".join(errors))
    del proto.graph.value_info[:]  # stale shape hints; ORT re-infers (see module docstring)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise GestureError(f"exported graph fails onnx.checker: {str(exc).splitlines()[0]}") from exc
    return proto


def export_model(model: nn.Module, out_dir: str | os.PathLike, name: str = "vit_temporal",
                 kinds: Sequence[str] = ("clip", "encoder", "head"), opset: int = 18,
                 source: str | None = None, clip: ClipConfig | None = None,
                 dynamo: bool = True) -> dict[str, Path]:
    """Write the fp32 ONNX graphs of ``model`` (a ``ViTTemporal``) to ``out_dir``.

    ``kinds``: any of ``clip`` (``NAME.onnx``), ``encoder`` (``NAME.encoder.onnx``),
    ``head`` (``NAME.head.onnx``).  Each file is checked with ``onnx.checker``, carries
    :func:`export_metadata` and is written atomically.  The model is exported on the CPU
    in eval mode and put back where it was.  Returns ``{kind: path}``.
    """
    unknown = [k for k in kinds if k not in GRAPHS]
    if unknown:
        raise GestureError(f"unknown graph kinds {unknown}; choose from {list(GRAPHS)}")
    if opset < 17:
        raise GestureError(f"opset {opset} is too old: LayerNormalization needs opset >= 17")
    clip = clip or model.clip
    paths = graph_paths(out_dir, name)
    params = next(model.parameters(), None)
    device = params.device if params is not None else torch.device("cpu")
    was_training = model.training
    model.cpu().eval()
    out: dict[str, Path] = {}
    try:
        for kind in kinds:
            _, input_name, output_names, axis = GRAPHS[kind]
            proto = to_onnx(_WRAPPERS[kind](model), _example(model, kind, clip), input_name,
                            output_names, axis, opset=opset, dynamo=dynamo)
            proto.doc_string = f"gesture_utils {kind} graph of {source or 'a ViTTemporal'}"
            set_metadata(proto, export_metadata(model, kind, source, clip))
            out[kind] = _atomic_save(proto, paths[kind])
    finally:
        model.to(device).train(was_training)
    return out


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """What is inside an ONNX file: inputs/outputs with shapes, opset, IR version,
    metadata, node-type counts, parameter count and file size."""
    proto = onnx.load(str(path))

    def shape(vi) -> list:
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    inits = {i.name for i in proto.graph.initializer}
    return {
        "file": Path(path).name,
        "size_mb": round(file_size_mb(path), 3),
        "ir_version": proto.ir_version,
        "opset": {o.domain or "ai.onnx": o.version for o in proto.opset_import},
        "inputs": {i.name: shape(i) for i in proto.graph.input if i.name not in inits},
        "outputs": {o.name: shape(o) for o in proto.graph.output},
        "metadata": {p.key: p.value for p in proto.metadata_props},
        "nodes": dict(Counter(n.op_type for n in proto.graph.node).most_common()),
        "parameters": int(sum(np.prod(i.dims) for i in proto.graph.initializer)),
    }


# --------------------------------------------------------------------------- parity
@dataclass
class ParityReport:
    """How closely two implementations agree on the same inputs."""

    name: str  #: e.g. "onnx clip vs torch"
    n: int  #: number of clips
    max_abs_diff: float  #: max |logit_a - logit_b| over all clips and classes
    mean_abs_diff: float
    top1_agreement: float  #: fraction of clips with the same argmax
    atol: float  #: the bound max_abs_diff must stay within

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.atol and self.top1_agreement == 1.0

    def __str__(self) -> str:
        return (f"{self.name:<26} {self.n:4d} clips · max |Δlogit| {self.max_abs_diff:.2e} "
                f"(bound {self.atol:.0e}) · top-1 agreement {self.top1_agreement:7.2%} · "
                f"{'OK' if self.passed else 'FAILED'}")


def compare_logits(name: str, a: np.ndarray, b: np.ndarray, atol: float = 1e-4) -> ParityReport:
    """A :class:`ParityReport` for two ``(N, K)`` logit arrays."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2 or len(a) == 0:
        raise GestureError(f"{name}: logits must be two equal non-empty (N, K) arrays, got "
                           f"{a.shape} and {b.shape}")
    diff = np.abs(a - b)
    return ParityReport(name, len(a), float(diff.max()), float(diff.mean()),
                        float((a.argmax(1) == b.argmax(1)).mean()), float(atol))


def _batched(x: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for s in range(0, len(x), batch_size):
        yield np.ascontiguousarray(x[s: s + batch_size], dtype=np.float32)


@torch.no_grad()
def torch_logits(model: nn.Module, x: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """PyTorch logits ``(N, K)`` of clips ``x (N, T, 3, S, S)``, computed on the CPU in
    eval mode (the model is put back on its device and mode afterwards)."""
    params = next(model.parameters(), None)
    device = params.device if params is not None else torch.device("cpu")
    was_training = model.training
    model.cpu().eval()
    try:
        return np.concatenate([model(torch.from_numpy(b)).numpy()
                               for b in _batched(x, batch_size)])
    finally:
        model.to(device).train(was_training)


def onnx_logits(path: str | os.PathLike | ort.InferenceSession, x: np.ndarray,
                batch_size: int = 16, threads: int | None = None) -> np.ndarray:
    """ONNX Runtime outputs of a one-input graph for ``x``, run in batches: ``(N, ...)``."""
    sess = path if isinstance(path, ort.InferenceSession) else session(path, threads)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: b})[0] for b in _batched(x, batch_size)])


def streaming_logits(encoder: str | os.PathLike | ort.InferenceSession,
                     head: str | os.PathLike | ort.InferenceSession, x: np.ndarray,
                     batch_size: int = 16, threads: int | None = None) -> np.ndarray:
    """Logits of clips ``x (N, T, 3, S, S)`` through the streaming pair: every frame
    encoded on its own (``(N*T, 3, S, S) -> (N*T, D)``), then the head on ``(N, T, D)``."""
    N, T = x.shape[:2]
    emb = onnx_logits(encoder, x.reshape(N * T, *x.shape[2:]), batch_size * T, threads)
    return onnx_logits(head, emb.reshape(N, T, -1), batch_size, threads)


def parity_report(model: nn.Module, paths: Mapping[str, str | os.PathLike], x: np.ndarray,
                  atol: float = 1e-4, batch_size: int = 16,
                  threads: int | None = None) -> list[ParityReport]:
    """Compare the exported graphs with ``model`` on clips ``x (N, T, 3, S, S)``.

    Reports ``onnx clip vs torch`` (if ``paths['clip']``), ``streaming vs torch`` and
    ``streaming vs onnx clip`` (if ``paths`` has ``encoder`` and ``head``).
    """
    x = np.asarray(x, dtype=np.float32)
    ref = torch_logits(model, x, batch_size)
    reports = []
    clip_out = None
    if "clip" in paths:
        clip_out = onnx_logits(paths["clip"], x, batch_size, threads)
        reports.append(compare_logits("onnx clip vs torch", clip_out, ref, atol))
    if "encoder" in paths and "head" in paths:
        stream = streaming_logits(paths["encoder"], paths["head"], x, batch_size, threads)
        reports.append(compare_logits("streaming vs torch", stream, ref, atol))
        if clip_out is not None:
            reports.append(compare_logits("streaming vs onnx clip", stream, clip_out, atol))
    return reports


# --------------------------------------------------------------------------- data
def load_clips(data: str | os.PathLike, clip: ClipConfig, split: str = "test",
               labels: Sequence[str] | None = None, limit: int | None = None,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normalised clips of one split as model inputs: ``x (N, T, 3, S, S)`` float32 and
    ``y (N,)`` int labels (exactly the training preprocessing, no augmentation).

    ``labels``: the model's classes; a dataset with other classes raises
    :class:`GestureError`.  ``limit``: at most this many clips, drawn with ``seed`` and
    balanced over the classes (round-robin); otherwise every clip in manifest order.
    """
    from gesture_utils.datasets import (
        GestureClipDataset,
        load_manifest,
        read_labels,
        records_for,
    )

    root = Path(data)
    ds_labels = read_labels(root)
    if labels is not None and list(labels) != list(ds_labels):
        raise input_error(root, f"has classes {ds_labels}, the model knows {list(labels)}",
                          "pass the dataset the model was trained on")
    records = records_for(load_manifest(root, labels=ds_labels), split)
    if not records:
        raise input_error(root, f"has no clips in the {split!r} split", "check manifest.csv")
    if limit is not None and limit < len(records):
        rng = np.random.default_rng(seed)
        per_class = [[i for i in rng.permutation(len(records)) if records[i].label == c]
                     for c in ds_labels]
        order = [i for rank in zip(*(q + [None] * (len(records) - len(q)) for q in per_class),
                                   strict=True) for i in rank if i is not None]
        records = [records[i] for i in sorted(order[:limit])]
    ds = GestureClipDataset(records, ds_labels, clip, augment=False)
    xs, ys = zip(*(ds[i] for i in range(len(ds))), strict=True)
    return torch.stack(xs).numpy(), np.asarray(ys, dtype=np.int64)


# --------------------------------------------------------------------------- INT8
class ArrayCalibrationReader(CalibrationDataReader):
    """Feeds calibration inputs ``(N, ...)`` to ``quantize_static`` in batches."""

    def __init__(self, input_name: str, data: np.ndarray, batch_size: int = 8) -> None:
        self.input_name = input_name
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self.batch_size = int(batch_size)
        self._pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos >= len(self.data):
            return None
        batch = self.data[self._pos: self._pos + self.batch_size]
        self._pos += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._pos = 0


def quantize_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike | None = None,
                  mode: str = "static", calibration: np.ndarray | None = None,
                  op_types: Sequence[str] = ("MatMul", "Gemm", "Conv"),
                  per_channel: bool = True) -> Path:
    """Quantise an fp32 graph to INT8 with ``onnxruntime.quantization``; returns the path
    (default ``NAME.int8.onnx`` next to the input, written atomically, metadata kept with
    ``precision`` = ``int8-dynamic`` / ``int8-static-qdq``).

    * ``mode="dynamic"``: int8 weights, activation scales computed per call.  Only
      ``MatMul``/``Gemm`` (ONNX Runtime's CPU kernels have no int8-weight ``ConvInteger``).
    * ``mode="static"``: QDQ format, per-channel int8 weights, uint8 activations whose
      ranges (MinMax) come from ``calibration`` — real inputs of this graph, ``(N, ...)``.

    Both run ONNX Runtime's pre-processing (shape inference + graph optimisation) first.
    """
    if mode not in INT8_MODES:
        raise GestureError(f"INT8 mode must be one of {INT8_MODES}, got {mode!r}")
    src = Path(fp32_path)
    dst = Path(out_path) if out_path is not None else int8_path(src)
    if mode == "static" and (calibration is None or len(calibration) == 0):
        raise GestureError(f"{src}: static INT8 needs calibration inputs (real clips)")
    meta = read_metadata(src)
    input_name = session(src).get_inputs()[0].name
    with tempfile.TemporaryDirectory(prefix="gesture-int8-") as tmp:
        pre, raw = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        with _quiet():
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
            if mode == "dynamic":
                ops = [o for o in op_types if o != "Conv"]
                quantize_dynamic(str(pre), str(raw), weight_type=QuantType.QInt8,
                                 per_channel=per_channel, op_types_to_quantize=ops)
            else:
                quantize_static(str(pre), str(raw), ArrayCalibrationReader(input_name, calibration),
                                quant_format=QuantFormat.QDQ, per_channel=per_channel,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                op_types_to_quantize=list(op_types),
                                calibrate_method=CalibrationMethod.MinMax)
        proto = onnx.load(str(raw))
    meta["precision"] = "int8-dynamic" if mode == "dynamic" else "int8-static-qdq"
    set_metadata(proto, meta)
    return _atomic_save(proto, dst)


def measure_latency(sessions: Mapping[str, tuple[ort.InferenceSession, np.ndarray]],
                    runs: int = 30, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Median / p90 latency in ms of each ``name -> (session, input)``.

    Runs are interleaved (round-robin over the models), so a noisy shared CPU slows all
    of them alike and the *ratios* stay meaningful.
    """
    feeds = {k: (s, {s.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)})
             for k, (s, x) in sessions.items()}
    for _ in range(warmup):
        for s, feed in feeds.values():
            s.run(None, feed)
    times: dict[str, list[float]] = {k: [] for k in feeds}
    for _ in range(runs):
        for k, (s, feed) in feeds.items():
            t0 = time.perf_counter()
            s.run(None, feed)
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: {"median_ms": float(np.median(v)), "p90_ms": float(np.percentile(v, 90))}
            for k, v in times.items()}


@dataclass
class Int8Report:
    """One quantised model measured against its fp32 original in the same run."""

    name: str  #: e.g. "int8-static"
    path: str
    accuracy: float | None  #: on the evaluation clips (None without labels)
    fp32_accuracy: float | None
    agreement: float  #: top-1 agreement with fp32
    max_prob_diff: float  #: max |softmax difference| vs fp32
    latency_ms: float  #: median, batch 1
    fp32_latency_ms: float
    size_mb: float
    fp32_size_mb: float
    accepted: bool = False
    verdict: str = ""

    @property
    def speedup(self) -> float:
        return self.fp32_latency_ms / self.latency_ms if self.latency_ms > 0 else float("nan")

    @property
    def accuracy_delta(self) -> float | None:
        if self.accuracy is None or self.fp32_accuracy is None:
            return None
        return self.accuracy - self.fp32_accuracy

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup, "accuracy_delta": self.accuracy_delta}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def compare_int8(fp32_path: str | os.PathLike, int8_paths: Mapping[str, str | os.PathLike],
                 x: np.ndarray, y: np.ndarray | None = None, runs: int = 30,
                 threads: int | None = None, max_accuracy_drop: float = 0.01,
                 min_speedup: float = 1.1, post: Any = None) -> list[Int8Report]:
    """Measure INT8 models against the fp32 one on inputs ``x`` (labels ``y``).

    Accuracy (and its change), top-1 agreement with fp32, batch-1 median latency
    (``x[:1]``, interleaved, :func:`measure_latency`) and file size.  A model is
    *accepted* when it loses at most ``max_accuracy_drop`` accuracy (agreement when there
    are no labels) and is at least ``min_speedup`` times faster; ``verdict`` says why not
    otherwise.  ``post(outputs) -> logits (N, K)`` turns a graph's outputs into class
    logits first (e.g. per-frame embeddings through the fp32 head).
    """
    sessions = {"fp32": session(fp32_path, threads)}
    sessions.update({k: session(p, threads) for k, p in int8_paths.items()})
    outs = {k: onnx_logits(s, x) for k, s in sessions.items()}
    if post is not None:
        outs = {k: np.asarray(post(o)) for k, o in outs.items()}
    lat = measure_latency({k: (s, x[:1]) for k, s in sessions.items()}, runs=runs)
    acc = {k: (float((o.argmax(1) == y).mean()) if y is not None else None) for k, o in outs.items()}
    p32 = _softmax(outs["fp32"])
    reports = []
    for k, p in int8_paths.items():
        r = Int8Report(
            name=k, path=str(p), accuracy=acc[k], fp32_accuracy=acc["fp32"],
            agreement=float((outs[k].argmax(1) == outs["fp32"].argmax(1)).mean()),
            max_prob_diff=float(np.abs(_softmax(outs[k]) - p32).max()),
            latency_ms=lat[k]["median_ms"], fp32_latency_ms=lat["fp32"]["median_ms"],
            size_mb=file_size_mb(p), fp32_size_mb=file_size_mb(fp32_path))
        loss = -r.accuracy_delta if r.accuracy_delta is not None else 1.0 - r.agreement
        reasons = []
        if loss > max_accuracy_drop:
            reasons.append(f"loses {loss:.1%} accuracy" if r.accuracy_delta is not None
                           else f"disagrees with fp32 on {loss:.1%} of clips")
        if r.speedup < min_speedup:
            reasons.append(f"only {r.speedup:.2f}x the fp32 speed" if r.speedup >= 1
                           else f"slower than fp32 ({r.speedup:.2f}x)")
        r.accepted = not reasons
        r.verdict = ("accepted: " + f"{r.speedup:.2f}x faster, accuracy change "
                     + (f"{r.accuracy_delta:+.1%}" if r.accuracy_delta is not None
                        else f"n/a (agreement {r.agreement:.1%})")) if r.accepted \
            else "rejected: " + "; ".join(reasons)
        reports.append(r)
    return reports


def format_int8_table(reports: Sequence[Int8Report], verdicts: bool = True) -> str:
    """A fixed-width text table of :class:`Int8Report` s (fp32 first), then each verdict."""
    if not reports:
        return "(no INT8 models)"
    r0 = reports[0]

    def acc(v: float | None) -> str:
        return "   n/a" if v is None else f"{v:6.1%}"

    w = max(16, *(len(r.name) for r in reports))
    lines = [f"{'model':<{w}} {'accuracy':>8} {'Δacc':>7} {'agree':>7} {'ms/call':>8} "
             f"{'speed-up':>8} {'MB':>7}",
             f"{'fp32':<{w}} {acc(r0.fp32_accuracy):>8} {'':>7} {'':>7} "
             f"{r0.fp32_latency_ms:8.2f} {'1.00x':>8} {r0.fp32_size_mb:7.2f}"]
    for r in reports:
        d = "   n/a" if r.accuracy_delta is None else f"{r.accuracy_delta:+.1%}"
        lines.append(f"{r.name:<{w}} {acc(r.accuracy):>8} {d:>7} {r.agreement:7.1%} "
                     f"{r.latency_ms:8.2f} {r.speedup:7.2f}x {r.size_mb:7.2f}")
    if verdicts:
        lines += [f"{r.name}: {r.verdict}" for r in reports]
    return "\n".join(lines)


def choose_int8(reports: Sequence[Int8Report], max_accuracy_drop: float = 0.01) -> Int8Report:
    """The INT8 variant to keep: the accepted one with the best speed-up; if none is
    accepted, the fastest that keeps accuracy (within ``max_accuracy_drop``, or agreement
    without labels); else the fastest.  Its ``verdict`` still says whether to deploy it."""
    if not reports:
        raise GestureError("no INT8 reports to choose from")

    def keeps(r: Int8Report) -> bool:
        loss = -r.accuracy_delta if r.accuracy_delta is not None else 1.0 - r.agreement
        return loss <= max_accuracy_drop

    pool = [r for r in reports if r.accepted] or [r for r in reports if keeps(r)] or list(reports)
    return max(pool, key=lambda r: r.speedup)


# --------------------------------------------------------------------------- all in one
@dataclass
class ExportResult:
    """What :func:`export_checkpoint` wrote and measured."""

    paths: dict[str, Path]
    parity: list[ParityReport]
    parity_inputs: str  #: e.g. "test split (120 clips)" or "random inputs (8)"
    int8: list[Int8Report] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def parity_passed(self) -> bool:
        return all(r.passed for r in self.parity)

    def to_dict(self) -> dict[str, Any]:
        return {"paths": {k: str(v) for k, v in self.paths.items()},
                "sizes_mb": {k: round(file_size_mb(v), 3) for k, v in self.paths.items()},
                "parity_inputs": self.parity_inputs,
                "parity": [{**asdict(r), "passed": r.passed} for r in self.parity],
                "int8": [r.to_dict() for r in self.int8], "notes": list(self.notes)}

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON, atomically (``NAME.export.json``)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def summary(self) -> str:
        lines = ["files:"]
        lines += [f"  {p.name:<34} {file_size_mb(p):8.2f} MB" for p in self.paths.values()]
        lines.append(f"parity on {self.parity_inputs}:")
        lines += [f"  {r}" for r in self.parity]
        if self.int8:
            lines.append("INT8 vs fp32 (clip graph, batch 1, same run):")
            lines += ["  " + ln for ln in format_int8_table(self.int8).splitlines()]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def export_checkpoint(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                      cfg: ExportConfig | None = None, int8: bool = False,
                      data: str | os.PathLike | None = None, name: str | None = None,
                      int8_mode: str = "auto") -> ExportResult:
    """Load a training checkpoint and do everything notebook 04 does, in one call.

    1. Export ``NAME.onnx``, ``NAME.encoder.onnx``, ``NAME.head.onnx`` (fp32).
    2. Parity vs PyTorch on the ``data`` test split (random inputs without ``data``).
    3. With ``int8``: ``NAME.int8.onnx`` plus the streaming ``NAME.encoder.int8.onnx`` /
       ``NAME.head.int8.onnx``, measured against fp32 with :func:`compare_int8`.
       ``int8_mode``: ``static`` (per-channel QDQ calibrated on training clips),
       ``dynamic``, or ``auto`` (default): both are made and measured, and
       :func:`choose_int8` keeps one.  Static needs ``data``; without it dynamic is used
       and a note says so.

    Writes ``NAME.export.json`` with every figure.  ``data`` defaults to the dataset the
    checkpoint was trained on when it exists under :func:`gesture_utils.paths.data_dir`.
    """
    from gesture_utils.models import load_checkpoint
    from gesture_utils.paths import data_dir

    if int8_mode not in (*INT8_MODES, "auto"):
        raise GestureError(f"INT8 mode must be one of {(*INT8_MODES, 'auto')}, got {int8_mode!r}")
    cfg = cfg or ExportConfig()
    checkpoint = Path(checkpoint)
    model, info = load_checkpoint(checkpoint)
    name = name or cfg.name
    out_dir = Path(out_dir)
    notes: list[str] = []
    paths = export_model(model, out_dir, name, opset=cfg.opset, source=checkpoint.name)

    if data is None and info.get("dataset"):
        guess = data_dir() / str(info["dataset"])
        data = guess if (guess / "manifest.csv").is_file() else None
    if data is not None:
        x, y = load_clips(data, model.clip, "test", labels=model.labels)
        where = f"the test split of {Path(data).name} ({len(x)} clips)"
    else:
        g = torch.Generator().manual_seed(cfg.seed)
        T, S = model.clip.num_frames, model.clip.image_size
        x, y = torch.randn(8, T, 3, S, S, generator=g).numpy(), None
        where = "8 random inputs (no dataset given)"
        notes.append("no dataset: parity checked on random inputs, INT8 accuracy not measured")
    parity = parity_report(model, paths, x, atol=cfg.parity_atol, threads=cfg.threads)
    if not all(r.passed for r in parity):
        notes.append("PARITY FAILED: do not trust the exported graphs")

    reports: list[Int8Report] = []
    if int8:
        if int8_mode in ("static", "auto") and data is None:
            if int8_mode == "static":
                notes.append("static INT8 needs calibration clips (--data); used dynamic instead")
            int8_mode = "dynamic"
        modes = INT8_MODES if int8_mode == "auto" else (int8_mode,)
        calib = frames = emb = None
        if "static" in modes:
            calib, _ = load_clips(data, model.clip, "train", labels=model.labels,
                                  limit=cfg.calibration_clips, seed=cfg.seed)
            frames = calib.reshape(-1, *calib.shape[2:])
            emb = onnx_logits(paths["encoder"], frames).reshape(len(calib), calib.shape[1], -1)
        with tempfile.TemporaryDirectory(prefix="gesture-int8-", dir=out_dir) as tmp:
            candidates = {f"int8-{m}": quantize_int8(paths["clip"], Path(tmp) / f"{m}.onnx", m,
                                                     calib if m == "static" else None,
                                                     op_types=cfg.int8_ops)
                          for m in modes}
            reports = compare_int8(paths["clip"], candidates, x, y, runs=cfg.latency_runs,
                                   threads=cfg.threads, max_accuracy_drop=cfg.int8_max_accuracy_drop,
                                   min_speedup=cfg.int8_min_speedup)
            best = choose_int8(reports, cfg.int8_max_accuracy_drop)
            paths["int8"] = int8_path(paths["clip"])
            os.replace(best.path, paths["int8"])
        mode = best.name.removeprefix("int8-")
        for r in reports:
            r.path = str(paths["int8"]) if r is best else "(not kept)"
        paths["encoder_int8"] = quantize_int8(paths["encoder"], mode=mode,
                                              calibration=frames if mode == "static" else None,
                                              op_types=cfg.int8_ops)
        paths["head_int8"] = quantize_int8(paths["head"], mode=mode,
                                           calibration=emb if mode == "static" else None,
                                           op_types=cfg.int8_ops)
        notes.append(f"kept {best.name} as {paths['int8'].name} ({best.verdict})")
    result = ExportResult(paths, parity, where, reports, notes)
    result.save(out_dir / f"{name}.export.json")
    return result


# --------------------------------------------------------------------------- CLI
def configure_cli(parser: argparse.ArgumentParser) -> None:
    """``gesture-utils export CHECKPOINT --out DIR [--int8 [--int8-mode M]] [--data DIR]``."""
    d = ExportConfig()
    parser.add_argument("checkpoint", type=Path, help=".pt checkpoint from `gesture-utils train`")
    parser.add_argument("--out", type=Path, required=True, help="folder for the .onnx files")
    parser.add_argument("--name", default=d.name, help=f"file name stem (default {d.name})")
    parser.add_argument("--data", type=Path, default=None,
                        help="dataset folder: parity on its test split, INT8 calibration on "
                             "its train split (default: the checkpoint's dataset if present)")
    parser.add_argument("--int8", action="store_true", help="also write NAME.int8.onnx (+ streaming)")
    parser.add_argument("--int8-mode", choices=(*INT8_MODES, "auto"), default="auto",
                        help="static (per-channel QDQ, calibrated on --data train clips), "
                             "dynamic, or auto (default: make both, measure, keep the better)")
    parser.add_argument("--opset", type=int, default=d.opset, help=f"ONNX opset (default {d.opset})")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    if args.data is not None and not Path(args.data).is_dir():
        raise input_error(args.data, "dataset folder not found", "check --data")
    cfg = ExportConfig(name=args.name, opset=args.opset, threads=args.threads)
    result = export_checkpoint(args.checkpoint, args.out, cfg, int8=args.int8, data=args.data,
                               int8_mode=args.int8_mode)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())
    return 0 if result.parity_passed else 1


__all__ = [
    "GRAPHS",
    "INT8_MODES",
    "ArrayCalibrationReader",
    "ClipGraph",
    "EncoderGraph",
    "ExportResult",
    "HeadGraph",
    "Int8Report",
    "ParityReport",
    "compare_int8",
    "choose_int8",
    "compare_logits",
    "describe",
    "export_checkpoint",
    "export_metadata",
    "export_model",
    "file_size_mb",
    "format_int8_table",
    "graph_paths",
    "int8_path",
    "load_clips",
    "measure_latency",
    "onnx_logits",
    "parity_report",
    "quantize_int8",
    "read_metadata",
    "session",
    "set_metadata",
    "streaming_logits",
    "to_onnx",
]
