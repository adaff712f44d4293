"""How fast is the model: PyTorch vs ONNX Runtime fp32 vs INT8 (notebook 05,
``gesture-utils benchmark MODEL [--runs N] [--threads K] [--json]``).

* Warm-up, then many calls, interleaved across backends so machine noise hits them
  alike (:func:`gesture_utils.runtime.time_calls`); p50/p95/p99, mean, std and n.
* Threads set explicitly and recorded (:func:`machine_info`); ONNX Runtime's count is by
  default the faster of 1 and ``k``, measured (:func:`pick_ort_threads`).
* Preprocessing is timed apart from the model (:func:`time_preprocessing`).
* Per clip and per streamed frame: one encoder pass on the new frame plus one head pass
  over the cached window (:meth:`Backend.frame_update`).
* FLOPs counted (:func:`count_flops`) against this machine's measured matmul FLOP/s
  (:func:`peak_matmul_flops`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
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
from gesture_utils.runtime import CPU_ONLY, LatencyStats, ort_session, time_calls

#: Targets of issue 6 for the default model on the 2-core CPU.
TARGET_ORT_SPEEDUP = 1.6
TARGET_FRAME_P95_MS = 20.0


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
    """The CPU's name (``/proc/cpuinfo`` on Linux, else :mod:`platform`)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, library versions, GPU, load."""
    import onnxruntime as ort

    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    return {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "usable_cores": default_threads(),
            "threads": threads or default_threads(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "onnxruntime": ort.__version__,
            "ort_providers": ort.get_available_providers(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_average_1min": load}


def format_machine(info: Mapping[str, Any]) -> str:
    """:func:`machine_info` as two short lines."""
    return (f"CPU {info['cpu']} · {info['usable_cores']} usable cores · threads={info['threads']} · "
            f"GPU {info.get('cuda') or 'none'} · load(1 min) {info.get('load_average_1min')}\n"
            f"python {info['python']} · torch {info['torch']} · onnxruntime {info['onnxruntime']} "
            f"· numpy {info['numpy']}")


def cpu_time_per_call(fn: Callable[[], Any], warmup: int = 3, runs: int = 30) -> float:
    """Process CPU milliseconds per call (all threads): the work done, not the time spent
    waiting for a core, so steadier than wall time on a shared machine."""
    if runs < 1:
        raise ValueError("runs must be >= 1")
    for _ in range(warmup):
        fn()
    c0 = time.process_time()
    for _ in range(runs):
        fn()
    return 1e3 * (time.process_time() - c0) / runs


# --------------------------------------------------------------------------- FLOPs
def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


#: FlopCounterMode knows the CUDA attention kernels but not the CPU flash kernel that
#: ``F.scaled_dot_product_attention`` dispatches to on CPU; without this it counts 0.
EXTRA_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flop}


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """FLOPs of ``fn(*args, **kwargs)`` (a multiply-add is 2) from ``FlopCounterMode``:
    matmuls, convolutions and attention; element-wise ops are not counted."""
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=EXTRA_FLOP_FORMULAS) as fc:
        fn(*args, **kwargs)
    return int(fc.get_total_flops())


def model_flops(model: torch.nn.Module, num_frames: int, image_size: int) -> dict[str, int]:
    """Counted FLOPs of one clip, one frame through the encoder and one head pass;
    ``streamed_update`` = ``frame_encoder + head``, what a stream pays per new frame."""
    clip = torch.zeros(1, num_frames, 3, image_size, image_size, device=next(model.parameters()).device)
    with torch.no_grad():
        window = model.encode_frames(clip)
    frame, head = count_flops(model.encode_frames, clip[:, :1]), count_flops(model.classify_embeddings, window)
    return {"clip": count_flops(model, clip), "frame_encoder": frame, "head": head,
            "streamed_update": frame + head}


def peak_matmul_flops(threads: int | None = None, n: int = 1024, repeats: int = 5) -> float:
    """fp32 FLOP/s of an ``n x n`` ``torch.mm`` with ``threads`` threads, best of ``repeats``:
    what this machine reaches on the friendliest dense kernel, not a datasheet peak."""
    old = torch.get_num_threads()
    set_torch_threads(threads)
    try:
        a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        best_ms = time_calls({"mm": lambda: torch.mm(a, b, out=out)}, runs=repeats, warmup=1)["mm"].min_ms
    finally:
        torch.set_num_threads(old)
    return 2.0 * n**3 / (best_ms / 1e3)


def bound_fraction(flops: float, latency_ms: float, peak_flops: float) -> float:
    """Achieved FLOP/s (``flops`` per call in ``latency_ms``) as a fraction of ``peak_flops``."""
    return flops / (latency_ms / 1e3) / peak_flops


# --------------------------------------------------------------------------- backends
@dataclass
class Backend:
    """One way to run the model on numpy float32 input; each callable blocks.

    ``clip(x)``: ``(B, T, 3, S, S) -> (B, K)``; ``encode(f)``: one frame ``-> (1, D)``;
    ``head(w)``: ``(1, T, D) -> (1, K)``; ``sync`` runs inside each timed call (CUDA).
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

    def run(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[np.ndarray], Any]:
        def call(x: np.ndarray) -> Any:
            with torch.inference_mode():
                return fn(torch.from_numpy(x).to(device))
        return call

    streams = hasattr(model, "encode_frames") and hasattr(model, "classify_embeddings")
    return Backend(name=name or f"torch-{device.split(':')[0]}", clip=run(model),
                   encode=run(model.encode_frames) if streams else None,
                   head=run(model.classify_embeddings) if streams else None,
                   sync=torch.cuda.synchronize if device.startswith("cuda") else None, device=device)


def ort_backend(name: str, clip_path: str | os.PathLike[str],
                encoder_path: str | os.PathLike[str] | None = None,
                head_path: str | os.PathLike[str] | None = None, threads: int | None = None,
                providers: Sequence[str] | None = None, optimization: str = "all",
                spinning: bool | None = None) -> Backend:
    """ONNX Runtime over the clip graph and, when given, the streaming pair (CPU by default)."""
    def runner(path: str | os.PathLike[str]) -> Callable[[np.ndarray], Any]:
        sess = ort_session(path, threads or default_threads(), providers or CPU_ONLY, optimization, spinning)
        inp = sess.get_inputs()[0].name
        return lambda x: sess.run(None, {inp: x})[0]

    def optional(path: str | os.PathLike[str] | None) -> Callable[[np.ndarray], Any] | None:
        return runner(path) if path and Path(path).is_file() else None

    device = "cuda" if providers and "CUDAExecutionProvider" in providers else "cpu"
    return Backend(name=name, clip=runner(clip_path), encode=optional(encoder_path),
                   head=optional(head_path), device=device,
                   notes={"path": str(clip_path), "optimization": optimization})


def pick_ort_threads(path: str | os.PathLike[str], x: np.ndarray, candidates: Sequence[int],
                     warmup: int = 10, runs: int = 40, optimization: str = "all",
                     spinning: bool | None = False, margin: float = 0.05) -> tuple[int, dict[int, float]]:
    """The intra-op thread count from ``candidates`` that runs ``path`` on ``x`` fastest
    (interleaved); returns ``(best, {threads: p50 ms})``.  More threads must win by
    ``margin``: a near tie keeps the smaller count and a core free for the camera."""
    options = sorted({max(1, int(c)) for c in candidates})
    fns = {}
    for t in options:
        sess = ort_session(path, t, CPU_ONLY, optimization, spinning)
        feed = {sess.get_inputs()[0].name: x}
        fns[str(t)] = (lambda s=sess, f=feed: s.run(None, f))
    stats = time_calls(fns, runs=runs, warmup=warmup)
    p50 = {t: stats[str(t)].p50_ms for t in options}
    best = options[0]
    for t in options[1:]:
        if p50[t] * (1 + margin) < p50[best]:
            best = t
    return best, p50


def resolve_ort_threads(cfg: BenchmarkConfig, threads: int, files: ModelFiles, num_frames: int,
                        image_size: int, optimization: str = "all",
                        log: Callable[[str], Any] | None = None) -> tuple[int, dict[int, float]]:
    """ONNX Runtime's intra-op threads: ``cfg.ort_threads`` (an int), ``threads`` (None), or
    for ``"auto"`` the faster of 1 and ``threads`` on the clip graph; with the timings."""
    choice = cfg.ort_threads
    if choice is None:
        return threads, {}
    if choice != "auto":
        try:
            n = int(choice)
        except ValueError:
            raise GestureError(f"ort_threads must be a number, 'auto' or None, got {choice!r}") from None
        if n < 1:
            raise GestureError(f"ort_threads must be >= 1, got {n}")
        return n, {}
    if files.onnx is None or threads <= 1:
        return threads, {}
    x = np.random.default_rng(0).standard_normal((1, num_frames, 3, image_size, image_size),
                                                 dtype=np.float32)
    best, p50 = pick_ort_threads(files.onnx, x, (1, threads), warmup=max(3, cfg.warmup // 2),
                                 runs=max(10, min(cfg.runs, 40)), optimization=optimization,
                                 spinning=cfg.ort_spinning)
    if log:
        log(f"ORT threads: auto -> {best} ("
            + ", ".join(f"{t} thread(s) p50 {v:.2f} ms" for t, v in p50.items()) + ", clip graph, batch 1)")
    return best, p50


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


def find_model_files(path: str | os.PathLike[str], name: str = "vit_temporal") -> ModelFiles:
    """``<name>.pt`` and ``<name>{,.int8,.encoder,.head,...}.onnx`` in a folder, or beside a
    ``.pt`` checkpoint or clip ``.onnx`` file (its stem is the name)."""
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

    def find(*suffixes: str) -> Path | None:
        return next((folder / f"{name}{s}" for s in suffixes if (folder / f"{name}{s}").is_file()), None)

    files = ModelFiles(name, find(".pt", ".pth"), find(".onnx"), find(".int8.onnx"),
                       find(".encoder.onnx"), find(".head.onnx"), find(".encoder.int8.onnx"),
                       find(".head.int8.onnx"))
    if files.checkpoint is None and files.onnx is None:
        raise input_error(folder, f"holds neither {name}.pt nor {name}.onnx",
                          "train (notebook 03 / `gesture-utils train`) and export (notebook 04 / "
                          "`gesture-utils export`) first, or pass the model file")
    return files


def build_backends(files: ModelFiles, model: torch.nn.Module | None, threads: int,
                   optimization: str = "all", cuda: bool | None = None,
                   spinning: bool | None = False, ort_threads: int | None = None) -> dict[str, Backend]:
    """Every backend that can run here, in report order: ``torch-eager``, ``ort-fp32``,
    ``ort-int8`` and, with a GPU, ``torch-cuda`` and ``ort-cuda``.  ``threads`` is torch's;
    ``ort_threads`` ONNX Runtime's (None: ``threads``)."""
    import onnxruntime as ort

    opts = {"threads": ort_threads or threads, "optimization": optimization, "spinning": spinning}
    backends: dict[str, Backend] = {}
    if model is not None:
        backends["torch-eager"] = torch_backend(model, "cpu", name="torch-eager")
    if files.onnx is not None:
        backends["ort-fp32"] = ort_backend("ort-fp32", files.onnx, files.encoder, files.head, **opts)
    if files.int8 is not None:
        backends["ort-int8"] = ort_backend("ort-int8", files.int8, files.int8_encoder or files.encoder,
                                           files.int8_head or files.head, **opts)
        backends["ort-int8"].notes["streaming"] = "int8" if files.int8_encoder else "fp32 graphs"
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda and model is not None:  # pragma: no cover - no GPU in CI
        backends["torch-cuda"] = torch_backend(copy.deepcopy(model), "cuda", name="torch-cuda")
    if cuda and files.onnx is not None and "CUDAExecutionProvider" in ort.get_available_providers():  # pragma: no cover
        backends["ort-cuda"] = ort_backend("ort-cuda", files.onnx, files.encoder, files.head,
                                           providers=["CUDAExecutionProvider", *CPU_ONLY], **opts)
    return backends


def export_for_benchmark(model: torch.nn.Module, out_dir: str | os.PathLike[str],
                         name: str = "vit_temporal", int8: bool = True) -> ModelFiles:
    """The three fp32 graphs and (``int8``) dynamic-INT8 versions, for a checkpoint that has
    no ONNX files yet (dynamic INT8 needs no calibration clips)."""
    from gesture_utils.export import export_model, quantize_int8

    paths = export_model(model, out_dir, name)
    files = ModelFiles(name=name, onnx=paths["clip"], encoder=paths["encoder"], head=paths["head"])
    if int8:
        files.int8, files.int8_encoder, files.int8_head = (
            quantize_int8(paths[k], mode="dynamic") for k in ("clip", "encoder", "head"))
    return files


# --------------------------------------------------------------------------- timing sections
def time_preprocessing(clip_path: str | os.PathLike[str], num_frames: int, image_size: int,
                       mean: Sequence[float], std: Sequence[float], warmup: int = 3,
                       runs: int = 20, camera_frame: tuple[int, int] = (480, 640),
                       ) -> dict[str, LatencyStats]:
    """The input pipeline's stages on one real clip: ``decode`` (every frame),
    ``sample+resize`` (T frames to ``S x S``), ``normalise`` (to float32 ``(1, T, 3, S, S)``)
    and ``frame (camera)`` (one ``camera_frame`` RGB frame to ``(1, 3, S, S)``)."""
    from gesture_utils.inference import normalize
    from gesture_utils.video import read_frames, resize_frame, sample_indices

    frames = read_frames(clip_path)

    def sample_resize() -> np.ndarray:
        return np.stack([resize_frame(frames[i], image_size)
                         for i in sample_indices(len(frames), num_frames)])

    clip = sample_resize()
    cam = np.random.default_rng(0).integers(0, 256, (*camera_frame, 3), dtype=np.uint8)
    return time_calls({"decode": lambda: read_frames(clip_path), "sample+resize": sample_resize,
                       "normalise": lambda: normalize(clip, mean, std)[None],
                       "frame (camera)": lambda: normalize(resize_frame(cam, image_size), mean, std)},
                      runs=runs, warmup=warmup)


def _stats(stats: Mapping[str, LatencyStats], say: Callable[[str], Any], tag: str) -> dict[str, Any]:
    for s in stats.values():
        say(f"{tag} {s}")
    return {n: s.to_dict() for n, s in stats.items()}


def _time_frames(backends: Mapping[str, Backend], x1: np.ndarray, cfg: BenchmarkConfig,
                 sync: Callable[[], Any] | None) -> dict[str, LatencyStats]:
    """The streamed update of every backend with an encoder and a head."""
    rng = np.random.default_rng(0)

    def frame_fn(b: Backend) -> Callable[[], Any]:
        f = x1[:, 0, None] if b.name.startswith("torch") else x1[:, 0]  # torch: (B, T, C, H, W)
        emb = b.encode(f)
        dim = int((emb.cpu().numpy() if hasattr(emb, "cpu") else np.asarray(emb)).shape[-1])
        window = rng.standard_normal((1, x1.shape[1], dim)).astype(np.float32)
        return lambda: b.frame_update(f, window)

    fns = {n: frame_fn(b) for n, b in backends.items() if b.encode is not None and b.head is not None}
    return time_calls(fns, runs=cfg.runs, warmup=cfg.warmup, sync=sync) if fns else {}


def _time_batches(backends: Mapping[str, Backend], x1: np.ndarray, sizes: Sequence[int],
                  cfg: BenchmarkConfig, sync: Callable[[], Any] | None, report: dict[str, Any],
                  say: Callable[[str], Any]) -> None:
    """Throughput vs batch size into ``report['batch']``; a backend that fails a size is noted."""
    report["batch"] = {}
    for bs in sizes:
        xb = np.repeat(x1, bs, axis=0)
        ok = {}
        for n, b in backends.items():
            try:  # a graph exported with a fixed batch of 1 fails here
                b.clip(xb)
                ok[n] = b
            except Exception as exc:  # noqa: BLE001 - ORT raises its own types
                msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                report.setdefault("batch_errors", {})[f"{n}@{bs}"] = msg
                say(f"batch {bs}: {n} failed ({msg})")
        if not ok:
            continue
        stats = time_calls({n: (lambda b=b, xb=xb: b.clip(xb)) for n, b in ok.items()}, runs=max(10, cfg.runs // bs),
                           warmup=max(1, cfg.warmup // bs), batch=bs, sync=sync)
        rows = {n: {**s.to_dict(), "throughput": 1e3 * bs / s.p50_ms} for n, s in stats.items()}
        for n, row in rows.items():
            report["batch"].setdefault(n, []).append(row)
        say(f"batch {bs:>3}: " + "  ".join(f"{n} {row['throughput']:7.1f} clips/s" for n, row in rows.items()))


def _flops_section(report: dict[str, Any], model: torch.nn.Module | None, threads: int,
                   cfg: BenchmarkConfig, say: Callable[[str], Any]) -> None:
    """The measured matmul bound, the model's FLOPs and each backend's share of the bound."""
    peak = peak_matmul_flops(threads, cfg.peak_matmul_size)
    n = cfg.peak_matmul_size
    report["peak_flops"] = {"value": peak, "what": f"measured fp32 {n}x{n} torch.mm, "
                                                   f"{threads} thread(s), best of 5"}
    if model is None:
        return
    m = report["model"]
    flops = report["flops"] = model_flops(model, m["num_frames"], m["image_size"])
    report["bound_fraction"] = {
        sec: {b: bound_fraction(flops[key], s["p50_ms"], peak) for b, s in report[sec].items()}
        for sec, key in (("clip", "clip"), ("frame", "streamed_update"))}
    say(f"FLOPs: clip {flops['clip'] / 1e6:.1f} M · frame encoder {flops['frame_encoder'] / 1e6:.1f} M"
        f" · head {flops['head'] / 1e6:.2f} M · peak matmul {peak / 1e9:.1f} GFLOP/s")


def benchmark_backends(backends: Mapping[str, Backend], num_frames: int, image_size: int,
                       cfg: BenchmarkConfig | None = None, threads: int | None = None,
                       model: torch.nn.Module | None = None,
                       model_desc: Mapping[str, Any] | None = None,
                       mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                       clip_path: str | os.PathLike[str] | None = None, optimization: str = "all",
                       batch: bool = True, preprocessing: bool = True,
                       log: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """:func:`run_benchmark`'s measurements on ready-made backends, on random inputs
    (latency does not depend on pixel values); ``model`` gives the FLOP counts."""
    cfg = cfg or BenchmarkConfig()
    say = log or (lambda _msg: None)
    threads = threads or cfg.threads or default_threads()
    info = machine_info(threads)
    say(format_machine(info))
    say(f"backends: {', '.join(backends)} · threads={threads} · warm-up {cfg.warmup} · runs {cfg.runs}"
        f" · ORT graph optimisation {optimization}, spinning {'on' if cfg.ort_spinning else 'off'}")
    x1 = np.random.default_rng(0).standard_normal((1, num_frames, 3, image_size, image_size)).astype(np.float32)
    report: dict[str, Any] = {
        "machine": info, "config": {**to_dict(cfg), "threads": threads, "optimization": optimization},
        "model": {"num_frames": num_frames, "image_size": image_size, "classes": None, **(model_desc or {})}}
    sync = next((b.sync for b in backends.values() if b.sync), None)
    report["clip"] = _stats(time_calls({n: (lambda b=b: b.clip(x1)) for n, b in backends.items()},
                                       runs=cfg.runs, warmup=cfg.warmup, sync=sync), say, "clip  ")
    report["frame"] = _stats(_time_frames(backends, x1, cfg, sync), say, "frame ")
    _time_batches(backends, x1, cfg.batch_sizes if batch else (), cfg, sync, report, say)
    _flops_section(report, model, threads, cfg, say)
    if "torch-eager" in report["clip"]:
        base = report["clip"]["torch-eager"]["p50_ms"]
        report["speedup_vs_eager"] = {n: base / s["p50_ms"] for n, s in report["clip"].items()}
    if preprocessing:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(clip_path) if clip_path else _sample_clip_file(Path(tmp))
            pre = time_preprocessing(path, num_frames, image_size, mean, std,
                                     warmup=max(1, cfg.warmup // 3), runs=max(5, cfg.runs // 5))
        report["preprocess"] = _stats(pre, say, "prep  ")
        report["preprocess_clip"] = str(clip_path) if clip_path else "synthetic swipe_left (rendered)"
    report["targets"] = check_targets(report)
    return report


def _sample_clip_file(folder: Path) -> Path:
    """A synthetic gesture clip written like the dataset's, for timing decode."""
    from gesture_utils.config import GenerateConfig
    from gesture_utils.generation import render_clip
    from gesture_utils.video import write_video

    cfg = GenerateConfig()
    frames, _ = render_clip("swipe_left", np.random.default_rng(0), cfg)
    return write_video(folder / "sample_swipe_left.mp4", frames, cfg.fps)


def check_targets(report: Mapping[str, Any]) -> dict[str, Any]:
    """ONNX fp32 >= 1.6x eager per clip (same run); streamed frame update p95 <= 20 ms."""
    out: dict[str, Any] = {}
    sp = report.get("speedup_vs_eager", {}).get("ort-fp32")
    if sp is not None:
        out["ort_fp32_speedup"] = {"value": sp, "target": TARGET_ORT_SPEEDUP, "met": sp >= TARGET_ORT_SPEEDUP}
    frame = report.get("frame", {})
    if frame:
        best = min(frame, key=lambda n: frame[n]["p95_ms"])
        p95 = frame[best]["p95_ms"]
        out["frame_p95_ms"] = {"value": p95, "backend": best, "target": TARGET_FRAME_P95_MS,
                               "met": p95 <= TARGET_FRAME_P95_MS}
    return out


# --------------------------------------------------------------------------- the full benchmark
def _open_model(files: ModelFiles, export_missing: bool, stack: contextlib.ExitStack,
                say: Callable[[str], Any]) -> tuple[ModelFiles, Any, dict[str, Any]]:
    """The checkpoint's model (or None) and its description; exports ONNX files to a
    temporary folder when the checkpoint has none and ``export_missing``."""
    if files.checkpoint is None:
        return files, None, {}
    from gesture_utils.models import count_parameters, load_checkpoint

    model, _ = load_checkpoint(files.checkpoint)
    desc = {"checkpoint": str(files.checkpoint), "backbone": model.cfg.backbone,
            "head": model.cfg.head, "causal": bool(model.cfg.causal),
            "parameters": count_parameters(model), "embed_dim": model.embed_dim}
    if files.onnx is None and export_missing:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="gesture-bench-"))
        say(f"{files.checkpoint.name} has no ONNX files next to it: exporting fp32 + "
            "dynamic INT8 to a temporary folder")
        exported = export_for_benchmark(model, tmp, files.name)
        files = replace(exported, checkpoint=files.checkpoint)
        desc["exported_for_benchmark"] = True
    return files, model, desc


def _input_spec(files: ModelFiles, model: Any) -> tuple[int, int, Sequence[float], Sequence[float], int]:
    """``(T, S, mean, std, classes)`` from the clip graph's metadata, else the model."""
    if files.onnx is not None:
        from gesture_utils.inference import OnnxGestureClassifier

        c = OnnxGestureClassifier(files.onnx, providers=CPU_ONLY, threads=1)
        return c.num_frames, c.image_size, c.mean, c.std, len(c.labels)
    c = model.clip
    return c.num_frames, c.image_size, c.mean, c.std, len(model.labels)


def run_benchmark(model_path: str | os.PathLike[str], cfg: BenchmarkConfig | None = None,
                  backends: Sequence[str] | None = None, clip_path: str | os.PathLike[str] | None = None,
                  optimization: str = "all", batch: bool = True, preprocessing: bool = True,
                  export_missing: bool = True, log: Callable[[str], Any] | None = print,
                  ) -> dict[str, Any]:
    """Time every backend (or the ``backends`` named) of the model at ``model_path``
    (:func:`find_model_files`) and return a JSON-able report: ``machine``, ``config``,
    ``model``, ``flops``, ``peak_flops``, ``clip``, ``frame``, ``batch``, ``preprocess``,
    ``speedup_vs_eager``, ``bound_fraction``, ``targets``.  ``clip_path``: the video that
    times preprocessing (default: a rendered synthetic clip)."""
    cfg = cfg or BenchmarkConfig()
    say = log or (lambda _msg: None)
    threads = set_torch_threads(cfg.threads)
    with contextlib.ExitStack() as stack:
        files, model, desc = _open_model(find_model_files(model_path), export_missing, stack, say)
        T, S, mean, std, classes = _input_spec(files, model)
        if files.onnx is not None:
            desc.setdefault("onnx", str(files.onnx))
        desc.update(num_frames=T, image_size=S, classes=classes, files=files.to_dict())
        ort_threads, ort_p50 = resolve_ort_threads(cfg, threads, files, T, S, optimization, say)
        available = build_backends(files, model, threads, optimization, spinning=cfg.ort_spinning,
                                   ort_threads=ort_threads)
        unknown = sorted(set(backends or ()) - set(available))
        if unknown:
            raise GestureError(f"backends {unknown} are not available here (available: {sorted(available)})")
        available = {k: v for k, v in available.items() if backends is None or k in backends}
        if not available:
            raise input_error(model_path, "no backend can run this model", "export it to ONNX first")
        report = benchmark_backends(available, T, S, replace(cfg, ort_threads=ort_threads), threads,
                                    model, desc, mean, std, clip_path, optimization, batch,
                                    preprocessing, log)
    if ort_p50:
        report["config"]["ort_threads_p50_ms"] = {str(k): v for k, v in ort_p50.items()}
    return report


# --------------------------------------------------------------------------- report
def _latency_rows(title: str, section: Mapping[str, Any], right: Callable[[str], str]) -> list[str]:
    lines = [f"{title:<16}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean±std':>16}{'n':>5}"
             f"{'vs eager' if title.startswith('per clip') else '':>10}{'of bound':>10}"]
    for n, s in section.items():
        lines.append(f"{n:<16}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}{s['p99_ms']:>9.2f}"
                     f"{s['mean_ms']:>9.2f}±{s['std_ms']:<6.2f}{s['n']:>5}{right(n)}")
    return lines


def _format_header(report: Mapping[str, Any]) -> list[str]:
    m, c, flops = report["model"], report["config"], report.get("flops")
    lines = [format_machine(report["machine"]),
             f"model: {m.get('backbone', m.get('onnx'))} · head {m.get('head', '?')} · "
             f"T={m['num_frames']} · S={m['image_size']} · K={m['classes']}"
             + (f" · {m['parameters'] / 1e6:.2f} M parameters" if "parameters" in m else ""), ""]
    if flops:
        lines.append(f"FLOPs (counted): clip {flops['clip'] / 1e6:.1f} M · per frame (encoder) "
                     f"{flops['frame_encoder'] / 1e6:.1f} M · head {flops['head'] / 1e6:.2f} M")
    lines.append(f"bound: {report['peak_flops']['value'] / 1e9:.1f} GFLOP/s = {report['peak_flops']['what']}")
    auto = c.get("ort_threads_p50_ms")
    lines.append(f"threads: torch {c.get('threads')}, ONNX Runtime {c.get('ort_threads') or c.get('threads')}"
                 + (" (auto: " + ", ".join(f"{t} -> p50 {v:.2f} ms" for t, v in auto.items()) + ")"
                    if auto else ""))
    lines.append(f"timing: warm-up {c['warmup']}, runs {c['runs']}, backends interleaved call by call; "
                 f"ORT graph optimisation {c.get('optimization')}, spinning "
                 f"{'on' if c.get('ort_spinning') else 'off'}")
    return lines + [""]


def _format_tail(report: Mapping[str, Any]) -> list[str]:
    lines = []
    if report.get("batch"):
        sizes = sorted({s["batch"] for rows in report["batch"].values() for s in rows})
        lines += ["", f"{'clips/s at batch':<16}" + "".join(f"{b:>9}" for b in sizes)]
        for n, rows in report["batch"].items():
            by = {s["batch"]: 1e3 * s["batch"] / s["p50_ms"] for s in rows}
            lines.append(f"{n:<16}" + "".join(f"{by[b]:>9.1f}" if b in by else f"{'-':>9}" for b in sizes))
    if report.get("preprocess"):
        lines += ["", f"preprocessing ({report.get('preprocess_clip')}), p50 / p95 ms:"]
        lines += [f"  {n:<16}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}" for n, s in report["preprocess"].items()]
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
    return lines


def format_report(report: Mapping[str, Any]) -> str:
    """A benchmark report as fixed-width text (what the CLI prints)."""
    sp, frac = report.get("speedup_vs_eager", {}), report.get("bound_fraction", {})

    def share(sec: str, n: str) -> str:
        fb = frac.get(sec, {}).get(n)
        return f"{(f'{fb:.1%}' if fb is not None else '-'):>10}"

    lines = _format_header(report) + _latency_rows(
        "per clip (b=1)", report["clip"],
        lambda n: f"{(f'{sp[n]:.2f}x' if n in sp else '-'):>10}" + share("clip", n))
    if any("int8" in n for n in report["clip"]) and frac:
        lines.append("(INT8 runs integer arithmetic: its share of the fp32 bound can exceed 100%)")
    if report.get("frame"):
        lines += [""] + _latency_rows("streamed frame", report["frame"],
                                      lambda n: f"{'':>10}" + share("frame", n))
    return "\n".join(lines + _format_tail(report))


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
    cfg = BenchmarkConfig(warmup=args.warmup, runs=args.runs, threads=args.threads,
                          batch_sizes=sizes or (1,), ort_spinning=args.ort_spinning,
                          ort_threads=None if args.ort_threads == "same" else args.ort_threads)
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else None
    report = run_benchmark(args.model, cfg, backends=backends, clip_path=args.clip,
                           optimization=args.optimization, batch=bool(sizes),
                           log=None if args.json else (lambda m: print(m, file=sys.stderr)))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
