"""Export a trained model to ONNX, prove the export faithful, quantise it to INT8
(notebook 04, ``gesture-utils export``).

One :class:`~gesture_utils.models.ViTTemporal` gives three fp32 graphs (:data:`GRAPHS`):
the clip model ``NAME.onnx``, the per-frame encoder ``NAME.encoder.onnx`` and the
temporal head ``NAME.head.onnx``, each with a dynamic batch axis and the metadata
:mod:`gesture_utils.inference` reads; with INT8 also ``NAME{,.encoder,.head}.int8.onnx``.
Parity with PyTorch is measured on real clips (:func:`parity_report`); INT8 is kept only
on evidence (:func:`compare_int8`): small ViTs are often not faster in INT8 on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
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
from gesture_utils.datasets import load_split
from gesture_utils.errors import GestureError, input_error
from gesture_utils.inference import softmax
from gesture_utils.paths import atomic_path, write_json
from gesture_utils.runtime import CPU_ONLY, LatencyStats, ort_session, time_calls

#: kind -> (file suffix, input, outputs, dynamic axis).  The head's ``hand (B, T, 3)`` is
#: the hand probe's per-frame evidence that the stream decisions check.
GRAPHS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "clip": (".onnx", "video", ("logits",), "batch"),
    "encoder": (".encoder.onnx", "frames", ("embeddings",), "frames"),
    "head": (".head.onnx", "embeddings", ("logits", "hand"), "batch"),
}
INT8_MODES: tuple[str, ...] = ("dynamic", "static")
#: Parity and INT8 figures are CPU figures.


class GraphModule(nn.Module):
    """One graph of ``model``: ``clip`` (the model), ``encoder`` (``encode_frames`` on
    ``(N, 3, S, S)``) or ``head`` (``classify_embeddings`` and ``locate_hand``)."""

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, x: torch.Tensor) -> Any:
        if self.kind == "clip":
            return self.model(x)
        if self.kind == "encoder":
            return self.model.encode_frames(x.unsqueeze(0)).squeeze(0)
        return self.model.classify_embeddings(x), self.model.locate_hand(x)


def int8_path(fp32_path: str | os.PathLike) -> Path:
    """``NAME.onnx -> NAME.int8.onnx``, ``NAME.encoder.onnx -> NAME.encoder.int8.onnx``."""
    p = Path(fp32_path)
    return p.with_name(p.name[: -len(".onnx")] + ".int8.onnx")


def file_size_mb(path: str | os.PathLike) -> float:
    """Size of a file in MB (10^6 bytes)."""
    return Path(path).stat().st_size / 1e6


def _save(proto: onnx.ModelProto, path: Path) -> Path:
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
    return path


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence exporter / quantiser chatter (warnings, root-logger WARNINGs, prints)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


@contextlib.contextmanager
def _on_cpu(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` on the CPU in eval mode; put back on its device and mode afterwards."""
    params = next(model.parameters(), None)
    device = params.device if params is not None else torch.device("cpu")
    was_training = model.training
    try:
        yield model.cpu().eval()
    finally:
        model.to(device).train(was_training)


# --------------------------------------------------------------------------- metadata
def export_metadata(model: nn.Module, kind: str = "clip", source: str | None = None,
                    clip: ClipConfig | None = None, precision: str = "fp32") -> dict[str, str]:
    """The metadata every exported graph carries (strings; lists as JSON): what
    :data:`gesture_utils.inference.REQUIRED_METADATA` reads plus ``head``, ``backbone``,
    ``graph``, ``precision``, ``source`` (checkpoint file name) and ``producer``."""
    clip = clip or getattr(model, "clip", None)
    if clip is None:
        raise GestureError("the model has no ClipConfig (model.clip); pass clip=")
    cfg = getattr(model, "cfg", None)
    probe = bool(getattr(getattr(model, "hand_probe", None), "trained", False))
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
        "hand_probe": str(probe).lower(),
        "graph": kind,
        "precision": precision,
        "source": source or "",
        "producer": f"gesture_utils {__version__} (torch {torch.__version__}, onnx {onnx.__version__})",
    }


def set_metadata(proto: onnx.ModelProto, metadata: Mapping[str, str]) -> onnx.ModelProto:
    """Replace the model's ``metadata_props`` with ``metadata`` (in place; returned)."""
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=str(key), value=str(value))
    return proto


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The raw ``metadata_props`` of an ONNX file."""
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


# --------------------------------------------------------------------------- export
def _example(model: nn.Module, kind: str, clip: ClipConfig) -> torch.Tensor:
    T, S = clip.num_frames, clip.image_size
    shape = {"clip": (2, T, 3, S, S), "encoder": (3, 3, S, S)}.get(kind, (2, T, int(model.embed_dim)))
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def to_onnx(module: nn.Module, example: torch.Tensor, input_name: str,
            output_names: Sequence[str], axis_name: str, opset: int = 18) -> onnx.ModelProto:
    """Export ``module(example)`` with ``torch.onnx.export(dynamo=True)``, axis 0 dynamic
    and named ``axis_name``, checked by ``onnx.checker``; a failure is one :class:`GestureError`."""
    dim = torch.export.Dim(axis_name, min=1, max=1 << 16)
    try:
        with _quiet(), torch.no_grad():
            proto = torch.onnx.export(
                module.eval(), (example,), None, input_names=[input_name], output_names=list(output_names),
                opset_version=opset, dynamo=True, external_data=False, verbose=False, optimize=True,
                dynamic_shapes=({0: dim},)).model_proto
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise GestureError(f"ONNX export failed: {type(exc).__name__}: {first}") from exc
    del proto.graph.value_info[:]  # stale shape hints broke the INT8 quantiser; ORT re-infers
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise GestureError(f"exported graph fails onnx.checker: {str(exc).splitlines()[0]}") from exc
    return proto


def export_model(model: nn.Module, out_dir: str | os.PathLike, name: str = "vit_temporal",
                 kinds: Sequence[str] = ("clip", "encoder", "head"), opset: int = 18,
                 source: str | None = None, clip: ClipConfig | None = None) -> dict[str, Path]:
    """Write the fp32 graphs ``kinds`` of ``model`` to ``out_dir`` (checked, with
    :func:`export_metadata`, atomically); returns ``{kind: path}``."""
    unknown = [k for k in kinds if k not in GRAPHS]
    if unknown:
        raise GestureError(f"unknown graph kinds {unknown}; choose from {list(GRAPHS)}")
    if opset < 17:
        raise GestureError(f"opset {opset} is too old: LayerNormalization needs opset >= 17")
    clip = clip or model.clip
    out: dict[str, Path] = {}
    with _on_cpu(model):
        for kind in kinds:
            suffix, input_name, output_names, axis = GRAPHS[kind]
            proto = to_onnx(GraphModule(model, kind), _example(model, kind, clip), input_name,
                            output_names, axis, opset=opset)
            proto.doc_string = f"gesture_utils {kind} graph of {source or 'a ViTTemporal'}"
            set_metadata(proto, export_metadata(model, kind, source, clip))
            out[kind] = _save(proto, Path(out_dir) / f"{name}{suffix}")
    return out


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """An ONNX file's inputs/outputs with shapes, opset, IR version, metadata, node-type
    counts, parameter count and size."""
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
    """How closely two implementations agree on the same ``n`` clips."""

    name: str  #: e.g. "onnx clip vs torch"
    n: int
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
    """PyTorch logits ``(N, K)`` of clips ``x (N, T, 3, S, S)``, on the CPU in eval mode."""
    with _on_cpu(model):
        return np.concatenate([model(torch.from_numpy(b)).numpy() for b in _batched(x, batch_size)])


def onnx_logits(path: Any, x: np.ndarray, batch_size: int = 16,
                threads: int | None = None) -> np.ndarray:
    """Outputs ``(N, ...)`` of a one-input graph (a path or an open session) for ``x``."""
    sess = path if hasattr(path, "run") else ort_session(path, threads, CPU_ONLY)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: b})[0] for b in _batched(x, batch_size)])


def streaming_logits(encoder: Any, head: Any, x: np.ndarray, batch_size: int = 16,
                     threads: int | None = None) -> np.ndarray:
    """Logits of clips ``x (N, T, 3, S, S)`` through the streaming pair: each frame
    encoded on its own, then the head on ``(N, T, D)``."""
    N, T = x.shape[:2]
    emb = onnx_logits(encoder, x.reshape(N * T, *x.shape[2:]), batch_size * T, threads)
    return onnx_logits(head, emb.reshape(N, T, -1), batch_size, threads)


def parity_report(model: nn.Module, paths: Mapping[str, str | os.PathLike], x: np.ndarray,
                  atol: float = 1e-4, batch_size: int = 16,
                  threads: int | None = None) -> list[ParityReport]:
    """``onnx clip vs torch`` (with ``paths['clip']``), ``streaming vs torch`` and
    ``streaming vs onnx clip`` (with ``encoder`` and ``head``) on clips ``x``."""
    x = np.asarray(x, dtype=np.float32)
    ref = torch_logits(model, x, batch_size)
    reports, clip_out = [], None
    if "clip" in paths:
        clip_out = onnx_logits(paths["clip"], x, batch_size, threads)
        reports.append(compare_logits("onnx clip vs torch", clip_out, ref, atol))
    if "encoder" in paths and "head" in paths:
        stream = streaming_logits(paths["encoder"], paths["head"], x, batch_size, threads)
        reports.append(compare_logits("streaming vs torch", stream, ref, atol))
        if clip_out is not None:
            reports.append(compare_logits("streaming vs onnx clip", stream, clip_out, atol))
    return reports


# --------------------------------------------------------------------------- INT8
class ArrayCalibrationReader(CalibrationDataReader):
    """Feeds calibration inputs ``(N, ...)`` to ``quantize_static`` in batches."""

    def __init__(self, input_name: str, data: np.ndarray, batch_size: int = 8) -> None:
        self.input_name, self.batch_size = input_name, int(batch_size)
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self._pos = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._pos >= len(self.data):
            return None
        self._pos += self.batch_size
        return {self.input_name: self.data[self._pos - self.batch_size: self._pos]}

    def rewind(self) -> None:
        self._pos = 0


def quantize_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike | None = None,
                  mode: str = "static", calibration: np.ndarray | None = None,
                  op_types: Sequence[str] = ("MatMul", "Gemm", "Conv")) -> Path:
    """Quantise an fp32 graph with ``onnxruntime.quantization`` (after its pre-processing);
    writes ``out_path`` (default ``NAME.int8.onnx``) atomically, metadata kept.

    ``dynamic``: int8 weights of MatMul/Gemm, activation scales per call.  ``static``: QDQ,
    per-channel int8 weights, uint8 activations with MinMax ranges from ``calibration``
    (real inputs of this graph)."""
    if mode not in INT8_MODES:
        raise GestureError(f"INT8 mode must be one of {INT8_MODES}, got {mode!r}")
    src = Path(fp32_path)
    if mode == "static" and (calibration is None or len(calibration) == 0):
        raise GestureError(f"{src}: static INT8 needs calibration inputs (real clips)")
    meta = read_metadata(src)
    input_name = ort_session(src, providers=CPU_ONLY).get_inputs()[0].name
    with tempfile.TemporaryDirectory(prefix="gesture-int8-") as tmp:
        pre, raw = str(Path(tmp) / "pre.onnx"), str(Path(tmp) / "int8.onnx")
        with _quiet():
            quant_pre_process(str(src), pre, skip_symbolic_shape=False)
            if mode == "dynamic":
                quantize_dynamic(pre, raw, weight_type=QuantType.QInt8, per_channel=True,
                                 op_types_to_quantize=[o for o in op_types if o != "Conv"])
            else:
                quantize_static(pre, raw, ArrayCalibrationReader(input_name, calibration),
                                quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                op_types_to_quantize=list(op_types),
                                calibrate_method=CalibrationMethod.MinMax)
        proto = onnx.load(raw)
    meta["precision"] = "int8-dynamic" if mode == "dynamic" else "int8-static-qdq"
    return _save(set_metadata(proto, meta), Path(out_path) if out_path is not None else int8_path(src))


def measure_latency(sessions: Mapping[str, tuple[Any, np.ndarray]], runs: int = 30,
                    warmup: int = 3) -> dict[str, LatencyStats]:
    """Latency of each ``name -> (session, input)``, interleaved (:func:`runtime.time_calls`)."""
    def call(sess: Any, x: np.ndarray) -> Any:
        feed = {sess.get_inputs()[0].name: np.ascontiguousarray(x, dtype=np.float32)}
        return lambda: sess.run(None, feed)

    return time_calls({k: call(s, x) for k, (s, x) in sessions.items()}, runs, warmup)


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

    @property
    def loss(self) -> float:
        """Accuracy lost (disagreement with fp32 without labels)."""
        return -self.accuracy_delta if self.accuracy_delta is not None else 1.0 - self.agreement

    def judge(self, max_accuracy_drop: float, min_speedup: float) -> None:
        """Set ``accepted`` and ``verdict``."""
        reasons = []
        if self.loss > max_accuracy_drop:
            reasons.append(f"loses {self.loss:.1%} accuracy" if self.accuracy_delta is not None
                           else f"disagrees with fp32 on {self.loss:.1%} of clips")
        if self.speedup < min_speedup:
            reasons.append(f"only {self.speedup:.2f}x the fp32 speed" if self.speedup >= 1
                           else f"slower than fp32 ({self.speedup:.2f}x)")
        self.accepted = not reasons
        change = (f"{self.accuracy_delta:+.1%}" if self.accuracy_delta is not None
                  else f"n/a (agreement {self.agreement:.1%})")
        self.verdict = (f"accepted: {self.speedup:.2f}x faster, accuracy change {change}"
                        if self.accepted else "rejected: " + "; ".join(reasons))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "speedup": self.speedup, "accuracy_delta": self.accuracy_delta}


def compare_int8(fp32_path: str | os.PathLike, int8_paths: Mapping[str, str | os.PathLike],
                 x: np.ndarray, y: np.ndarray | None = None, runs: int = 30,
                 threads: int | None = None, max_accuracy_drop: float = 0.01,
                 min_speedup: float = 1.1, post: Any = None) -> list[Int8Report]:
    """Accuracy, agreement with fp32, batch-1 latency (``x[:1]``, interleaved) and size of
    INT8 models on inputs ``x`` (labels ``y``), each judged by :meth:`Int8Report.judge`.
    ``post(outputs) -> logits (N, K)`` maps a graph's outputs to class logits first."""
    sessions = {k: ort_session(p, threads, CPU_ONLY) for k, p in {"fp32": fp32_path, **int8_paths}.items()}
    outs = {k: onnx_logits(s, x) for k, s in sessions.items()}
    if post is not None:
        outs = {k: np.asarray(post(o)) for k, o in outs.items()}
    lat = measure_latency({k: (s, x[:1]) for k, s in sessions.items()}, runs=runs)
    acc = {k: (float((o.argmax(1) == y).mean()) if y is not None else None) for k, o in outs.items()}
    p32 = softmax(outs["fp32"], axis=1)
    reports = []
    for k, p in int8_paths.items():
        r = Int8Report(
            name=k, path=str(p), accuracy=acc[k], fp32_accuracy=acc["fp32"],
            agreement=float((outs[k].argmax(1) == outs["fp32"].argmax(1)).mean()),
            max_prob_diff=float(np.abs(softmax(outs[k], axis=1) - p32).max()),
            latency_ms=lat[k].p50_ms, fp32_latency_ms=lat["fp32"].p50_ms,
            size_mb=file_size_mb(p), fp32_size_mb=file_size_mb(fp32_path))
        r.judge(max_accuracy_drop, min_speedup)
        reports.append(r)
    return reports


def format_int8_table(reports: Sequence[Int8Report], verdicts: bool = True) -> str:
    """A fixed-width table of :class:`Int8Report` s (fp32 first), then each verdict."""
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
    """The INT8 variant to keep: the fastest accepted one, else the fastest that keeps
    accuracy (``loss <= max_accuracy_drop``), else the fastest."""
    if not reports:
        raise GestureError("no INT8 reports to choose from")
    pool = ([r for r in reports if r.accepted] or [r for r in reports if r.loss <= max_accuracy_drop]
            or list(reports))
    return max(pool, key=lambda r: r.speedup)


# --------------------------------------------------------------------------- all in one
@dataclass
class ExportResult:
    """What :func:`export_checkpoint` wrote and measured."""

    paths: dict[str, Path]
    parity: list[ParityReport]
    parity_inputs: str  #: e.g. "the test split of tiny (6 clips)" or "8 random inputs"
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
        return write_json(path, self.to_dict())

    def summary(self) -> str:
        lines = ["files:", *(f"  {p.name:<34} {file_size_mb(p):8.2f} MB" for p in self.paths.values()),
                 f"parity on {self.parity_inputs}:", *(f"  {r}" for r in self.parity)]
        if self.int8:
            lines.append("INT8 vs fp32 (clip graph, batch 1, same run):")
            lines += ["  " + ln for ln in format_int8_table(self.int8).splitlines()]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _parity_inputs(model: nn.Module, data: Path | None,
                   seed: int) -> tuple[np.ndarray, np.ndarray | None, str, list[str]]:
    """Clips for parity and INT8 accuracy: ``data``'s test split, else 8 random inputs."""
    clip = model.clip
    if data is not None:
        split = load_split(data, "test", clip, labels=model.labels)
        return (split.inputs(clip.mean, clip.std), split.y,
                f"the test split of {Path(data).name} ({len(split.y)} clips)", [])
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, clip.num_frames, 3, clip.image_size, clip.image_size, generator=g).numpy()
    return x, None, "8 random inputs (no dataset given)", [
        "no dataset: parity checked on random inputs, INT8 accuracy not measured"]


def _export_int8(model: nn.Module, paths: dict[str, Path], data: Path | None, x: np.ndarray,
                 y: np.ndarray | None, cfg: ExportConfig, mode: str,
                 notes: list[str]) -> list[Int8Report]:
    """Make and measure the INT8 clip candidates, keep one as ``NAME.int8.onnx`` and
    quantise the streaming pair the same way."""
    if mode in ("static", "auto") and data is None:
        if mode == "static":
            notes.append("static INT8 needs calibration clips (--data); used dynamic instead")
        mode = "dynamic"
    modes = INT8_MODES if mode == "auto" else (mode,)
    calib: dict[str, np.ndarray] = {}
    if "static" in modes:
        clips = load_split(data, "train", model.clip, labels=model.labels, limit=cfg.calibration_clips,
                           seed=cfg.seed).inputs(model.clip.mean, model.clip.std)
        frames = clips.reshape(-1, *clips.shape[2:])
        emb = onnx_logits(paths["encoder"], frames).reshape(len(clips), clips.shape[1], -1)
        calib = {"clip": clips, "encoder": frames, "head": emb}
    with tempfile.TemporaryDirectory(prefix="gesture-int8-", dir=paths["clip"].parent) as tmp:
        candidates = {f"int8-{m}": quantize_int8(paths["clip"], Path(tmp) / f"{m}.onnx", m,
                                                 calib.get("clip"), op_types=cfg.int8_ops)
                      for m in modes}
        reports = compare_int8(paths["clip"], candidates, x, y, runs=cfg.latency_runs,
                               threads=cfg.threads, max_accuracy_drop=cfg.int8_max_accuracy_drop,
                               min_speedup=cfg.int8_min_speedup)
        best = choose_int8(reports, cfg.int8_max_accuracy_drop)
        paths["int8"] = int8_path(paths["clip"])
        os.replace(best.path, paths["int8"])
    for r in reports:
        r.path = str(paths["int8"]) if r is best else "(not kept)"
    kept = best.name.removeprefix("int8-")
    for kind in ("encoder", "head"):
        paths[f"{kind}_int8"] = quantize_int8(paths[kind], mode=kept, op_types=cfg.int8_ops,
                                              calibration=calib.get(kind) if kept == "static" else None)
    notes.append(f"kept {best.name} as {paths['int8'].name} ({best.verdict})")
    return reports


def export_checkpoint(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                      cfg: ExportConfig | None = None, int8: bool = False,
                      data: str | os.PathLike | None = None, name: str | None = None,
                      int8_mode: str = "auto") -> ExportResult:
    """What notebook 04 does, in one call: export the three fp32 graphs, check parity on
    ``data``'s test split (default: the checkpoint's dataset under ``data_dir()`` if
    present; else random inputs), and with ``int8`` make ``static`` (calibrated on
    training clips), ``dynamic`` or (``auto``) both, keep one (:func:`choose_int8`) and
    quantise the streaming pair alike.  Writes ``NAME.export.json``."""
    from gesture_utils.models import load_checkpoint
    from gesture_utils.paths import data_dir

    if int8_mode not in (*INT8_MODES, "auto"):
        raise GestureError(f"INT8 mode must be one of {(*INT8_MODES, 'auto')}, got {int8_mode!r}")
    cfg = cfg or ExportConfig()
    checkpoint, out_dir, name = Path(checkpoint), Path(out_dir), name or cfg.name
    model, info = load_checkpoint(checkpoint)
    paths = export_model(model, out_dir, name, opset=cfg.opset, source=checkpoint.name)
    if data is None and info.get("dataset"):
        guess = data_dir() / str(info["dataset"])
        data = guess if (guess / "manifest.csv").is_file() else None
    data = Path(data) if data is not None else None
    x, y, where, notes = _parity_inputs(model, data, cfg.seed)
    parity = parity_report(model, paths, x, atol=cfg.parity_atol, threads=cfg.threads)
    if not all(r.passed for r in parity):
        notes.append("PARITY FAILED: do not trust the exported graphs")
    reports = _export_int8(model, paths, data, x, y, cfg, int8_mode, notes) if int8 else []
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
