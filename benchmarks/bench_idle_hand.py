"""Does showing a still hand come and go in ``no_gesture`` clips fix the stream?  (issue 7)

Notebook 06 found that a model trained on clips whose ``no_gesture`` never shows a hand
fires false events on a stream right after a hand pops into view.  This script trains the
default recipe on datasets that differ only in ``GenerateConfig.idle_hand_fraction``
and scores each model twice:

* **clips**: test accuracy on its own dataset (360 clips of 30 unseen sessions);
* **streams**: event precision / recall on three 25-gesture streams (``render_stream``,
  seeds 0, 1, 2, idle 1-2 s) with notebook 06's decision settings, run through the
  PyTorch streaming path (same outputs as the exported graphs).

Each (fraction, seed) run is one process with ``--threads`` torch threads; ``--jobs``
runs that many at once (accuracy does not depend on timing, so parallel runs are fine
here; it does depend on the thread count, so keep ``--threads`` fixed when comparing).
Datasets other than the default are generated under ``data/idle_hand_<fraction>``.

Usage::

    .venv/bin/python benchmarks/bench_idle_hand.py --threads 1 --jobs 2      # ~45 min on 2 cores
    .venv/bin/python benchmarks/bench_idle_hand.py --fractions 0.5 --seeds 0
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gesture_utils.config import GenerateConfig, StreamConfig, TrainConfig  # noqa: E402
from gesture_utils.evaluation import save_json  # noqa: E402
from gesture_utils.paths import artifacts_dir  # noqa: E402

#: notebook 06's decision settings
STREAM = StreamConfig(frame_step=3, ema_alpha=0.5, enter_threshold=0.6, exit_threshold=0.4,
                      min_consecutive=2, cooldown_frames=12, tolerance_frames=12)
STREAM_SEEDS = (0, 1, 2)
GESTURES_PER_STREAM = 25


def stream_scores(model) -> dict:
    """Event counts and precision/recall of ``model`` summed over the test streams."""
    from gesture_utils import generation as gen
    from gesture_utils.realtime import (
        StreamingRecognizer,
        TorchStreamingAdapter,
        match_events,
        segments_from_frame_labels,
    )

    gestures = [c for c in model.labels if c != STREAM.rest_label]
    adapter = TorchStreamingAdapter.from_model(model)
    tp = fp = 0
    missed: Counter[str] = Counter()
    for s in STREAM_SEEDS:
        rng = np.random.default_rng(s)
        rounds = [list(rng.permutation(gestures))
                  for _ in range(-(-GESTURES_PER_STREAM // len(gestures)))]
        labels = [str(g) for r in rounds for g in r][:GESTURES_PER_STREAM]
        stream = gen.render_stream(labels, rng, gen.standard_config(False), idle_seconds=(1.0, 2.0))
        result = StreamingRecognizer(adapter, STREAM).run(stream.frames)
        segments = segments_from_frame_labels(stream.labels, STREAM.rest_label)
        pairs = match_events(result.events, segments, STREAM.tolerance_frames)
        found = {s for _, s in pairs}
        missed.update(seg.label for i, seg in enumerate(segments) if i not in found)
        tp, fp = tp + len(pairs), fp + len(result.events) - len(pairs)
    fn = sum(missed.values())
    return {"tp": tp, "fp": fp, "fn": fn, "precision": tp / max(1, tp + fp),
            "recall": tp / max(1, tp + fn), "missed": dict(missed.most_common())}


def dataset(fraction: float) -> Path:
    """The default dataset with ``idle_hand_fraction = fraction`` (load-or-generate)."""
    from gesture_utils.generation import standard_dataset

    if fraction == GenerateConfig().idle_hand_fraction:
        return standard_dataset(quick=False, progress=False)
    return standard_dataset(quick=False, progress=False, name=f"idle_hand_{fraction:g}",
                            idle_hand_fraction=fraction)


def one_run(job: tuple[float, int, int | None]) -> dict:
    """Train the default recipe with ``idle_hand_fraction = fraction`` and score it
    (its dataset must exist: :func:`dataset` runs in the parent, before any job)."""
    fraction, seed, threads = job
    import torch

    from gesture_utils.training import train

    if threads:
        torch.set_num_threads(threads)
    root = dataset(fraction)  # complete already: only checked here
    t0 = time.perf_counter()
    res = train(root, None, train_cfg=TrainConfig(seed=seed, device="cpu"), quiet=True)
    return {"fraction": fraction, "seed": seed, "threads": torch.get_num_threads(),
            "test_acc": res.metrics["test_acc"], "val_acc": res.metrics["val_acc"],
            "test_per_class": res.metrics["test_per_class"], "test_errors": res.metrics["test_errors"],
            "seconds": time.perf_counter() - t0, "stream": stream_scores(res.model)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fractions", default="0,0.25,0.5", help="comma-separated idle_hand_fraction values")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default: torch's)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (each its own process)")
    p.add_argument("--out", default=str(artifacts_dir(quick=False) / "bench_idle_hand.json"))
    args = p.parse_args(argv)
    fractions = [float(f) for f in args.fractions.split(",") if f]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    jobs = [(f, s, args.threads) for f in fractions for s in seeds]
    print(f"bench_idle_hand · {time.strftime('%Y-%m-%d %H:%M')} · {len(jobs)} runs, "
          f"threads {args.threads or 'torch default'}, {args.jobs} at once", flush=True)
    for f in fractions:  # once, here: parallel jobs must not generate the same folder
        dataset(f)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            runs = list(pool.map(one_run, jobs))
    else:
        runs = [one_run(j) for j in jobs]
    print(f"\n{'fraction':>8} {'seed':>4} {'test acc':>8} {'stream P':>8} {'stream R':>8} "
          f"{'events':>6} {'train s':>7}")
    for r in runs:
        s = r["stream"]
        print(f"{r['fraction']:>8g} {r['seed']:>4d} {r['test_acc']:>8.3f} {s['precision']:>8.3f} "
              f"{s['recall']:>8.3f} {s['tp'] + s['fp']:>6d} {r['seconds']:>7.0f}")
    print("\npooled over seeds:")
    for f in fractions:
        rs = [r for r in runs if r["fraction"] == f]
        tp, fp, fn = (sum(r["stream"][k] for r in rs) for k in ("tp", "fp", "fn"))
        accs = [r["test_acc"] for r in rs]
        print(f"  idle_hand_fraction {f:g}: test acc {min(accs):.3f}-{max(accs):.3f} "
              f"(mean {np.mean(accs):.3f}) · stream precision {tp / max(1, tp + fp):.2f}, "
              f"recall {tp / max(1, tp + fn):.2f} ({tp} of {tp + fn} gestures, {fp} false events)")
        missed = sum((Counter(r["stream"]["missed"]) for r in rs), Counter())
        errors = sum((Counter(r["test_errors"]) for r in rs), Counter())
        print(f"    missed in streams: {dict(missed.most_common()) or 'none'}\n"
              f"    test clip errors: {dict(errors.most_common()) or 'none'}")
    out = save_json({"runs": runs, "argv": sys.argv[1:]}, args.out)
    print(f"saved {out}\nreproduce: .venv/bin/python benchmarks/bench_idle_hand.py {' '.join(sys.argv[1:])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
