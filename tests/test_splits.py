"""Splits: no group crosses splits, class balance kept, reproducible, clear errors."""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict

import pytest

from gesture_utils.errors import GestureError
from gesture_utils.splits import assign_splits, check_no_group_leak

CLASSES = ["swipe_left", "swipe_right", "swipe_up", "swipe_down", "stop", "no_gesture"]


def dataset(per_class: int = 40, group_size: int = 4, cross_class: bool = False):
    """Labels and groups like the generator's: groups of ``group_size`` clips per class,
    or (``cross_class``) sessions that each record every class."""
    labels, groups = [], []
    for name in CLASSES:
        for i in range(per_class):
            labels.append(name)
            groups.append(f"s{i // group_size}" if cross_class else f"{name}-{i // group_size}")
    return labels, groups


def groups_by_split(groups, splits):
    where = defaultdict(set)
    for g, s in zip(groups, splits, strict=True):
        where[g].add(s)
    return where


@pytest.mark.parametrize("cross_class", [False, True])
def test_groups_never_cross_splits(cross_class):
    labels, groups = dataset(cross_class=cross_class)
    splits = assign_splits(labels, groups, 0.15, 0.15, seed=0)
    assert set(splits) == {"train", "val", "test"}
    assert all(len(s) == 1 for s in groups_by_split(groups, splits).values())


@pytest.mark.parametrize("cross_class", [False, True])
def test_fractions_and_stratification(cross_class):
    labels, groups = dataset(per_class=60, cross_class=cross_class)
    splits = assign_splits(labels, groups, 0.15, 0.15, seed=3)
    n = len(labels)
    counts = Counter(splits)
    assert abs(counts["test"] / n - 0.15) < 0.04
    assert abs(counts["val"] / n - 0.15) < 0.04
    for split in ("train", "val", "test"):
        in_split = Counter(lab for lab, s in zip(labels, splits, strict=True) if s == split)
        total = sum(in_split.values())
        for name in CLASSES:  # balanced data -> each class 1/6 of every split, give or
            # take one group (groups are indivisible)
            assert abs(in_split[name] - total / 6) <= 4, (split, name, in_split)


def test_deterministic_and_seed_dependent():
    labels, groups = dataset()
    a = assign_splits(labels, groups, 0.15, 0.15, seed=0)
    assert a == assign_splits(labels, groups, 0.15, 0.15, seed=0)
    b = assign_splits(labels, groups, 0.15, 0.15, seed=1)
    assert a != b
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 0.1 * len(a)


def test_zero_fractions_and_few_groups():
    labels, groups = dataset(per_class=20)
    assert set(assign_splits(labels, groups, 0.0, 0.0, seed=0)) == {"train"}
    assert set(assign_splits(labels, groups, 0.0, 0.2, seed=0)) == {"train", "test"}
    # three groups are just enough for three splits: one group each
    few_labels = ["stop", "stop", "no_gesture", "no_gesture", "stop", "no_gesture"]
    few_groups = ["a", "a", "b", "b", "c", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        splits = assign_splits(few_labels, few_groups, 0.15, 0.15, seed=0)
    per_group = groups_by_split(few_groups, splits)
    assert sorted(s.pop() for s in per_group.values()) == ["test", "train", "val"]
    with pytest.raises(GestureError, match="2 group"):
        assign_splits(few_labels[:4], few_groups[:4], 0.15, 0.15, seed=0)
    with pytest.raises(GestureError, match="1 group"):
        assign_splits(["stop"] * 3, ["x"] * 3, 0.0, 0.2, seed=0)


def test_input_validation():
    with pytest.raises(GestureError, match="labels but"):
        assign_splits(["a", "b"], ["g"], 0.1, 0.1, 0)
    with pytest.raises(GestureError, match="test_fraction"):
        assign_splits(["a"], ["g"], 0.1, 1.5, 0)
    with pytest.raises(GestureError, match="< 1"):
        assign_splits(["a"], ["g"], 0.6, 0.5, 0)
    assert assign_splits([], [], 0.1, 0.1, 0) == []


def test_check_no_group_leak_finds_the_leak():
    ok = [{"group": "a", "split": "train"}, {"group": "a", "split": "train"},
          {"group": "b", "split": "test"}]
    check_no_group_leak(ok)
    check_no_group_leak([("a", "train"), ("b", "val")])
    bad = [*ok, {"group": "a", "split": "val"}]
    with pytest.raises(GestureError, match=r"'a' in \['train', 'val'\]"):
        check_no_group_leak(bad)


def test_default_fractions_are_the_generators():
    """One source for split defaults: GenerateConfig (not literals scattered per module)."""
    import inspect

    from gesture_utils import datasets
    from gesture_utils.config import GenerateConfig

    cfg = GenerateConfig()
    labels, groups = dataset(per_class=40)
    assert assign_splits(labels, groups) == assign_splits(
        labels, groups, cfg.val_fraction, cfg.test_fraction, seed=0)
    for fn in (assign_splits, datasets.discover_clips, datasets.load_manifest):
        params = inspect.signature(fn).parameters
        assert params["val_fraction"].default == cfg.val_fraction, fn.__name__
        assert params["test_fraction"].default == cfg.test_fraction, fn.__name__
