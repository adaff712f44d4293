"""Does the default CPU recipe learn, and how fast?  (issue 4, notebook 03)

Trains on the default synthetic dataset (``GenerateConfig()``, generated into
``data/synthetic`` if missing) and prints one table:

1. **default recipe** (``ModelConfig()`` + ``TrainConfig()``): test accuracy after every
   epoch (scored outside the timed training), the first epoch and the training seconds
   at which it reaches the target (99%), the final test accuracy and per-class recall;
2. **mean-pooling baseline**, trained the same way: accuracy on the swipe_left /
   swipe_right pair (0.5 = chance) next to the transformer's;
3. **label leak**: clips carrying the article's text overlay, trained without
   augmentation or hand loss (the article's setting) and with our recipe, each scored
   on overlaid validation/test clips and on the clean test clips of (1);
4. **out-of-distribution**: the model of (1) on every clip of ``generation.ood_dataset()``
   (reserved photos and faces, a hand style and motion profile training never uses,
   another frame rate and duration; never used for any decision about the recipe).

Timings are wall-clock on whatever else the machine is doing; the script prints the
load average next to them.  Results also go to ``artifacts/bench_training.json``.

Usage::

    .venv/bin/python benchmarks/bench_training.py            # everything (~15 min on 2 cores)
    .venv/bin/python benchmarks/bench_training.py --only main --epochs 10
    .venv/bin/python benchmarks/bench_training.py --only main --repeats 3   # seed spread

Experiments (one change against the default; compare seeds at a fixed thread count,
since a run's numbers repeat exactly only for the same seed and threads)::

    .venv/bin/python benchmarks/bench_training.py --only main --threads 1 --seed 2 \
        --set hand_weight=0 --out /tmp/hand_s2.json       # a ModelConfig/TrainConfig field
    .venv/bin/python benchmarks/bench_training.py --only main --threads 1 \
        --gen clips_per_class=600 --epochs 12             # a GenerateConfig field (own folder)

Two 1-thread experiments can run side by side on 2 cores; with the same ``--gen``
variant, start the second after the first has printed its ``data:`` line, so that they
do not both generate the folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gesture_utils.config import GenerateConfig, ModelConfig, TrainConfig, to_dict  # noqa: E402
from gesture_utils.datasets import ClipCache, build_datasets, read_labels  # noqa: E402
from gesture_utils.generation import ood_dataset, standard_dataset  # noqa: E402
from gesture_utils.models import build_model  # noqa: E402
from gesture_utils.paths import artifacts_dir  # noqa: E402
from gesture_utils.training import (  # noqa: E402
    error_pairs,
    evaluate,
    pair_accuracy,
    per_class_accuracy,
    score_folder,
    train,
)

TARGET = 0.99


def _load() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def _test_set(root: Path, model_cfg: ModelConfig, cache: ClipCache):
    labels = read_labels(root)
    clip = build_model(model_cfg, len(labels)).clip
    sets = build_datasets(root, clip=clip, augment=False, cache=cache)
    for ds in sets.values():
        ds.preload()
    return sets


def run_recipe(name: str, root: Path, model_cfg: ModelConfig, train_cfg: TrainConfig,
               cache: ClipCache, out: Path | None, track_test: bool = True,
               quiet: bool = True) -> dict:
    """Train once; returns metrics incl. the per-epoch test curve and time-to-target."""
    sets = _test_set(root, model_cfg, cache) if track_test else None
    curve: list[dict] = []
    elapsed = [0.0]

    def on_epoch_end(record: dict, model) -> None:
        elapsed[0] += record["seconds"]
        row = {"epoch": record["epoch"], "train_seconds": elapsed[0], "val_acc": record["val_acc"],
               "train_acc": record["train_acc"]}
        if sets is not None:
            row["test_acc"] = evaluate(model, sets["test"], train_cfg.device or "cpu")["acc"]
        curve.append(row)
        if not quiet:
            print(f"  [{name}] epoch {row['epoch']:>3d} · {row['train_seconds']:6.1f} s · "
                  f"train {row['train_acc']:.3f} · val {row['val_acc']:.3f}"
                  + (f" · test {row['test_acc']:.3f}" if "test_acc" in row else ""), flush=True)

    t0 = time.perf_counter()
    result = train(root, out=out, model_cfg=model_cfg, train_cfg=train_cfg, quiet=True,
                   cache=cache, on_epoch_end=on_epoch_end)
    wall = time.perf_counter() - t0
    labels = result.model.labels
    test_sets = sets or _test_set(root, model_cfg, cache)
    test = evaluate(result.model, test_sets["test"], train_cfg.device or "cpu")
    hit = next((r for r in curve if r.get("test_acc", 0) >= TARGET), None)
    return {
        "name": name, "model": result.model, "wall_seconds": wall,
        "train_seconds": result.metrics["train_seconds"], "epochs_run": len(result.history),
        "best_epoch": result.best_epoch, "val_acc": result.metrics["val_acc"],
        "test_acc": test["acc"], "per_class": per_class_accuracy(test["y_true"], test["y_pred"], labels),
        "test_errors": error_pairs(test["y_true"], test["y_pred"], labels),
        "lr_pair_acc": pair_accuracy(test["y_true"], test["y_pred"], labels),
        "ud_pair_acc": pair_accuracy(test["y_true"], test["y_pred"], labels, ("swipe_up", "swipe_down")),
        "epoch_to_target": hit["epoch"] if hit else None,
        "seconds_to_target": hit["train_seconds"] if hit else None,
        "curve": curve, "history": result.history,
    }


def _parse_setting(item: str, parser: argparse.ArgumentParser, flag: str) -> tuple[str, object]:
    """``FIELD=VALUE`` -> ``(field, value)``; the value is parsed as JSON (numbers,
    true/false, null), else kept as a string."""
    name, sep, text = item.partition("=")
    if not sep:
        parser.error(f"{flag} {item!r}: expected FIELD=VALUE")
    try:
        return name, json.loads(text)
    except json.JSONDecodeError:
        return name, text


def _apply_setting(item: str, model_cfg: ModelConfig, recipe: TrainConfig,
                   parser: argparse.ArgumentParser) -> tuple[ModelConfig, TrainConfig]:
    """``FIELD=VALUE`` applied to whichever of the two configs has that field."""
    name, value = _parse_setting(item, parser, "--set")
    for cfg in (model_cfg, recipe):
        if name in {f.name for f in fields(cfg)}:
            new = replace(cfg, **{name: value})
            return (new, recipe) if cfg is model_cfg else (model_cfg, new)
    parser.error(f"--set {item!r}: no ModelConfig or TrainConfig field named {name!r}")
    raise AssertionError  # parser.error exits


def _score(model, root: Path, cache: ClipCache, splits=("train", "val", "test")) -> dict:
    """:func:`score_folder` without the per-clip arrays (what the JSON keeps)."""
    r = score_folder(model, root, splits, cache=cache)
    return {k: r[k] for k in ("acc", "n", "per_class")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("main", "mean", "leak", "ood"), action="append",
                        help="run only these parts (repeatable; default: all)")
    parser.add_argument("--epochs", type=int, default=None, help="override TrainConfig.epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1,
                        help="train the default recipe this many times (seeds seed, seed+1, ...) "
                             "and report the spread; one run's test accuracy moves by a few "
                             "clips with the seed and the thread count")
    parser.add_argument("--out", default=str(artifacts_dir(quick=False) / "bench_training.json"))
    parser.add_argument("--verbose", action="store_true", help="print every epoch")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: PyTorch's default, one per core)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="change one ModelConfig/TrainConfig field for every run, e.g. "
                             "--set hand_weight=0.5 (repeatable; for experiments)")
    parser.add_argument("--gen", action="append", default=[], metavar="FIELD=VALUE",
                        help="train and test on a variant of the dataset: one GenerateConfig "
                             "field changed, generated into data/synthetic_<changes> "
                             "(repeatable; for experiments)")
    args = parser.parse_args(argv)
    parts = set(args.only or ("main", "mean", "leak", "ood"))
    gen = dict(_parse_setting(item, parser, "--gen") for item in args.gen)
    bad = sorted(set(gen) - {f.name for f in fields(GenerateConfig)})
    if bad:
        parser.error(f"--gen: no GenerateConfig field named {bad[0]!r}")
    if args.threads:
        torch.set_num_threads(args.threads)

    recipe = TrainConfig(seed=args.seed, device="cpu")
    if args.epochs:
        recipe = replace(recipe, epochs=args.epochs)
    model_cfg = ModelConfig()
    for item in args.set:
        model_cfg, recipe = _apply_setting(item, model_cfg, recipe, parser)
    quiet = not args.verbose
    print(f"bench_training · {time.strftime('%Y-%m-%d %H:%M')} · {platform.processor() or platform.machine()}"
          f" · torch {torch.__version__} · {torch.get_num_threads()} threads · load {_load()}")
    print(f"model {to_dict(model_cfg)}\nrecipe {to_dict(recipe)}")

    t = time.perf_counter()
    variant = "_".join(f"{k}{v}" for k, v in sorted(gen.items()))
    root = standard_dataset(quick=False, progress=False,
                            **({"name": f"synthetic_{variant}", **gen} if gen else {}))
    print(f"data: {root} ({time.perf_counter() - t:.0f} s to load-or-generate)")
    cache = ClipCache()
    res: dict[str, dict] = {}
    if "main" in parts or "ood" in parts:
        # an experiment (--set / --gen) keeps its checkpoint next to its --out file, so
        # that it neither replaces the default recipe's nor collides with a twin run
        ckpt = (Path(args.out).with_suffix(".pt") if (args.set or args.gen)
                else artifacts_dir(quick=False) / "bench_vit_temporal.pt")
        res["main"] = run_recipe("transformer", root, model_cfg, recipe, cache, ckpt, quiet=quiet)
        for k in range(1, args.repeats):
            res[f"main_seed{args.seed + k}"] = run_recipe(
                f"seed {args.seed + k}", root, model_cfg, replace(recipe, seed=args.seed + k),
                cache, None, quiet=quiet)
    if "mean" in parts:
        res["mean"] = run_recipe("mean", root, replace(model_cfg, head="mean"), recipe, cache,
                                 None, quiet=quiet)
    leak = None
    if "leak" in parts:
        # two runs on the overlaid copy: the article's setting (no augmentation, no
        # per-frame hand loss) and our recipe (its crops and flips cut and mirror the
        # text, which weakens the leak; the hand loss asks it to look for the hand)
        leak_root = standard_dataset(quick=False, progress=False, name="synthetic_overlay",
                                     text_overlay=True)  # notebook 03's overlaid copy
        leak = {}
        for key, cfg in (("no_aug", replace(recipe, augment=False, hand_weight=0.0)),
                         ("recipe", recipe)):
            run = run_recipe(f"overlay/{key}", leak_root, model_cfg, cfg, cache, None,
                             track_test=False, quiet=quiet)
            res[f"leak_{key}"] = run
            m = run["model"]
            leak[key] = {"overlay_val": _score(m, leak_root, cache, ("val",))["acc"],
                         "overlay_test": run["test_acc"],  # run_recipe scored it already
                         "clean_test": _score(m, root, cache, ("test",))["acc"]}
    ood = None
    if "ood" in parts:
        ood = _score(res["main"]["model"], ood_dataset(quick=False, progress=False), cache)

    # ------------------------------------------------------------------ report
    print(f"\nload after: {_load()}")
    print(f"{'run':<12} {'epochs':>6} {'train s':>8} {'val':>6} {'test':>6} {'L/R pair':>9} "
          f"{'U/D pair':>9} {'→99% epoch':>11} {'→99% s':>7}")
    for r in res.values():
        to_s = f"{r['seconds_to_target']:.1f}" if r["seconds_to_target"] else "-"
        print(f"{r['name']:<12} {r['epochs_run']:>6d} {r['train_seconds']:>8.1f} {r['val_acc']:>6.3f} "
              f"{r['test_acc']:>6.3f} {r['lr_pair_acc']:>9.3f} "
              f"{r['ud_pair_acc']:>9.3f} {str(r['epoch_to_target']):>11} {to_s:>7}")
    if args.repeats > 1:
        accs = [r["test_acc"] for k, r in res.items() if k.startswith("main")]
        hits = sum(r["epoch_to_target"] is not None for k, r in res.items() if k.startswith("main"))
        print(f"default recipe over {len(accs)} seeds: test acc mean {np.mean(accs):.3f} · "
              f"min {min(accs):.3f} · max {max(accs):.3f} · reached {TARGET:.0%} in {hits}/{len(accs)}")
    for key in ("main", "mean"):
        if key in res:
            pc = " ".join(f"{k}={v:.2f}" for k, v in res[key]["per_class"].items())
            print(f"per-class test recall ({res[key]['name']}): {pc}")
            print(f"test errors ({res[key]['name']}): {res[key]['test_errors'] or 'none'}")
    for key, lk in (leak or {}).items():
        print(f"label leak (trained on overlaid clips, {key}): overlay val {lk['overlay_val']:.3f} · "
              f"overlay test {lk['overlay_test']:.3f} · clean test {lk['clean_test']:.3f}")
    if ood:
        pc = " ".join(f"{k}={v:.2f}" for k, v in ood["per_class"].items())
        print(f"out-of-distribution ({ood['n']} clips): acc {ood['acc']:.3f} · {pc}")

    out = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": torch.get_num_threads(),
           "load_after": _load(), "model": to_dict(model_cfg), "recipe": to_dict(recipe),
           "data": str(root), "data_changes": gen,
           "runs": {k: {kk: vv for kk, vv in r.items() if kk not in ("model",)} for k, r in res.items()},
           "leak": leak, "ood": ood}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
