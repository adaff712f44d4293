"""Stratified, group-aware train/val/test splits (notebook 01).

Clips recorded in one session (same person, background, lighting) look alike.  If some
land in train and others in test, the test score measures *recognising the session*,
not the gesture.  So every clip carries a ``group`` id and a group never crosses splits.
Within that constraint we keep each class's share similar in every split (stratified),
and the result depends only on the inputs and ``seed``.

The work is done by scikit-learn's ``StratifiedGroupKFold``, applied twice: of
``round(1 / test_fraction)`` folds, the one closest in size to the request becomes
*test*; from the rest, likewise with ``round((1 - test_fraction) / val_fraction)``
folds, *val*.  Fractions are therefore met to within about one group (e.g. 0.15 ->
1/7 = 0.143 when groups are small).  With too few clips per class to stratify, the
split falls back to ``GroupShuffleSplit`` (groups only) with a warning.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from gesture_utils.config import GenerateConfig
from gesture_utils.errors import GestureError

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Default fractions come from the one place the series keeps them.
_DEFAULTS = GenerateConfig()


def _one_fold(y: np.ndarray, groups: np.ndarray, fraction: float, seed: int,
              what: str) -> np.ndarray:
    """Boolean mask of one StratifiedGroupKFold fold holding ~``fraction`` of the items."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise GestureError(
            f"cannot make a {what} split: only {n_groups} group(s) left, need >= 2 "
            "(add clips from more sessions/groups, or set the fraction to 0)")
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold  # ~1 s import

    n_splits = int(min(max(2, round(1.0 / fraction)), n_groups))
    # sklearn refuses when every class has fewer clips than folds; on tiny data (QUICK
    # runs) use fewer, larger folds so each class can still reach every split.
    n_splits = max(2, min(n_splits, int(np.unique(y, return_counts=True)[1].max())))
    mask = np.zeros(len(y), dtype=bool)
    try:
        # The smallest class decides how well stratification can work; sklearn only warns.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class",
                                    category=UserWarning)
            cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            folds = [f for _, f in cv.split(np.zeros(len(y)), y, groups)]
        # Groups make fold sizes uneven: take the fold closest to the requested size.
        target = fraction * len(y)
        fold = min(folds, key=lambda f: abs(len(f) - target))
        mask[fold] = True
    except ValueError:  # every class smaller than n_splits: sklearn refuses to stratify
        pass
    if 0 < mask.sum() < len(y):
        return mask
    # Too few clips per class to stratify: split by group only, ~fraction of the groups.
    warnings.warn(f"too few clips per class to stratify the {what} split; "
                  "splitting by group only", stacklevel=3)
    n_take = int(min(max(1, round(fraction * n_groups)), n_groups - 1))
    gss = GroupShuffleSplit(n_splits=1, test_size=n_take, random_state=seed)
    _, fold = next(gss.split(np.zeros(len(y)), y, groups))
    mask[:] = False
    mask[fold] = True
    return mask


def assign_splits(labels: Sequence[str], groups: Sequence[str],
                  val_fraction: float = _DEFAULTS.val_fraction,
                  test_fraction: float = _DEFAULTS.test_fraction, seed: int = 0) -> list[str]:
    """One of ``'train' | 'val' | 'test'`` per item (same order as ``labels``).

    Stratified by label, group-aware (all items of a group share a split), and
    reproducible: same inputs + ``seed`` -> same answer; another seed -> another split.
    A fraction of 0 leaves that split empty.  Raises :class:`GestureError` when the
    groups are too few to give every requested split at least one group (3 groups are
    needed for train+val+test).  Warns when a class is missing from val or test.
    """
    labels = [str(x) for x in labels]
    groups = [str(g) for g in groups]
    if len(labels) != len(groups):
        raise GestureError(f"assign_splits: {len(labels)} labels but {len(groups)} groups")
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise GestureError(f"{name} must be in [0, 1), got {frac}")
    if val_fraction + test_fraction >= 1.0:
        raise GestureError(f"val_fraction + test_fraction must be < 1, got "
                           f"{val_fraction + test_fraction}")
    n = len(labels)
    if n == 0:
        return []
    group_labels: dict[str, set[str]] = defaultdict(set)
    for lab, g in zip(labels, groups, strict=True):
        group_labels[g].add(lab)
    needed = 1 + (val_fraction > 0) + (test_fraction > 0)
    if len(group_labels) < needed:
        raise GestureError(
            f"cannot split {len(group_labels)} group(s) into {needed} splits without a group "
            "crossing splits (add more groups, or set val/test fractions to 0)")

    y = np.array(labels)
    g = np.array(groups)
    out = np.array(["train"] * n, dtype=object)
    rest = np.arange(n)
    if test_fraction > 0:
        test = _one_fold(y, g, test_fraction, seed, "test")
        out[test] = "test"
        rest = rest[~test]
    if val_fraction > 0:
        n_left_groups = len(np.unique(g[rest]))
        if n_left_groups < 2:
            raise GestureError(f"cannot make a val split: only {n_left_groups} group(s) left "
                               "after the test split (add more groups)")
        frac = val_fraction / (1.0 - test_fraction)
        val = _one_fold(y[rest], g[rest], frac, seed + 1, "val")
        out[rest[val]] = "val"
    result = [str(s) for s in out]

    classes = sorted(set(labels))
    for split in ("val", "test"):
        present = {lab for lab, s in zip(labels, result, strict=True) if s == split}
        if present and set(classes) - present:
            warnings.warn(f"split {split!r} has no clips of {sorted(set(classes) - present)} "
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
    """Raise :class:`GestureError` if any group appears in more than one split.

    ``records``: objects with ``.group`` and ``.split`` (e.g. ``ClipRecord``), dicts with
    those keys, or ``(group, split)`` pairs.
    """
    seen: dict[str, set[str]] = defaultdict(set)
    for item in records:
        group, split = _group_split(item)
        seen[group].add(split)
    leaks = {g: sorted(s) for g, s in seen.items() if len(s) > 1}
    if leaks:
        shown = ", ".join(f"{g!r} in {s}" for g, s in sorted(leaks.items())[:5])
        raise GestureError(f"{len(leaks)} group(s) cross splits: {shown} "
                           "(re-assign splits by group, e.g. with assign_splits)")


def split_summary(labels: Sequence[str], splits: Sequence[str]) -> dict[str, dict[str, int]]:
    """Clip counts ``{split: {label: count}}`` (for printing class balance per split)."""
    out: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        c = Counter(lab for lab, s in zip(labels, splits, strict=True) if s == split)
        out[split] = {lab: c.get(lab, 0) for lab in sorted(set(labels))}
    return out
