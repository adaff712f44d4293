"""Metrics, confusion matrices, figures and saving (gesture_utils.evaluation, notebook 05)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from gesture_utils import evaluation as ev  # noqa: E402
from gesture_utils.errors import GestureError  # noqa: E402

LABELS = ["a", "b", "c"]


def test_metrics_match_a_hand_computed_example():
    # true a a b b c c / predicted a b b b a c
    m = ev.compute_metrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 0, 2], LABELS)
    assert m["n"] == 6 and m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    pc = m["per_class"]
    # precision = correct / predicted as that class (column), recall = correct / true (row)
    assert pc["a"]["precision"] == pytest.approx(1 / 2) and pc["a"]["recall"] == pytest.approx(1 / 2)
    assert pc["b"]["precision"] == pytest.approx(2 / 3) and pc["b"]["recall"] == pytest.approx(1.0)
    assert pc["c"]["precision"] == pytest.approx(1.0) and pc["c"]["recall"] == pytest.approx(1 / 2)
    assert pc["a"]["f1"] == pytest.approx(0.5)
    assert pc["b"]["f1"] == pytest.approx(0.8)
    assert pc["c"]["f1"] == pytest.approx(2 / 3)
    assert [pc[k]["support"] for k in LABELS] == [2, 2, 2]
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m["confusion_normalised"][0] == pytest.approx([0.5, 0.5, 0.0])


def test_confusion_keeps_label_order_with_absent_and_never_predicted_classes():
    labels = ["w", "x", "y", "z"]
    y_true, y_pred = [3, 0, 1, 1], [0, 0, 1, 0]  # y never occurs, z never predicted
    m = ev.compute_metrics(y_true, y_pred, labels)
    cm = np.array(m["confusion"])
    assert cm.shape == (4, 4)
    assert cm.tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert m["labels"] == labels and list(m["per_class"]) == labels
    assert m["per_class"]["z"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["per_class"]["y"]["support"] == 0
    norm = np.array(m["confusion_normalised"])
    assert norm.sum(axis=1).tolist() == pytest.approx([1, 1, 0, 1])  # absent row stays 0, no NaN
    # macro F1 averages the three classes that occur
    f1 = [m["per_class"][k]["f1"] for k in ("w", "x", "z")]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))


def test_row_normalisation_equals_sklearn():
    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    ours = ev.compute_metrics(y_true, y_pred, list("wxyz"))["confusion_normalised"]
    theirs = confusion_matrix(y_true, y_pred, labels=range(4), normalize="true")
    np.testing.assert_allclose(ours, theirs)


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="outside"):
        ev.compute_metrics([0, 3], [0, 1], LABELS)
    with pytest.raises(ValueError, match="items"):
        ev.compute_metrics([0, 1], [0], LABELS)


def _result(name="m", probs=None):
    y = np.array([0, 1, 2, 2])
    if probs is None:
        probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.1, 0.3], [0.1, 0.3, 0.6]])
    return ev.EvalResult(name, LABELS, y, probs, paths=[f"c{i}.mp4" for i in range(4)])


def test_result_errors_are_sorted_by_confidence_and_serialisable():
    probs = np.array([[0.1, 0.9, 0.0], [0.2, 0.7, 0.1], [0.6, 0.1, 0.3], [0.1, 0.3, 0.6]])
    r = _result(probs=probs)
    assert r.y_pred.tolist() == [1, 1, 0, 2]
    assert r.errors().tolist() == [0, 2]  # 0.9 confident mistake before 0.6
    d = json.loads(json.dumps(r.to_dict()))
    assert d["accuracy"] == pytest.approx(0.5)
    assert d["predictions"][0] == {"path": "c0.mp4", "true": "a", "predicted": "b", "confidence": 0.9}
    assert "precision" in r.report() and "c" in r.report()


def test_evaluate_predictor_with_a_lookup_predictor():
    clips = [np.full((4, 8, 8, 3), k, np.uint8) for k in (0, 1, 2, 1)]
    y = [0, 1, 2, 1]

    def predict(clip):  # the clip's pixel value is its class; always wrong on class 2
        k = int(clip[0, 0, 0, 0])
        p = np.zeros(3)
        p[0 if k == 2 else k] = 1
        return p

    r = ev.evaluate_predictor(predict, clips, y, LABELS, name="lookup")
    assert r.accuracy == pytest.approx(3 / 4)
    assert r.metrics["confusion"][2] == [1, 0, 0]
    with pytest.raises(GestureError, match="2 scores for 3 labels"):
        ev.evaluate_predictor(lambda c: np.ones(2), clips, y, LABELS)


def test_agreement_between_backends():
    ref = _result("fp32")
    same = _result("onnx", probs=ref.probs + 1e-6)
    flipped = ref.probs.copy()
    flipped[2] = [0.1, 0.1, 0.8]  # fixes the one mistake
    other = _result("int8", probs=flipped)
    agr = ev.agreement({"fp32": ref, "onnx": same, "int8": other}, reference="fp32")
    assert agr["fp32"]["top1_agreement"] == 1.0 and agr["fp32"]["max_abs_prob_diff"] == 0.0
    assert agr["onnx"]["top1_agreement"] == 1.0 and agr["onnx"]["max_abs_prob_diff"] < 1e-5
    assert agr["int8"]["top1_agreement"] == pytest.approx(0.75)
    assert agr["int8"]["accuracy_change"] == pytest.approx(0.25)
    rows = ev.compare_models([ref, other])
    assert [r["errors"] for r in rows] == [1, 0]
    assert "int8" in ev.format_comparison(rows)


def test_confusion_plot_uses_label_order_and_values():
    cm = np.array([[3, 1], [0, 4]])
    ax = ev.plot_confusion(cm, ["swipe_left", "swipe_right"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["swipe_left", "swipe_right"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["swipe_left", "swipe_right"]
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0", "4"]  # row-major = true, predicted
    plt.close("all")
    fig = ev.plot_confusions([_result("mean"), _result("temporal")])
    assert len(fig.axes) == 2 and "mean" in fig.axes[0].get_title()
    plt.close("all")


def test_frame_strip_and_error_gallery():
    clip = np.stack([np.full((6, 5, 3), t * 10, np.uint8) for t in range(10)])
    strip = ev.frame_strip(clip, num=4, gap=2)
    assert strip.shape == (6, 4 * 5 + 3 * 2, 3)
    assert strip[0, 0, 0] == 0 and strip[0, -1, 0] == 90  # first and last frame at the ends
    r = _result()
    fig = ev.plot_error_gallery(r, [clip] * 4, max_items=5)
    assert len(fig.axes) == r.errors().size == 1
    assert "true c" in fig.axes[0].get_title() and "predicted a" in fig.axes[0].get_title()
    perfect = _result(probs=np.eye(3)[[0, 1, 2, 2]])
    fig = ev.plot_error_gallery(perfect, [clip] * 4)
    assert "no misclassified" in fig.axes[0].texts[0].get_text()
    plt.close("all")


def test_save_results_is_atomic_and_round_trips(tmp_path):
    r = _result("temporal")
    saved = ev.save_results(r, tmp_path)
    assert saved["json"].name == "temporal_metrics.json" and saved["png"].name == "temporal_confusion.png"
    data = json.loads(saved["json"].read_text())
    assert data["accuracy"] == pytest.approx(r.accuracy) and data["labels"] == LABELS
    assert saved["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["temporal_confusion.png",
                                                          "temporal_metrics.json"]  # no temp left


# --------------------------------------------------------------------------- CLI
COLOURS = {"red": (220, 20, 20), "green": (20, 220, 20), "blue": (20, 20, 220)}


def _colour_dataset(root):
    """3 classes of solid-colour clips; the test split holds one mislabelled 'blue' clip
    that is really red, so a colour classifier gets exactly 5 of 6 right."""
    from gesture_utils.video import write_video

    rows = ["path,label,split,group,params"]
    plan = [("red", "red", "test"), ("red", "red", "test"), ("green", "green", "test"),
            ("green", "green", "test"), ("blue", "blue", "test"), ("blue", "red", "test"),
            ("red", "red", "train"), ("green", "green", "train"), ("blue", "blue", "train")]
    for i, (label, colour, split) in enumerate(plan):
        frames = np.empty((6, 16, 16, 3), np.uint8)
        frames[:] = COLOURS[colour]
        rel = f"{label}/{label}_{i:03d}.mp4"
        write_video(root / rel, frames, fps=6)
        rows.append(f"{rel},{label},{split},g{i},{{}}")
    (root / "labels.txt").write_text("\n".join(COLOURS) + "\n")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def _colour_onnx(path, num_frames=4, size=16):
    """logits = 10 * mean colour of the clip: a 'model' whose answer we know."""
    import onnx
    from onnx import TensorProto, helper

    w = (10 * np.eye(3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["video", "axes"], ["m"], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["logits"])], "colour",
        [helper.make_tensor_value_info("video", TensorProto.FLOAT, ["batch", num_frames, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor("axes", TensorProto.INT64, [3], [1, 3, 4]),
         helper.make_tensor("w", TensorProto.FLOAT, [3, 3], w.ravel().tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    meta = {"labels": json.dumps(list(COLOURS)), "num_frames": str(num_frames),
            "image_size": str(size), "mean": "[0.5, 0.5, 0.5]", "std": "[0.5, 0.5, 0.5]",
            "embed_dim": "3", "causal": "false", "hand_probe": "false"}
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_evaluate_cli_on_a_tiny_onnx_model(tmp_path, capsys):
    from gesture_utils.cli import main

    data = _colour_dataset(tmp_path / "data")
    model = _colour_onnx(tmp_path / "colour.onnx")
    out = tmp_path / "out"
    assert main(["evaluate", str(model), "--data", str(data), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 6 and report["accuracy"] == pytest.approx(5 / 6)
    assert report["labels"] == ["red", "green", "blue"]
    assert report["confusion"] == [[2, 0, 0], [0, 2, 0], [1, 0, 1]]
    saved = json.loads((out / "colour_metrics.json").read_text())
    assert saved["split"] == "test" and len(saved["predictions"]) == 6
    assert (out / "colour_confusion.png").is_file() and (out / "colour_errors.png").is_file()


def test_evaluate_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    from gesture_utils.cli import main

    data = _colour_dataset(tmp_path / "data")
    assert main(["evaluate", str(tmp_path / "nope.onnx"), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope.onnx" in err and len(err.splitlines()) == 1
    model = _colour_onnx(tmp_path / "colour.onnx")
    assert main(["evaluate", str(model), "--data", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    (tmp_path / "weights.h5").write_bytes(b"\0")
    assert main(["evaluate", str(tmp_path / "weights.h5"), "--data", str(data)]) == 2
    assert "unsupported model type" in capsys.readouterr().err


def test_evaluate_cli_on_a_tiny_checkpoint(tmp_path, capsys):
    import torch

    from gesture_utils.cli import main
    from gesture_utils.config import ModelConfig
    from gesture_utils.datasets import load_split, to_tensor
    from gesture_utils.models import build_model, save_checkpoint

    data = _colour_dataset(tmp_path / "data")
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_size=16, num_frames=4, temporal_depth=1), 3,
                        labels=list(COLOURS)).eval()
    ckpt = save_checkpoint(tmp_path / "tiny.pt", model, selection_split="val")
    assert main(["evaluate", str(ckpt), "--data", str(data), "--out", str(tmp_path), "--json",
                 "--split", "val"]) == 2  # the colour set has no val clips: one-line error
    assert "no clips in split 'val'" in capsys.readouterr().err
    assert main(["evaluate", str(ckpt), "--data", str(data), "--out", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 6 and np.array(report["confusion"]).sum() == 6
    # the CLI's PyTorch path = softmax(model(normalised clip)) on the same decoded clips
    loaded = ev.load_model(ckpt)
    assert loaded.selection_split == "val" and loaded.labels == list(COLOURS)
    split = load_split(data, "test", loaded.clip, labels=loaded.labels)
    clips, y = split.clips, split.y
    x = to_tensor(clips[0], model.clip.mean, model.clip.std)[None]
    with torch.no_grad():
        want = torch.softmax(model(x), -1)[0].numpy()
    np.testing.assert_allclose(loaded.predict_proba(clips[0]), want, atol=1e-6)
    saved = json.loads((tmp_path / "tiny_metrics.json").read_text())
    assert [p["true"] for p in saved["predictions"]] == [loaded.labels[i] for i in y]
