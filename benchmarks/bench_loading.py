"""Decode vs cached fetch: why GestureClipDataset caches decoded uint8 clips (notebook 01).

Writes a small set of videos shaped like the generator's default (24 frames, 112x112)
to a temporary folder, then times, per clip:

* ``decode``      -- ``read_clip`` (open, decode every frame, resize, subsample),
* ``memory hit``  -- ``ClipCache.get`` on a clip already in memory,
* ``getitem``     -- ``dataset[i]`` from the cache: normalised float tensor,
* ``getitem+aug`` -- the same with augmentation (crop, flip, colour jitter).

Times are medians over ``--repeat`` passes, and ratios are against ``decode`` from the
same run (the machine is shared, so absolute times are noisy; ratios less so).

    .venv/bin/python benchmarks/bench_loading.py [--clips 24 --frames 24 --size 112]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gesture_utils.config import ClipConfig
from gesture_utils.datasets import ClipCache, ClipRecord, GestureClipDataset
from gesture_utils.video import read_clip, write_video


def make_videos(folder: Path, clips: int, frames: int, size: int, seed: int = 0) -> list[Path]:
    """``clips`` noisy videos with a moving square: (frames, size, size, 3) each."""
    rng = np.random.default_rng(seed)
    paths = []
    for c in range(clips):
        base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        video = np.repeat(base[None], frames, axis=0)
        video = video + rng.integers(0, 20, video.shape, dtype=np.uint8)
        side = size // 5
        for i in range(frames):
            x = i * (size - side) // max(1, frames - 1)
            video[i, size // 2 - side // 2 : size // 2 + side // 2, x : x + side] = 255
        paths.append(write_video(folder / f"clip_{c:03d}.mp4", video, fps=12))
    return paths


def per_clip(fn, n: int, repeat: int) -> float:
    """Median over ``repeat`` passes of the mean seconds per call of ``fn(i)``, i < n."""
    passes = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        passes.append((time.perf_counter() - t0) / n)
    return statistics.median(passes)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--frames", type=int, default=24, help="frames per video file")
    p.add_argument("--size", type=int, default=112, help="video width = height")
    p.add_argument("--num-frames", type=int, default=ClipConfig.num_frames)
    p.add_argument("--image-size", type=int, default=ClipConfig.image_size)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # like a DataLoader worker; steadier timings
    clip = ClipConfig(num_frames=args.num_frames, image_size=args.image_size)
    t, s = clip.num_frames, clip.image_size

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_videos(Path(tmp) / "videos", args.clips, args.frames, args.size)
        n = len(paths)
        decode = per_clip(lambda i: read_clip(paths[i], t, s), n, args.repeat)

        cache = ClipCache()
        records = [ClipRecord(path, "stop") for path in paths]
        plain = GestureClipDataset(records, ["stop"], clip, cache=cache)
        aug = GestureClipDataset(records, ["stop"], clip, augment=True, cache=cache)
        plain.preload()
        misses = cache.misses
        memory = per_clip(lambda i: cache.get(paths[i], t, s), n, args.repeat)
        item = per_clip(lambda i: plain[i], n, args.repeat)
        item_aug = per_clip(lambda i: aug[i], n, args.repeat)
        assert cache.misses == misses, "cached epochs must not decode"

    print(f"{n} videos of {args.frames}x{args.size}x{args.size} -> clips "
          f"({t}, {s}, {s}, 3); median of {args.repeat} passes; torch threads=1")
    print(f"{'step':<14}{'ms/clip':>10}{'decode / step':>15}")
    for name, sec in [("decode", decode), ("memory hit", memory),
                      ("getitem", item), ("getitem+aug", item_aug)]:
        print(f"{name:<14}{sec * 1e3:>10.3f}{decode / sec:>14.1f}x")


if __name__ == "__main__":
    main()
