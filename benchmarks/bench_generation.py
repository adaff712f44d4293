"""How fast does the default synthetic dataset generate? (target: under a minute on 2 cores)

Usage:  .venv/bin/python benchmarks/bench_generation.py [--workers 1 2] [--clips-per-class N]

Generates the default ``GenerateConfig`` dataset into a temporary folder once per
worker count and prints clips/s, total seconds and the size on disk, plus the time
split between rendering and video encoding (measured on a few sessions in-process).
Timings on a shared machine are noisy: compare the ratios printed by one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from gesture_utils.config import GenerateConfig
from gesture_utils.generation import (
    clip_rng,
    generate_dataset,
    n_sessions,
    render_from_params,
    sample_clip_params,
    sample_session,
    session_rng,
)
from gesture_utils.video import write_video


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _render_vs_encode(cfg: GenerateConfig, tmp: Path, sessions: int = 3) -> tuple[float, float, int]:
    render = encode = 0.0
    n = 0
    for s in range(sessions):
        session = sample_session(session_rng(cfg, s), cfg)
        for label in cfg.classes:
            for k in range(cfg.group_size):
                t0 = time.perf_counter()
                params = sample_clip_params(label, clip_rng(cfg, s, label, k), cfg, session)
                frames = render_from_params(params, session, cfg)
                t1 = time.perf_counter()
                write_video(tmp / f"c{n}.mp4", frames, cfg.fps)
                encode += time.perf_counter() - t1
                render += t1 - t0
                n += 1
    return render, encode, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--clips-per-class", type=int, default=None)
    args = ap.parse_args()
    cfg = GenerateConfig()
    if args.clips_per_class:
        cfg = replace(cfg, clips_per_class=args.clips_per_class)
    total = cfg.clips_per_class * len(cfg.classes)
    print(f"default dataset: {len(cfg.classes)} classes x {cfg.clips_per_class} clips = {total} "
          f"clips, {cfg.size}px, {cfg.fps} fps x {cfg.seconds} s, {n_sessions(cfg)} sessions; "
          f"{os.cpu_count()} CPU cores")
    with tempfile.TemporaryDirectory() as tmp:
        r, e, n = _render_vs_encode(cfg, Path(tmp))
        print(f"per clip: render {1e3 * r / n:.1f} ms, encode {1e3 * e / n:.1f} ms "
              f"(render share {r / (r + e):.0%})")
    times = {}
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "synthetic"
            t0 = time.perf_counter()
            generate_dataset(out, replace(cfg, workers=workers), progress=False)
            dt = time.perf_counter() - t0
            times[workers] = dt
            size_mb = _du(out) / 2**20
            print(f"workers={workers}: {dt:6.1f} s total, {total / dt:6.1f} clips/s, "
                  f"{size_mb:.1f} MiB on disk ({1024 * size_mb / total:.1f} KiB/clip)")
            t0 = time.perf_counter()
            generate_dataset(out, replace(cfg, workers=workers), progress=False)
            print(f"           load-or-compute second call: {1e3 * (time.perf_counter() - t0):.1f} ms")
    if len(times) > 1:
        base = times[min(times)]
        print("speed-up vs", min(times), "worker(s):",
              ", ".join(f"{w}: {base / t:.2f}x" for w, t in sorted(times.items())))


if __name__ == "__main__":
    main()
