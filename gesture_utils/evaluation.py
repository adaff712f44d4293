"""How good is the model: accuracy, per-class metrics, confusion matrices, errors (notebook 05).

Everything here is measured on the **held-out test split**: the validation split picked
the checkpoint (early stopping, best epoch), so its score is optimistic by construction.

The pieces, in the order notebook 05 teaches them:

* :func:`compute_metrics` - accuracy, per-class precision / recall / F1 and the
  confusion matrix (counts and row-normalised) from two label-index arrays, all from
  :mod:`sklearn.metrics`.  Rows and columns follow the label order of ``labels.txt``
  (``labels=`` is always passed, so a class that never occurs still gets its row).
* :class:`EvalResult` - one model's probabilities on one split, with its metrics.
  Any callable ``clip (T, S, S, 3) uint8 -> probabilities (K,)`` can be evaluated
  (:func:`evaluate_predictor`): a PyTorch model (:func:`torch_predictor`), an ONNX file
  (:func:`onnx_predictor`), an INT8 ONNX file - so "PyTorch vs ONNX fp32 vs INT8" is the
  same code as "mean baseline vs temporal model" (:func:`compare_models`,
  :func:`agreement`).
* Figures: :func:`plot_confusion`, :func:`plot_confusions` (side by side),
  :func:`plot_error_gallery` (misclassified clips as frame strips).
* :func:`save_results` writes ``<name>_metrics.json`` and ``<name>_confusion.png``
  atomically under ``artifacts/`` (the README shows them).
* CLI: ``gesture-utils evaluate MODEL --data DIR [--split test] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from sklearn import metrics as skm

from gesture_utils.config import ClipConfig
from gesture_utils.errors import GestureError, input_error

#: A predictor maps one clip ``(T, S, S, 3)`` uint8 RGB to class probabilities ``(K,)``.
Predictor = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- metrics
def confusion_counts(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """``(K, K)`` int counts; row = true class, column = predicted class, in label order."""
    return skm.confusion_matrix(y_true, y_pred, labels=list(range(num_classes)))


def normalise_rows(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its total (the recall of that class on the diagonal).

    A class with no examples keeps a row of zeros (not NaN), so plots stay readable.
    """
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                    labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support and both confusion matrices.

    ``y_true``, ``y_pred``: ``(N,)`` label indices into ``labels`` (``K`` names).
    Returns a JSON-friendly dict: ``n``, ``accuracy``, ``macro_f1``, ``balanced_accuracy``,
    ``per_class`` (label -> precision/recall/f1/support), ``labels``,
    ``confusion`` (K x K counts) and ``confusion_normalised`` (rows sum to 1, or 0 for an
    absent class).  A class that is never predicted gets precision 0 (no division warning).
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    k = len(labels)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} items but y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("no predictions to evaluate")
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.min() < 0 or arr.max() >= k:
            raise ValueError(f"{name} holds an index outside 0..{k - 1} ({len(labels)} labels)")
    idx = list(range(k))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=idx, zero_division=0)
    cm = confusion_counts(y_true, y_pred, k)
    present = support > 0  # macro averages over classes that occur in this split
    return {
        "n": int(y_true.size),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1[present].mean()),
        "balanced_accuracy": float(recall[present].mean()),
        "labels": list(labels),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]),
                   "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(labels)
        },
        "confusion": cm.tolist(),
        "confusion_normalised": normalise_rows(cm).tolist(),
    }


def classification_report(y_true: Sequence[int], y_pred: Sequence[int],
                          labels: Sequence[str], digits: int = 3) -> str:
    """scikit-learn's text report (precision, recall, F1, support per class, in label order)."""
    return skm.classification_report(y_true, y_pred, labels=list(range(len(labels))),
                                     target_names=list(labels), digits=digits, zero_division=0)


# --------------------------------------------------------------------------- results
@dataclass
class EvalResult:
    """One model's predictions on one split.

    ``probs``: ``(N, K)`` class probabilities, ``y_true``: ``(N,)`` indices into ``labels``,
    ``paths``: the N clip paths (same order), ``name``: e.g. ``"temporal"`` or ``"onnx-int8"``.
    """

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
        self._metrics: dict[str, Any] | None = None

    @property
    def y_pred(self) -> np.ndarray:
        """``(N,)`` predicted label indices (argmax of ``probs``)."""
        return self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        """``(N,)`` probability of the predicted class."""
        return self.probs.max(axis=1)

    @property
    def metrics(self) -> dict[str, Any]:
        """:func:`compute_metrics` of this result (computed once)."""
        if self._metrics is None:
            self._metrics = compute_metrics(self.y_true, self.y_pred, self.labels)
        return self._metrics

    @property
    def accuracy(self) -> float:
        return self.metrics["accuracy"]

    def errors(self) -> np.ndarray:
        """Indices of misclassified clips, most confident mistakes first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")]

    def report(self) -> str:
        """scikit-learn's per-class text report."""
        return classification_report(self.y_true, self.y_pred, self.labels)

    def to_dict(self, include_predictions: bool = True) -> dict[str, Any]:
        """JSON-friendly: metrics plus (optionally) one row per clip."""
        out: dict[str, Any] = {"name": self.name, "split": self.split, **self.metrics}
        if include_predictions:
            out["predictions"] = [
                {"path": self.paths[i] if i < len(self.paths) else None,
                 "true": self.labels[int(self.y_true[i])],
                 "predicted": self.labels[int(self.y_pred[i])],
                 "confidence": round(float(self.confidence[i]), 6)}
                for i in range(self.y_true.size)
            ]
        return out


def evaluate_predictor(predict_proba: Predictor, clips: Sequence[np.ndarray],
                       y_true: Sequence[int], labels: Sequence[str], name: str = "model",
                       paths: Sequence[str | os.PathLike[str]] = (), split: str = "test",
                       progress: bool = False) -> EvalResult:
    """Run ``predict_proba`` on every clip and wrap the result.

    ``clips``: N arrays ``(T, S, S, 3)`` uint8; ``predict_proba(clip) -> (K,)`` probabilities.
    """
    from tqdm.auto import tqdm

    k = len(labels)
    rows = []
    for clip in tqdm(clips, desc=name, disable=not progress, leave=False):
        p = np.asarray(predict_proba(clip), dtype=np.float64).reshape(-1)
        if p.size != k:
            raise GestureError(f"{name}: predictor returned {p.size} scores for {k} labels "
                               "(does the model belong to this dataset?)")
        rows.append(p)
    probs = np.stack(rows) if rows else np.zeros((0, k))
    return EvalResult(name=name, labels=list(labels), y_true=np.asarray(y_true), probs=probs,
                      paths=[str(p) for p in paths], split=split)


def compare_models(results: Mapping[str, EvalResult] | Sequence[EvalResult]) -> list[dict[str, Any]]:
    """One row per model: name, n, accuracy, macro F1, number of errors."""
    items = results.values() if isinstance(results, Mapping) else results
    return [{"name": r.name, "n": r.metrics["n"], "accuracy": r.accuracy,
             "macro_f1": r.metrics["macro_f1"], "errors": int(r.errors().size)} for r in items]


def format_comparison(rows: Sequence[Mapping[str, Any]]) -> str:
    """:func:`compare_models` rows as a fixed-width text table."""
    lines = [f"{'model':<22}{'n':>6}{'accuracy':>10}{'macro F1':>10}{'errors':>8}"]
    for r in rows:
        lines.append(f"{r['name']:<22}{r['n']:>6}{r['accuracy']:>10.3f}"
                     f"{r['macro_f1']:>10.3f}{r['errors']:>8}")
    return "\n".join(lines)


def agreement(results: Mapping[str, EvalResult], reference: str) -> dict[str, dict[str, float]]:
    """How closely each result matches ``results[reference]`` on the same clips.

    Per name: ``top1_agreement`` (fraction of identical predicted labels),
    ``max_abs_prob_diff`` (largest probability difference over all clips and classes) and
    ``accuracy_change`` (this accuracy minus the reference's).
    """
    ref = results[reference]
    out = {}
    for name, r in results.items():
        if r.probs.shape != ref.probs.shape or (r.paths and ref.paths and r.paths != ref.paths):
            raise ValueError(f"{name} and {reference} were not evaluated on the same clips")
        out[name] = {
            "top1_agreement": float(np.mean(r.y_pred == ref.y_pred)),
            "max_abs_prob_diff": float(np.abs(r.probs - ref.probs).max()),
            "accuracy_change": r.accuracy - ref.accuracy,
        }
    return out


# --------------------------------------------------------------------------- figures
def plot_confusion(cm: np.ndarray, labels: Sequence[str], ax: plt.Axes | None = None,
                   normalised: bool | None = None, title: str | None = None,
                   cmap: str = "Blues", cbar: bool = False) -> plt.Axes:
    """Seaborn heatmap of a ``(K, K)`` confusion matrix; rows true, columns predicted.

    ``normalised`` (default: guessed from the dtype) shows values as 0.00-1.00 with a fixed
    colour range, counts as integers.
    """
    import seaborn as sns

    cm = np.asarray(cm)
    if normalised is None:
        normalised = not np.issubdtype(cm.dtype, np.integer)
    k = len(labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.65 * k))
    sns.heatmap(cm, annot=True, fmt=".2f" if normalised else "d", cmap=cmap, cbar=cbar,
                vmin=0, vmax=1 if normalised else None, square=True, linewidths=0.5,
                xticklabels=list(labels), yticklabels=list(labels), ax=ax,
                annot_kws={"fontsize": 8 if k > 6 else 9})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticklabels(ax.get_xticklabels(), rotation=40, ha="right")
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    if title:
        ax.set_title(title)
    return ax


def plot_confusions(results: Mapping[str, EvalResult] | Sequence[EvalResult],
                    normalised: bool = True) -> plt.Figure:
    """The confusion matrices of several results side by side, titled with accuracy."""
    items = list(results.values() if isinstance(results, Mapping) else results)
    k = len(items[0].labels)
    fig, axes = plt.subplots(1, len(items), figsize=(len(items) * (1.2 + 0.75 * k), 1.2 + 0.65 * k),
                             squeeze=False)
    for ax, r in zip(axes[0], items, strict=True):
        key = "confusion_normalised" if normalised else "confusion"
        cm = np.asarray(r.metrics[key], dtype=np.float64 if normalised else np.int64)
        plot_confusion(cm, r.labels, ax=ax, normalised=normalised,
                       title=f"{r.name} · accuracy {r.accuracy:.1%} (n={r.metrics['n']})")
    fig.tight_layout()
    return fig


def plot_per_class_f1(results: Mapping[str, EvalResult] | Sequence[EvalResult]) -> plt.Figure:
    """Grouped bar chart: F1 of each class, one bar per model."""
    items = list(results.values() if isinstance(results, Mapping) else results)
    labels = items[0].labels
    x = np.arange(len(labels))
    width = 0.8 / len(items)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 3.2))
    for j, r in enumerate(items):
        f1 = [r.metrics["per_class"][name]["f1"] for name in labels]
        ax.bar(x + (j - (len(items) - 1) / 2) * width, f1, width, label=r.name)
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1 (test)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def frame_strip(clip: np.ndarray, num: int = 8, gap: int = 2) -> np.ndarray:
    """``num`` evenly spaced frames of a ``(T, H, W, 3)`` clip side by side.

    Returns ``(H, num * W + (num - 1) * gap, 3)`` uint8 with white gaps.
    """
    clip = np.asarray(clip)
    t, h, w, c = clip.shape
    num = max(1, min(num, t))
    idx = np.linspace(0, t - 1, num).round().astype(int)
    strip = np.full((h, num * w + (num - 1) * gap, c), 255, dtype=np.uint8)
    for j, i in enumerate(idx):
        strip[:, j * (w + gap): j * (w + gap) + w] = clip[i]
    return strip


def plot_error_gallery(result: EvalResult, clips: Sequence[np.ndarray], max_items: int = 6,
                       frames: int = 8) -> plt.Figure:
    """Misclassified clips (most confident first) as frame strips, time left to right.

    ``clips``: the N uint8 clips ``result`` was computed on (same order).  Each row is
    titled ``true → predicted (confidence)``.
    """
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


# --------------------------------------------------------------------------- saving
def _temp_name(path: Path) -> Path:
    """A hidden temporary name next to ``path`` (same folder, so ``os.replace`` is atomic)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def _atomic_write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_figure(fig: plt.Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """``fig.savefig`` to a temp file in the same folder, then rename (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_json(data: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` as indented JSON atomically."""
    return _atomic_write_text(Path(path), json.dumps(data, indent=2) + "\n")


def save_results(result: EvalResult, out_dir: str | os.PathLike[str] | None = None,
                 stem: str | None = None) -> dict[str, Path]:
    """Save ``<stem>_metrics.json`` and ``<stem>_confusion.png`` (counts + normalised).

    ``out_dir`` defaults to :func:`~gesture_utils.paths.artifacts_dir`, ``stem`` to the
    result's name.  Returns ``{"json": path, "png": path}``.
    """
    from gesture_utils.paths import artifacts_dir

    out = Path(out_dir) if out_dir is not None else artifacts_dir()
    stem = stem or result.name.replace(" ", "_")
    k = len(result.labels)
    fig, axes = plt.subplots(1, 2, figsize=(2 * (1.2 + 0.75 * k), 1.2 + 0.65 * k))
    m = result.metrics
    plot_confusion(np.asarray(m["confusion"], dtype=np.int64), result.labels, ax=axes[0],
                   normalised=False, title=f"{result.name} · counts")
    plot_confusion(np.asarray(m["confusion_normalised"]), result.labels, ax=axes[1],
                   normalised=True, title=f"row-normalised · accuracy {result.accuracy:.1%}")
    fig.tight_layout()
    try:
        png = save_figure(fig, out / f"{stem}_confusion.png")
    finally:
        plt.close(fig)
    js = save_json(result.to_dict(), out / f"{stem}_metrics.json")
    return {"json": js, "png": png}


# --------------------------------------------------------------------------- data + models
def load_split(data_root: str | os.PathLike[str], split: str, num_frames: int, image_size: int,
               labels: Sequence[str] | None = None, mode: str = "stretch",
               progress: bool = False,
               ) -> tuple[list[np.ndarray], np.ndarray, list[str], list[str]]:
    """Decode every clip of ``split`` in a dataset folder.

    Returns ``(clips, y_true, paths, labels)``: N uint8 clips ``(T, S, S, 3)`` (sampled and
    resized by :func:`gesture_utils.video.read_clip` with resize ``mode``), ``(N,)`` indices
    into ``labels`` (the model's label list when given, else the dataset's ``labels.txt``).
    """
    from tqdm.auto import tqdm

    from gesture_utils.datasets import load_manifest, records_for
    from gesture_utils.video import read_clip

    root = Path(data_root)
    if not root.is_dir():
        raise input_error(root, "dataset folder not found",
                          "pass --data pointing at a folder with labels.txt and manifest.csv")
    all_records = load_manifest(root)
    records = records_for(all_records, split)
    if not records:
        splits = sorted({r.split for r in all_records})
        raise input_error(root, f"no clips in split {split!r} (splits present: {splits})",
                          "choose --split from those, or regenerate the dataset with a test split")
    if labels is None:
        from gesture_utils.datasets import read_labels

        labels = read_labels(root)
    labels = list(labels)
    unknown = sorted({r.label for r in records} - set(labels))
    if unknown:
        raise input_error(root, f"classes {unknown} are not labels of the model ({labels})",
                          "evaluate the model on the dataset it was trained on")
    clips = [read_clip(r.path, num_frames, image_size, mode=mode)
             for r in tqdm(records, desc=f"decode {split}", disable=not progress, leave=False)]
    y = np.array([labels.index(r.label) for r in records], dtype=np.int64)
    return clips, y, [str(r.path) for r in records], labels


def torch_predictor(model: Any, mean: Sequence[float], std: Sequence[float],
                    device: str = "cpu") -> Predictor:
    """Wrap a PyTorch clip model: ``clip (T, S, S, 3) uint8 -> softmax probabilities (K,)``.

    Normalises with :func:`gesture_utils.datasets.to_tensor`, exactly as training did.
    """
    import torch

    from gesture_utils.datasets import to_tensor

    model = model.to(device).eval()

    def predict(clip: np.ndarray) -> np.ndarray:
        x = to_tensor(np.asarray(clip), mean, std).unsqueeze(0).to(device)
        with torch.inference_mode():
            logits = model(x)
        return torch.softmax(logits.float(), dim=-1)[0].cpu().numpy()

    return predict


def onnx_predictor(model_path: str | os.PathLike[str], threads: int | None = None) -> Predictor:
    """``clip -> probabilities`` through :class:`gesture_utils.inference.OnnxGestureClassifier`."""
    from gesture_utils.inference import OnnxGestureClassifier

    return OnnxGestureClassifier(model_path, threads=threads).predict_proba


@dataclass
class LoadedModel:
    """A model file opened for evaluation: its predictor and the input it expects."""

    name: str
    predict_proba: Predictor
    labels: list[str]
    num_frames: int
    image_size: int
    resize_mode: str = "stretch"
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

        clf = OnnxGestureClassifier(path)
        name = path.name[: -len(".onnx")]
        return LoadedModel(name=name, predict_proba=clf.predict_proba, labels=list(clf.labels),
                           num_frames=int(clf.num_frames), image_size=int(clf.image_size),
                           resize_mode=getattr(clf, "resize_mode", "stretch"))
    if suffix in (".pt", ".pth"):
        from gesture_utils.models import load_checkpoint

        loaded = load_checkpoint(path, map_location=device)
        model, clip, labels, extra = _unpack_checkpoint(loaded)
        return LoadedModel(name=path.stem, predict_proba=torch_predictor(model, clip.mean, clip.std, device),
                           labels=labels, num_frames=clip.num_frames, image_size=clip.image_size,
                           selection_split=extra.get("selection_split"))
    raise input_error(path, f"unsupported model type {suffix!r}",
                      "pass a .pt checkpoint or an .onnx file")


def _unpack_checkpoint(loaded: Any) -> tuple[Any, ClipConfig, list[str], dict[str, Any]]:
    """Normalise what ``models.load_checkpoint`` returns to (model, clip config, labels, extra)."""
    if isinstance(loaded, tuple):
        model, info = loaded[0], (loaded[1] if len(loaded) > 1 else {})
    else:
        model, info = loaded, {}
    info = dict(info) if isinstance(info, Mapping) else dict(vars(info))
    clip = info.get("clip") or getattr(model, "clip", None)
    if isinstance(clip, Mapping):
        from gesture_utils.config import from_dict

        clip = from_dict(ClipConfig, dict(clip))
    if clip is None:
        clip = ClipConfig()
    labels = list(info.get("labels") or getattr(model, "labels", []))
    return model, clip, labels, info


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
    loaded = load_model(args.model)
    if args.split != "test" or (loaded.selection_split and loaded.selection_split == args.split):
        note = ("the checkpoint was selected on it" if loaded.selection_split == args.split
                else "only the test split is held out")
        print(f"note: evaluating on the {args.split!r} split - {note}, so the score is optimistic")
    clips, y, paths, labels = load_split(args.data, args.split, loaded.num_frames,
                                         loaded.image_size, labels=loaded.labels,
                                         mode=loaded.resize_mode)
    result = evaluate_predictor(loaded.predict_proba, clips, y, labels, name=loaded.name,
                                paths=paths, split=args.split)
    saved = save_results(result, args.out)
    if args.errors > 0 and result.errors().size:
        fig = plot_error_gallery(result, clips, max_items=args.errors)
        try:
            saved["errors"] = save_figure(fig, Path(saved["png"]).with_name(f"{result.name}_errors.png"))
        finally:
            plt.close(fig)
    if args.json:
        out = result.to_dict(include_predictions=False)
        out["saved"] = {k: str(v) for k, v in saved.items()}
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
                        float(np.mean(delays)) if delays else float("nan"), dist, lev_acc, wrong)


def stream_scores(events: Sequence[Any], stream: Any, tolerance: int,
                  rest_label: str = "no_gesture") -> dict[str, float]:
    """What the series reports for one :class:`~gesture_utils.generation.Stream` (counts,
    precision, recall, F1, Levenshtein accuracy, false events per minute, seconds from a
    gesture's motion end to its event): :func:`pool_scores` of it alone."""
    segments = segments_from_events(stream.events)
    m = event_metrics(events, segments, tolerance, rest_label)
    after_end = sum(events[e].frame - stream.events[s].get("motion_end", segments[s].end)
                    for e, s in match_events(events, segments, tolerance))
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
