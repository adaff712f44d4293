"""How fast is the model: a latency harness for PyTorch vs ONNX Runtime fp32 vs INT8 (notebook 05).

Rules the harness follows (each one is a mistake the article's one-line timing makes):

* **Warm-up, then many timed calls.**  The first calls allocate memory, pick kernels
  and fill caches; we discard ``warmup`` calls and time ``runs`` more, one
  :func:`time.perf_counter` pair per call, and report p50/p95/p99, mean, std and n
  (:class:`LatencyStats`).  A mean alone hides the slow tail a live demo feels.
* **Threads set explicitly, printed.**  ``torch.set_num_threads(k)`` and ONNX Runtime's
  ``intra_op_num_threads`` are set explicitly; :func:`machine_info` records them with
  the CPU model, core count and library versions.  ONNX Runtime's count is, by default,
  the faster of 1 and ``k`` *measured* on the clip graph (:func:`pick_ort_threads`): for
  a ~2 ms model, handing ops between threads can cost more than it saves.
* **Compare within one run.**  On a shared machine absolute times drift;
  :func:`time_interleaved` calls the backends in turn (A, B, C, B, C, A, ...) so drift hits
  them equally, and ratios measured in one run are what we report.
* **Preprocessing is timed separately** (decode, sample + resize, normalise;
  :func:`time_preprocessing`) from the model.
* **Per clip and per streamed frame.**  A stream keeps the last T frame embeddings, so a
  new frame costs one encoder pass on one frame plus one head pass over the cached
  window (:func:`Backend.frame_update`), not a T-frame clip.
* **Counted FLOPs and a stated bound.**  :func:`count_flops` counts the model's FLOPs
  with :class:`torch.utils.flop_counter.FlopCounterMode`; :func:`peak_matmul_flops`
  measures this machine's fp32 matmul FLOP/s with the same threads.  Latency as a
  fraction of that bound says how close to the hardware each backend runs.

CLI: ``gesture-utils benchmark MODEL_DIR_OR_CHECKPOINT [--runs N] [--threads K] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from gesture_utils.config import BenchmarkConfig, to_dict
from gesture_utils.errors import GestureError, input_error


# --------------------------------------------------------------------------- timing
@dataclass(frozen=True)
class LatencyStats:
    """Latency of ``n`` timed calls, in milliseconds per call of ``batch`` items."""

    name: str
    n: int
    mean_ms: float
    std_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    batch: int = 1

    @classmethod
    def from_seconds(cls, samples: Sequence[float], name: str = "", batch: int = 1) -> LatencyStats:
        """Summarise per-call durations given in seconds."""
        ms = np.asarray(samples, dtype=np.float64) * 1e3
        if ms.size == 0:
            raise ValueError("no timing samples")
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return cls(name=name, n=int(ms.size), mean_ms=float(ms.mean()),
                   std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
                   p50_ms=float(p50), p95_ms=float(p95), p99_ms=float(p99),
                   min_ms=float(ms.min()), max_ms=float(ms.max()), batch=batch)

    @property
    def per_item_ms(self) -> float:
        """Median milliseconds per item (clip or frame) of the batch."""
        return self.p50_ms / self.batch

    @property
    def throughput(self) -> float:
        """Items per second at the median latency."""
        return 1e3 * self.batch / self.p50_ms

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "per_item_ms": self.per_item_ms, "throughput": self.throughput}

    def __str__(self) -> str:
        return (f"{self.name:<16} b={self.batch:<3} p50 {self.p50_ms:8.2f} ms  p95 {self.p95_ms:8.2f}"
                f"  p99 {self.p99_ms:8.2f}  mean {self.mean_ms:8.2f} ± {self.std_ms:6.2f}  n={self.n}")


def time_fn(fn: Callable[[], Any], warmup: int = 10, runs: int = 100, name: str = "",
            batch: int = 1, sync: Callable[[], Any] | None = None) -> LatencyStats:
    """Call ``fn()`` ``warmup`` times untimed, then time ``runs`` calls one by one.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs inside each timed interval so
    asynchronous GPU work is counted.
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        samples.append(time.perf_counter() - t0)
    return LatencyStats.from_seconds(samples, name=name, batch=batch)


def time_interleaved(fns: Mapping[str, Callable[[], Any]], warmup: int = 10, runs: int = 100,
                     batch: int = 1, sync: Callable[[], Any] | None = None,
                     ) -> dict[str, LatencyStats]:
    """Time several callables round-robin so machine noise hits them all alike.

    Round ``r`` calls the functions starting at position ``r mod len(fns)``; each call is
    timed on its own.  Returns ``{name: LatencyStats}`` in the order given.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            fns[name]()
            if sync:
                sync()
            samples[name].append(time.perf_counter() - t0)
    return {name: LatencyStats.from_seconds(samples[name], name=name, batch=batch) for name in names}


def cpu_time_per_call(fn: Callable[[], Any], warmup: int = 3, runs: int = 30) -> float:
    """Process CPU milliseconds per call of ``fn`` (all threads, :func:`time.process_time`).

    Unlike wall-clock time this does not count time spent waiting for a core, so on a
    machine shared with other jobs it measures the *work* a backend does far more stably.
    It cannot show parallel speed-up (two busy threads count twice) - compare backends at
    the same thread count, ideally 1.
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    for _ in range(warmup):
        fn()
    c0 = time.process_time()
    for _ in range(runs):
        fn()
    return 1e3 * (time.process_time() - c0) / runs


# --------------------------------------------------------------------------- machine
def default_threads() -> int:
    """Cores this process may run on (``sched_getaffinity``), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_torch_threads(threads: int | None) -> int:
    """``torch.set_num_threads`` (``None`` -> all usable cores); returns the value set."""
    n = threads or default_threads()
    torch.set_num_threads(n)
    return n


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, else :mod:`platform`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, library versions, GPU."""
    import onnxruntime as ort

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": default_threads(),
        "threads": threads or default_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "ort_providers": ort.get_available_providers(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        info["load_average_1min"] = None
    return info


def format_machine(info: Mapping[str, Any]) -> str:
    """:func:`machine_info` as two short lines."""
    gpu = info.get("cuda") or "none"
    return (f"CPU {info['cpu']} · {info['usable_cores']} usable cores · threads={info['threads']} · "
            f"GPU {gpu} · load(1 min) {info.get('load_average_1min')}\n"
            f"python {info['python']} · torch {info['torch']} · onnxruntime {info['onnxruntime']} "
            f"· numpy {info['numpy']}")


# --------------------------------------------------------------------------- FLOPs
def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


#: FlopCounterMode knows the CUDA attention kernels but not the CPU flash kernel that
#: ``F.scaled_dot_product_attention`` dispatches to on CPU; without this it counts 0.
EXTRA_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flop}


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """FLOPs of one call ``fn(*args, **kwargs)`` counted by ``FlopCounterMode``.

    A multiply-add counts as 2 FLOPs (the convention of FLOP/s figures); matmuls,
    convolutions and attention are counted, element-wise ops (softmax, GELU, norms) are
    not, so this is a slight under-count.
    """
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as fc:
        fn(*args, **kwargs)
    return int(fc.get_total_flops())


def peak_matmul_flops(threads: int | None = None, n: int = 1024, repeats: int = 5) -> float:
    """Measured fp32 FLOP/s of an ``n x n`` matmul with ``threads`` torch threads (best of ``repeats``).

    This is *a* hardware bound, stated as such: what this machine's BLAS reaches on the
    friendliest dense kernel at this thread count - not a vendor datasheet peak.
    """
    old = torch.get_num_threads()
    set_torch_threads(threads)
    try:
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)
    return 2.0 * n**3 / best


def bound_fraction(flops: float, latency_ms: float, peak_flops: float) -> float:
    """Achieved FLOP/s (``flops`` per call in ``latency_ms``) as a fraction of ``peak_flops``."""
    return flops / (latency_ms / 1e3) / peak_flops


# --------------------------------------------------------------------------- backends
def make_ort_session(path: str | os.PathLike[str], threads: int | None = None,
                     providers: Sequence[str] | None = None, optimization: str = "all",
                     spinning: bool | None = None):
    """An ``onnxruntime.InferenceSession`` with explicit threads and graph optimisation.

    ``threads`` -> ``intra_op_num_threads`` (``inter_op`` = 1, sequential execution);
    ``optimization`` in ``disable|basic|extended|all``; ``spinning`` sets
    ``session.intra_op.allow_spinning`` (None: ONNX Runtime's default, which spins).
    """
    import onnxruntime as ort

    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    if optimization not in levels:
        raise GestureError(f"graph optimisation {optimization!r} is not one of {sorted(levels)}")
    path = Path(path)
    if not path.is_file():
        raise input_error(path, "ONNX model not found", "run `gesture-utils export` first")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = levels[optimization]
    if spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), sess_options=so,
                                providers=list(providers or ["CPUExecutionProvider"]))


def pick_ort_threads(path: str | os.PathLike[str], x: np.ndarray, candidates: Sequence[int],
                     warmup: int = 10, runs: int = 40, optimization: str = "all",
                     spinning: bool | None = False, margin: float = 0.05) -> tuple[int, dict[int, float]]:
    """The intra-op thread count (from ``candidates``) that runs the graph at ``path`` on
    ``x`` fastest, timed interleaved; returns ``(best, {threads: p50 ms})``.  More threads
    must win by ``margin`` (5 %) over fewer: a near tie keeps the smaller count, which
    leaves a core free for the camera and preprocessing.  On 2 cores a ~2 ms model gains
    little or nothing from a second thread: handing off the small ops costs about what
    splitting them saves (notebook 05)."""
    options = sorted({max(1, int(c)) for c in candidates})
    fns = {}
    for t in options:
        sess = make_ort_session(path, t, optimization=optimization, spinning=spinning)
        name = sess.get_inputs()[0].name
        fns[str(t)] = (lambda s=sess, n=name: s.run(None, {n: x}))
    stats = time_interleaved(fns, warmup, runs)
    p50 = {t: stats[str(t)].p50_ms for t in options}
    best = options[0]
    for t in options[1:]:
        if p50[t] * (1 + margin) < p50[best]:
            best = t
    return best, p50


@dataclass
class Backend:
    """One way to run the model.  Each callable takes numpy float32 input and blocks.

    ``clip(x)``: ``x`` (B, T, 3, S, S) normalised -> logits (B, K).
    ``encode(f)``: ``f`` (1, 3, S, S) -> embedding (1, D); ``head(w)``: ``w`` (1, T, D) -> logits.
    ``sync``: called inside each timed interval (CUDA), or None.
    """

    name: str
    clip: Callable[[np.ndarray], Any]
    encode: Callable[[np.ndarray], Any] | None = None
    head: Callable[[np.ndarray], Any] | None = None
    sync: Callable[[], Any] | None = None
    device: str = "cpu"
    notes: dict[str, Any] = field(default_factory=dict)

    def frame_update(self, frame: np.ndarray, window: np.ndarray) -> Any:
        """One streamed step: encode the newest frame, classify the cached window."""
        if self.encode is None or self.head is None:
            raise GestureError(f"backend {self.name} has no streaming (encoder/head) path")
        self.encode(frame)
        return self.head(window)


def torch_backend(model: torch.nn.Module, device: str = "cpu", name: str | None = None) -> Backend:
    """PyTorch eager on ``device``; numpy in, tensors out (copies to the device are timed)."""
    model = model.to(device).eval()
    sync = torch.cuda.synchronize if device.startswith("cuda") else None

    def run(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[np.ndarray], Any]:
        def call(x: np.ndarray) -> Any:
            with torch.inference_mode():
                return fn(torch.from_numpy(x).to(device))
        return call

    encode = head = None
    if hasattr(model, "encode_frames") and hasattr(model, "classify_embeddings"):
        encode = run(model.encode_frames)
        head = run(model.classify_embeddings)
    return Backend(name=name or f"torch-{device.split(':')[0]}", clip=run(model), encode=encode,
                   head=head, sync=sync, device=device)


def ort_backend(name: str, clip_path: str | os.PathLike[str],
                encoder_path: str | os.PathLike[str] | None = None,
                head_path: str | os.PathLike[str] | None = None, threads: int | None = None,
                providers: Sequence[str] | None = None, optimization: str = "all",
                spinning: bool | None = None) -> Backend:
    """ONNX Runtime backend over the clip graph and, when given, the streaming pair."""
    def runner(path: str | os.PathLike[str]) -> Callable[[np.ndarray], Any]:
        sess = make_ort_session(path, threads, providers, optimization, spinning)
        inp = sess.get_inputs()[0].name
        return lambda x: sess.run(None, {inp: x})[0]

    encode = runner(encoder_path) if encoder_path and Path(encoder_path).is_file() else None
    head = runner(head_path) if head_path and Path(head_path).is_file() else None
    device = "cuda" if providers and "CUDAExecutionProvider" in providers else "cpu"
    return Backend(name=name, clip=runner(clip_path), encode=encode, head=head, device=device,
                   notes={"path": str(clip_path), "optimization": optimization})


# --------------------------------------------------------------------------- preprocessing
def time_preprocessing(clip_path: str | os.PathLike[str], num_frames: int, image_size: int,
                       mean: Sequence[float], std: Sequence[float], warmup: int = 3,
                       runs: int = 20, camera_frame: tuple[int, int] = (480, 640),
                       ) -> dict[str, LatencyStats]:
    """Time the input pipeline stages on one real clip, apart from the model.

    ``decode``: :func:`~gesture_utils.video.read_frames` (every frame of the file);
    ``sample+resize``: pick T frames and resize to ``S x S``;
    ``normalise``: uint8 (T, S, S, 3) -> float32 (1, T, 3, S, S);
    ``frame (camera)``: one ``camera_frame``-sized RGB frame -> (1, 3, S, S), the per-frame
    cost of the stream.
    """
    from gesture_utils.video import read_frames, resize_frame, sample_indices

    m = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)

    def normalise(clip: np.ndarray) -> np.ndarray:
        x = clip.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        return ((x - m) / s)[None]

    frames = read_frames(clip_path)

    def sample_resize() -> np.ndarray:
        return np.stack([resize_frame(frames[i], image_size)
                         for i in sample_indices(len(frames), num_frames)])

    clip = sample_resize()
    rng = np.random.default_rng(0)
    cam = rng.integers(0, 256, (*camera_frame, 3), dtype=np.uint8)
    return {
        "decode": time_fn(lambda: read_frames(clip_path), warmup, runs, name="decode"),
        "sample+resize": time_fn(sample_resize, warmup, runs, name="sample+resize"),
        "normalise": time_fn(lambda: normalise(clip), warmup, runs, name="normalise"),
        "frame (camera)": time_fn(lambda: normalise(resize_frame(cam, image_size)[None])[0],
                                  warmup, runs, name="frame (camera)"),
    }


# --------------------------------------------------------------------------- models on disk
@dataclass
class ModelFiles:
    """The files of one model: checkpoint and the ONNX graphs export writes next to it."""

    name: str
    checkpoint: Path | None = None
    onnx: Path | None = None
    int8: Path | None = None
    encoder: Path | None = None
    head: Path | None = None
    int8_encoder: Path | None = None
    int8_head: Path | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def find_model_files(path: str | os.PathLike[str], name: str = "vit_temporal") -> ModelFiles:
    """Locate ``<name>.pt`` and ``<name>{,.int8,.encoder,.head,...}.onnx``.

    ``path`` is a folder (``name`` picks the model; default ``vit_temporal``), a ``.pt``
    checkpoint or a clip ``.onnx`` file; siblings with the same stem are picked up.
    """
    path = Path(path)
    if path.is_dir():
        folder = path
    elif path.is_file() and path.suffix.lower() in (".pt", ".pth", ".onnx"):
        folder, name = path.parent, path.name.split(".")[0]
    elif path.exists():
        raise input_error(path, "is neither a folder, a .pt checkpoint nor an .onnx model",
                          "pass the artifacts folder or a checkpoint")
    else:
        raise input_error(path, "not found", "pass the artifacts folder (e.g. artifacts/) or a "
                          "checkpoint written by `gesture-utils train`")
    files = ModelFiles(
        name=name,
        checkpoint=_existing(folder / f"{name}.pt") or _existing(folder / f"{name}.pth"),
        onnx=_existing(folder / f"{name}.onnx"),
        int8=_existing(folder / f"{name}.int8.onnx"),
        encoder=_existing(folder / f"{name}.encoder.onnx"),
        head=_existing(folder / f"{name}.head.onnx"),
        int8_encoder=_existing(folder / f"{name}.encoder.int8.onnx"),
        int8_head=_existing(folder / f"{name}.head.int8.onnx"),
    )
    if files.checkpoint is None and files.onnx is None:
        raise input_error(folder, f"holds neither {name}.pt nor {name}.onnx",
                          "train (notebook 03 / `gesture-utils train`) and export (notebook 04 / "
                          "`gesture-utils export`) first, or pass the model file")
    return files


# --------------------------------------------------------------------------- the full benchmark
def model_flops(model: torch.nn.Module, num_frames: int, image_size: int) -> dict[str, int]:
    """Counted FLOPs of one clip, one frame through the encoder, and one head pass.

    ``streamed_update`` = ``frame_encoder + head``: what a stream pays per new frame.
    """
    dev = next(model.parameters()).device
    clip = torch.zeros(1, num_frames, 3, image_size, image_size, device=dev)
    with torch.no_grad():
        window = model.encode_frames(clip)
    frame_flops = count_flops(model.encode_frames, clip[:, :1])
    head_flops = count_flops(model.classify_embeddings, window)
    return {"clip": count_flops(model, clip), "frame_encoder": frame_flops, "head": head_flops,
            "streamed_update": frame_flops + head_flops}


def build_backends(files: ModelFiles, model: torch.nn.Module | None, threads: int,
                   optimization: str = "all", cuda: bool | None = None,
                   spinning: bool | None = False, ort_threads: int | None = None) -> dict[str, Backend]:
    """Every backend that can run here, in report order.

    CPU: ``torch-eager`` (needs the checkpoint), ``ort-fp32``, ``ort-int8`` (if exported).
    GPU, when present: ``torch-cuda`` and ``ort-cuda`` (CUDAExecutionProvider).
    ``threads``: torch's intra-op threads; ``ort_threads``: ONNX Runtime's (None: ``threads``).
    """
    import onnxruntime as ort

    threads = ort_threads or threads  # from here on: ONNX Runtime's (torch's are process-wide)
    backends: dict[str, Backend] = {}
    if model is not None:
        backends["torch-eager"] = torch_backend(model, "cpu", name="torch-eager")
    if files.onnx is not None:
        backends["ort-fp32"] = ort_backend("ort-fp32", files.onnx, files.encoder, files.head,
                                           threads=threads, optimization=optimization,
                                           spinning=spinning)
    if files.int8 is not None:
        backends["ort-int8"] = ort_backend("ort-int8", files.int8, files.int8_encoder or files.encoder,
                                           files.int8_head or files.head, threads=threads,
                                           optimization=optimization, spinning=spinning)
        backends["ort-int8"].notes["streaming"] = ("int8" if files.int8_encoder else "fp32 graphs")
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda and model is not None:  # pragma: no cover - no GPU in CI
        import copy

        backends["torch-cuda"] = torch_backend(copy.deepcopy(model), "cuda", name="torch-cuda")
    if cuda and files.onnx is not None and "CUDAExecutionProvider" in ort.get_available_providers():  # pragma: no cover
        backends["ort-cuda"] = ort_backend("ort-cuda", files.onnx, files.encoder, files.head,
                                           threads=threads, optimization=optimization,
                                           providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
                                           spinning=spinning)
    return backends


def _sample_clip_file(folder: Path) -> Path:
    """A synthetic gesture clip written like the dataset's, for timing decode."""
    from gesture_utils.config import GenerateConfig
    from gesture_utils.generation import render_clip
    from gesture_utils.video import write_video

    cfg = GenerateConfig()
    frames, _ = render_clip("swipe_left", np.random.default_rng(0), cfg)
    return write_video(folder / "sample_swipe_left.mp4", frames, cfg.fps)


def export_for_benchmark(model: torch.nn.Module, out_dir: str | os.PathLike[str],
                         name: str = "vit_temporal", int8: bool = True,
                         dynamo: bool = True) -> ModelFiles:
    """Export the clip graph, the streaming pair and (``int8``) dynamic-INT8 versions of
    all three with :mod:`gesture_utils.export`, for a checkpoint that has no ONNX files yet.

    Dynamic INT8 needs no calibration clips; notebook 04's static QDQ files are used
    instead whenever they exist next to the checkpoint.
    """
    from gesture_utils.export import export_model, quantize_int8

    paths = export_model(model, out_dir, name, dynamo=dynamo)
    files = ModelFiles(name=name, onnx=paths["clip"], encoder=paths["encoder"], head=paths["head"])
    if int8:
        files.int8 = quantize_int8(paths["clip"], mode="dynamic")
        files.int8_encoder = quantize_int8(paths["encoder"], mode="dynamic")
        files.int8_head = quantize_int8(paths["head"], mode="dynamic")
    return files


def resolve_ort_threads(cfg: BenchmarkConfig, threads: int, files: ModelFiles, num_frames: int,
                        image_size: int, optimization: str = "all",
                        log: Callable[[str], Any] | None = None) -> tuple[int, dict[int, float]]:
    """ONNX Runtime's intra-op threads for this run: ``cfg.ort_threads`` (an int), ``threads``
    (None), or for ``"auto"`` the faster of 1 and ``threads`` on the clip graph
    (:func:`pick_ort_threads`).  Returns ``(threads, {candidate: p50 ms})``."""
    choice = cfg.ort_threads
    if choice is None:
        return threads, {}
    if isinstance(choice, str) and choice != "auto":
        try:
            choice = int(choice)
        except ValueError:
            raise GestureError(f"ort_threads must be a number, 'auto' or None, got {choice!r}") from None
    if isinstance(choice, int):
        if choice < 1:
            raise GestureError(f"ort_threads must be >= 1, got {choice}")
        return choice, {}
    if files.onnx is None or threads <= 1:
        return threads, {}
    x = np.random.default_rng(0).standard_normal(
        (1, num_frames, 3, image_size, image_size)).astype(np.float32)
    best, p50 = pick_ort_threads(files.onnx, x, (1, threads), warmup=max(3, cfg.warmup // 2),
                                 runs=max(10, min(cfg.runs, 40)), optimization=optimization,
                                 spinning=cfg.ort_spinning)
    if log:
        log("ORT threads: auto -> " + str(best) + " ("
            + ", ".join(f"{t} thread(s) p50 {v:.2f} ms" for t, v in p50.items()) + ", clip graph, batch 1)")
    return best, p50


def run_benchmark(model_path: str | os.PathLike[str], cfg: BenchmarkConfig | None = None,
                  backends: Sequence[str] | None = None, clip_path: str | os.PathLike[str] | None = None,
                  optimization: str = "all", batch: bool = True, preprocessing: bool = True,
                  export_missing: bool = True, log: Callable[[str], Any] | None = print,
                  ) -> dict[str, Any]:
    """Time every backend on the model at ``model_path`` and return a JSON-able report.

    ``model_path``: artifacts folder, ``.pt`` checkpoint or clip ``.onnx``
    (:func:`find_model_files`).  A checkpoint without ONNX files next to it is exported to
    a temporary folder first (``export_missing``).  ``backends``: a subset of names to
    run; ``clip_path``: a video for the preprocessing timings (default: a freshly
    rendered synthetic clip).  Report keys: ``machine``, ``config``, ``model``, ``flops``,
    ``peak_flops``, ``clip``, ``frame``, ``batch``, ``preprocess``, ``speedup_vs_eager``,
    ``bound_fraction``, ``targets``.
    """
    cfg = cfg or BenchmarkConfig()
    say = log or (lambda _msg: None)
    files = find_model_files(model_path)
    threads = set_torch_threads(cfg.threads)

    model = None
    model_desc: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if files.checkpoint is not None:
            from gesture_utils.models import count_parameters, load_checkpoint

            model, _ = load_checkpoint(files.checkpoint)
            model_desc = {"checkpoint": str(files.checkpoint), "backbone": model.cfg.backbone,
                          "head": model.cfg.head, "causal": bool(model.cfg.causal),
                          "parameters": count_parameters(model), "embed_dim": model.embed_dim}
            if files.onnx is None and export_missing:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="gesture-bench-"))
                say(f"{files.checkpoint.name} has no ONNX files next to it: exporting fp32 + "
                    "dynamic INT8 to a temporary folder")
                exported = export_for_benchmark(model, tmp, files.name)
                files = ModelFiles(**{**asdict(exported), "checkpoint": files.checkpoint})
                model_desc["exported_for_benchmark"] = True
        if files.onnx is not None:
            from gesture_utils.inference import OnnxGestureClassifier

            clf = OnnxGestureClassifier(files.onnx, providers=["CPUExecutionProvider"], threads=1)
            num_frames, image_size, mean, std = clf.num_frames, clf.image_size, clf.mean, clf.std
            model_desc.setdefault("onnx", str(files.onnx))
            labels = list(clf.labels)
            del clf
        else:
            num_frames, image_size = model.clip.num_frames, model.clip.image_size
            mean, std, labels = model.clip.mean, model.clip.std, list(model.labels)
        model_desc.update(num_frames=num_frames, image_size=image_size, classes=len(labels),
                          files=files.to_dict())
        ort_threads, ort_p50 = resolve_ort_threads(cfg, threads, files, num_frames, image_size,
                                                   optimization, say)
        available = build_backends(files, model, threads, optimization, spinning=cfg.ort_spinning,
                                   ort_threads=ort_threads)
        if backends is not None:
            unknown = sorted(set(backends) - set(available))
            if unknown:
                raise GestureError(f"backends {unknown} are not available here "
                                   f"(available: {sorted(available)})")
            available = {k: v for k, v in available.items() if k in backends}
        if not available:
            raise input_error(model_path, "no backend can run this model", "export it to ONNX first")
        cfg = replace(cfg, ort_threads=ort_threads)
        report = benchmark_backends(available, num_frames, image_size, cfg, threads=threads,
                                  model=model, model_desc=model_desc, mean=mean, std=std,
                                  clip_path=clip_path, optimization=optimization, batch=batch,
                                  preprocessing=preprocessing, log=log)
        if ort_p50:
            report["config"]["ort_threads_p50_ms"] = {str(k): v for k, v in ort_p50.items()}
        return report


def benchmark_backends(backends: Mapping[str, Backend], num_frames: int, image_size: int,
                       cfg: BenchmarkConfig | None = None, threads: int | None = None,
                       model: torch.nn.Module | None = None,
                       model_desc: Mapping[str, Any] | None = None,
                       mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                       clip_path: str | os.PathLike[str] | None = None, optimization: str = "all",
                       batch: bool = True, preprocessing: bool = True,
                       log: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """The measurements of :func:`run_benchmark` on ready-made backends (notebook 05 builds
    its own, e.g. eager with another thread count).

    Inputs are random ``(B, T, 3, S, S)`` float32 clips (latency does not depend on pixel
    values); the streamed update encodes one ``(1, 3, S, S)`` frame and classifies a cached
    ``(1, T, D)`` window.  ``model`` (PyTorch) is needed for the FLOP counts.
    """
    cfg = cfg or BenchmarkConfig()
    say = log or (lambda _msg: None)
    threads = threads or cfg.threads or default_threads()
    info = machine_info(threads)
    say(format_machine(info))
    say(f"backends: {', '.join(backends)} · threads={threads} · warm-up {cfg.warmup} · "
        f"runs {cfg.runs} · ORT graph optimisation {optimization}, spinning "
        f"{'on' if cfg.ort_spinning else 'off'}")

    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((1, num_frames, 3, image_size, image_size)).astype(np.float32)
    frame = x1[:, 0]
    report: dict[str, Any] = {"machine": info, "config": {**to_dict(cfg), "threads": threads,
                                                         "optimization": optimization},
                              "model": {"num_frames": num_frames, "image_size": image_size,
                                        "classes": None, **(model_desc or {})}}
    sync = next((b.sync for b in backends.values() if b.sync), None)

    def clip_fn(b: Backend, x: np.ndarray) -> Callable[[], Any]:
        return lambda: b.clip(x)

    # per clip, batch 1: all backends interleaved in one run
    clip_stats = time_interleaved({n: clip_fn(b, x1) for n, b in backends.items()},
                                  cfg.warmup, cfg.runs, sync=sync)
    report["clip"] = {n: s.to_dict() for n, s in clip_stats.items()}
    for s in clip_stats.values():
        say(f"clip   {s}")

    # streamed frame update: encoder on one frame + head on the cached window
    streamers = {n: b for n, b in backends.items() if b.encode is not None and b.head is not None}
    report["frame"] = {}
    if streamers:
        def frame_input(b: Backend) -> np.ndarray:
            return frame[:, None] if b.name.startswith("torch") else frame  # torch: (B, T, C, H, W)

        def frame_fn(b: Backend) -> Callable[[], Any]:
            f = frame_input(b)
            emb = b.encode(f)
            dim = int((emb.cpu().numpy() if hasattr(emb, "cpu") else np.asarray(emb)).shape[-1])
            window = rng.standard_normal((1, num_frames, dim)).astype(np.float32)
            return lambda: b.frame_update(f, window)

        frame_stats = time_interleaved({n: frame_fn(b) for n, b in streamers.items()},
                                       cfg.warmup, cfg.runs, sync=sync)
        report["frame"] = {n: s.to_dict() for n, s in frame_stats.items()}
        for s in frame_stats.values():
            say(f"frame  {s}")

    # throughput vs batch size
    report["batch"] = {}
    for bs in (cfg.batch_sizes if batch else ()):
        xb = np.repeat(x1, bs, axis=0)
        ok = {}
        for n, b in backends.items():
            try:  # a graph exported with a fixed batch of 1 fails here: note it, go on
                b.clip(xb)
                ok[n] = b
            except Exception as exc:  # noqa: BLE001 - ORT raises its own types
                msg = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
                report.setdefault("batch_errors", {})[f"{n}@{bs}"] = msg
                say(f"batch {bs}: {n} failed ({msg})")
        if not ok:
            continue
        stats = time_interleaved({n: clip_fn(b, xb) for n, b in ok.items()},
                                 max(1, cfg.warmup // bs), max(10, cfg.runs // bs), batch=bs, sync=sync)
        for n, s in stats.items():
            report["batch"].setdefault(n, []).append(s.to_dict())
        say(f"batch {bs:>3}: " + "  ".join(f"{n} {s.throughput:7.1f} clips/s" for n, s in stats.items()))

    # FLOPs and the hardware bound
    peak = peak_matmul_flops(threads, cfg.peak_matmul_size)
    report["peak_flops"] = {"value": peak, "what": f"measured fp32 {cfg.peak_matmul_size}x"
                            f"{cfg.peak_matmul_size} torch.mm, {threads} thread(s), best of 5"}
    if model is not None:
        flops = model_flops(model, num_frames, image_size)
        report["flops"] = flops
        report["bound_fraction"] = {
            "clip": {n: bound_fraction(flops["clip"], s["p50_ms"], peak)
                     for n, s in report["clip"].items()},
            "frame": {n: bound_fraction(flops["streamed_update"], s["p50_ms"], peak)
                      for n, s in report["frame"].items()},
        }
        say(f"FLOPs: clip {flops['clip'] / 1e6:.1f} M · frame encoder "
            f"{flops['frame_encoder'] / 1e6:.1f} M · head {flops['head'] / 1e6:.2f} M · "
            f"peak matmul {peak / 1e9:.1f} GFLOP/s")

    if "torch-eager" in report["clip"]:
        base = report["clip"]["torch-eager"]["p50_ms"]
        report["speedup_vs_eager"] = {n: base / s["p50_ms"] for n, s in report["clip"].items()}

    if preprocessing:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(clip_path) if clip_path else _sample_clip_file(Path(tmp))
            pre = time_preprocessing(path, num_frames, image_size, mean, std,
                                     warmup=max(1, cfg.warmup // 3), runs=max(5, cfg.runs // 5))
        report["preprocess"] = {n: s.to_dict() for n, s in pre.items()}
        report["preprocess_clip"] = str(clip_path) if clip_path else "synthetic swipe_left (rendered)"
        for s in pre.values():
            say(f"prep   {s}")

    report["targets"] = check_targets(report)
    return report


#: Targets of issue 6 for the default model on the 2-core CPU.
TARGET_ORT_SPEEDUP = 1.6
TARGET_FRAME_P95_MS = 20.0


def check_targets(report: Mapping[str, Any]) -> dict[str, Any]:
    """ONNX fp32 >= 1.6x eager per clip (same run); streamed frame update p95 <= 20 ms."""
    out: dict[str, Any] = {}
    sp = report.get("speedup_vs_eager", {}).get("ort-fp32")
    if sp is not None:
        out["ort_fp32_speedup"] = {"value": sp, "target": TARGET_ORT_SPEEDUP,
                                   "met": sp >= TARGET_ORT_SPEEDUP}
    frame = report.get("frame", {})
    best = min(frame, key=lambda n: frame[n]["p95_ms"]) if frame else None
    if best is not None:
        p95 = frame[best]["p95_ms"]
        out["frame_p95_ms"] = {"value": p95, "backend": best, "target": TARGET_FRAME_P95_MS,
                               "met": p95 <= TARGET_FRAME_P95_MS}
    return out


def format_report(report: Mapping[str, Any]) -> str:
    """A benchmark report as fixed-width text (what the CLI prints)."""
    m = report["model"]
    lines = [format_machine(report["machine"]),
             f"model: {m.get('backbone', m.get('onnx'))} · head {m.get('head', '?')} · "
             f"T={m['num_frames']} · S={m['image_size']} · K={m['classes']}"
             + (f" · {m['parameters'] / 1e6:.2f} M parameters" if "parameters" in m else ""),
             ""]
    flops = report.get("flops")
    peak = report["peak_flops"]["value"]
    if flops:
        lines.append(f"FLOPs (counted): clip {flops['clip'] / 1e6:.1f} M · per frame (encoder) "
                     f"{flops['frame_encoder'] / 1e6:.1f} M · head {flops['head'] / 1e6:.2f} M")
    lines.append(f"bound: {peak / 1e9:.1f} GFLOP/s = {report['peak_flops']['what']}")
    c = report["config"]
    ort_t = c.get("ort_threads") or c.get("threads")
    auto = c.get("ort_threads_p50_ms")
    lines.append(f"threads: torch {c.get('threads')}, ONNX Runtime {ort_t}"
                 + (" (auto: " + ", ".join(f"{t} -> p50 {v:.2f} ms" for t, v in auto.items()) + ")"
                    if auto else ""))
    lines.append(f"timing: warm-up {c['warmup']}, runs {c['runs']}, backends interleaved call by call; "
                 f"ORT graph optimisation {c.get('optimization')}, spinning "
                 f"{'on' if c.get('ort_spinning') else 'off'}")
    lines.append("")
    sp = report.get("speedup_vs_eager", {})
    frac = report.get("bound_fraction", {})
    head = f"{'per clip (b=1)':<16}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean±std':>16}{'n':>5}"
    lines.append(head + f"{'vs eager':>10}{'of bound':>10}")
    for n, s in report["clip"].items():
        fb = frac.get("clip", {}).get(n)
        lines.append(f"{n:<16}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}{s['p99_ms']:>9.2f}"
                     f"{s['mean_ms']:>9.2f}±{s['std_ms']:<6.2f}{s['n']:>5}"
                     f"{(f'{sp[n]:.2f}x' if n in sp else '-'):>10}"
                     f"{(f'{fb:.1%}' if fb is not None else '-'):>10}")
    if any("int8" in n for n in report["clip"]) and frac:
        lines.append("(INT8 runs integer arithmetic: its share of the fp32 bound can exceed 100%)")
    if report.get("frame"):
        lines.append("")
        lines.append(f"{'streamed frame':<16}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
                     f"{'mean±std':>16}{'n':>5}{'':>10}{'of bound':>10}")
        for n, s in report["frame"].items():
            fb = frac.get("frame", {}).get(n)
            lines.append(f"{n:<16}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}{s['p99_ms']:>9.2f}"
                         f"{s['mean_ms']:>9.2f}±{s['std_ms']:<6.2f}{s['n']:>5}{'':>10}"
                         f"{(f'{fb:.1%}' if fb is not None else '-'):>10}")
    if report.get("batch"):
        sizes = sorted({s["batch"] for rows in report["batch"].values() for s in rows})
        lines.append("")
        lines.append(f"{'clips/s at batch':<16}" + "".join(f"{b:>9}" for b in sizes))
        for n, rows in report["batch"].items():
            by = {s["batch"]: s["throughput"] for s in rows}
            lines.append(f"{n:<16}" + "".join(f"{by[b]:>9.1f}" if b in by else f"{'-':>9}"
                                              for b in sizes))
    if report.get("preprocess"):
        lines.append("")
        lines.append(f"preprocessing ({report.get('preprocess_clip')}), p50 / p95 ms:")
        for n, s in report["preprocess"].items():
            lines.append(f"  {n:<16}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}")
    t = report.get("targets", {})
    if t:
        lines.append("")
        if "ort_fp32_speedup" in t:
            v = t["ort_fp32_speedup"]
            lines.append(f"target ONNX fp32 >= {v['target']}x eager per clip: {v['value']:.2f}x "
                         f"-> {'met' if v['met'] else 'NOT met'}")
        if "frame_p95_ms" in t:
            v = t["frame_p95_ms"]
            lines.append(f"target streamed frame p95 <= {v['target']:.0f} ms: {v['value']:.2f} ms "
                         f"({v['backend']}) -> {'met' if v['met'] else 'NOT met'}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI
def configure_cli(parser: argparse.ArgumentParser) -> None:
    """``gesture-utils benchmark MODEL_DIR_OR_CHECKPOINT [--runs N] [--threads K] [--json]``."""
    d = BenchmarkConfig()
    parser.add_argument("model", help="artifacts folder, a .pt checkpoint or a clip .onnx "
                                      "(its exported siblings are found by name)")
    parser.add_argument("--runs", type=int, default=d.runs, help=f"timed calls (default {d.runs})")
    parser.add_argument("--warmup", type=int, default=d.warmup,
                        help=f"untimed calls first (default {d.warmup})")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and ONNX Runtime intra-op threads (default: all usable cores)")
    parser.add_argument("--batch-sizes", default=",".join(map(str, d.batch_sizes)),
                        help="throughput sweep, comma-separated (empty: skip)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated subset, e.g. torch-eager,ort-fp32")
    parser.add_argument("--optimization", default="all", choices=("disable", "basic", "extended", "all"),
                        help="ONNX Runtime graph optimisation level")
    parser.add_argument("--ort-threads", default="auto",
                        help="ONNX Runtime intra-op threads: a number, 'auto' (the faster of 1 "
                             "and --threads, timed first; default) or 'same' (= --threads)")
    parser.add_argument("--ort-spinning", action="store_true",
                        help="let ONNX Runtime threads spin between calls (ORT's own default; "
                             "off here because spinning steals cores from the next backend)")
    parser.add_argument("--clip", default=None, help="video used to time preprocessing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        sizes = tuple(int(b) for b in args.batch_sizes.split(",") if b.strip())
    except ValueError:
        raise GestureError(f"--batch-sizes must be integers like 1,2,4, got {args.batch_sizes!r}") from None
    if args.runs < 1 or args.warmup < 0 or (args.threads is not None and args.threads < 1):
        raise GestureError("--runs and --threads must be >= 1, --warmup >= 0")
    ort_threads = None if args.ort_threads == "same" else args.ort_threads
    cfg = BenchmarkConfig(warmup=args.warmup, runs=args.runs, threads=args.threads,
                          batch_sizes=sizes or (1,), ort_spinning=args.ort_spinning,
                          ort_threads=ort_threads)
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else None
    report = run_benchmark(args.model, cfg, backends=backends, clip_path=args.clip,
                           optimization=args.optimization, batch=bool(sizes),
                           log=None if args.json else (lambda m: print(m, file=sys.stderr)))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
