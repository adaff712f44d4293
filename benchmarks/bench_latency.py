"""Latency of the gesture model: PyTorch eager vs ONNX Runtime fp32 vs INT8 (issue 6, notebook 05).

A script, not a timed test: run it on a quiet machine (check ``uptime``; other jobs on
the same cores distort absolute times, ratios measured in one interleaved run much less)::

    .venv/bin/python benchmarks/bench_latency.py                 # default model
    .venv/bin/python benchmarks/bench_latency.py --investigate   # + threads / graph-level sweep
    .venv/bin/python benchmarks/bench_latency.py --article       # + the article's model config

Model: ``--model`` (folder or checkpoint), else ``artifacts/vit_temporal.pt`` from notebook
03/04, else a freshly built default model with random weights (latency does not depend on
the weights' values) exported to a temporary folder.  Prints the machine, threads, p50/p95/p99
per clip and per streamed frame, throughput vs batch, preprocessing, FLOPs and the fraction
of the measured matmul bound, and whether the targets are met:

* ONNX Runtime fp32 >= 1.6x faster than PyTorch eager per clip (same run), each with
  its best thread count: torch uses every core; ONNX Runtime's is picked by timing 1 and
  all cores first (``--ort-threads auto``; ``same`` gives it torch's);
* streamed frame update (one encoder pass + one head pass) p95 <= 20 ms.

The report is saved to ``artifacts/latency.json`` (``--out``), which notebook 05 and the
README read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from gesture_utils import benchmark as bm
from gesture_utils.config import BenchmarkConfig, ModelConfig
from gesture_utils.paths import artifacts_dir, write_json
from gesture_utils.runtime import ort_session, time_calls

#: The article's model: timm vit_tiny_patch16_224 per frame, mean over 16 frames.
ARTICLE_MODEL = ModelConfig(backbone="vit_tiny_patch16_224", head="mean", num_frames=16,
                            pretrained=False)
ARTICLE_CLAIM_S = (0.05, 0.15)


def _load() -> float:
    return os.getloadavg()[0]


def _default_model_folder(tmp: Path) -> Path:
    """A checkpoint of the default model (random weights) in ``tmp``."""
    from gesture_utils.config import DEFAULT_CLASSES
    from gesture_utils.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model(ModelConfig(), len(DEFAULT_CLASSES), labels=list(DEFAULT_CLASSES))
    save_checkpoint(tmp / "vit_temporal.pt", model)
    return tmp / "vit_temporal.pt"


def investigate(files: bm.ModelFiles, model: torch.nn.Module, runs: int, warmup: int) -> dict:
    """Clip latency (batch 1) of eager and ORT fp32 at 1 and all threads, and ORT at every
    graph optimisation level, interleaved in one run."""
    cores = bm.default_threads()
    thread_options = sorted({1, cores})
    x = np.random.default_rng(0).standard_normal(
        (1, model.clip.num_frames, 3, model.clip.image_size, model.clip.image_size)).astype(np.float32)
    xt = torch.from_numpy(x)
    fns = {}
    for t in thread_options:
        def eager(t=t):
            torch.set_num_threads(t)
            with torch.inference_mode():
                model(xt)
        fns[f"eager t={t}"] = eager
        for level in ("disable", "basic", "all"):
            if level != "all" and t != cores:
                continue
            sess = ort_session(files.onnx, t, bm.CPU_ONLY, level, spinning=False)
            name = sess.get_inputs()[0].name
            fns[f"ort {level} t={t}"] = (lambda s=sess, n=name: s.run(None, {n: x}))
    stats = time_calls(fns, runs=runs, warmup=warmup)
    # CPU time per call of the single-threaded variants: process CPU seconds do not count
    # time spent waiting for a core, so this ratio survives a busy machine
    # the same two at full threads, each timed alone (no other backend between calls)
    alone = {name: time_calls({name: fns[name]}, runs=runs, warmup=warmup)[name]
             for name in (f"eager t={cores}", f"ort all t={cores}")}
    cpu_ms = {name: bm.cpu_time_per_call(fns[name], warmup=2, runs=runs)
              for name in ("eager t=1", "ort all t=1")}
    torch.set_num_threads(cores)
    base = stats[f"eager t={cores}"].p50_ms
    print(f"\ninvestigation: clip latency, batch 1, one interleaved run ({runs} runs each)")
    for name, s in stats.items():
        print(f"  {name:<20} p50 {s.p50_ms:8.2f} ms  p95 {s.p95_ms:8.2f} ms   "
              f"eager(t={cores})/this = {base / s.p50_ms:5.2f}x")
    for name, s in alone.items():
        print(f"  {name + ' (alone)':<20} p50 {s.p50_ms:8.2f} ms  p95 {s.p95_ms:8.2f} ms")
    print(f"  timed alone: eager / ORT = {alone[f'eager t={cores}'].p50_ms / alone[f'ort all t={cores}'].p50_ms:.2f}x")
    print(f"  CPU time per call, 1 thread: eager {cpu_ms['eager t=1']:.2f} ms, ORT "
          f"{cpu_ms['ort all t=1']:.2f} ms -> ORT needs {cpu_ms['eager t=1'] / cpu_ms['ort all t=1']:.2f}x "
          "less CPU")
    return {"wall": {n: s.to_dict() for n, s in stats.items()},
            "alone": {n: s.to_dict() for n, s in alone.items()}, "cpu_ms_per_call_t1": cpu_ms}


def article(runs: int, warmup: int, threads: int, export: bool) -> dict:
    """Per-clip latency of the article's model configuration (random weights)."""
    from gesture_utils.export import export_model
    from gesture_utils.models import build_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(ARTICLE_MODEL, 3, labels=["swipe_left", "swipe_right", "stop"]).eval()
    T, S = model.clip.num_frames, model.clip.image_size
    x = np.random.default_rng(0).standard_normal((1, T, 3, S, S)).astype(np.float32)
    backends = {"torch-eager": bm.torch_backend(model, "cpu", name="torch-eager")}
    with tempfile.TemporaryDirectory() as tmp:
        if export:
            t0 = time.perf_counter()
            paths = export_model(model, tmp, "article", kinds=("clip",))
            print(f"article model exported in {time.perf_counter() - t0:.0f} s")
            backends["ort-fp32"] = bm.ort_backend("ort-fp32", paths["clip"], threads=threads)
        stats = time_calls({n: (lambda b=b: b.clip(x)) for n, b in backends.items()},
                           runs=runs, warmup=warmup)
    flops = bm.count_flops(model, torch.from_numpy(x))
    lo, hi = ARTICLE_CLAIM_S
    print(f"\nthe article's model ({ARTICLE_MODEL.backbone}, T={T}, {S}x{S}, mean head): "
          f"{flops / 1e9:.1f} GFLOPs per clip")
    for name, s in stats.items():
        verdict = "inside" if lo <= s.p50_ms / 1e3 <= hi else ("below" if s.p50_ms / 1e3 < lo else "above")
        print(f"  {name:<12} p50 {s.p50_ms / 1e3:6.3f} s  p95 {s.p95_ms / 1e3:6.3f} s per clip "
              f"-> {verdict} the claimed {lo}-{hi} s")
    return {"config": {"backbone": ARTICLE_MODEL.backbone, "num_frames": T, "image_size": S},
            "flops": flops, "claim_s": list(ARTICLE_CLAIM_S),
            "clip": {n: s.to_dict() for n, s in stats.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="artifacts folder or checkpoint (default: see above)")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--ort-threads", default="auto",
                   help="ONNX Runtime intra-op threads: a number, 'auto' (the faster of 1 and "
                        "--threads, timed first; default) or 'same' (= --threads)")
    p.add_argument("--batch-sizes", default="1,2,4,8")
    p.add_argument("--optimization", default="all")
    p.add_argument("--ort-spinning", action="store_true", help="ORT threads spin between calls")
    p.add_argument("--investigate", action="store_true", help="threads / graph-level sweep")
    p.add_argument("--article", action="store_true", help="also time the article's model")
    p.add_argument("--article-runs", type=int, default=10)
    p.add_argument("--out", default=None, help="JSON report (default artifacts/latency.json)")
    args = p.parse_args(argv)

    load0 = _load()
    cores = bm.default_threads()
    print(f"load average (1 min) at start: {load0:.2f} on {cores} cores"
          + ("  <- busy: absolute times will be inflated; compare ratios" if load0 > 0.5 else ""))
    cfg = BenchmarkConfig(warmup=args.warmup, runs=args.runs, threads=args.threads,
                          ort_threads=None if args.ort_threads == "same" else args.ort_threads,
                          batch_sizes=tuple(int(b) for b in args.batch_sizes.split(",") if b),
                          ort_spinning=args.ort_spinning)
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        model_path = args.model
        if model_path is None:
            art = artifacts_dir(quick=False)
            model_path = art if (art / "vit_temporal.pt").is_file() else None
        if model_path is None:
            print("no trained model in artifacts/: timing a fresh default model (random weights)")
            model_path = _default_model_folder(Path(tmp))
        files = bm.find_model_files(model_path)
        model = None
        if files.checkpoint is not None:
            from gesture_utils.models import load_checkpoint

            model, _ = load_checkpoint(files.checkpoint)
            if files.onnx is None:  # export once here, so every step below uses the same files
                t0 = time.perf_counter()
                dst = Path(tmp) / "vit_temporal.pt"
                if files.checkpoint.resolve() != dst.resolve():
                    shutil.copy(files.checkpoint, dst)
                bm.export_for_benchmark(model, tmp)
                print(f"exported fp32 + dynamic INT8 graphs in {time.perf_counter() - t0:.0f} s")
                model_path = Path(tmp) / "vit_temporal.pt"
                files = bm.find_model_files(model_path)
        t0 = time.perf_counter()
        report = bm.run_benchmark(model_path, cfg, optimization=args.optimization,
                                  log=lambda m: print(m, file=sys.stderr))
        report["seconds"] = time.perf_counter() - t0
        print()
        print(bm.format_report(report))
        if args.investigate:
            if model is None or files.onnx is None:
                print("--investigate needs a checkpoint and its clip graph; skipped")
            else:
                report["investigation"] = investigate(files, model, max(20, args.runs // 2),
                                                      args.warmup)
        if args.article:
            report["article"] = article(args.article_runs, 2, report["config"]["threads"], export=True)
    load1 = _load()
    report["load_average"] = {"start": load0, "end": load1}
    print(f"\nload average (1 min): start {load0:.2f}, end {load1:.2f}")
    print("reproduce: .venv/bin/python benchmarks/bench_latency.py " + " ".join(argv or sys.argv[1:]))
    out = Path(args.out) if args.out else artifacts_dir(quick=False) / "latency.json"
    write_json(out, report)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
