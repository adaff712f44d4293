"""Per-frame cost of streaming recognition vs recomputing the whole clip (notebook 06).

For every new frame of a synthetic stream, two ways to get fresh class probabilities:

* **streaming**: one encoder pass on the new frame, the embedding goes into a ring
  buffer, one temporal-head pass over the last T embeddings
  (:class:`gesture_utils.stream.StreamingRecognizer` over ``NAME.encoder.onnx`` +
  ``NAME.head.onnx``);
* **recompute**: the clip graph ``NAME.onnx`` on the last T frames (already resized and
  normalised, so only the model is timed: the most favourable case for recomputing).

Both run in one process, interleaved frame by frame, so machine load hits both alike;
the ratio of medians is the number to compare between machines.

    .venv/bin/python benchmarks/bench_stream.py                 # notebook 04's export
    .venv/bin/python benchmarks/bench_stream.py --model artifacts/quick/vit_temporal
    .venv/bin/python benchmarks/bench_stream.py --untrained      # export a fresh model first

Latency does not depend on the weights, so ``--untrained`` (a freshly built, exported
``ViTTemporal``, written to a temporary folder) measures the same thing when no trained
model exists yet.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gesture_utils.config import GenerateConfig, StreamConfig
from gesture_utils.generation import render_stream
from gesture_utils.inference import OnnxGestureClassifier, normalize
from gesture_utils.paths import artifacts_dir
from gesture_utils.stream import StreamingRecognizer, load_streaming_model
from gesture_utils.video import resize_frame


def export_untrained(out_dir: Path, num_frames: int = 8) -> Path:
    """Build and export an untrained default ``ViTTemporal``; returns the name prefix."""
    from gesture_utils.config import DEFAULT_CLASSES, ModelConfig
    from gesture_utils.export import export_model
    from gesture_utils.models import build_model

    model = build_model(ModelConfig(num_frames=num_frames), len(DEFAULT_CLASSES),
                        labels=list(DEFAULT_CLASSES))
    export_model(model, out_dir, "untrained")
    return out_dir / "untrained"


def percentiles(ms: list[float]) -> tuple[float, float]:
    a = np.asarray(ms, dtype=np.float64)
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def bench(prefix: Path, frames: np.ndarray, warmup: int = 5,
          threads: int | None = None) -> dict[str, float]:
    """Interleaved per-frame timings (ms) of the streaming path and clip recomputation."""
    stream_model = load_streaming_model(prefix, threads=threads)
    clip = OnnxGestureClassifier(str(prefix) + ".onnx", threads=threads)
    T, S = clip.num_frames, clip.image_size
    rec = StreamingRecognizer(stream_model, StreamConfig(frame_step=1, head_every=1,
                                                         wait_for_full_window=False))
    window: list[np.ndarray] = []
    enc, head, total, recompute = [], [], [], []
    for i, frame in enumerate(frames):
        st = rec.step(frame)
        window = (window + [normalize(resize_frame(frame, S), clip.mean, clip.std)])[-T:]
        x = np.stack([window[0]] * (T - len(window)) + window)[None]
        t0 = time.perf_counter()
        clip.logits(x)
        r_ms = (time.perf_counter() - t0) * 1e3
        if i >= warmup:
            enc.append(st.encode_ms or 0.0)
            head.append(st.head_ms or 0.0)
            total.append(st.total_ms)
            recompute.append(r_ms)
    out: dict[str, float] = {"T": T, "image_size": S, "frames": len(total)}
    for name, ms in (("stream_encoder", enc), ("stream_head", head), ("stream_total", total),
                     ("recompute_clip", recompute)):
        out[f"{name}_p50_ms"], out[f"{name}_p95_ms"] = percentiles(ms)
    out["ratio_p50"] = out["recompute_clip_p50_ms"] / out["stream_total_p50_ms"]
    out["ratio_p95"] = out["recompute_clip_p95_ms"] / out["stream_total_p95_ms"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None,
                    help="exported model prefix (default: notebook 04's vit_temporal in "
                         "artifacts_dir(), or its nb04_stand_in/)")
    ap.add_argument("--untrained", action="store_true",
                    help="export a fresh untrained model to a temp folder and use it")
    ap.add_argument("--frames", type=int, default=200, help="stream frames to time")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.untrained:
            prefix = export_untrained(Path(tmp))
        else:
            candidates = [args.model] if args.model else [
                artifacts_dir() / "vit_temporal", artifacts_dir() / "nb04_stand_in" / "vit_temporal"]
            prefix = next((c for c in candidates if Path(f"{c}.onnx").is_file()), candidates[0])
            if not Path(f"{prefix}.onnx").is_file():
                print(f"no exported model at {prefix}.onnx: run notebook 04 (or pass --model, "
                      "or --untrained)", file=sys.stderr)
                return 2
        rng = np.random.default_rng(args.seed)
        frames = render_stream(None, rng, GenerateConfig(), n_events=64).frames
        while len(frames) < args.frames:
            frames = np.concatenate([frames, frames])
        res = bench(prefix, frames[: args.frames], threads=args.threads)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"model {prefix.name}: T={res['T']} frames of {res['image_size']} px · "
          f"{res['frames']} timed frames")
    print(f"{'per new frame':<28}{'p50 ms':>9}{'p95 ms':>9}")
    for name, label in (("stream_encoder", "streaming: encoder (1 frame)"),
                        ("stream_head", "streaming: head (T embeddings)"),
                        ("stream_total", "streaming: total"),
                        ("recompute_clip", f"recompute clip ({res['T']} frames)")):
        print(f"{label:<28}{res[name + '_p50_ms']:9.2f}{res[name + '_p95_ms']:9.2f}")
    print(f"recompute / streaming: {res['ratio_p50']:.1f}x at p50, {res['ratio_p95']:.1f}x at p95 "
          f"(ideal ~{res['T']}x: T encoder passes vs one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
