"""Stratified, group-aware train/val/test splits (notebook 01).

Clips of one recording session look alike: if some land in train and others in test,
the test score measures recognising the session.  So a group never crosses splits, each
class keeps a similar share in every split, and the result depends only on the inputs
and ``seed``.  scikit-learn's ``StratifiedGroupKFold`` picks the fold closest to the
requested size, first for *test*, then from the rest for *val* (fractions are met to
about one group); with too few clips per class it falls back to ``GroupShuffleSplit``.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from gesture_utils.config import GenerateConfig
from gesture_utils.errors import GestureError

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Default fractions come from the one place the series keeps them.
_DEFAULTS = GenerateConfig()


def _stratified_fold(y: np.ndarray, groups: np.ndarray, fraction: float, seed: int,
                     n_groups: int) -> np.ndarray | None:
    """The StratifiedGroupKFold fold closest to ``fraction`` of the items, or None when
    sklearn cannot stratify."""
    from sklearn.model_selection import StratifiedGroupKFold  # ~1 s import

    n_splits = int(min(max(2, round(1.0 / fraction)), n_groups))
    # on tiny data (QUICK runs) fewer, larger folds, so each class can reach every split
    n_splits = max(2, min(n_splits, int(np.unique(y, return_counts=True)[1].max())))
    try:
        with warnings.catch_warnings():  # the smallest class decides; sklearn only warns
            warnings.filterwarnings("ignore", message="The least populated class",
                                    category=UserWarning)
            cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            folds = [f for _, f in cv.split(np.zeros(len(y)), y, groups)]
    except ValueError:  # every class smaller than n_splits
        return None
    return min(folds, key=lambda f: abs(len(f) - fraction * len(y)))


def _one_fold(y: np.ndarray, groups: np.ndarray, fraction: float, seed: int,
              what: str) -> np.ndarray:
    """Boolean mask of one fold holding ~``fraction`` of the items, whole groups only."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise GestureError(
            f"cannot make a {what} split: only {n_groups} group(s) left, need >= 2 "
            "(add clips from more sessions/groups, or set the fraction to 0)")
    mask = np.zeros(len(y), dtype=bool)
    fold = _stratified_fold(y, groups, fraction, seed, n_groups)
    if fold is not None:
        mask[fold] = True
    if 0 < mask.sum() < len(y):
        return mask
    warnings.warn(f"too few clips per class to stratify the {what} split; "
                  "splitting by group only", stacklevel=3)
    from sklearn.model_selection import GroupShuffleSplit

    n_take = int(min(max(1, round(fraction * n_groups)), n_groups - 1))
    gss = GroupShuffleSplit(n_splits=1, test_size=n_take, random_state=seed)
    _, fold = next(gss.split(np.zeros(len(y)), y, groups))
    mask[:] = False
    mask[fold] = True
    return mask


def _check_request(labels: Sequence[str], groups: Sequence[str], val_fraction: float,
                   test_fraction: float) -> None:
    if len(labels) != len(groups):
        raise GestureError(f"assign_splits: {len(labels)} labels but {len(groups)} groups")
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise GestureError(f"{name} must be in [0, 1), got {frac}")
    if val_fraction + test_fraction >= 1.0:
        raise GestureError(f"val_fraction + test_fraction must be < 1, got "
                           f"{val_fraction + test_fraction}")
    needed = 1 + (val_fraction > 0) + (test_fraction > 0)
    if labels and len(set(groups)) < needed:
        raise GestureError(
            f"cannot split {len(set(groups))} group(s) into {needed} splits without a group "
            "crossing splits (add more groups, or set val/test fractions to 0)")


def assign_splits(labels: Sequence[str], groups: Sequence[str],
                  val_fraction: float = _DEFAULTS.val_fraction,
                  test_fraction: float = _DEFAULTS.test_fraction, seed: int = 0) -> list[str]:
    """One of ``'train' | 'val' | 'test'`` per item: stratified by label, all items of a
    group in one split, the same for the same inputs and ``seed``.  A fraction of 0
    leaves that split empty; too few groups raise :class:`GestureError`."""
    labels, groups = [str(x) for x in labels], [str(g) for g in groups]
    _check_request(labels, groups, val_fraction, test_fraction)
    if not labels:
        return []
    y, g = np.array(labels), np.array(groups)
    out = np.array(["train"] * len(labels), dtype=object)
    rest = np.arange(len(labels))
    if test_fraction > 0:
        test = _one_fold(y, g, test_fraction, seed, "test")
        out[test] = "test"
        rest = rest[~test]
    if val_fraction > 0:
        n_left_groups = len(np.unique(g[rest]))
        if n_left_groups < 2:
            raise GestureError(f"cannot make a val split: only {n_left_groups} group(s) left "
                               "after the test split (add more groups)")
        val = _one_fold(y[rest], g[rest], val_fraction / (1.0 - test_fraction), seed + 1, "val")
        out[rest[val]] = "val"
    result = [str(s) for s in out]
    for split in ("val", "test"):
        present = {lab for lab, s in zip(labels, result, strict=True) if s == split}
        if present and set(labels) - present:
            warnings.warn(f"split {split!r} has no clips of {sorted(set(labels) - present)} "
                          "(too few groups per class to stratify)", stacklevel=2)
    check_no_group_leak(zip(groups, result, strict=True))
    return result


def _group_split(item: Any) -> tuple[str, str]:
    if isinstance(item, tuple) and len(item) == 2:
        return str(item[0]), str(item[1])
    if isinstance(item, Mapping):
        return str(item["group"]), str(item["split"])
    return str(item.group), str(item.split)


def check_no_group_leak(records: Iterable[Any]) -> None:
    """Raise :class:`GestureError` if a group appears in more than one split.  ``records``:
    objects with ``.group`` and ``.split``, dicts with those keys, or ``(group, split)``."""
    seen: dict[str, set[str]] = defaultdict(set)
    for item in records:
        group, split = _group_split(item)
        seen[group].add(split)
    leaks = {g: sorted(s) for g, s in seen.items() if len(s) > 1}
    if leaks:
        shown = ", ".join(f"{g!r} in {s}" for g, s in sorted(leaks.items())[:5])
        raise GestureError(f"{len(leaks)} group(s) cross splits: {shown} "
                           "(re-assign splits by group, e.g. with assign_splits)")
