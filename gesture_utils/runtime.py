"""The machine: seeding, device choice, the one-line notebook setup, timing and ONNX
Runtime sessions (all notebooks)."""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

QUICK_ENV = "GESTURE_QUICK"


def is_quick() -> bool:
    """True when ``GESTURE_QUICK=1``: tiny data and few steps, so CI runs every notebook."""
    return os.environ.get(QUICK_ENV, "0") == "1"


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if installed) PyTorch on every device."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


def pick_device(prefer: str | None = None) -> str:
    """``prefer`` if given, else the best available of ``cuda``, ``mps``, ``cpu``."""
    if prefer:
        return prefer
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


@dataclass(frozen=True)
class Setup:
    """What :func:`setup` decided, for the notebook to use."""

    device: str
    colab: bool
    quick: bool
    seed: int

    def __str__(self) -> str:
        yes = {True: "yes", False: "no"}
        return (f"device={self.device} · colab={yes[self.colab]} · "
                f"quick={yes[self.quick]} · seed={self.seed}")


def setup(seed: int = 0, device: str | None = None, quiet: bool = False) -> Setup:
    """Seed everything, pick the device and print one short line. Used by every notebook."""
    seed_everything(seed)
    info = Setup(device=pick_device(device), colab=in_colab(), quick=is_quick(), seed=seed)
    if not quiet:
        print(info)
    return info


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
    def from_ms(cls, samples: Sequence[float], name: str = "", batch: int = 1) -> LatencyStats:
        """Summarise per-call durations given in milliseconds."""
        import numpy as np

        ms = np.asarray(samples, dtype=np.float64)
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

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "per_item_ms": self.per_item_ms}

    def __str__(self) -> str:
        return (f"{self.name:<16} b={self.batch:<3} p50 {self.p50_ms:8.2f} ms  "
                f"p95 {self.p95_ms:8.2f}  mean {self.mean_ms:8.2f} ± {self.std_ms:6.2f}  n={self.n}")


def time_calls(fns: dict[str, Callable[[], Any]], runs: int = 100, warmup: int = 5,
               batch: int = 1, sync: Callable[[], Any] | None = None) -> dict[str, LatencyStats]:
    """Time each callable ``runs`` times, one call at a time, round-robin (so machine
    noise hits them all alike), after ``warmup`` untimed rounds. ``sync`` (e.g.
    ``torch.cuda.synchronize``) runs inside each timed call so GPU work is counted.
    The one timer of the series: every latency figure comes from it."""
    if runs < 1:
        raise ValueError("runs must be >= 1")
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            fns[name]()
            if sync:
                sync()
            if r >= warmup:
                samples[name].append((time.perf_counter() - t0) * 1e3)
    return {name: LatencyStats.from_ms(samples[name], name=name, batch=batch) for name in names}


# --------------------------------------------------------------------------- ONNX Runtime
#: ONNX Runtime's CPU provider alone (parity checks and CPU timings use it).
CPU_ONLY = ["CPUExecutionProvider"]


def default_providers() -> list[str]:
    """CUDA then CPU when ONNX Runtime has CUDA (``onnxruntime-gpu``), else CPU only."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():  # pragma: no cover
        return ["CUDAExecutionProvider", *CPU_ONLY]
    return list(CPU_ONLY)


def ort_session(path: str | os.PathLike[str], threads: int | None = None,
                providers: Sequence[str] | None = None, optimization: str = "all",
                spinning: bool | None = None) -> Any:
    """The one ONNX Runtime session factory: ``threads`` intra-op threads (None = ORT's
    default), sequential execution, graph ``optimization`` ``disable|basic|extended|all``,
    idle threads ``spinning`` or not (None = ORT's default, which spins), errors-only
    logging. A missing or unloadable file raises one :class:`GestureError` naming it."""
    import onnxruntime as ort

    from gesture_utils.errors import GestureError, input_error

    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    if optimization not in levels:
        raise GestureError(f"graph optimisation {optimization!r} is not one of {sorted(levels)}")
    path = Path(path)
    fix = "export it with `gesture-utils export CHECKPOINT --out DIR`"
    if not path.is_file():
        raise input_error(path, "model file not found", fix)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = levels[optimization]
    opts.log_severity_level = 3  # errors only: no provider-fallback chatter on CPU hosts
    if spinning is not None:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    try:
        return ort.InferenceSession(str(path), sess_options=opts,
                                    providers=list(providers or default_providers()))
    except Exception as exc:  # ORT raises its own pybind exception types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise input_error(path, f"not a loadable ONNX model ({first[:160]})", fix) from exc
