"""Datasets: discovery, manifests, bad input, direction-aware flips, normalisation, cache."""

from __future__ import annotations

import csv
import shutil
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from gesture_utils import video
from gesture_utils.config import AugmentConfig, ClipConfig
from gesture_utils.datasets import (
    ClipRecord,
    GestureClipDataset,
    augment_clip,
    build_datasets,
    can_flip,
    can_flip_axis,
    discover_clips,
    flip_clip,
    flip_label,
    hand_targets,
    load_manifest,
    move_targets,
    read_labels,
    records_for,
    to_tensor,
)
from gesture_utils.errors import GestureError
from gesture_utils.video import read_clip, write_video

LABELS = ["swipe_left", "swipe_right", "stop"]
CLIP = ClipConfig(num_frames=6, image_size=24)
NO_AUG = AugmentConfig(hflip_p=0.0, brightness=0.0, contrast=0.0, crop_scale=(1.0, 1.0),
                       crop_ratio=(1.0, 1.0))


def swipe(direction: str, n: int = 12, size: int = 32, side: int = 6) -> np.ndarray:
    """A bright square on a dark background moving in ``direction``; (n, size, size, 3)."""
    frames = np.full((n, size, size, 3), 20, np.uint8)
    for i in range(n):
        p = round(i * (size - side) / (n - 1))
        c = (size - side) // 2
        if direction in ("left", "up"):
            p = size - side - p
        y, x = (c, p) if direction in ("left", "right") else (p, c)
        frames[i, y : y + side, x : x + side] = (250, 240, 230)
    return frames


def to_uint8(tensor: torch.Tensor, mean, std) -> np.ndarray:
    """Inverse of ``to_tensor``: float ``(..., 3, H, W)`` -> uint8 ``(..., H, W, 3)``."""
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    x = (tensor.detach().float() * s + m).mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return np.moveaxis(x.numpy(), -3, -1).copy()


def centroid(frames: np.ndarray) -> np.ndarray:
    """(T, 2) (x, y) centroid of the bright pixels of each frame."""
    out = []
    for f in frames:
        ys, xs = np.nonzero(f.mean(axis=-1) > 128)
        out.append((xs.mean(), ys.mean()))
    return np.array(out)


def make_dataset(root, per_class: int = 4, labels=LABELS, with_labels_file: bool = True):
    motion = {"swipe_left": "left", "swipe_right": "right", "stop": "right"}
    for name in labels:
        for i in range(per_class):
            frames = swipe(motion.get(name, "up"))
            if name == "stop":
                frames = np.repeat(frames[:1], len(frames), axis=0)
            write_video(root / name / f"{name}_{i:03d}.mp4", frames, fps=12)
    if with_labels_file:
        (root / "labels.txt").write_text("\n".join(labels) + "\n")
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ds"))


def copy_of(data_root, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(data_root, dst)
    return dst


def write_manifest(root, rows, columns=("path", "label", "split", "group", "params")):
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(rows)


def manifest_rows(root):
    rows = []
    for i, name in enumerate(LABELS):
        for j in range(4):
            split = ["train", "train", "val", "test"][j]
            rows.append([f"{name}/{name}_{j:03d}.mp4", name, split, f"g{i}{j}", '{"speed": 1}'])
    return rows


# ---------------------------------------------------------------- labels and discovery


def test_read_labels_from_file_or_folders(data_root, tmp_path):
    assert read_labels(data_root) == LABELS  # file order, not alphabetical
    root = make_dataset(tmp_path / "nolabels", per_class=1, with_labels_file=False)
    assert read_labels(root) == sorted(LABELS)
    (root / "labels.txt").write_text("stop\nstop\n")
    with pytest.raises(GestureError, match="repeats"):
        read_labels(root)
    with pytest.raises(GestureError, match="not found"):
        read_labels(tmp_path / "nowhere")


def test_discovery_is_sorted_deterministic_and_split(data_root):
    records = load_manifest(data_root)  # no manifest.csv -> discovery
    assert len(records) == 12
    assert [r.label for r in records] == [x for x in LABELS for _ in range(4)]
    names = [r.path.name for r in records if r.label == "stop"]
    assert names == sorted(names)
    assert all(r.path.is_absolute() and r.group == f"{r.label}/{r.path.stem}" for r in records)
    assert records == load_manifest(data_root)
    assert {r.split for r in records} == {"train", "val", "test"}


def test_discovery_natural_order_and_group_fn(tmp_path):
    root = tmp_path / "ds"
    for i in (10, 2, 1):
        write_video(root / "stop" / f"clip_{i}.mp4", swipe("right", 4, 16, 4), 8)
    (root / "stop" / "notes.txt").write_text("not a clip")
    with pytest.warns(UserWarning, match="ignored 1 file"):
        recs = discover_clips(root, labels=["stop"], val_fraction=0.0, test_fraction=0.0,
                              group_fn=lambda p: f"session{int(p.stem[5:]) % 2}")
    assert [r.path.name for r in recs] == ["clip_1.mp4", "clip_2.mp4", "clip_10.mp4"]
    assert [r.group for r in recs] == ["session1", "session0", "session0"]


def test_frame_folder_clips_jester_layout(tmp_path):
    import cv2

    root = tmp_path / "jester"
    for name, direction in (("swipe_left", "left"), ("swipe_right", "right")):
        for clip_id in ("7", "12"):
            folder = root / name / clip_id
            folder.mkdir(parents=True)
            for i, f in enumerate(swipe(direction, n=9), start=1):
                cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    (root / "swipe_left" / "loose.jpg").write_bytes(b"")  # ignored, with a warning
    with pytest.warns(UserWarning, match="ignored 1 file"):
        records = discover_clips(root, val_fraction=0.0, test_fraction=0.0)
    assert [(r.label, r.path.name) for r in records] == [
        ("swipe_left", "7"), ("swipe_left", "12"), ("swipe_right", "7"), ("swipe_right", "12")]
    assert len({r.group for r in records}) == 4  # same clip ids in two classes: 4 groups
    ds = GestureClipDataset(records, ["swipe_left", "swipe_right"], CLIP)
    x, y = ds[2]
    assert x.shape == (6, 3, 24, 24) and y == 1
    xs = centroid(to_uint8(x, CLIP.mean, CLIP.std))[:, 0]
    assert xs[-1] > xs[0] + 5  # swipe_right moves right


def test_labels_file_must_match_folders(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    (root / "labels.txt").write_text("swipe_left\nswipe_right\nstop\nswipe_up\n")
    with pytest.raises(GestureError, match=r"labels\.txt.*no folder for \['swipe_up'\]"):
        load_manifest(root)
    (root / "labels.txt").write_text("swipe_left\nswipe_right\n")
    with pytest.raises(GestureError, match=r"folders not in labels: \['stop'\]"):
        load_manifest(root)


def test_empty_class_folder_raises(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    for p in (root / "stop").iterdir():
        p.unlink()
    with pytest.raises(GestureError, match=r"stop: class folder holds no clips"):
        load_manifest(root)


# ---------------------------------------------------------------- manifests


def test_manifest_is_read_in_order_with_params(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    write_manifest(root, manifest_rows(root))
    records = load_manifest(root)
    assert [r.path.relative_to(root).as_posix() for r in records] == [
        row[0] for row in manifest_rows(root)]
    assert records[0].params == {"speed": 1} and records[2].split == "val"
    assert [r.label for r in records_for(records, "test")] == LABELS


def test_manifest_from_excel_on_windows(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    rows = [[r[0].replace("/", "\\"), *r[1:]] for r in manifest_rows(root)]
    write_manifest(root, rows)
    text = (root / "manifest.csv").read_text()
    (root / "manifest.csv").write_text("\ufeff" + text, encoding="utf-8")  # Excel's BOM
    records = load_manifest(root)
    assert len(records) == 12 and all(r.path.is_file() for r in records)


def test_manifest_problems_raise(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    rows = manifest_rows(root)
    rows[1][1] = "wave"  # unknown label
    rows[2][0] = "stop/missing.mp4"  # missing file
    write_manifest(root, rows)
    with pytest.raises(GestureError, match=r"manifest\.csv:3: unknown label 'wave'"):
        load_manifest(root)
    rows[1][1] = manifest_rows(root)[1][1]
    write_manifest(root, rows)
    with pytest.raises(GestureError, match=r"missing\.mp4: clip listed in manifest\.csv does not exist"):
        load_manifest(root)


def test_manifest_missing_columns_and_group_leak(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    write_manifest(root, [r[:3] for r in manifest_rows(root)], columns=("path", "label", "split"))
    with pytest.raises(GestureError, match=r"manifest\.csv: missing column\(s\) \['group'\]"):
        load_manifest(root)
    rows = manifest_rows(root)
    rows[3][3] = rows[0][3]  # a test clip joins a train clip's group
    write_manifest(root, rows)
    with pytest.raises(GestureError, match="cross splits"):
        load_manifest(root)


def test_manifest_clip_listed_twice_raises(data_root, tmp_path):
    """One clip in train and in test (different groups): check_no_group_leak cannot see it."""
    root = copy_of(data_root, tmp_path)
    rows = manifest_rows(root)
    rows.append([rows[0][0], rows[0][1], "test", "another-group", "{}"])  # line 14
    write_manifest(root, rows)
    with pytest.raises(GestureError, match=r"manifest\.csv: lists swipe_left/swipe_left_000\.mp4 "
                                           r"twice \(lines 2 and 14\)"):
        load_manifest(root)
    rows[-1][0] = "./" + rows[0][0].replace("/", "\\")  # same file, spelled differently
    write_manifest(root, rows)
    with pytest.raises(GestureError, match="twice"):
        load_manifest(root)


def test_manifest_class_with_no_rows_raises(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    write_manifest(root, [r for r in manifest_rows(root) if r[1] != "stop"])
    with pytest.raises(GestureError, match=r"manifest\.csv: has no clips of class\(es\) \['stop'\]"):
        load_manifest(root)


def test_manifest_label_without_folder_or_rows_raises(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    write_manifest(root, manifest_rows(root))
    (root / "labels.txt").write_text("\n".join([*LABELS, "swipe_up"]) + "\n")  # no folder, no rows
    with pytest.raises(GestureError, match=r"no clips of class\(es\) \['swipe_up'\]"):
        load_manifest(root)


def test_manifest_rows_without_group_warn(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    rows = manifest_rows(root)
    rows[4][3] = rows[5][3] = ""
    write_manifest(root, rows)
    with pytest.warns(UserWarning, match=r"2 row\(s\) have an empty group \(e\.g\. line 6\)"):
        records = load_manifest(root)
    assert records[4].group == "swipe_right/swipe_right_000"  # its own group


def test_manifest_clip_outside_its_label_folder_warns(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    rows = manifest_rows(root)
    rows[0][1] = "stop"  # a swipe_left file labelled stop: probably a mistake
    write_manifest(root, rows)
    with pytest.warns(UserWarning, match=r"1 clip\(s\) are not inside their label's folder "
                                         r"\(e\.g\. line 2: swipe_left/swipe_left_000\.mp4 labelled 'stop'\)"):
        records = load_manifest(root)
    assert records[0].label == "stop"  # a warning only: the manifest decides
    write_manifest(root, manifest_rows(root))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean manifest loads without any warning
        load_manifest(root)


# ---------------------------------------------------------------- flips


def test_flip_label_pairs():
    six = ["swipe_left", "swipe_right", "swipe_up", "swipe_down", "stop", "no_gesture"]
    assert flip_label("swipe_left", six) == "swipe_right"
    assert flip_label("swipe_right", six) == "swipe_left"
    assert flip_label("swipe_up", six) == "swipe_up"  # horizontal flip keeps up/down
    assert flip_label("swipe_up", six, horizontal=False) == "swipe_down"
    assert flip_label("swipe_left", six, horizontal=False) == "swipe_left"
    assert flip_label("stop", six) == "stop" and flip_label("no_gesture", six, False) == "no_gesture"
    assert can_flip("swipe_up", ["swipe_up", "stop"], horizontal=True)
    assert not can_flip("swipe_up", ["swipe_up", "stop"], horizontal=False)
    with pytest.raises(GestureError, match="not a class"):
        flip_label("swipe_up", ["swipe_up", "stop"], horizontal=False)
    with pytest.raises(GestureError, match="unknown label"):
        flip_label("wave", six)


@pytest.mark.parametrize(
    ("direction", "label", "horizontal", "axis", "new_label"),
    [
        ("left", "swipe_left", True, 0, "swipe_right"),
        ("right", "swipe_right", True, 0, "swipe_left"),
        ("up", "swipe_up", False, 1, "swipe_down"),
        ("down", "swipe_down", False, 1, "swipe_up"),
    ],
)
def test_flip_reverses_motion_and_swaps_label(direction, label, horizontal, axis, new_label):
    frames = swipe(direction)
    before = np.diff(centroid(frames)[:, axis])
    flipped, flipped_label = flip_clip(frames, label, horizontal=horizontal)
    after = np.diff(centroid(flipped)[:, axis])
    assert flipped_label == new_label
    np.testing.assert_allclose(after, -before)  # same speed, opposite direction
    assert flipped.flags.c_contiguous and flipped.shape == frames.shape
    twice, twice_label = flip_clip(flipped, flipped_label, horizontal=horizontal)
    np.testing.assert_array_equal(twice, frames)
    assert twice_label == label


def test_random_augmentation_keeps_label_and_motion_consistent():
    six = ["swipe_left", "swipe_right", "swipe_up", "swipe_down", "stop", "no_gesture"]
    aug = AugmentConfig(hflip_p=0.5, vflip_p=0.5)
    seen = set()
    for seed in range(24):
        for label, direction, axis in (("swipe_left", "left", 0), ("swipe_down", "down", 1)):
            frames = swipe(direction)
            out, new, _ = augment_clip(frames, label, six, np.random.default_rng(seed), aug)
            assert out.shape == frames.shape and out.dtype == np.uint8
            assert not np.shares_memory(out, frames)
            moves = np.diff(centroid(out)[:, axis]).sum()
            positive = {"swipe_right": True, "swipe_left": False,
                        "swipe_down": True, "swipe_up": False}[new]
            assert (moves > 0) == positive, (seed, label, new, moves)
            seen.add(new)
    assert seen == {"swipe_left", "swipe_right", "swipe_up", "swipe_down"}
    # without the partner class the clip is never flipped along that axis
    for seed in range(10):
        _, new, _ = augment_clip(swipe("left"), "swipe_left", ["swipe_left", "stop"],
                              np.random.default_rng(seed), aug)
        assert new == "swipe_left"


@pytest.mark.parametrize(("labels", "aug", "axis"), [
    (["swipe_left", "stop"], AugmentConfig(hflip_p=1.0, vflip_p=0.0), "horizontal"),
    (["swipe_up", "stop", "no_gesture"], AugmentConfig(hflip_p=0.0, vflip_p=1.0), "vertical"),
])
def test_incomplete_flip_pair_turns_the_axis_off_for_every_class(labels, aug, axis):
    """Flipping only the classes without a partner would make 'mirrored' mean 'not
    swipe_left': an axis with an incomplete pair is off for all classes."""
    aug = replace(aug, brightness=0.0, contrast=0.0, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))
    still = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    for seed in range(5):
        out, new, _ = augment_clip(still, "stop", labels, np.random.default_rng(seed), aug)
        np.testing.assert_array_equal(out, still)  # never flipped
        assert new == "stop"
    assert not can_flip_axis(labels, horizontal=axis == "horizontal")
    assert can_flip_axis(labels, horizontal=axis != "horizontal")
    full = [*labels, "swipe_right" if axis == "horizontal" else "swipe_down"]
    assert can_flip_axis(full, horizontal=axis == "horizontal")
    out, _, _ = augment_clip(still, "stop", full, np.random.default_rng(0), aug)
    assert not np.array_equal(out, still)  # with the pair complete, stop is flipped


def test_dataset_warns_once_and_reports_the_flips_it_uses(data_root):
    records = [r for r in load_manifest(data_root) if r.label != "swipe_right"]
    labels = ["swipe_left", "stop"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = GestureClipDataset(records, labels, CLIP, augment=True)
        for i in range(len(ds)):
            ds[i]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "horizontal flips turned off" in messages[0]
    assert "['swipe_left']" in messages[0] and "['swipe_right']" in messages[0]
    assert ds.aug.hflip_p == 0.0 and ds.aug.brightness == AugmentConfig().brightness
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all pairs complete: no warning, flips kept
        assert GestureClipDataset(records, LABELS, CLIP, augment=True).aug.hflip_p == 0.5


# ---------------------------------------------------------------- tensors


def test_to_tensor_normalises_and_inverts():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 10, 12, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's
    x = to_tensor(frames, mean, std)
    assert x.shape == (4, 3, 10, 12) and x.dtype == torch.float32
    ref = (torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
           - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    # (torch.testing.assert_close costs seconds of imports on first use)
    np.testing.assert_allclose(x.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(to_uint8(x, mean, std), frames)
    assert to_tensor(frames[0], mean, std).shape == (3, 10, 12)
    with pytest.raises(GestureError):
        to_tensor(frames.astype(np.float32), mean, std)


# ---------------------------------------------------------------- dataset and cache


def test_dataset_items_shapes_dtypes_and_values(data_root):
    records = load_manifest(data_root)
    ds = GestureClipDataset(records, LABELS, CLIP)
    assert len(ds) == 12 and ds.targets == [LABELS.index(r.label) for r in records]
    x, y = ds[5]
    assert x.shape == (6, 3, 24, 24) and x.dtype == torch.float32
    assert isinstance(y, int) and y == LABELS.index(records[5].label)
    raw = read_clip(records[5].path, 6, 24)
    np.testing.assert_array_equal(ds.uint8(5), raw)
    np.testing.assert_array_equal(to_uint8(x, CLIP.mean, CLIP.std), raw)
    assert torch.equal(ds[-7][0], x) and torch.equal(ds[np.int64(5)][0], x)
    batch_x, batch_y = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch_x.shape == (4, 6, 3, 24, 24) and batch_y.dtype == torch.int64


def test_second_epoch_does_not_decode(data_root, monkeypatch):
    calls = []
    real = video.read_clip

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(video, "read_clip", counting)
    ds = GestureClipDataset(load_manifest(data_root), LABELS, CLIP, augment=True)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            ds[i]
    assert len(calls) == len(ds) == ds.cache.misses
    assert ds.cache.hits == 2 * len(ds)
    with pytest.raises(ValueError):  # cached clips are read-only: nobody corrupts them
        ds.uint8(0)[0, 0, 0, 0] = 1


def test_augmentation_is_seeded_and_varies_per_epoch(data_root):
    records = load_manifest(data_root)

    def run(seed, epochs=2):
        ds = GestureClipDataset(records, LABELS, CLIP, augment=True, seed=seed)
        out = []
        for e in range(epochs):
            ds.set_epoch(e)
            out.append(torch.stack([ds[i][0] for i in range(len(ds))]))
        return out

    a0, a1 = run(0)
    b0, b1 = run(0)
    c0, _ = run(1)
    assert torch.equal(a0, b0) and torch.equal(a1, b1)
    assert not torch.equal(a0, a1) and not torch.equal(a0, c0)


def test_dataset_flip_swaps_label_and_motion(data_root):
    records = [r for r in load_manifest(data_root) if r.label == "swipe_left"]
    aug = AugmentConfig(hflip_p=1.0, brightness=0.0, contrast=0.0, crop_scale=(1.0, 1.0),
                        crop_ratio=(1.0, 1.0))
    flipped = GestureClipDataset(records, LABELS, CLIP, augment=aug)
    plain = GestureClipDataset(records, LABELS, CLIP, augment=NO_AUG)
    x, y = flipped[0]
    x0, y0 = plain[0]
    assert (LABELS[y0], LABELS[y]) == ("swipe_left", "swipe_right")
    assert torch.equal(x, x0.flip(-1))
    xs = centroid(to_uint8(x, CLIP.mean, CLIP.std))[:, 0]
    assert xs[-1] > xs[0]  # now moves right


def test_bad_clip_in_dataset_raises(data_root, tmp_path):
    root = copy_of(data_root, tmp_path)
    bad = root / "stop" / "stop_001.mp4"
    bad.write_text("definitely not a video")
    records = load_manifest(root)
    ds = GestureClipDataset(records, LABELS, CLIP)
    i = [r.path for r in records].index(bad)
    with pytest.raises(GestureError, match=r"stop_001\.mp4: cannot be opened"):
        ds[i]
    with pytest.raises(GestureError, match=r"stop_001\.mp4: cannot be opened"):
        ds.preload()
    with pytest.raises(GestureError, match="not in"):
        GestureClipDataset([ClipRecord(bad, "wave")], LABELS, CLIP)


def test_build_datasets_share_cache_and_only_train_augments(data_root):
    sets = build_datasets(data_root, CLIP, seed=0)
    assert sum(len(d) for d in sets.values()) == 12
    assert sets["train"].aug is not None and sets["val"].aug is None
    assert sets["train"].cache is sets["test"].cache
    groups = {s: {r.group for r in d.records} for s, d in sets.items()}
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"])


# ---------------------------------------------------------------- per-frame hand targets


def test_hand_targets_follow_the_crop_and_flips():
    """``move_targets`` must put the target where ``augment_clip`` moved the pixels."""
    size = 64
    labels = ["swipe_left", "swipe_right", "swipe_up", "swipe_down"]
    aug = AugmentConfig(hflip_p=0.5, vflip_p=0.5, brightness=0.0, contrast=0.0,
                        crop_scale=(0.4, 1.0), crop_ratio=(0.7, 1.4))
    frames = swipe("right", n=8, size=size)
    c = centroid(frames)
    targets = np.column_stack([np.ones(8), (c[:, 0] + 0.5) / size, (c[:, 1] + 0.5) / size])
    targets = targets.astype(np.float32)
    flips, cut, checked = set(), 0, 0
    for seed in range(40):
        out, _, geometry = augment_clip(frames, "swipe_right", labels, np.random.default_rng(seed), aug)
        moved = move_targets(targets, geometry)
        flips.add(geometry[4:])
        for t in range(8):
            if moved[t, 0] == 0:  # its centre was cropped away
                cut += 1
                assert (moved[t] == 0).all()
                continue
            ys, xs = np.nonzero(out[t].mean(-1) > 128)
            if min(xs.min(), ys.min()) == 0 or max(xs.max(), ys.max()) == size - 1:
                continue  # partly cropped: what is left has another centre
            centre = np.array([xs.mean() + 0.5, ys.mean() + 0.5]) / size
            assert np.abs(centre - moved[t, 1:]).max() < 1.5 / size, (seed, t, geometry)
            checked += 1
    assert flips == {(False, False), (True, False), (False, True), (True, True)}
    assert checked > 200 and cut > 0


def test_hand_targets_of_generated_clips_and_of_clips_without_params(tiny_dataset):
    records = load_manifest(tiny_dataset)
    ds = GestureClipDataset(records, read_labels(tiny_dataset), CLIP, augment=True, with_hand=True)
    assert ds.has_hand_targets
    kinds = set()
    for i in range(len(ds)):
        x, y, hand = ds[i]
        assert x.shape == (6, 3, 24, 24) and hand.shape == (6, 3) and hand.dtype == torch.float32
        label, params = ds.records[i].label, ds.records[i].params
        visible = hand[:, 0]
        if label in ("stop", "swipe_left", "swipe_right", "swipe_up", "swipe_down"):
            assert visible.sum() >= 5, (label, hand)  # the crop may cut a hand near the edge
        elif params["path"] is None:
            assert (hand == 0).all()
            kinds.add("no hand")
        else:  # an idle hand: in view at one end of the clip, for at most half of it
            assert 1 <= visible.sum() <= 3 and (visible[0] == 1 or visible[-1] == 1)
            kinds.add("idle hand")
        assert ((hand[:, 1:] >= 0) & (hand[:, 1:] <= 1)).all()
    assert kinds == {"no hand", "idle hand"}
    # without ``with_hand`` the items are the usual pairs
    assert len(GestureClipDataset(records, read_labels(tiny_dataset), CLIP)[0]) == 2
    # imported clips do not say where their hand is: NaN, and the dataset knows it has none
    assert np.isnan(hand_targets({}, 6)).all()
    bare = [ClipRecord(r.path, r.label, r.split, r.group) for r in records]
    assert not GestureClipDataset(bare, read_labels(tiny_dataset), CLIP).has_hand_targets


# --------------------------------------------------------------------------- load_split
def test_load_split_matches_the_training_preprocessing_and_balances_a_limit(tiny_dataset):
    from gesture_utils.datasets import load_split

    clip = ClipConfig(num_frames=4, image_size=16)
    labels = read_labels(tiny_dataset)
    split = load_split(tiny_dataset, "test", clip)
    records = records_for(load_manifest(tiny_dataset), "test")
    ds = GestureClipDataset(records, labels, clip)
    assert split.clips.shape == (len(records), 4, 16, 16, 3) and split.clips.dtype == np.uint8
    assert split.paths == [str(r.path) for r in records] and split.labels == labels
    assert split.y.tolist() == [labels.index(r.label) for r in records]
    x = split.inputs(clip.mean, clip.std)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, np.stack([ds[i][0].numpy() for i in range(len(ds))]))
    train = load_split(tiny_dataset, "train", clip)
    few = load_split(tiny_dataset, "train", clip, limit=len(labels), seed=3)
    assert sorted(few.y.tolist()) == list(range(len(labels)))       # one clip per class
    assert set(few.paths) <= set(train.paths)
    assert few.paths == [p for p in train.paths if p in few.paths]  # manifest order kept


def test_load_split_names_the_folder_and_the_problem(tiny_dataset, tmp_path):
    from gesture_utils.datasets import load_split

    clip = ClipConfig(num_frames=4, image_size=16)
    with pytest.raises(GestureError, match="dataset folder not found"):
        load_split(tmp_path / "nowhere", "test", clip)
    with pytest.raises(GestureError, match="not labels of the model"):
        load_split(tiny_dataset, "test", clip, labels=["a", "b"])
