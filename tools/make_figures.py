"""The README's pictures, made by the series' own code, into ``docs/images/``.

* ``clip_strip.png``: one clip of every class of the series' dataset (notebook 01's
  generator with its default settings, the very parameters ``generate_dataset`` draws),
  eight frames each, time running left to right. Needs nothing but the package.
* ``confusion.png``: the row-normalised test-split confusion matrices of the mean-pooling
  baseline and the temporal model, and the temporal model's on the out-of-distribution
  set, from the ``*_metrics.json`` files notebook 05 saves.
* ``latency.png``: p50/p95 per clip and per streamed frame for each backend, from
  ``latency.json`` (``benchmarks/bench_latency.py``) or else notebook 05's
  ``latency_nb05.json``.

The last two are drawn only when those artefacts exist in the full-mode artifacts folder
(``artifacts/``; QUICK results in ``artifacts/quick`` are refused unless ``--quick``: a
README must not show a two-epoch model)::

    .venv/bin/python tools/make_figures.py                  # whatever can be drawn
    .venv/bin/python tools/make_figures.py clip_strip       # just one figure
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gesture_utils import generation as gen  # noqa: E402
from gesture_utils.config import GenerateConfig  # noqa: E402
from gesture_utils.evaluation import frame_strip, plot_confusion, save_figure  # noqa: E402
from gesture_utils.paths import artifacts_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
METRICS = (("mean_baseline", "mean pooling (baseline)"), ("temporal", "temporal attention"),
           ("temporal_ood", "temporal attention, out-of-distribution"))
LATENCY = ("latency.json", "latency_nb05.json")


def clip_strip(out: Path, frames: int = 8) -> Path:
    """One dataset clip per class (session ``s`` for row ``s``, its first clip)."""
    cfg = GenerateConfig()
    rows = []
    for s, label in enumerate(cfg.classes):
        session = gen.sample_session(gen.session_rng(cfg, s), cfg)
        params = gen.sample_clip_params(label, gen.clip_rng(cfg, s, label, 0), cfg, session)
        clip = gen.render_from_params(params, session, cfg)            # (T, H, W, 3) uint8
        rows.append((f"{label}\n{label}_{s * cfg.group_size:04d}", frame_strip(clip, frames)))
    h, w = rows[0][1].shape[:2]
    fig, axes = plt.subplots(len(rows), 1, figsize=(w / 90, len(rows) * (h / 90 + 0.15)))
    for ax, (name, strip) in zip(axes, rows, strict=True):
        ax.imshow(strip)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    axes[-1].set_xlabel(f"time → ({frames} of {gen.n_frames(cfg)} frames, "
                        f"{cfg.seconds:g} s at {cfg.fps} fps; each row a different session)",
                        fontsize=9)
    fig.tight_layout(h_pad=0.3)
    path = save_figure(fig, out / "clip_strip.png", dpi=90)
    plt.close(fig)
    return path


def confusion(art: Path, out: Path) -> Path | None:
    """Baseline vs temporal model on the test split, and the temporal model on the
    out-of-distribution set: row-normalised, titled with accuracy and n."""
    files = [art / f"{stem}_metrics.json" for stem, _ in METRICS]
    if not all(f.is_file() for f in files):
        print(f"confusion: skipped, need {', '.join(str(f) for f in files)} (run notebook 05)")
        return None
    fig, axes = plt.subplots(1, len(files), figsize=(5.5 * len(files), 4.6))
    for ax, path, (_, title) in zip(axes, files, METRICS, strict=True):
        m = json.loads(path.read_text())
        cm = np.asarray(m["confusion_normalised"], dtype=float)
        plot_confusion(cm, m["labels"], ax=ax, normalised=True,
                       title=f"{title}\n{m['split']} accuracy {m['accuracy']:.1%} (n={m['n']})")
        print(f"confusion: {title}: {m['split']} accuracy {m['accuracy']:.3f}, "
              f"macro F1 {m['macro_f1']:.3f}, n={m['n']} ({path})")
    fig.tight_layout()
    saved = save_figure(fig, out / "confusion.png", dpi=90)
    plt.close(fig)
    return saved


def latency(art: Path, out: Path) -> Path | None:
    """p50/p95 bars per backend: per clip (batch 1) and per streamed frame."""
    path = next((art / name for name in LATENCY if (art / name).is_file()), None)
    if path is None:
        print(f"latency: skipped, need {art / LATENCY[0]} (benchmarks/bench_latency.py) "
              f"or {art / LATENCY[1]} (notebook 05)")
        return None
    report = json.loads(path.read_text())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, section, title in ((axes[0], "clip", f"per clip (T={report['model']['num_frames']}, batch 1)"),
                               (axes[1], "frame", "per streamed frame")):
        names = list(report[section])
        x = np.arange(len(names))
        for dx, q in ((-0.2, "p50"), (0.2, "p95")):
            ax.bar(x + dx, [report[section][n][f"{q}_ms"] for n in names], 0.4, label=q)
        ax.set_xticks(x, names)
        ax.set_ylabel("ms")
        ax.set_title(title)
        ax.legend()
    target = report.get("targets", {}).get("frame_p95_ms", {}).get("target")
    if target:
        axes[1].axhline(target, color="k", linestyle=":", label=f"target p95 {target:g} ms")
        axes[1].legend()
    machine = report["machine"]
    load = machine.get("load_average_1min")
    ort_threads = report.get("config", {}).get("ort_threads") or machine["threads"]
    fig.suptitle(f"{machine['cpu']} · torch {machine['threads']} threads, ONNX Runtime "
                 f"{ort_threads} · load average {load} · {path.name}", fontsize=9)
    fig.tight_layout()
    saved = save_figure(fig, out / "latency.png", dpi=90)
    plt.close(fig)
    print(f"latency: from {path}")
    return saved


FIGURES = ("clip_strip", "confusion", "latency")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # no `choices=` here: argparse checks an empty `nargs="*"` list against them and fails
    ap.add_argument("figures", nargs="*", metavar="{" + ",".join(FIGURES) + "}",
                    help="which to draw (default: all that can be)")
    ap.add_argument("--artifacts", type=Path, default=None,
                    help="folder with notebook 05 / benchmark results (default: artifacts/)")
    ap.add_argument("--quick", action="store_true", help="accept artifacts/quick (QUICK runs)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    unknown = sorted(set(args.figures) - set(FIGURES))
    if unknown:
        ap.error(f"unknown figure(s) {unknown} (choose from: {', '.join(FIGURES)})")
    art = args.artifacts or artifacts_dir(quick=args.quick)
    if art.name == "quick" and not args.quick:
        print(f"{art}: QUICK-mode results; pass --quick to draw them anyway", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = args.figures or list(FIGURES)
    made = []
    if "clip_strip" in wanted:
        made.append(clip_strip(args.out))
    if "confusion" in wanted:
        made.append(confusion(art, args.out))
    if "latency" in wanted:
        made.append(latency(art, args.out))
    for path in made:
        if path is not None:
            print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0 if all(made) or not args.figures else 1


if __name__ == "__main__":
    sys.exit(main())
