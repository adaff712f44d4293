"""Gesture datasets: labels, manifests, direction-aware flips and augmentation, the torch
``Dataset`` of training, and :func:`load_split`, the one loader of a split (notebook 01).

Layout: :mod:`gesture_utils.importers`.  Without ``manifest.csv`` the folder-per-class
layout is discovered and split with :func:`gesture_utils.splits.assign_splits`.
A clip is decoded once (:class:`ClipCache`), then augmented and normalised per item.
With DataLoader workers call :meth:`GestureClipDataset.preload` first and ``set_epoch``
every epoch; not ``persistent_workers=True`` (they would never see ``set_epoch``).
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from gesture_utils import video as _video
from gesture_utils.config import HFLIP_PAIRS, VFLIP_PAIRS, AugmentConfig, ClipConfig, GenerateConfig
from gesture_utils.errors import GestureError, input_error
from gesture_utils.importers import LABELS_FILE, MANIFEST_COLUMNS, MANIFEST_FILE
from gesture_utils.splits import SPLITS, assign_splits, check_no_group_leak
from gesture_utils.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, natural_key

#: Split fractions used when a dataset has no manifest: the generator's (one source).
_SPLIT_DEFAULTS = GenerateConfig()
#: The geometry :func:`augment_clip` applied: crop ``(top, left, height, width)`` as
#: fractions, then whether it flipped horizontally and vertically.
Geometry = tuple[float, float, float, float, bool, bool]


# --------------------------------------------------------------------------- records


@dataclass
class ClipRecord:
    """One clip: absolute ``path``, class ``label``, ``split``, ``group`` (default: its own,
    ``<class folder>/<stem>``) and the generator's ``params`` (``{}`` for other data)."""

    path: Path
    label: str
    split: str = "train"
    group: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.group:
            self.group = f"{self.path.parent.name}/{self.path.stem}"


def _class_dirs(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
                  key=lambda p: natural_key(p.name))


def read_labels(root: str | os.PathLike[str]) -> list[str]:
    """Class names in label-index order: ``labels.txt``, else the sorted labels of
    ``manifest.csv``, else the class folder names."""
    root = Path(root)
    if not root.is_dir():
        raise input_error(root, "dataset folder not found",
                          "generate it with `gesture-utils generate` or check the path")
    path = root / LABELS_FILE
    if path.is_file():
        labels = [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        if not labels:
            raise input_error(path, "holds no class names", "write one class name per line")
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise input_error(path, f"repeats class names {dupes}", "list each class once")
        return labels
    if (root / MANIFEST_FILE).is_file():
        rows, _ = _read_manifest_rows(root / MANIFEST_FILE)
        return sorted({r["label"] for r in rows if r.get("label")})
    dirs = _class_dirs(root)
    if not dirs:
        raise input_error(root, "has no labels.txt, no manifest.csv and no class folders",
                          "expected <root>/<class>/<clip>.mp4")
    return [d.name for d in dirs]


def _check_folders(root: Path, labels: Sequence[str], folders: Mapping[str, Path]) -> None:
    missing = [x for x in labels if x not in folders]
    extra = [x for x in folders if x not in labels]
    if missing or extra:
        where = root / LABELS_FILE if (root / LABELS_FILE).is_file() else root
        what = ([f"no folder for {missing}"] if missing else []) + (
            [f"folders not in labels: {extra}"] if extra else [])
        raise input_error(where, "class list does not match the class folders: " + "; ".join(what),
                          "make labels.txt list exactly the class folder names")


def _clips_in(folder: Path) -> list[Path]:
    """The clips of a class folder (videos and frame folders), natural-sorted; warns
    about other files and raises if there is no clip."""
    entries = [p for p in sorted(folder.iterdir(), key=lambda p: natural_key(p.name))
               if not p.name.startswith(".")]
    clips, ignored = [], []
    for p in entries:
        (clips if p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES else ignored).append(p)
    if ignored:
        warnings.warn(f"{folder}: ignored {len(ignored)} file(s) that are not clips, "
                      f"e.g. {ignored[0].name}", stacklevel=3)
    if not clips:
        loose = any(p.suffix.lower() in IMAGE_SUFFIXES for p in ignored)
        fix = ("frames go in one folder per clip: <class>/<clip_id>/00001.jpg" if loose
               else "add clips or remove the class from labels.txt")
        raise input_error(folder, "class folder holds no clips", fix)
    return clips


def discover_clips(root: str | os.PathLike[str], labels: Sequence[str] | None = None,
                   group_fn: Callable[[Path], str] | None = None,
                   val_fraction: float = _SPLIT_DEFAULTS.val_fraction,
                   test_fraction: float = _SPLIT_DEFAULTS.test_fraction,
                   seed: int = 0) -> list[ClipRecord]:
    """Records of a folder-per-class dataset without a manifest (sorted, deterministic).

    Every video file or frame folder in ``root/<class>/`` is a clip.  ``group_fn(path)``
    gives group ids (default: each clip its own); splits come from :func:`assign_splits`.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise input_error(root, "dataset folder not found", "check the path")
    folders = {d.name: d for d in _class_dirs(root)}
    labels = list(read_labels(root) if labels is None else labels)
    _check_folders(root, labels, folders)
    records = [ClipRecord(p, label, group=str(group_fn(p)) if group_fn else "")
               for label in labels for p in _clips_in(folders[label])]
    if not records:
        raise input_error(root, "no clips found", "expected <root>/<class>/<clip>.mp4")
    splits = assign_splits([r.label for r in records], [r.group for r in records],
                           val_fraction, test_fraction, seed)
    for r, s in zip(records, splits, strict=True):
        r.split = s
    return records


def _read_manifest_rows(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel's BOM
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()}
                    for row in reader]
    except (UnicodeDecodeError, csv.Error) as e:
        raise input_error(path, f"is not a readable CSV file ({e})", "re-write it as UTF-8 CSV") from None
    return rows, columns


def _record(row: Mapping[str, str], line: int, manifest: Path, labels: Sequence[str]) -> ClipRecord:
    """The record of one manifest row, or a one-line error naming the file and line."""
    where = f"{manifest}:{line}"
    if not row["path"]:
        raise input_error(where, "empty path")
    if row["label"] not in labels:
        raise input_error(where, f"unknown label {row['label']!r} for {row['path']}",
                          f"labels.txt has {sorted(labels)}")
    if row["split"] not in SPLITS:
        raise input_error(where, f"split {row['split']!r} for {row['path']} is not one of {SPLITS}")
    try:
        params = json.loads(row.get("params") or "{}")
    except json.JSONDecodeError as e:
        raise input_error(where, f"params of {row['path']} are not valid JSON ({e.msg})") from None
    path = Path(row["path"].replace("\\", "/"))  # a manifest written on Windows
    path = path if path.is_absolute() else manifest.parent / path
    if not path.exists():
        raise input_error(path, "clip listed in manifest.csv does not exist",
                          f"fix line {line} of {manifest} or restore the file")
    return ClipRecord(path, row["label"], row["split"], row["group"], params)


def _check_records(records: Sequence[ClipRecord], rows: Sequence[Mapping[str, str]],
                   manifest: Path, labels: Sequence[str]) -> None:
    """Raise for a clip listed twice or a class without clips; warn about rows without a
    group and clips outside their label's folder."""
    first_line: dict[str, int] = {}
    for line, r in enumerate(records, start=2):
        key = os.path.normcase(os.path.normpath(r.path))
        if key in first_line:
            raise input_error(manifest, f"lists {rows[line - 2]['path']} twice (lines "
                                        f"{first_line[key]} and {line}), so one clip could be "
                                        "in two splits", "keep one row per clip")
        first_line[key] = line
    no_group = [line for line, row in enumerate(rows, start=2) if not row["group"]]
    if no_group:
        warnings.warn(f"{manifest}: {len(no_group)} row(s) have an empty group (e.g. line "
                      f"{no_group[0]}); each becomes its own group, so clips of one session "
                      "may land in different splits (fill in the group column)", stacklevel=3)
    elsewhere = [f"line {line}: {row['path']} labelled {r.label!r}"
                 for line, (row, r) in enumerate(zip(rows, records, strict=True), start=2)
                 if r.label not in _folders_of(r.path, manifest.parent)]
    if elsewhere:
        warnings.warn(f"{manifest}: {len(elsewhere)} clip(s) are not inside their label's "
                      f"folder (e.g. {elsewhere[0]}); check those labels", stacklevel=3)
    empty = [lab for lab in labels if not any(r.label == lab for r in records)]
    if empty:
        raise input_error(manifest, f"has no clips of class(es) {empty} listed in labels.txt",
                          "add rows for them or remove them from labels.txt")


def load_manifest(root: str | os.PathLike[str], labels: Sequence[str] | None = None,
                  val_fraction: float = _SPLIT_DEFAULTS.val_fraction,
                  test_fraction: float = _SPLIT_DEFAULTS.test_fraction,
                  seed: int = 0) -> list[ClipRecord]:
    """All clip records of the dataset at ``root``, in manifest order.

    Reads ``root/manifest.csv`` (``path`` relative to ``root`` or absolute); without
    one, :func:`discover_clips` (with the split fractions and ``seed``).  A bad row, a
    missing clip, a clip listed twice, a class without clips or a group crossing splits
    raises a one-line :class:`GestureError` naming the file.
    """
    root = Path(root).resolve()
    manifest = root / MANIFEST_FILE
    labels = list(read_labels(root) if labels is None else labels)
    if not manifest.is_file():
        return discover_clips(root, labels=labels, val_fraction=val_fraction,
                              test_fraction=test_fraction, seed=seed)
    rows, columns = _read_manifest_rows(manifest)
    missing = [c for c in MANIFEST_COLUMNS if c != "params" and c not in columns]
    if missing:
        raise input_error(manifest, f"missing column(s) {missing} (has {columns})",
                          f"the header must be {','.join(MANIFEST_COLUMNS)}")
    if not rows:
        raise input_error(manifest, "lists no usable clips", "check the rows and the clip files")
    records = [_record(row, line, manifest, labels) for line, row in enumerate(rows, start=2)]
    _check_records(records, rows, manifest, labels)
    check_no_group_leak(records)
    return records


def _folders_of(path: Path, root: Path) -> tuple[str, ...]:
    """Folder names above a clip: relative to ``root`` when inside it, else all of them."""
    try:
        return path.relative_to(root).parts[:-1]
    except ValueError:
        return path.parts[:-1]


def records_for(records: Sequence[ClipRecord], split: str) -> list[ClipRecord]:
    """The records of one split (``'train' | 'val' | 'test'``), order kept."""
    if split not in SPLITS:
        raise GestureError(f"split must be one of {SPLITS}, got {split!r}")
    return [r for r in records if r.split == split]


# --------------------------------------------------------------------------- flips


def _pairs(horizontal: bool) -> Mapping[str, str]:
    return HFLIP_PAIRS if horizontal else VFLIP_PAIRS


def can_flip(label: str, labels: Sequence[str], horizontal: bool = True) -> bool:
    """True if a flipped clip of ``label`` has a class in ``labels``."""
    partner = _pairs(horizontal).get(label)
    return partner is None or partner in labels


def can_flip_axis(labels: Sequence[str], horizontal: bool = True) -> bool:
    """True if every class with a mirror partner has it in ``labels``.  Decided for the
    whole label set: flipping only some classes would make "mirrored" a clue to the label."""
    pairs, present = _pairs(horizontal), set(labels)
    return all(pairs[x] in present for x in present if x in pairs)


def flip_label(label: str, labels: Sequence[str], horizontal: bool = True) -> str:
    """The class of ``label``'s clip after a horizontal (or vertical) flip:
    ``swipe_left <-> swipe_right``, ``swipe_up <-> swipe_down``, others unchanged."""
    if label not in labels:
        raise GestureError(f"unknown label {label!r}; classes are {list(labels)}")
    partner = _pairs(horizontal).get(label, label)
    if partner not in labels:
        axis = "horizontal" if horizontal else "vertical"
        raise GestureError(f"a {axis} flip turns {label!r} into {partner!r}, which is not a "
                           "class here (check can_flip() first)")
    return partner


def flip_clip(frames: np.ndarray, label: str, horizontal: bool = True,
              labels: Sequence[str] | None = None) -> tuple[np.ndarray, str]:
    """Mirror a clip ``(T, H, W, C)`` left-right (or up-down) and swap its label."""
    pairs = _pairs(horizontal)
    if labels is None:
        labels = sorted({label, *pairs, *pairs.values()})
    new_label = flip_label(label, labels, horizontal)
    if horizontal and frames.ndim == 4 and frames.dtype == np.uint8 and frames.shape[-1] <= 4:
        # cv2.flip on the (T*H, W, C) view mirrors every row; ~10x faster than numpy's copy
        t, h, w, c = frames.shape
        flat = np.ascontiguousarray(frames).reshape(t * h, w, c)
        return cv2.flip(flat, 1).reshape(t, h, w, c), new_label
    flipped = frames[:, :, ::-1] if horizontal else frames[:, ::-1]
    return np.ascontiguousarray(flipped), new_label


# --------------------------------------------------------------------------- augmentation


def _random_crop_box(rng: np.random.Generator, h: int, w: int,
                     scale: tuple[float, float], ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    area = rng.uniform(*scale)
    r = float(np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]))))
    cw, ch = min(1.0, np.sqrt(area * r)), min(1.0, np.sqrt(area / r))
    cw_px, ch_px = max(1, round(cw * w)), max(1, round(ch * h))
    top = int(rng.integers(0, h - ch_px + 1))
    left = int(rng.integers(0, w - cw_px + 1))
    return top, left, ch_px, cw_px


def augment_clip(frames: np.ndarray, label: str, labels: Sequence[str], rng: np.random.Generator,
                 aug: AugmentConfig | None = None) -> tuple[np.ndarray, str, Geometry]:
    """Random, direction-aware augmentation of a uint8 clip ``(T, H, W, 3)``: one resized
    crop for all frames, flips (labels swapped; an axis whose pairs ``labels`` lacks is
    never flipped), brightness/contrast.  Returns a new clip, its label and the
    :data:`Geometry` applied; deterministic given ``rng``."""
    aug = aug if aug is not None else AugmentConfig()
    h, w = frames.shape[1:3]
    out, box = frames, (0.0, 0.0, 1.0, 1.0)
    lo, hi = aug.crop_scale
    if hi > 0 and (lo < 1.0 or aug.crop_ratio != (1.0, 1.0)):
        top, left, ch, cw = _random_crop_box(rng, h, w, aug.crop_scale, aug.crop_ratio)
        if (ch, cw) != (h, w):
            out = np.stack([cv2.resize(f[top:top + ch, left:left + cw], (w, h),
                                       interpolation=cv2.INTER_LINEAR) for f in out])
            box = (top / h, left / w, ch / h, cw / w)
    # rng.random() is drawn first, always: the random stream does not depend on labels
    hflip = rng.random() < aug.hflip_p and can_flip_axis(labels, True)
    if hflip:
        out, label = flip_clip(out, label, True, labels)
    vflip = rng.random() < aug.vflip_p and can_flip_axis(labels, False)
    if vflip:
        out, label = flip_clip(out, label, False, labels)
    b = rng.uniform(1 - aug.brightness, 1 + aug.brightness) if aug.brightness > 0 else 1.0
    c = rng.uniform(1 - aug.contrast, 1 + aug.contrast) if aug.contrast > 0 else 1.0
    if b != 1.0 or c != 1.0:
        # ((x - m) * c + m) * b as one saturating affine map (cv2 rounds and clips)
        m = float(out[:, ::4, ::4].mean())
        flat = np.ascontiguousarray(out).reshape(-1, out.shape[2], out.shape[3])
        out = cv2.addWeighted(flat, c * b, flat, 0.0, m * b * (1.0 - c)).reshape(out.shape)
    if out is frames:
        out = frames.copy()
    return out, label, (*box, bool(hflip), bool(vflip))


def _knows_hand(params: Mapping[str, Any]) -> bool:
    """True if a clip's parameters say where its hand is (a generated clip)."""
    return "n_frames" in params and "path" in params


def hand_targets(params: Mapping[str, Any], num_frames: int) -> np.ndarray:
    """Per-frame ``(visible, x, y)`` hand targets ``(T, 3)`` float32 of a clip sampled as
    :func:`~gesture_utils.video.read_clip` samples it; NaN rows when ``params`` do not
    say (imported clips add nothing to the loss)."""
    if not _knows_hand(params):
        return np.full((num_frames, 3), np.nan, np.float32)
    from gesture_utils.generation import hand_track

    track = hand_track(params)
    return track[_video.sample_indices(len(track), num_frames)]


def move_targets(targets: np.ndarray, geometry: Geometry) -> np.ndarray:
    """``(visible, x, y)`` targets after :func:`augment_clip`'s crop and flips; a hand whose
    centre the crop cut off counts as not visible."""
    top, left, ch, cw, hflip, vflip = geometry
    out = targets.copy()
    vis = out[:, 0] == 1
    x, y = (out[:, 1] - left) / cw, (out[:, 2] - top) / ch
    x, y = (1.0 - x if hflip else x), (1.0 - y if vflip else y)
    inside = (x >= 0) & (x <= 1) & (y >= 0) & (y <= 1)
    out[vis, 1], out[vis, 2] = x[vis], y[vis]
    out[vis & ~inside] = 0.0
    return out


def to_tensor(frames_uint8: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` -> float32 ``(..., 3, H, W)``, ``(x/255 - mean) / std``.

    The one place pixels are normalised, with the same float32 operations as the
    torch-free ``inference.normalize``, so training and deployment inputs are identical.
    """
    frames_uint8 = np.asarray(frames_uint8)
    if frames_uint8.dtype != np.uint8 or frames_uint8.ndim < 3 or frames_uint8.shape[-1] != 3:
        raise GestureError(f"to_tensor expects uint8 (..., H, W, 3), got "
                           f"{frames_uint8.dtype} {frames_uint8.shape}")
    x = np.ascontiguousarray(np.moveaxis(frames_uint8, -1, -3)).astype(np.float32)
    x -= np.asarray(mean, dtype=np.float32).reshape(3, 1, 1) * np.float32(255.0)
    x *= np.float32(1.0) / (np.asarray(std, dtype=np.float32).reshape(3, 1, 1) * np.float32(255.0))
    return torch.from_numpy(x)


# --------------------------------------------------------------------------- dataset


class ClipCache:
    """Decoded clips kept in memory, keyed by ``(path, num_frames, image_size)``: each is
    decoded once and kept read-only.  ``hits`` and ``misses`` (= decodes) count lookups."""

    def __init__(self) -> None:
        self._clips: dict[tuple, np.ndarray] = {}
        self.hits = self.misses = 0

    def get(self, path: str | os.PathLike[str], num_frames: int, image_size: int) -> np.ndarray:
        """The clip at ``path`` as read-only uint8 ``(T, S, S, 3)``, decoding only on a miss."""
        key = (str(path), int(num_frames), int(image_size))
        clip = self._clips.get(key)
        if clip is not None:
            self.hits += 1
            return clip
        self.misses += 1
        clip = np.ascontiguousarray(_video.read_clip(path, num_frames, image_size))
        clip.setflags(write=False)
        self._clips[key] = clip
        return clip


class GestureClipDataset(Dataset):
    """``(clip, label)`` pairs for training: float32 ``(T, C, S, S)`` (:func:`to_tensor`)
    and the class index in ``labels``.

    ``augment``: False, True (default :class:`AugmentConfig`) or an ``AugmentConfig``; a
    flip axis whose pairs ``labels`` lacks is switched off, with one warning.  The
    randomness depends only on ``(seed, epoch, index, reads of that index)``.
    ``with_hand=True`` adds the per-frame hand targets, moved with the crop and flips.
    """

    def __init__(self, records: Sequence[ClipRecord], labels: Sequence[str],
                 clip: ClipConfig | None = None, augment: bool | AugmentConfig = False,
                 cache: ClipCache | None = None, seed: int = 0, with_hand: bool = False) -> None:
        self.labels = list(labels)
        self._index = {name: i for i, name in enumerate(self.labels)}
        unknown = sorted({r.label for r in records} - set(self._index))
        if unknown:
            raise GestureError(f"records have labels {unknown} that are not in {self.labels}")
        self.records = list(records)
        self.clip = clip if clip is not None else ClipConfig()
        aug = AugmentConfig() if augment is True else augment or None
        self.aug: AugmentConfig | None = _usable_flips(aug, self.labels) if aug else None
        self.cache = cache if cache is not None else ClipCache()
        self.seed, self.with_hand, self.epoch = int(seed), bool(with_hand), 0
        self._reads: dict[int, int] = {}

    @property
    def targets(self) -> list[int]:
        """Class index of every clip (for samplers and class-balance plots)."""
        return [self._index[r.label] for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Make augmentation depend on ``epoch`` (resets the per-index read counters)."""
        self.epoch = int(epoch)
        self._reads.clear()

    def uint8(self, i: int) -> np.ndarray:
        """The cached raw clip ``i``: read-only uint8 ``(T, S, S, 3)``, RGB, not augmented."""
        return self.cache.get(self.records[i].path, self.clip.num_frames, self.clip.image_size)

    def preload(self, progress: bool = False) -> int:
        """Decode every clip into the cache now; returns how many clips there are."""
        from tqdm.auto import tqdm

        for i in tqdm(range(len(self.records)), desc="decoding clips", leave=False,
                      disable=not progress):
            self.uint8(i)
        return len(self.records)

    @property
    def has_hand_targets(self) -> bool:
        """True if some clip's parameters say where its hand is (generated data)."""
        return any(_knows_hand(r.params) for r in self.records)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int] | tuple[torch.Tensor, int, torch.Tensor]:
        i = int(i) + (len(self.records) if int(i) < 0 else 0)
        frames, label, geometry = self.uint8(i), self.records[i].label, None
        if self.aug is not None:
            n = self._reads.get(i, 0)
            self._reads[i] = n + 1
            rng = np.random.default_rng([self.seed % 2**63, self.epoch % 2**63, i, n])
            frames, label, geometry = augment_clip(frames, label, self.labels, rng, self.aug)
        x = to_tensor(frames, self.clip.mean, self.clip.std)
        if not self.with_hand:
            return x, self._index[label]
        hand = hand_targets(self.records[i].params, self.clip.num_frames)
        if geometry is not None:
            hand = move_targets(hand, geometry)
        return x, self._index[label], torch.from_numpy(hand)


def _usable_flips(aug: AugmentConfig, labels: Sequence[str]) -> AugmentConfig:
    """``aug`` with each flip axis off (one warning each) whose pairs ``labels`` lacks."""
    for horizontal, p_name in ((True, "hflip_p"), (False, "vflip_p")):
        if getattr(aug, p_name) > 0 and not can_flip_axis(labels, horizontal):
            pairs = _pairs(horizontal)
            lonely = sorted(x for x in labels if x in pairs and pairs[x] not in labels)
            axis = "horizontal" if horizontal else "vertical"
            warnings.warn(f"{axis} flips turned off for every class: {lonely} is a class but its "
                          f"mirror {[pairs[x] for x in lonely]} is not, and flipping only the "
                          "other classes would make 'mirrored' a clue to the label", stacklevel=3)
            aug = replace(aug, **{p_name: 0.0})
    return aug


def build_datasets(root: str | os.PathLike[str], clip: ClipConfig | None = None,
                   augment: bool | AugmentConfig = True, cache: ClipCache | None = None,
                   seed: int = 0) -> dict[str, GestureClipDataset]:
    """``{'train', 'val', 'test'}`` datasets of ``root`` sharing one cache; only ``train``
    is augmented.  ``seed`` drives augmentation (and the split, without a manifest)."""
    labels = read_labels(root)
    records = load_manifest(root, labels=labels, seed=seed)
    cache = cache if cache is not None else ClipCache()
    return {split: GestureClipDataset(records_for(records, split), labels, clip,
                                      augment=augment if split == "train" else False,
                                      cache=cache, seed=seed)
            for split in SPLITS}


# --------------------------------------------------------------------------- one split


@dataclass(frozen=True)
class Split:
    """The decoded clips of one split: ``clips`` uint8 ``(N, T, S, S, 3)`` RGB, ``y``
    ``(N,)`` indices into ``labels``, and each clip's file ``paths``."""

    clips: np.ndarray
    y: np.ndarray
    paths: list[str]
    labels: list[str]

    def inputs(self, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
        """Model inputs: float32 ``(N, T, 3, S, S)``, normalised like training."""
        return np.stack([to_tensor(c, mean, std).numpy() for c in self.clips])


def _balanced(records: list[ClipRecord], labels: Sequence[str], limit: int,
              seed: int) -> list[ClipRecord]:
    """At most ``limit`` records drawn round-robin over the classes, manifest order kept."""
    rng = np.random.default_rng(seed)
    queues = [[i for i in rng.permutation(len(records)) if records[i].label == c] for c in labels]
    order = [q[k] for k in range(len(records)) for q in queues if k < len(q)]
    return [records[i] for i in sorted(order[:limit])]


def load_split(root: str | os.PathLike[str], split: str, clip: ClipConfig,
               labels: Sequence[str] | None = None, limit: int | None = None,
               seed: int = 0, progress: bool = False) -> Split:
    """Decode every clip of ``split`` (at most ``limit``, balanced over the classes).

    ``labels``: the model's classes (default: the dataset's); a clip of another class
    raises :class:`GestureError`.  The one loader of a split's clips (notebooks 04, 05).
    """
    from tqdm.auto import tqdm

    root = Path(root)
    if not root.is_dir():
        raise input_error(root, "dataset folder not found",
                          "pass --data pointing at a folder with labels.txt and manifest.csv")
    labels = list(read_labels(root) if labels is None else labels)
    everything = load_manifest(root)
    records = records_for(everything, split)
    if not records:
        present = sorted({r.split for r in everything})
        raise input_error(root, f"no clips in split {split!r} (splits present: {present})",
                          "choose --split from those, or regenerate the dataset with a test split")
    unknown = sorted({r.label for r in records} - set(labels))
    if unknown:
        raise input_error(root, f"classes {unknown} are not labels of the model ({labels})",
                          "evaluate the model on the dataset it was trained on")
    if limit is not None and limit < len(records):
        records = _balanced(records, labels, limit, seed)
    clips = [_video.read_clip(r.path, clip.num_frames, clip.image_size)
             for r in tqdm(records, desc=f"decode {split}", disable=not progress, leave=False)]
    return Split(np.stack(clips), np.array([labels.index(r.label) for r in records], np.int64),
                 [str(r.path) for r in records], labels)
