"""Jester-style import and dataset index writing (gesture_utils.importers)."""

from __future__ import annotations

import csv
import json
import warnings

import cv2
import numpy as np
import pytest

from gesture_utils.errors import GestureError
from gesture_utils.importers import (
    JESTER_TO_OURS,
    ManifestRow,
    import_jester,
    read_jester_csv,
    write_dataset_index,
)
from gesture_utils.splits import check_no_group_leak
from gesture_utils.video import read_frames


def _make_video(folder, n_frames, value):
    folder.mkdir(parents=True)
    for i in range(n_frames):
        img = np.full((12, 16, 3), value + i, dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"{i + 1:05d}.png"), img)  # png: lossless


@pytest.fixture()
def jester(tmp_path):
    """A fake Jester: 6 videos per used class, distractor class, one bad row, one missing id."""
    root = tmp_path / "20bn-jester"
    lines = []
    vid = 100
    for k, label in enumerate(["Swiping Left", "Swiping Right", "Doing other things"]):
        for _ in range(6):
            _make_video(root / str(vid), n_frames=3 + k, value=10 * k)
            lines.append(f"{vid};{label}")
            vid += 1
    lines.insert(3, "this row has no separator")
    lines.insert(5, ";Swiping Left")          # empty id
    lines.append("999;Swiping Left")          # no folder for 999
    csv_path = tmp_path / "jester-v1-train.csv"
    csv_path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return root, csv_path


def _manifest(out):
    with (out / "manifest.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_read_jester_csv_skips_bad_rows_with_one_warning(jester):
    _, csv_path = jester
    with pytest.warns(UserWarning, match="skipped 2 malformed row"):
        pairs = read_jester_csv(csv_path)
    assert len(pairs) == 19 and pairs[0] == ("100", "Swiping Left")
    with pytest.raises(GestureError, match="line 4"):
        read_jester_csv(csv_path, strict=True)


def test_import_jester_subset_by_class_names(jester, tmp_path):
    root, csv_path = jester
    out = tmp_path / "data" / "jester"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import_jester(root, csv_path, out, ["Swiping Left", "Swiping Right"],
                      val_fraction=0.2, test_fraction=0.2, seed=0)
    messages = " | ".join(str(w.message) for w in caught)
    assert "malformed" in messages and "999" in messages  # skipped, and said so

    assert (out / "labels.txt").read_text().split() == ["swipe_left", "swipe_right"]
    rows = _manifest(out)
    assert list(rows[0]) == ["path", "label", "split", "group", "params"]
    assert sorted({r["label"] for r in rows}) == ["swipe_left", "swipe_right"]
    assert sum(r["label"] == "swipe_left" for r in rows) == 6   # 999 skipped, distractor out
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    check_no_group_leak(rows)
    first = rows[0]
    assert first["path"] == "swipe_left/100"
    assert json.loads(first["params"]) == {"id": "100", "source": "jester",
                                           "source_label": "Swiping Left"}
    # frames arrive unchanged and in order
    np.testing.assert_array_equal(read_frames(out / first["path"]), read_frames(root / "100"))
    # and the series' own reader accepts the result
    from gesture_utils.datasets import load_manifest

    records = load_manifest(out)
    assert len(records) == len(rows) and records[0].path == (out / "swipe_left" / "100")


def test_import_jester_mapping_max_per_class_and_symlinks(jester, tmp_path):
    root, csv_path = jester
    out = tmp_path / "mine"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_jester(root, csv_path, out, {"Swiping Right": "right", "Doing other things": "other"},
                      max_per_class=4, mode="symlink", val_fraction=0.25, test_fraction=0.25)
    rows = _manifest(out)
    assert (out / "labels.txt").read_text().split() == ["right", "other"]
    assert [sum(r["label"] == c for r in rows) for c in ("right", "other")] == [4, 4]
    clip = out / rows[0]["path"]
    assert clip.is_symlink() and clip.resolve() == (root / "106").resolve()


def test_import_jester_errors(jester, tmp_path):
    root, csv_path = jester
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(GestureError, match="never appear in the CSV"):
            import_jester(root, csv_path, tmp_path / "a", ["Thumb Up"])
        with pytest.raises(GestureError, match="not found"):
            import_jester(tmp_path / "nope", csv_path, tmp_path / "a", ["Swiping Left"])
        only_missing = tmp_path / "missing.csv"
        only_missing.write_text("999;Swiping Left\n", encoding="utf-8")
        with pytest.raises(GestureError, match="999"):  # strict: a missing folder is an error
            import_jester(root, only_missing, tmp_path / "b", ["Swiping Left"], strict=True)
        with pytest.raises(GestureError, match="mode"):
            import_jester(root, csv_path, tmp_path / "a", ["Swiping Left"], mode="move")
        out = tmp_path / "c"
        import_jester(root, csv_path, out, ["Swiping Left", "Swiping Right"],
                      val_fraction=0.2, test_fraction=0.2)
        with pytest.raises(GestureError, match="already holds a dataset"):
            import_jester(root, csv_path, out, ["Swiping Left", "Swiping Right"])
        import_jester(root, csv_path, out, ["Swiping Left", "Swiping Right"], overwrite=True,
                      val_fraction=0.2, test_fraction=0.2)


def test_import_jester_class_without_folders_is_an_error(tmp_path):
    root = tmp_path / "root"
    _make_video(root / "1", 2, 0)
    csv_path = tmp_path / "l.csv"
    csv_path.write_text("1;Swiping Left\n2;Swiping Right\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(GestureError, match=r"swipe_right"):
            import_jester(root, csv_path, tmp_path / "o", ["Swiping Left", "Swiping Right"],
                          val_fraction=0, test_fraction=0)


def test_default_mapping_covers_our_classes():
    from gesture_utils.config import DEFAULT_CLASSES

    assert sorted(JESTER_TO_OURS.values()) == sorted(DEFAULT_CLASSES)


def test_write_dataset_index_checks_rows(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.mp4").write_bytes(b"x")
    row = ManifestRow("a/x.mp4", "a", "train", "g0", {})
    write_dataset_index(tmp_path, ["a", "b"], [row])
    assert (tmp_path / "labels.txt").read_text() == "a\nb\n"
    assert _manifest(tmp_path)[0]["params"] == "{}"
    with pytest.raises(GestureError, match="not in"):
        write_dataset_index(tmp_path, ["b"], [row])
    with pytest.raises(GestureError, match="does not exist"):
        write_dataset_index(tmp_path, ["a"], [ManifestRow("a/y.mp4", "a", "train", "g", {})])


def test_cli_import_jester(jester, tmp_path, capsys):
    from gesture_utils.cli import main

    root, csv_path = jester
    out = tmp_path / "cli_out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["import-jester", str(root), str(csv_path), "--out", str(out),
                     "--classes", "Swiping Left", "Swiping Right", "--max-per-class", "5"]) == 0
    assert "imported 10 clips" in capsys.readouterr().out
    assert len(_manifest(out)) == 10
    assert main(["import-jester", str(root), str(tmp_path / "nope.csv"), "--out", str(out)]) == 2
    assert "nope.csv" in capsys.readouterr().err
