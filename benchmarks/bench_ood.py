"""Does the recogniser work beyond its own renderer?  Clips, streams and gesture-free
footage that no decision about the recipe ever looked at (README, notebooks 03, 05, 06).

Scores one trained checkpoint on:

1. **own test split**: the 360 test clips of the dataset it was trained on (30 unseen
   sessions, same renderer settings);
2. **out-of-distribution clips** (``generation.ood_dataset()``): photos and faces
   reserved from training, a hand style (fingers together, outlined) and a motion
   profile (anticipation / overshoot on a bowed path, faster) that training never uses,
   24 fps, 2.5 s clips, another seed;
3. **streams in the new scenes**: ``--streams`` streams of 10 gestures between idle
   stretches, each in a fresh photo scene (training photos, sessions no training clip
   showed), run through the streaming path with the default ``StreamConfig``;
4. **out-of-distribution streams**: the same in the held-out scenes;
5. **gesture-free footage**: ``--minutes`` of held-out scenes with no gesture at all --
   camera pans, zooms and cuts, people swaying and walking, hands that rest or fidget.

For streams it prints event precision, recall, F1, false events per minute,
Levenshtein accuracy and the delay from the end of a gesture's motion to its event, each
with the hand-evidence rule (``StreamConfig.hand_evidence``) and with the head alone.

Usage::

    .venv/bin/python benchmarks/bench_ood.py                       # notebook 03's model
    .venv/bin/python benchmarks/bench_ood.py --model artifacts/bench_vit_temporal.pt
    .venv/bin/python benchmarks/bench_ood.py --set enter_threshold=0.7   # a StreamConfig field
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gesture_utils import generation as gen  # noqa: E402
from gesture_utils.config import GenerateConfig, StreamConfig  # noqa: E402
from gesture_utils.models import load_checkpoint  # noqa: E402
from gesture_utils.paths import artifacts_dir, write_json  # noqa: E402
from gesture_utils.stream import TorchStreamingAdapter, score_streams  # noqa: E402
from gesture_utils.training import score_folder  # noqa: E402

GESTURES_PER_STREAM = 10  # every gesture class twice
STREAM_KEYS = ("precision", "recall", "f1", "fp_per_min", "levenshtein_accuracy",
               "delay_after_end_s")


def make_streams(cfg: GenerateConfig, n: int, seed: int, gestures: list[str] | None,
                 seconds: float = 30.0) -> list[gen.Stream]:
    """``n`` streams, each in its own fresh scene: every gesture class twice, in a random
    order, between 1-3 s of rest, or -- with ``gestures=None`` -- ``seconds`` of
    gesture-free footage (``no_gesture`` segments: no hand, a resting or fidgeting hand)."""
    out = []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        if gestures is None:
            labels = [gen.REST_LABEL] * max(1, int(seconds / (cfg.seconds + 1.0)))
        else:
            labels = [str(g) for g in rng.permutation(gestures * 2)][:GESTURES_PER_STREAM]
        out.append(gen.render_stream(labels, rng, cfg, idle_seconds=(1.0, 3.0)))
    return out


def run_streams(adapter, streams: list[gen.Stream], cfg: StreamConfig) -> dict:
    """Pooled stream scores of the recogniser over ``streams`` (frame step from each
    stream's fps; an event may come up to 1 s after its gesture)."""
    return score_streams(adapter, streams, cfg, tolerance_s=1.0)[0]


def _fmt(name: str, s: dict) -> str:
    return (f"{name:<35} {s['gestures']:>4d} {s['tp']:>4d} {s['fp']:>4d} {s['fn']:>4d} "
            f"{s['precision']:>5.2f} {s['recall']:>5.2f} {s['f1']:>5.2f} {s['fp_per_min']:>7.1f} "
            f"{s['levenshtein_accuracy']:>6.2f} {s['delay_after_end_s']:>7.2f} {s['minutes']:>5.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None,
                   help="checkpoint (default: notebook 03's, else bench_training's)")
    p.add_argument("--streams", type=int, default=4, help="streams per scene kind")
    p.add_argument("--minutes", type=float, default=3.0, help="gesture-free footage, minutes")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", type=Path, default=None,
                   help="the dataset the model was trained on (default: the standard one)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change a StreamConfig field (JSON value)")
    p.add_argument("--out", type=Path, default=artifacts_dir(quick=False) / "bench_ood.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    art = artifacts_dir(quick=False)
    path = args.model or next((q for q in (art / "vit_temporal.pt", art / "bench_vit_temporal.pt")
                               if q.exists()), None)
    if path is None or not Path(path).exists():
        p.error("no checkpoint: run notebook 03 or benchmarks/bench_training.py, or pass --model")
    stream_cfg = StreamConfig()
    for item in args.set:
        key, _, value = item.partition("=")
        stream_cfg = replace(stream_cfg, **{key: json.loads(value)})
    model, info = load_checkpoint(path)
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"bench_ood · {time.strftime('%Y-%m-%d %H:%M')} · {path} · {args.threads} threads · load {load}")
    own = score_folder(model, args.data or gen.standard_dataset(quick=False, progress=False),
                       ("test",))
    ood = score_folder(model, gen.ood_dataset(quick=False, progress=False))
    for name, r in (("own test split", own), ("out-of-distribution", ood)):
        pc = " ".join(f"{k}={v:.2f}" for k, v in r["per_class"].items())
        print(f"{name:<20} {r['n']:>4d} clips  acc {r['acc']:.3f}  {pc}")

    adapter = TorchStreamingAdapter(model)
    gestures = [c for c in model.labels if c != stream_cfg.rest_label]
    new = GenerateConfig(seed=101)
    held = replace(GenerateConfig(**gen.OOD_OVERRIDES), seed=202)
    sets = {"streams, new scenes": make_streams(new, args.streams, 1, gestures),
            "streams, held-out": make_streams(held, args.streams, 2, gestures),
            "gesture-free, held-out": make_streams(held, 6, 3, None, seconds=args.minutes * 10)}
    rows = {}
    for name, streams in sets.items():  # with the hand-evidence rule, and with the head alone
        rows[name] = run_streams(adapter, streams, stream_cfg)
        rows[f"{name} (head alone)"] = run_streams(adapter, streams,
                                                   replace(stream_cfg, hand_evidence=False))
    print(f"\n{'':<35} {'gest':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'P':>5} {'R':>5} {'F1':>5} "
          f"{'fp/min':>7} {'lev':>6} {'delay s':>7} {'min':>5}")
    for name, s in rows.items():
        print(_fmt(name, s))
    print(f"load after: {' / '.join(f'{v:.1f}' for v in os.getloadavg())}")
    keep = ("acc", "n", "per_class")
    write_json(args.out, {"model": str(path), "stream_config": stream_cfg.__dict__,
                          "own_test": {k: own[k] for k in keep}, "ood": {k: ood[k] for k in keep},
                          "streams": rows, "date": time.strftime("%Y-%m-%d %H:%M:%S")})
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
