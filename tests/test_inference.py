"""Torch-free ONNX inference (gesture_utils.inference) and the ``predict`` CLI.

The models here are small linear ONNX graphs written with ``onnx.helper`` (no PyTorch
export, so these tests take seconds): a clip graph whose weights are built from an
encoder graph and a head graph, so the streaming pair must give exactly the clip
graph's answer.  Export from PyTorch is tested in test_export.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gesture_utils.cli import main
from gesture_utils.errors import GestureError
from gesture_utils.inference import (
    OnnxGestureClassifier,
    OnnxStreamingModel,
    normalize,
    softmax,
)
from gesture_utils.runtime import default_providers
from gesture_utils.video import read_clip, write_video

LABELS = ["swipe_left", "swipe_right", "stop"]
T, S, D, K = 4, 16, 8, len(LABELS)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # not 0.5: catches swapped order


def _meta(**override) -> dict[str, str]:
    meta = {"labels": json.dumps(LABELS), "num_frames": str(T), "image_size": str(S),
            "mean": json.dumps(MEAN), "std": json.dumps(STD), "head": "transformer",
            "causal": "false", "embed_dim": str(D), "hand_probe": "false"}
    meta.update(override)
    return {k: v for k, v in meta.items() if v is not None}


def _linear_graph(path: Path, in_name: str, in_shape: list, out_name: str, weight: np.ndarray,
                  meta: dict[str, str] | None) -> Path:
    """``out = flatten(input, axis=1) @ weight`` as an ONNX file with metadata."""
    nodes = [helper.make_node("Flatten", [in_name], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], [out_name])]
    graph = helper.make_graph(
        nodes, "linear", [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [in_shape[0], weight.shape[1]])],
        initializer=[numpy_helper.from_array(weight.astype(np.float32), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict:
    """Encoder W_e (3SS, D), head W_h (T*D, K) and the clip graph that composes them."""
    root = tmp_path_factory.mktemp("onnx")
    rng = np.random.default_rng(0)
    w_e = rng.normal(0, 0.02, (3 * S * S, D)).astype(np.float32)
    w_h = rng.normal(0, 0.5, (T * D, K)).astype(np.float32)
    w_clip = np.concatenate([w_e @ w_h[t * D:(t + 1) * D] for t in range(T)])
    return {
        "w_clip": w_clip,
        "clip": _linear_graph(root / "m.onnx", "video", ["batch", T, 3, S, S], "logits",
                              w_clip, _meta()),
        "encoder": _linear_graph(root / "m.encoder.onnx", "frames", ["frames", 3, S, S],
                                 "embeddings", w_e, _meta()),
        "head": _linear_graph(root / "m.head.onnx", "embeddings", ["batch", T, D], "logits",
                              w_h, _meta()),
        "root": root,
    }


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """A video file, a PNG frame folder (lossless) and the raw frames of the folder."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:30, 0:44]
    frames = []
    for i in range(11):  # a bright blob moving right on a noisy background, 30x44 (odd aspect)
        f = rng.integers(0, 60, (30, 44, 3), dtype=np.uint8)
        f[(yy - 15) ** 2 + (xx - 4 - 3 * i) ** 2 < 30] = (230, 200, 40)
        frames.append(f)
    frames = np.stack(frames)
    folder = root / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i + 1:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    video = write_video(root / "good.mp4", frames, fps=8)
    other = write_video(root / "other.mp4", frames[::-1].copy(), fps=8)
    bad = root / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video")
    return {"video": video, "other": other, "folder": folder, "frames": frames, "bad": bad}


# --------------------------------------------------------------------------- no torch
def test_inference_module_does_not_import_torch():
    code = ("import sys, gesture_utils.inference, gesture_utils.cli; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- preprocessing
def test_normalize_equals_datasets_to_tensor():
    from gesture_utils.datasets import to_tensor

    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (T, 9, 7, 3), dtype=np.uint8)
    clip[0, 0, 0], clip[0, 0, 1] = (0, 0, 0), (255, 255, 255)  # both ends of the range
    ours = normalize(clip, MEAN, STD)
    theirs = to_tensor(clip, MEAN, STD).numpy()
    assert ours.dtype == np.float32 and ours.shape == (T, 3, 9, 7)
    # float32 rounding only (values are within +-2.7); a wrong channel order or a missing
    # /255 would be off by > 0.1
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(normalize(clip[0], MEAN, STD), to_tensor(clip[0], MEAN, STD).numpy(),
                               rtol=0, atol=1e-6)
    assert ours[0, :, 0, 0] == pytest.approx([-m / s for m, s in zip(MEAN, STD, strict=True)], abs=1e-5)


def test_classifier_reads_everything_from_metadata(graphs):
    clf = OnnxGestureClassifier(graphs["clip"])
    assert clf.labels == LABELS and clf.num_frames == T and clf.image_size == S
    assert clf.mean == MEAN and clf.std == STD
    assert clf.providers and set(clf.providers) <= set(default_providers())


@pytest.mark.parametrize("source", ["video", "folder"])
def test_preprocess_matches_the_training_pipeline(graphs, clips, source):
    from gesture_utils.datasets import to_tensor

    clf = OnnxGestureClassifier(graphs["clip"])
    x = clf.preprocess(clips[source])
    want = to_tensor(read_clip(clips[source], T, S), MEAN, STD).numpy()[None]
    assert x.shape == (1, T, 3, S, S) and x.dtype == np.float32
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-6)


def test_array_input_equals_path_input(graphs, clips):
    clf = OnnxGestureClassifier(graphs["clip"])
    np.testing.assert_array_equal(clf.preprocess(clips["frames"]), clf.preprocess(clips["folder"]))


def test_predict_proba_matches_a_numpy_reference(graphs, clips):
    clf = OnnxGestureClassifier(graphs["clip"])
    x = clf.preprocess(clips["video"])
    ref = softmax(x.reshape(1, -1).astype(np.float64) @ graphs["w_clip"].astype(np.float64))[0]
    p = clf.predict_proba(clips["video"])
    assert p.shape == (K,) and abs(float(p.sum()) - 1.0) < 1e-5
    np.testing.assert_allclose(p, ref, atol=1e-5)
    label, conf = clf.predict(clips["video"])
    assert label == LABELS[int(np.argmax(ref))] and conf == pytest.approx(float(ref.max()), abs=1e-5)


# --------------------------------------------------------------------------- streaming
def test_streaming_pair_equals_clip_graph_on_every_window(graphs, clips):
    clf = OnnxGestureClassifier(graphs["clip"])
    stream = OnnxStreamingModel(graphs["encoder"], graphs["head"])
    assert stream.embed_dim == D and stream.labels == LABELS and stream.causal is False
    frames = clips["frames"]
    cache = [stream.encode_frame(f) for f in frames]          # one encoder pass per frame
    assert cache[0].shape == (D,)
    for end in range(T, len(frames) + 1):
        window = frames[end - T:end]
        p_stream, _ = stream.classify_window(np.stack(cache[end - T:end]))
        np.testing.assert_allclose(p_stream, clf.predict_proba(window), atol=1e-5)
    batch = np.stack([np.stack(cache[i:i + T]) for i in range(3)])
    assert stream.classify_window(batch)[0].shape == (3, K)


def test_streaming_frame_preprocessing_matches_clip_preprocessing(graphs, clips):
    clf = OnnxGestureClassifier(graphs["clip"])
    stream = OnnxStreamingModel(graphs["encoder"], graphs["head"])
    frames = clips["frames"][:T]
    per_frame = np.concatenate([stream.preprocess_frame(f) for f in frames])
    np.testing.assert_array_equal(per_frame, clf.preprocess(frames)[0])


# --------------------------------------------------------------------------- errors
def test_missing_and_non_onnx_files_raise_one_line_errors(tmp_path):
    with pytest.raises(GestureError, match="nope.onnx: model file not found"):
        OnnxGestureClassifier(tmp_path / "nope.onnx")
    fake = tmp_path / "fake.onnx"
    fake.write_text("this is not a model")
    with pytest.raises(GestureError, match="fake.onnx: not a loadable ONNX model") as e:
        OnnxGestureClassifier(fake)
    assert "\n" not in str(e.value)


def test_missing_metadata_is_reported_with_the_file(graphs, tmp_path):
    path = _linear_graph(tmp_path / "bare.onnx", "video", ["batch", T, 3, S, S], "logits",
                         graphs["w_clip"], _meta(labels=None, std=None))
    with pytest.raises(GestureError, match=r"bare\.onnx: ONNX metadata lacks labels, std") as e:
        OnnxGestureClassifier(path)
    assert "re-export it (notebook 04 or `python -m gesture_utils export" in str(e.value)
    assert "\n" not in str(e.value)
    broken = _linear_graph(tmp_path / "broken_meta.onnx", "video", ["batch", T, 3, S, S], "logits",
                           graphs["w_clip"], _meta(num_frames="eight"))
    with pytest.raises(GestureError, match="broken_meta.onnx: ONNX metadata is malformed"):
        OnnxGestureClassifier(broken)


def test_wrong_input_shape_gets_a_clear_error(graphs, tmp_path):
    # the per-frame encoder is not a clip model
    with pytest.raises(GestureError, match=r"m\.encoder\.onnx: input 'frames' has shape"):
        OnnxGestureClassifier(graphs["encoder"])
    # a clip graph whose frame count disagrees with its metadata
    w = np.zeros((6 * 3 * S * S, K), np.float32)
    odd = _linear_graph(tmp_path / "t6.onnx", "video", ["batch", 6, 3, S, S], "logits", w, _meta())
    with pytest.raises(GestureError, match=r"t6\.onnx: .*needs \(\*, 4, 3, 16, 16\)"):
        OnnxGestureClassifier(odd)
    # encoder and head swapped
    with pytest.raises(GestureError, match="per-frame encoder graph needs"):
        OnnxStreamingModel(graphs["head"], graphs["encoder"])


def test_streaming_pair_from_different_exports_is_refused(graphs, tmp_path):
    w = np.zeros((T * D, 2), np.float32)
    other = _linear_graph(tmp_path / "other.head.onnx", "embeddings", ["batch", T, D], "logits", w,
                          _meta(labels=json.dumps(["a", "b"])))
    with pytest.raises(GestureError, match=r"other\.head\.onnx: labels differ"):
        OnnxStreamingModel(graphs["encoder"], other)


def test_bad_inputs_raise_gesture_errors(graphs):
    clf = OnnxGestureClassifier(graphs["clip"])
    with pytest.raises(GestureError, match="uint8"):
        clf.predict_proba(np.zeros((5, 20, 20, 3), np.float32))
    with pytest.raises(GestureError, match=r"\(N, H, W, 3\)"):
        clf.predict_proba(np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(GestureError, match="input must have shape"):
        clf.logits(np.zeros((1, T + 1, 3, S, S), np.float32))
    stream = OnnxStreamingModel(graphs["encoder"], graphs["head"])
    with pytest.raises(GestureError, match="a window must be"):
        stream.classify_window(np.zeros((T - 1, D), np.float32))


def test_cuda_provider_is_chosen_when_available(monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert default_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert default_providers() == ["CPUExecutionProvider"]


# --------------------------------------------------------------------------- CLI
def test_predict_cli_good_and_bad_clips(graphs, clips, capsys):
    clf = OnnxGestureClassifier(graphs["clip"])
    rc = main(["predict", str(graphs["clip"]), str(clips["video"]), str(clips["bad"]),
               str(clips["folder"]), str(clips["video"].with_name("missing.mp4"))])
    out, err = capsys.readouterr()
    assert rc == 1
    lines = out.strip().splitlines()
    assert len(lines) == 2  # the two good clips, the rest continued after the bad one
    for line, clip in zip(lines, (clips["video"], clips["folder"]), strict=True):
        path, label, conf = line.split("\t")[:3]
        want_label, want_conf = clf.predict(clip)
        assert path == str(clip) and label == want_label and float(conf) == pytest.approx(want_conf, abs=1e-3)
    assert "broken.mp4" in err and "missing.mp4" in err and "2 of 4 clip(s)" in err


def test_predict_cli_json(graphs, clips, capsys):
    rc = main(["predict", str(graphs["clip"]), str(clips["video"]), str(clips["other"]),
               "--json", "--top", "2"])
    out, _ = capsys.readouterr()
    assert rc == 0
    doc = json.loads(out)
    assert doc["failed"] == 0 and [r["clip"] for r in doc["results"]] == [str(clips["video"]),
                                                                           str(clips["other"])]
    p = OnnxGestureClassifier(graphs["clip"]).predict_proba(clips["other"])
    r = doc["results"][1]
    assert r["label"] == LABELS[int(p.argmax())] and len(r["top"]) == 2
    assert r["top"][0]["confidence"] >= r["top"][1]["confidence"]

    rc = main(["predict", str(graphs["clip"]), str(clips["bad"]), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["failed"] == 1 and "broken.mp4" in doc["results"][0]["error"]


def test_predict_cli_bad_model_is_one_line_exit_2(graphs, clips, capsys):
    rc = main(["predict", str(graphs["encoder"]), str(clips["video"])])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "m.encoder.onnx" in err
