"""Bring outside gesture data into the series' dataset layout (notebook 06).

Two ways in, both ending in the layout every notebook reads (see the data contract)::

    data/<name>/labels.txt       one class per line, line order = label index
    data/<name>/manifest.csv     path,label,split,group,params
    data/<name>/<class>/<clip>   a video file or a folder of frame images

* :func:`import_jester` copies (or symlinks) a chosen subset of a *Jester-style* dataset:
  one folder of JPEG frames per video (``<root>/<id>/00001.jpg``) and a CSV of
  ``id;label`` rows.  Class names are mapped to ours (``"Swiping Left" -> swipe_left``)
  and splits come from :func:`gesture_utils.splits.assign_splits`.
* :func:`write_dataset_index` writes ``labels.txt`` + ``manifest.csv`` for clips you made
  yourself (the webcam recorder in :mod:`gesture_utils.demo` uses it).

Direction convention: our ``swipe_left`` means the hand moves towards the *left edge of
the image*.  Check a few imported clips of a public dataset before trusting its names:
a dataset whose "left" is the *person's* left, filmed by an unmirrored camera, moves to
the image's right (notebook 06 shows how a horizontal flip swaps the two).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import uuid
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gesture_utils.errors import GestureError, input_error
from gesture_utils.splits import assign_splits
from gesture_utils.video import IMAGE_SUFFIXES

#: Jester class names -> the series' class names (the six we generate).
JESTER_TO_OURS: dict[str, str] = {
    "Swiping Left": "swipe_left",
    "Swiping Right": "swipe_right",
    "Swiping Up": "swipe_up",
    "Swiping Down": "swipe_down",
    "Stop Sign": "stop",
    "No gesture": "no_gesture",
}

MANIFEST_COLUMNS: tuple[str, ...] = ("path", "label", "split", "group", "params")
IMPORT_MODES: tuple[str, ...] = ("copy", "symlink")


@dataclass(frozen=True)
class ManifestRow:
    """One clip of a dataset index; ``path`` is relative to the dataset folder."""

    path: str
    label: str
    split: str
    group: str
    params: dict


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_dataset_index(out_dir: str | os.PathLike[str], labels: Sequence[str],
                        rows: Sequence[ManifestRow]) -> Path:
    """Write ``labels.txt`` and ``manifest.csv`` into ``out_dir`` (both atomically).

    ``labels`` fixes the label order; every row's label must be one of them and every
    row's path must exist under ``out_dir``.  Returns ``out_dir``.
    """
    out_dir = Path(out_dir)
    labels = list(labels)
    if len(set(labels)) != len(labels) or not labels:
        raise GestureError(f"{out_dir}: labels must be unique and non-empty, got {labels}")
    for row in rows:
        if row.label not in labels:
            raise input_error(out_dir / row.path, f"label {row.label!r} is not in {labels}")
        if not (out_dir / row.path).exists():
            raise input_error(out_dir / row.path, "clip listed in the manifest does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for row in rows:
        writer.writerow([row.path, row.label, row.split, row.group,
                         json.dumps(row.params, sort_keys=True)])
    _write_text_atomic(out_dir / "labels.txt", "".join(f"{lab}\n" for lab in labels))
    _write_text_atomic(out_dir / "manifest.csv", buf.getvalue())
    return out_dir


def read_jester_csv(csv_path: str | os.PathLike[str], strict: bool = False) -> list[tuple[str, str]]:
    """``(video_id, label)`` pairs from a Jester-style CSV: one ``id;label`` per line, no header.

    Blank lines are ignored.  A malformed row (no ``;``, empty id or label) is skipped
    with one warning that counts them, or raises :class:`GestureError` with ``strict=True``.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise input_error(csv_path, "label CSV not found",
                          "pass the Jester CSV with lines like '12345;Swiping Left'")
    pairs: list[tuple[str, str]] = []
    bad: list[int] = []
    with csv_path.open(encoding="utf-8", newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh, delimiter=";"), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                if strict:
                    raise input_error(csv_path, f"line {lineno} is not 'id;label': {';'.join(row)!r}",
                                      "fix or delete that line")
                bad.append(lineno)
                continue
            pairs.append((row[0].strip(), row[1].strip()))
    if bad:
        warnings.warn(f"{csv_path}: skipped {len(bad)} malformed row(s) (lines "
                      f"{', '.join(map(str, bad[:5]))}{'...' if len(bad) > 5 else ''})",
                      stacklevel=2)
    if not pairs:
        raise input_error(csv_path, "no 'id;label' rows found", "is this the right file?")
    return pairs


def _class_map(classes: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """Source class name -> our class name."""
    if isinstance(classes, Mapping):
        return {str(k): str(v) for k, v in classes.items()}
    out = {}
    for name in classes:
        out[str(name)] = JESTER_TO_OURS.get(str(name), str(name))
    return out


def _frame_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]


def import_jester(root: str | os.PathLike[str], csv_path: str | os.PathLike[str],
                  out_dir: str | os.PathLike[str], classes: Sequence[str] | Mapping[str, str],
                  *, max_per_class: int | None = None, mode: str = "copy",
                  val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0,
                  overwrite: bool = False, strict: bool = False) -> Path:
    """Import the clips of ``classes`` from a Jester-style dataset into ``out_dir``.

    ``root/<id>/`` holds one video's frames (``00001.jpg``...); ``csv_path`` lists
    ``id;label``.  ``classes`` is a list of source class names (mapped with
    :data:`JESTER_TO_OURS` when known, else kept) or a ``{source name: our name}`` dict.
    Clips are taken in CSV order, at most ``max_per_class`` per class, and copied (or
    symlinked, ``mode="symlink"``) to ``out_dir/<our class>/<id>/``.  Each video is its
    own group (the CSV names no subjects), splits come from :func:`assign_splits`.

    Rows with a missing or empty frame folder are skipped with a warning (an error with
    ``strict=True``); a requested class that ends up with no clips raises
    :class:`GestureError`.  Returns ``out_dir`` (labels.txt + manifest.csv written last,
    so a half-finished import never looks complete).
    """
    root, out_dir = Path(root), Path(out_dir)
    if mode not in IMPORT_MODES:
        raise GestureError(f"import mode {mode!r} is not one of {IMPORT_MODES}")
    if not root.is_dir():
        raise input_error(root, "Jester frame root not found",
                          "pass the folder that holds one sub-folder of frames per video id")
    mapping = _class_map(classes)
    if not mapping:
        raise GestureError("import_jester: no classes requested")
    pairs = read_jester_csv(csv_path, strict=strict)
    available = Counter(label for _, label in pairs)
    unknown = [name for name in mapping if name not in available]
    if unknown:
        raise input_error(csv_path, f"class(es) {unknown} never appear in the CSV",
                          f"available: {sorted(available)}")
    if (out_dir / "manifest.csv").exists():
        if not overwrite:
            raise input_error(out_dir, "already holds a dataset", "pass overwrite=True to replace it")
        shutil.rmtree(out_dir)

    ours = list(dict.fromkeys(mapping.values()))  # label order = first appearance
    taken: Counter[str] = Counter()
    missing: list[str] = []
    rows: list[ManifestRow] = []
    for video_id, source_label in pairs:
        if source_label not in mapping:
            continue
        label = mapping[source_label]
        if max_per_class is not None and taken[label] >= max_per_class:
            continue
        src = root / video_id
        if not src.is_dir() or not _frame_files(src):
            if strict:
                raise input_error(src, "frame folder missing or holds no images",
                                  "check the root folder, or drop strict to skip such rows")
            missing.append(video_id)
            continue
        dst = out_dir / label / video_id
        if dst.is_symlink() or dst.is_file():
            dst.unlink()
        elif dst.exists():
            shutil.rmtree(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if mode == "symlink":
            dst.symlink_to(src.resolve(), target_is_directory=True)
        else:
            tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
            shutil.copytree(src, tmp)
            os.replace(tmp, dst)
        taken[label] += 1
        rows.append(ManifestRow(path=f"{label}/{video_id}", label=label, split="",
                                group=f"jester-{video_id}",
                                params={"source": "jester", "id": video_id,
                                        "source_label": source_label}))
    if missing:
        warnings.warn(f"{root}: skipped {len(missing)} video id(s) with no frame folder "
                      f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''})",
                      stacklevel=2)
    empty = [lab for lab in ours if taken[lab] == 0]
    if empty:
        raise input_error(root, f"no frame folders found for class(es) {empty}",
                          "check that the CSV ids match the folder names under root")
    splits = assign_splits([r.label for r in rows], [r.group for r in rows],
                           val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    rows = [ManifestRow(r.path, r.label, s, r.group, r.params) for r, s in zip(rows, splits,
                                                                              strict=True)]
    return write_dataset_index(out_dir, ours, rows)


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """``gesture-utils import-jester ROOT CSV --out data/jester --classes ...``."""
    parser.add_argument("root", type=Path, help="folder with one frame folder per video id")
    parser.add_argument("csv", type=Path, help="CSV with 'id;label' lines")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    parser.add_argument("--classes", nargs="+", default=list(JESTER_TO_OURS),
                        help="source class names to import (default: the six we generate)")
    parser.add_argument("--max-per-class", type=int, default=None)
    parser.add_argument("--mode", choices=IMPORT_MODES, default="copy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    out = import_jester(args.root, args.csv, args.out, args.classes,
                        max_per_class=args.max_per_class, mode=args.mode, seed=args.seed,
                        overwrite=args.overwrite)
    with (out / "manifest.csv").open(encoding="utf-8") as fh:
        n = sum(1 for _ in fh) - 1
    print(f"imported {n} clips into {out}")
    return 0


__all__ = [
    "IMPORT_MODES",
    "JESTER_TO_OURS",
    "MANIFEST_COLUMNS",
    "ManifestRow",
    "configure_cli",
    "import_jester",
    "read_jester_csv",
    "write_dataset_index",
]
