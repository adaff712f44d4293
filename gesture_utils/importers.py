"""The dataset layout on disk, and bringing outside clips into it (notebooks 01 and 06).

::

    data/<name>/labels.txt       one class per line, line order = label index
    data/<name>/manifest.csv     path,label,split,group,params
    data/<name>/<class>/<clip>   a video file or a folder of frame images

:func:`write_dataset_index` writes the two index files (the generator, the webcam
recorder of :mod:`gesture_utils.demo` and :func:`import_jester` use it).  :func:`import_jester` copies (or symlinks)
a subset of a *Jester-style* dataset: one folder of JPEG frames per video and a CSV of
``id;label`` rows, class names mapped to ours (``"Swiping Left" -> swipe_left``).

Our ``swipe_left`` means the hand moves towards the *left edge of the image*; a dataset
whose "left" is the person's left, filmed unmirrored, moves to the image's right
(notebook 06 shows how a horizontal flip swaps the two).
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
from dataclasses import dataclass, replace
from pathlib import Path

from gesture_utils.errors import GestureError, input_error
from gesture_utils.paths import atomic_path, write_text
from gesture_utils.splits import assign_splits
from gesture_utils.video import frame_files

LABELS_FILE = "labels.txt"
MANIFEST_FILE = "manifest.csv"
#: Columns of ``manifest.csv``; ``params`` (JSON) is optional when reading.
MANIFEST_COLUMNS: tuple[str, ...] = ("path", "label", "split", "group", "params")
#: Jester class names -> the series' class names (the six we generate).
JESTER_TO_OURS: dict[str, str] = {
    "Swiping Left": "swipe_left",
    "Swiping Right": "swipe_right",
    "Swiping Up": "swipe_up",
    "Swiping Down": "swipe_down",
    "Stop Sign": "stop",
    "No gesture": "no_gesture",
}
IMPORT_MODES: tuple[str, ...] = ("copy", "symlink")


@dataclass(frozen=True)
class ManifestRow:
    """One clip of a dataset index; ``path`` is relative to the dataset folder."""

    path: str
    label: str
    split: str
    group: str
    params: dict


def write_dataset_index(out_dir: str | os.PathLike[str], labels: Sequence[str],
                        rows: Sequence[ManifestRow]) -> Path:
    """Write ``labels.txt`` and ``manifest.csv`` (last) into ``out_dir``, atomically.

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
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(MANIFEST_COLUMNS)
    for row in rows:
        writer.writerow([row.path, row.label, row.split, row.group,
                         json.dumps(row.params, sort_keys=True, separators=(",", ":"))])
    write_text(out_dir / LABELS_FILE, "".join(f"{lab}\n" for lab in labels))
    with atomic_path(out_dir / MANIFEST_FILE) as tmp:  # bytes: csv's \r\n on every OS
        tmp.write_bytes(buf.getvalue().encode("utf-8"))
    return out_dir


def read_jester_csv(csv_path: str | os.PathLike[str], strict: bool = False) -> list[tuple[str, str]]:
    """``(video_id, label)`` pairs from a Jester-style CSV: one ``id;label`` per line.

    Blank lines are ignored; malformed rows are skipped with one warning that counts
    them (``strict=True``: :class:`GestureError`).
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
        warnings.warn(f"{csv_path}: skipped {len(bad)} malformed row(s) (lines {_first(bad)})",
                      stacklevel=2)
    if not pairs:
        raise input_error(csv_path, "no 'id;label' rows found", "is this the right file?")
    return pairs


def _first(items: Sequence, n: int = 5) -> str:
    return ", ".join(map(str, items[:n])) + ("..." if len(items) > n else "")


def _class_map(classes: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """Source class name -> our class name."""
    if isinstance(classes, Mapping):
        return {str(k): str(v) for k, v in classes.items()}
    return {str(name): JESTER_TO_OURS.get(str(name), str(name)) for name in classes}


def _place(src: Path, dst: Path, mode: str) -> None:
    """Copy (or symlink) the frame folder ``src`` to ``dst``, replacing what is there."""
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    elif dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if mode == "symlink":
        dst.symlink_to(src.resolve(), target_is_directory=True)
        return
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        shutil.copytree(src, tmp)
        os.replace(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_request(root: Path, mapping: Mapping[str, str], mode: str) -> None:
    if mode not in IMPORT_MODES:
        raise GestureError(f"import mode {mode!r} is not one of {IMPORT_MODES}")
    if not root.is_dir():
        raise input_error(root, "Jester frame root not found",
                          "pass the folder that holds one sub-folder of frames per video id")
    if not mapping:
        raise GestureError("import_jester: no classes requested")


def _import_rows(root: Path, out_dir: Path, pairs: Sequence[tuple[str, str]],
                 mapping: Mapping[str, str], max_per_class: int | None, mode: str,
                 strict: bool) -> list[ManifestRow]:
    """Place the frame folders of the chosen rows; one row each (split still empty)."""
    taken: Counter[str] = Counter()
    missing: list[str] = []
    rows: list[ManifestRow] = []
    for video_id, source_label in pairs:
        label = mapping.get(source_label)
        if label is None or (max_per_class is not None and taken[label] >= max_per_class):
            continue
        src = root / video_id
        if not (src.is_dir() and frame_files(src)):
            if strict:
                raise input_error(src, "frame folder missing or holds no images",
                                  "check the root folder, or drop strict to skip such rows")
            missing.append(video_id)
            continue
        _place(src, out_dir / label / video_id, mode)
        taken[label] += 1
        rows.append(ManifestRow(f"{label}/{video_id}", label, "", f"jester-{video_id}",
                                {"source": "jester", "id": video_id, "source_label": source_label}))
    if missing:
        warnings.warn(f"{root}: skipped {len(missing)} video id(s) with no frame folder "
                      f"({_first(missing)})", stacklevel=3)
    return rows


def import_jester(root: str | os.PathLike[str], csv_path: str | os.PathLike[str],
                  out_dir: str | os.PathLike[str], classes: Sequence[str] | Mapping[str, str],
                  *, max_per_class: int | None = None, mode: str = "copy",
                  val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0,
                  overwrite: bool = False, strict: bool = False) -> Path:
    """Import the clips of ``classes`` from a Jester-style dataset into ``out_dir``.

    ``root/<id>/`` holds one video's frames; ``csv_path`` lists ``id;label``.
    ``classes``: source class names (mapped with :data:`JESTER_TO_OURS` when known) or a
    ``{source name: our name}`` dict.  At most ``max_per_class`` clips per class, in CSV
    order, copied (or symlinked) to ``out_dir/<our class>/<id>/``; each video is its own
    group.  Rows without frames are skipped with a warning (``strict=True``: an error);
    a class left with no clips raises :class:`GestureError`.  Returns ``out_dir``.
    """
    root, out_dir = Path(root), Path(out_dir)
    mapping = _class_map(classes)
    _check_request(root, mapping, mode)
    pairs = read_jester_csv(csv_path, strict=strict)
    available = {label for _, label in pairs}
    unknown = [name for name in mapping if name not in available]
    if unknown:
        raise input_error(csv_path, f"class(es) {unknown} never appear in the CSV",
                          f"available: {sorted(available)}")
    if (out_dir / MANIFEST_FILE).exists():
        if not overwrite:
            raise input_error(out_dir, "already holds a dataset", "pass overwrite=True to replace it")
        shutil.rmtree(out_dir)
    rows = _import_rows(root, out_dir, pairs, mapping, max_per_class, mode, strict)
    ours = list(dict.fromkeys(mapping.values()))  # label order = first appearance
    empty = [lab for lab in ours if not any(r.label == lab for r in rows)]
    if empty:
        raise input_error(root, f"no frame folders found for class(es) {empty}",
                          "check that the CSV ids match the folder names under root")
    splits = assign_splits([r.label for r in rows], [r.group for r in rows],
                           val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    rows = [replace(r, split=s) for r, s in zip(rows, splits, strict=True)]
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
    with (out / MANIFEST_FILE).open(encoding="utf-8") as fh:
        n = sum(1 for _ in csv.DictReader(fh))
    print(f"imported {n} clips into {out}")
    return 0
