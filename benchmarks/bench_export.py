"""Export benchmark (issue 5, notebook 04): parity, INT8 accuracy/speed-up, file sizes.

Everything is measured in ONE run on the same machine, and timings are interleaved
(round-robin), so the *ratios* hold even on a busy CPU:

1. export the checkpoint to ``NAME.onnx`` + the streaming pair (fp32), timing the export;
2. parity on the test split: ONNX vs PyTorch, streaming pair vs PyTorch and vs the clip
   graph (max |Δlogit|, top-1 agreement);
3. INT8 dynamic and static per-channel QDQ (calibrated on training clips) of the clip
   graph and of the per-frame encoder: test accuracy and its change, agreement with
   fp32, batch-1 median latency and speed-up vs fp32, file sizes, the verdict;
4. streaming: cost of one new frame (encoder on 1 frame + head on the window) vs
   re-running the clip graph on the whole window.

Usage::

    .venv/bin/python benchmarks/bench_export.py                      # artifacts/vit_temporal.pt
    .venv/bin/python benchmarks/bench_export.py --checkpoint X.pt --data data/synthetic --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gesture_utils.config import ExportConfig
from gesture_utils.datasets import load_split
from gesture_utils.errors import GestureError
from gesture_utils.export import (
    compare_int8,
    export_model,
    file_size_mb,
    format_int8_table,
    measure_latency,
    onnx_logits,
    parity_report,
    quantize_int8,
)
from gesture_utils.models import load_checkpoint
from gesture_utils.paths import artifacts_dir, data_dir, write_text
from gesture_utils.runtime import CPU_ONLY, ort_session


def _args(argv: list[str] | None) -> argparse.Namespace:
    d = ExportConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=artifacts_dir(quick=False) / "vit_temporal.pt")
    p.add_argument("--data", type=Path, default=None,
                   help="dataset folder (default: the checkpoint's dataset under data/)")
    p.add_argument("--out", type=Path, default=None, help="keep the .onnx files here (default: temp)")
    p.add_argument("--runs", type=int, default=100, help="timed batch-1 runs per model")
    p.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: all)")
    p.add_argument("--calibration-clips", type=int, default=d.calibration_clips)
    p.add_argument("--json", type=Path, default=None, help="also write every figure here")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    model, info = load_checkpoint(args.checkpoint)
    data = args.data or data_dir() / str(info.get("dataset", "synthetic"))
    clip = model.clip
    results: dict = {"checkpoint": str(args.checkpoint), "data": str(data),
                     "model": {"backbone": model.cfg.backbone, "head": model.cfg.head,
                               "causal": model.cfg.causal, "T": clip.num_frames,
                               "S": clip.image_size, "D": model.embed_dim}}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        out = args.out or Path(tmp)
        t0 = time.perf_counter()
        paths = export_model(model, out, "bench", source=args.checkpoint.name)
        results["export_seconds"] = time.perf_counter() - t0

        test = load_split(data, "test", clip, labels=model.labels)
        x, y = test.inputs(clip.mean, clip.std), test.y
        calib = load_split(data, "train", clip, labels=model.labels,
                           limit=args.calibration_clips).inputs(clip.mean, clip.std)
        parity = parity_report(model, paths, x, atol=ExportConfig().parity_atol,
                               threads=args.threads)
        results["parity"] = [{**vars(r), "passed": r.passed} for r in parity]
        print(f"model: {model.cfg.backbone} + {model.cfg.head} head (causal={model.cfg.causal}), "
              f"T={clip.num_frames}, S={clip.image_size}, D={model.embed_dim}")
        print(f"export (3 graphs): {results['export_seconds']:.1f} s")
        print(f"parity on the test split of {data.name} ({len(x)} clips):")
        for r in parity:
            print(f"  {r}")

        frames = calib.reshape(-1, *calib.shape[2:])
        int8 = {
            "int8-dynamic": quantize_int8(paths["clip"], out / "bench.dyn.int8.onnx", "dynamic"),
            "int8-static": quantize_int8(paths["clip"], out / "bench.int8.onnx", "static", calib),
        }
        enc8 = {
            "int8-dynamic": quantize_int8(paths["encoder"], out / "bench.encoder.dyn.int8.onnx",
                                          "dynamic"),
            "int8-static": quantize_int8(paths["encoder"], out / "bench.encoder.int8.onnx",
                                         "static", frames),
        }
        clip_reports = compare_int8(paths["clip"], int8, x, y, runs=args.runs, threads=args.threads)
        print(f"\nINT8 vs fp32, clip graph, batch 1 ({args.runs} interleaved runs each):")
        print("  " + format_int8_table(clip_reports).replace("\n", "\n  "))
        # per-frame encoder: judged by the clip predictions its embeddings give through
        # the fp32 head (a new frame's cost in streaming is this encoder)
        xf = x.reshape(-1, *x.shape[2:])
        head = ort_session(paths["head"], args.threads, CPU_ONLY)

        def through_head(emb: np.ndarray) -> np.ndarray:
            return onnx_logits(head, emb.reshape(len(x), clip.num_frames, -1))

        enc_reports = compare_int8(paths["encoder"], enc8, xf, y, runs=args.runs,
                                   threads=args.threads, post=through_head)
        print("\nINT8 vs fp32, per-frame encoder, 1 frame (accuracy through the fp32 head):")
        print("  " + format_int8_table(enc_reports).replace("\n", "\n  "))
        results["int8_clip"] = [r.to_dict() for r in clip_reports]
        results["int8_encoder"] = [r.to_dict() for r in enc_reports]

        # streaming: one new frame vs the whole window again
        sess = {"clip graph (T frames)": (ort_session(paths["clip"], args.threads, CPU_ONLY), x[:1]),
                "encoder (1 frame)": (ort_session(paths["encoder"], args.threads, CPU_ONLY), xf[:1]),
                "head (window)": (head, np.zeros((1, clip.num_frames, model.embed_dim),
                                                 np.float32))}
        lat = measure_latency(sess, runs=args.runs)
        per_frame = lat["encoder (1 frame)"].p50_ms + lat["head (window)"].p50_ms
        whole = lat["clip graph (T frames)"].p50_ms
        results["streaming"] = {**{k: v.p50_ms for k, v in lat.items()},
                                "new_frame_ms": per_frame, "speedup": whole / per_frame}
        print(f"\nstreaming, fp32: new frame = encoder {lat['encoder (1 frame)'].p50_ms:.2f} ms"
              f" + head {lat['head (window)'].p50_ms:.2f} ms = {per_frame:.2f} ms; "
              f"whole window again {whole:.2f} ms -> {whole / per_frame:.1f}x cheaper per frame")

        sizes = {p.name: file_size_mb(p) for p in sorted(out.glob("bench*.onnx"))}
        results["sizes_mb"] = sizes
        print("\nfile sizes:")
        for name, mb in sizes.items():
            print(f"  {name:<32} {mb:7.2f} MB")
    return results


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    try:
        results = run(args)
    except GestureError as exc:
        print(f"bench_export: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        write_text(args.json, json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
