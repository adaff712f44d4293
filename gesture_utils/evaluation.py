"""How good is the model: accuracy, per-class metrics, confusion matrices, errors (notebook 05).

Measured on the held-out **test** split (the validation split picked the checkpoint, so
its score is optimistic).  :func:`compute_metrics` wraps :mod:`sklearn.metrics` with rows
and columns in ``labels.txt`` order.  Any callable ``clip (T, S, S, 3) uint8 ->
probabilities (K,)`` is evaluated the same way (:func:`evaluate_predictor`): a PyTorch
model (:func:`torch_predictor`), an ONNX fp32 or INT8 file (:func:`onnx_predictor`).
CLI: ``gesture-utils evaluate MODEL --data DIR [--split test] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from sklearn import metrics as skm

from gesture_utils.config import ClipConfig
from gesture_utils.errors import GestureError, input_error
from gesture_utils.paths import atomic_path, write_json

#: A predictor maps one clip ``(T, S, S, 3)`` uint8 RGB to class probabilities ``(K,)``.
Predictor = Callable[[np.ndarray], np.ndarray]
Results = Mapping[str, "EvalResult"] | Sequence["EvalResult"]


# --------------------------------------------------------------------------- metrics
def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                    labels: Sequence[str]) -> dict[str, Any]:
    """``n``, ``accuracy``, ``macro_f1`` and ``balanced_accuracy`` (over the classes that
    occur), ``per_class`` precision/recall/f1/support, ``confusion`` (counts, rows true)
    and ``confusion_normalised`` (rows sum to 1, an absent class's row to 0)."""
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} items but y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("no predictions to evaluate")
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.min() < 0 or arr.max() >= len(labels):
            raise ValueError(f"{name} holds an index outside 0..{len(labels) - 1} ({len(labels)} labels)")
    idx = list(range(len(labels)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=idx, zero_division=0)
    present = support > 0
    return {
        "n": int(y_true.size),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1[present].mean()),
        "balanced_accuracy": float(recall[present].mean()),
        "labels": list(labels),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                             "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(labels)},
        "confusion": skm.confusion_matrix(y_true, y_pred, labels=idx).tolist(),
        "confusion_normalised": skm.confusion_matrix(y_true, y_pred, labels=idx,
                                                     normalize="true").tolist(),
    }


@dataclass
class EvalResult:
    """One model's ``probs (N, K)`` on one split, with ``y_true (N,)`` indices into
    ``labels`` and the clips' ``paths``; ``name`` e.g. ``"temporal"`` or ``"ONNX INT8"``."""

    name: str
    labels: list[str]
    y_true: np.ndarray
    probs: np.ndarray
    paths: list[str] = field(default_factory=list)
    split: str = "test"

    def __post_init__(self) -> None:
        self.y_true = np.asarray(self.y_true, dtype=np.int64).reshape(-1)
        self.probs = np.asarray(self.probs, dtype=np.float64)
        if self.probs.ndim != 2 or self.probs.shape != (self.y_true.size, len(self.labels)):
            raise ValueError(f"probs must be (N={self.y_true.size}, K={len(self.labels)}), "
                             f"got {self.probs.shape}")

    @cached_property
    def metrics(self) -> dict[str, Any]:
        return compute_metrics(self.y_true, self.y_pred, self.labels)

    @property
    def y_pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class, ``(N,)``."""
        return self.probs.max(axis=1)

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]

    def errors(self) -> np.ndarray:
        """Indices of misclassified clips, most confident mistakes first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")]

    def report(self) -> str:
        """scikit-learn's per-class text report."""
        return skm.classification_report(self.y_true, self.y_pred, labels=list(range(len(self.labels))),
                                         target_names=self.labels, digits=3, zero_division=0)

    def to_dict(self, include_predictions: bool = True) -> dict[str, Any]:
        """Metrics plus (optionally) one row per clip."""
        out: dict[str, Any] = {"name": self.name, "split": self.split, **self.metrics}
        if include_predictions:
            pred, conf = self.y_pred, self.confidence          # each computed once, not per clip
            out["predictions"] = [
                {"path": self.paths[i] if i < len(self.paths) else None,
                 "true": self.labels[int(self.y_true[i])], "predicted": self.labels[int(pred[i])],
                 "confidence": round(float(conf[i]), 6)} for i in range(self.y_true.size)]
        return out


def evaluate_predictor(predict_proba: Predictor, clips: Sequence[np.ndarray],
                       y_true: Sequence[int], labels: Sequence[str], name: str = "model",
                       paths: Sequence[str | os.PathLike[str]] = (), split: str = "test",
                       progress: bool = False) -> EvalResult:
    """Run ``predict_proba`` on every uint8 clip ``(T, S, S, 3)`` and wrap the result."""
    from tqdm.auto import tqdm

    k = len(labels)
    rows = []
    for clip in tqdm(clips, desc=name, disable=not progress, leave=False):
        p = np.asarray(predict_proba(clip), dtype=np.float64).reshape(-1)
        if p.size != k:
            raise GestureError(f"{name}: predictor returned {p.size} scores for {k} labels "
                               "(does the model belong to this dataset?)")
        rows.append(p)
    return EvalResult(name=name, labels=list(labels), y_true=np.asarray(y_true),
                      probs=np.stack(rows) if rows else np.zeros((0, k)),
                      paths=[str(p) for p in paths], split=split)


def _items(results: Results) -> list[EvalResult]:
    return list(results.values() if isinstance(results, Mapping) else results)


def compare_models(results: Results) -> list[dict[str, Any]]:
    """One row per model: name, n, accuracy, macro F1, number of errors."""
    return [{"name": r.name, "n": r.metrics["n"], "accuracy": r.accuracy,
             "macro_f1": r.metrics["macro_f1"], "errors": int(r.errors().size)} for r in _items(results)]


def format_comparison(rows: Sequence[Mapping[str, Any]]) -> str:
    """:func:`compare_models` rows as a fixed-width text table."""
    return "\n".join([f"{'model':<22}{'n':>6}{'accuracy':>10}{'macro F1':>10}{'errors':>8}"]
                     + [f"{r['name']:<22}{r['n']:>6}{r['accuracy']:>10.3f}{r['macro_f1']:>10.3f}"
                        f"{r['errors']:>8}" for r in rows])


def agreement(results: Mapping[str, EvalResult], reference: str) -> dict[str, dict[str, float]]:
    """Per result: ``top1_agreement`` with ``results[reference]`` on the same clips,
    ``max_abs_prob_diff`` and ``accuracy_change``."""
    ref = results[reference]
    out = {}
    for name, r in results.items():
        if r.probs.shape != ref.probs.shape or (r.paths and ref.paths and r.paths != ref.paths):
            raise ValueError(f"{name} and {reference} were not evaluated on the same clips")
        out[name] = {"top1_agreement": float(np.mean(r.y_pred == ref.y_pred)),
                     "max_abs_prob_diff": float(np.abs(r.probs - ref.probs).max()),
                     "accuracy_change": r.accuracy - ref.accuracy}
    return out


# --------------------------------------------------------------------------- figures
def plot_confusion(cm: np.ndarray, labels: Sequence[str], ax: plt.Axes | None = None,
                   normalised: bool | None = None, title: str | None = None,
                   cmap: str = "Blues", cbar: bool = False) -> plt.Axes:
    """Seaborn heatmap of a ``(K, K)`` confusion matrix, rows true; ``normalised``
    (default: a float matrix) shows 0.00-1.00 on a fixed colour range."""
    import seaborn as sns

    cm = np.asarray(cm)
    normalised = not np.issubdtype(cm.dtype, np.integer) if normalised is None else normalised
    k = len(labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.65 * k))
    sns.heatmap(cm, annot=True, fmt=".2f" if normalised else "d", cmap=cmap, cbar=cbar,
                vmin=0, vmax=1 if normalised else None, square=True, linewidths=0.5,
                xticklabels=list(labels), yticklabels=list(labels), ax=ax,
                annot_kws={"fontsize": 8 if k > 6 else 9})
    ax.set(xlabel="predicted", ylabel="true", title=title or "")
    ax.set_xticklabels(ax.get_xticklabels(), rotation=40, ha="right")
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    return ax


def plot_confusions(results: Results, normalised: bool = True) -> plt.Figure:
    """The confusion matrices of several results side by side, titled with accuracy."""
    items = _items(results)
    k = len(items[0].labels)
    fig, axes = plt.subplots(1, len(items), figsize=(len(items) * (1.2 + 0.75 * k), 1.2 + 0.65 * k),
                             squeeze=False)
    for ax, r in zip(axes[0], items, strict=True):
        cm = r.metrics["confusion_normalised" if normalised else "confusion"]
        plot_confusion(np.asarray(cm, dtype=np.float64 if normalised else np.int64), r.labels, ax=ax,
                       normalised=normalised,
                       title=f"{r.name} · accuracy {r.accuracy:.1%} (n={r.metrics['n']})")
    fig.tight_layout()
    return fig


def plot_per_class_f1(results: Results) -> plt.Figure:
    """Grouped bar chart: F1 of each class, one bar per model."""
    items = _items(results)
    labels = items[0].labels
    x, width = np.arange(len(labels)), 0.8 / len(items)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 3.2))
    for j, r in enumerate(items):
        ax.bar(x + (j - (len(items) - 1) / 2) * width,
               [r.metrics["per_class"][name]["f1"] for name in labels], width, label=r.name)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set(ylim=(0, 1.05), ylabel="F1 (test)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def frame_strip(clip: np.ndarray, num: int = 8, gap: int = 2) -> np.ndarray:
    """``num`` evenly spaced frames of a ``(T, H, W, 3)`` clip side by side with white gaps."""
    clip = np.asarray(clip)
    t, h, w, c = clip.shape
    num = max(1, min(num, t))
    strip = np.full((h, num * w + (num - 1) * gap, c), 255, dtype=np.uint8)
    for j, i in enumerate(np.linspace(0, t - 1, num).round().astype(int)):
        strip[:, j * (w + gap): j * (w + gap) + w] = clip[i]
    return strip


def plot_error_gallery(result: EvalResult, clips: Sequence[np.ndarray], max_items: int = 6,
                       frames: int = 8) -> plt.Figure:
    """Misclassified clips (most confident first) as frame strips titled ``true →
    predicted (confidence)``; ``clips`` are the ones ``result`` was computed on."""
    wrong = result.errors()[:max_items]
    if wrong.size == 0:
        fig, ax = plt.subplots(figsize=(6, 1.0))
        ax.text(0.5, 0.5, f"{result.name}: no misclassified clips on the {result.split} split "
                f"(n={result.metrics['n']})", ha="center", va="center")
        ax.axis("off")
        return fig
    fig, axes = plt.subplots(len(wrong), 1, figsize=(1.3 * frames, 1.7 * len(wrong)), squeeze=False)
    for ax, i in zip(axes[:, 0], wrong, strict=True):
        ax.imshow(frame_strip(clips[i], frames))
        true, pred = result.labels[result.y_true[i]], result.labels[result.y_pred[i]]
        name = Path(result.paths[i]).name if i < len(result.paths) else f"clip {i}"
        ax.set_title(f"{name}: true {true} → predicted {pred} ({result.confidence[i]:.0%})",
                     fontsize=9, color="tab:red")
        ax.axis("off")
    fig.suptitle(f"{result.name}: {result.errors().size} of {result.metrics['n']} "
                 f"{result.split} clips misclassified", fontsize=10)
    fig.tight_layout()
    return fig


def save_figure(fig: plt.Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """``fig.savefig`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=Path(path).suffix.lstrip(".") or "png")
    return Path(path)


def save_results(result: EvalResult, out_dir: str | os.PathLike[str] | None = None,
                 stem: str | None = None) -> dict[str, Path]:
    """``<stem>_metrics.json`` and ``<stem>_confusion.png`` (counts + normalised) in
    ``out_dir`` (default ``artifacts_dir()``); returns ``{"json": path, "png": path}``."""
    from gesture_utils.paths import artifacts_dir

    out = Path(out_dir) if out_dir is not None else artifacts_dir()
    stem = stem or result.name.replace(" ", "_")
    k, m = len(result.labels), result.metrics
    fig, axes = plt.subplots(1, 2, figsize=(2 * (1.2 + 0.75 * k), 1.2 + 0.65 * k))
    plot_confusion(np.asarray(m["confusion"], dtype=np.int64), result.labels, ax=axes[0],
                   normalised=False, title=f"{result.name} · counts")
    plot_confusion(np.asarray(m["confusion_normalised"]), result.labels, ax=axes[1],
                   normalised=True, title=f"row-normalised · accuracy {result.accuracy:.1%}")
    fig.tight_layout()
    try:
        png = save_figure(fig, out / f"{stem}_confusion.png")
    finally:
        plt.close(fig)
    return {"json": write_json(out / f"{stem}_metrics.json", result.to_dict()), "png": png}


# --------------------------------------------------------------------------- models
def torch_predictor(model: Any, mean: Sequence[float], std: Sequence[float],
                    device: str = "cpu") -> Predictor:
    """A PyTorch clip model as ``clip -> softmax probabilities (K,)``, normalised as in training."""
    import torch

    from gesture_utils.datasets import to_tensor

    model = model.to(device).eval()

    def predict(clip: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = model(to_tensor(np.asarray(clip), mean, std).unsqueeze(0).to(device))
        return torch.softmax(logits.float(), dim=-1)[0].cpu().numpy()

    return predict


def onnx_predictor(model_path: str | os.PathLike[str], threads: int | None = None) -> Predictor:
    """``clip -> probabilities`` of :class:`gesture_utils.inference.OnnxGestureClassifier`."""
    from gesture_utils.inference import OnnxGestureClassifier

    return OnnxGestureClassifier(model_path, threads=threads).predict_proba


@dataclass
class LoadedModel:
    """A model file opened for evaluation: its predictor and the input it expects."""

    name: str
    predict_proba: Predictor
    labels: list[str]
    clip: ClipConfig
    selection_split: str | None = None  #: split the checkpoint was selected on, if recorded


def load_model(model_path: str | os.PathLike[str], device: str = "cpu") -> LoadedModel:
    """Open a ``.pt`` checkpoint (PyTorch) or an ``.onnx`` file (ONNX Runtime) for evaluation."""
    path = Path(model_path)
    if not path.exists():
        raise input_error(path, "model file not found",
                          "pass a .pt checkpoint from `gesture-utils train` or an .onnx file "
                          "from `gesture-utils export`")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from gesture_utils.inference import OnnxGestureClassifier

        c = OnnxGestureClassifier(path)
        return LoadedModel(path.name[: -len(".onnx")], c.predict_proba, list(c.labels),
                           ClipConfig(c.num_frames, c.image_size, c.mean, c.std))
    if suffix in (".pt", ".pth"):
        from gesture_utils.models import load_checkpoint

        model, info = load_checkpoint(path, map_location=device)
        return LoadedModel(path.stem, torch_predictor(model, model.clip.mean, model.clip.std, device),
                           list(model.labels), model.clip, info.get("selection_split"))
    raise input_error(path, f"unsupported model type {suffix!r}", "pass a .pt checkpoint or an .onnx file")


# --------------------------------------------------------------------------- CLI
def configure_cli(parser: argparse.ArgumentParser) -> None:
    """``gesture-utils evaluate MODEL --data DIR [--split test] [--out DIR] [--json]``."""
    parser.add_argument("model", help="a .pt checkpoint or an .onnx model")
    parser.add_argument("--data", required=True, help="dataset folder (labels.txt + manifest.csv)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"),
                        help="split to evaluate (default: test, the held-out one)")
    parser.add_argument("--out", default=None,
                        help="folder for <name>_metrics.json and <name>_confusion.png "
                             "(default: artifacts/)")
    parser.add_argument("--errors", type=int, default=6,
                        help="misclassified clips drawn in <name>_errors.png (0: none)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from gesture_utils.datasets import load_split

    loaded = load_model(args.model)
    if args.split != "test" or loaded.selection_split == args.split:
        note = ("the checkpoint was selected on it" if loaded.selection_split == args.split
                else "only the test split is held out")
        print(f"note: evaluating on the {args.split!r} split - {note}, so the score is optimistic")
    split = load_split(args.data, args.split, loaded.clip, labels=loaded.labels)
    result = evaluate_predictor(loaded.predict_proba, split.clips, split.y, split.labels,
                                name=loaded.name, paths=split.paths, split=args.split)
    saved = save_results(result, args.out)
    if args.errors > 0 and result.errors().size:
        fig = plot_error_gallery(result, split.clips, max_items=args.errors)
        try:
            saved["errors"] = save_figure(fig, Path(saved["png"]).with_name(f"{result.name}_errors.png"))
        finally:
            plt.close(fig)
    if args.json:
        out = {**result.to_dict(include_predictions=False), "saved": {k: str(v) for k, v in saved.items()}}
        print(json.dumps(out, indent=2))
    else:
        print(f"{result.name} on {args.split} ({result.metrics['n']} clips): "
              f"accuracy {result.accuracy:.3f} · macro F1 {result.metrics['macro_f1']:.3f}")
        print(result.report())
        for kind, path in saved.items():
            print(f"saved {kind}: {path}")
    return 0


# --------------------------------------------------------------------------- events (notebook 06)
@dataclass(frozen=True)
class Segment:
    """A true gesture on source frames ``start <= f < end``; delays count from ``onset``
    (where its motion begins; default ``start``)."""

    label: str
    start: int
    end: int
    onset: int | None = None


def segments_from_frame_labels(frame_labels: Sequence[str],
                               rest_label: str = "no_gesture") -> list[Segment]:
    """Runs of equal non-rest labels in a per-frame label list."""
    out, start = [], 0
    for i in range(1, len(frame_labels) + 1):
        if i == len(frame_labels) or frame_labels[i] != frame_labels[start]:
            if frame_labels[start] != rest_label:
                out.append(Segment(str(frame_labels[start]), start, i))
            start = i
    return out


def segments_from_events(events: Sequence[Mapping[str, Any]]) -> list[Segment]:
    """Segments of a :class:`~gesture_utils.generation.Stream`'s events (``label``,
    ``start``, ``end``, optional ``motion_start``)."""
    return [Segment(str(e["label"]), int(e["start"]), int(e["end"]),
                    None if e.get("motion_start") is None else int(e["motion_start"]))
            for e in events]


def levenshtein(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1) between sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class EventMetrics:
    """Event scores of one stream (:func:`event_metrics`): ``delays`` are event frame -
    gesture onset per match; ``levenshtein_accuracy`` is 1 - edit distance / true gestures
    (below 0 with many false alarms); ``wrong_label`` counts unmatched events inside
    another class's gesture."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    delays: tuple[int, ...]
    mean_delay: float
    levenshtein: int
    levenshtein_accuracy: float
    wrong_label: int
    pairs: tuple[tuple[int, int], ...] = ()   #: the matches, (event index, segment index)


def match_events(events: Sequence[Any], segments: Sequence[Segment],
                 tolerance: int) -> list[tuple[int, int]]:
    """Pairs ``(event index, segment index)``: each event (a ``GestureEvent``), in time
    order, takes the earliest unmatched same-class segment whose ``[start, end + tolerance)``
    holds its frame."""
    used: set[int] = set()
    pairs = []
    for ei in sorted(range(len(events)), key=lambda i: events[i].frame):
        ev = events[ei]
        si = next((si for si, seg in enumerate(segments) if si not in used and seg.label == ev.label
                   and seg.start <= ev.frame < seg.end + tolerance), None)
        if si is not None:
            used.add(si)
            pairs.append((ei, si))
    return pairs


def event_metrics(events: Sequence[Any], truth: Sequence[Segment] | Sequence[str],
                  tolerance: int, rest_label: str = "no_gesture") -> EventMetrics:
    """Score ``events`` against ``truth`` (segments, or one label per frame): ``tp`` events
    matched (:func:`match_events`), ``fp`` the others, ``fn`` gestures never matched."""
    segments = (segments_from_frame_labels(list(truth), rest_label)  # type: ignore[arg-type]
                if len(truth) and isinstance(truth[0], str) else list(truth))
    pairs = match_events(events, segments, tolerance)
    tp, fp, fn = len(pairs), len(events) - len(pairs), len(segments) - len(pairs)
    precision = tp / len(events) if events else 0.0
    recall = tp / len(segments) if segments else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    delays = tuple(int(events[e].frame - (segments[s].start if segments[s].onset is None else segments[s].onset)) for e, s in pairs)
    matched = {e for e, _ in pairs}
    wrong = sum(1 for i, ev in enumerate(events) if i not in matched and any(
        seg.start <= ev.frame < seg.end + tolerance and seg.label != ev.label for seg in segments))
    dist = levenshtein([ev.label for ev in sorted(events, key=lambda e: e.frame)],
                       [seg.label for seg in segments])
    lev_acc = 1.0 - dist / len(segments) if segments else float(not events)
    return EventMetrics(tp, fp, fn, precision, recall, f1, delays,
                        float(np.mean(delays)) if delays else float("nan"), dist, lev_acc, wrong,
                        tuple(pairs))


def stream_scores(events: Sequence[Any], stream: Any, tolerance: int,
                  rest_label: str = "no_gesture") -> dict[str, float]:
    """What the series reports for one :class:`~gesture_utils.generation.Stream` (counts,
    precision, recall, F1, Levenshtein accuracy, false events per minute, seconds from a
    gesture's motion end to its event): :func:`pool_scores` of it alone."""
    segments = segments_from_events(stream.events)
    m = event_metrics(events, segments, tolerance, rest_label)
    after_end = sum(events[e].frame - stream.events[s].get("motion_end", segments[s].end)
                    for e, s in m.pairs)
    return pool_scores([{"tp": m.tp, "fp": m.fp, "fn": m.fn, "levenshtein": m.levenshtein,
                         "gestures": len(segments), "minutes": len(stream.labels) / stream.fps / 60,
                         "delay_sum_s": after_end / stream.fps}])


def pool_scores(scores: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """:func:`stream_scores` of several streams in one: counts and minutes add up, the rates
    come from the sums."""
    keys = ("tp", "fp", "fn", "levenshtein", "gestures", "minutes", "delay_sum_s")
    t = {k: sum(s[k] for s in scores) for k in keys}
    tp, fp, fn, gestures, minutes = t["tp"], t["fp"], t["fn"], t["gestures"], t["minutes"]
    p = tp / (tp + fp) if tp + fp else float(gestures == 0)
    r = tp / (tp + fn) if tp + fn else 1.0
    return {**t, "streams": len(scores), "precision": p, "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "fp_per_min": fp / minutes if minutes else float("nan"),
            "levenshtein_accuracy": 1 - t["levenshtein"] / gestures if gestures else float(tp + fp == 0),
            "delay_after_end_s": t["delay_sum_s"] / tp if tp else float("nan")}


def frame_accuracy(pred: Sequence[str], truth: Sequence[str]) -> float:
    """Fraction of frames whose predicted label equals the true one."""
    if len(pred) != len(truth) or not len(truth):
        raise GestureError(f"need equal, non-empty label lists, got {len(pred)} and {len(truth)}")
    return float(np.mean([p == t for p, t in zip(pred, truth, strict=True)]))
