"""The stream core (gesture_utils.stream): sources, streaming = clip inference, stable
decisions, mirroring, latency, the ONNX path and the CLI -- no camera needed."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from gesture_utils.config import StreamConfig
from gesture_utils.errors import GestureError
from gesture_utils.evaluation import event_metrics, frame_accuracy
from gesture_utils.stream import (
    ArraySource,
    EmbeddingRing,
    EventDecider,
    PathSource,
    RunningLatency,
    StreamingRecognizer,
    hand_supports,
    latency_summary,
    mirror_label,
    open_source,
)
from gesture_utils.video import read_frames, write_video

LABELS = ["swipe_left", "swipe_right", "no_gesture"]


# ---------------------------------------------------------------------- fakes


class FakeMotionModel:
    """Same methods as OnnxStreamingModel.  Embedding of a frame = (x of the bright blob's
    centre in [0, 1], blob present 0/1); the head calls a swipe from how x moved over the
    window, and no_gesture when the blob is mostly absent."""

    labels = LABELS
    num_frames = 4

    def __init__(self):
        self.encoded = 0

    def encode_frame(self, frame):
        self.encoded += 1
        mask = frame.mean(axis=-1) > 128
        if not mask.any():
            return np.array([0.5, 0.0], np.float32)
        xs = np.nonzero(mask)[1]
        return np.array([xs.mean() / (frame.shape[1] - 1), 1.0], np.float32)

    def classify_window(self, emb):
        return self.probs(emb), None

    def probs(self, emb):
        assert emb.shape == (self.num_frames, 2)
        if emb[:, 1].mean() < 0.75:
            return np.array([0.05, 0.05, 0.9], np.float32)
        xs = emb[emb[:, 1] > 0, 0]  # only frames where the blob is visible
        dx = xs[-1] - xs[0]
        if dx < -0.1:
            return np.array([0.9, 0.05, 0.05], np.float32)
        if dx > 0.1:
            return np.array([0.05, 0.9, 0.05], np.float32)
        return np.array([0.2, 0.2, 0.6], np.float32)


def _frame(x=None, size=32):
    f = np.zeros((size, size, 3), np.uint8)
    if x is not None:
        f[12:20, int(x):int(x) + 6] = 255
    return f


def make_stream(gestures=("swipe_left", "swipe_right", "swipe_left"), idle=10, length=10,
                size=32):
    """Idle (dark) frames, then a blob crossing the image, ... -> frames, per-frame labels."""
    frames, labels = [], []
    for g in gestures:
        frames += [_frame(size=size)] * idle
        labels += ["no_gesture"] * idle
        xs = np.linspace(size - 8, 2, length) if g == "swipe_left" else np.linspace(2, size - 8, length)
        frames += [_frame(x, size) for x in xs]
        labels += [g] * length
    frames += [_frame(size=size)] * idle
    labels += ["no_gesture"] * idle
    return np.stack(frames), labels


CFG = StreamConfig(frame_step=1, ema_alpha=1.0, enter_threshold=0.6, exit_threshold=0.4,
                   min_consecutive=1, cooldown_frames=0)


# -------------------------------------------------------------------- sources


def test_sources_file_folder_iterator_array(tmp_path):
    frames, _ = make_stream(("swipe_right",))
    video = write_video(tmp_path / "s.mp4", frames, fps=12)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):  # png: lossless; names out of lexical order on purpose
        cv2.imwrite(str(folder / f"{i + 1}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))

    from_file = list(open_source(video))
    np.testing.assert_array_equal(np.stack(from_file), read_frames(video))  # same decoder
    from_str = open_source(str(video), fps=30)
    assert isinstance(from_str, PathSource) and from_str.path == video
    assert from_str.fps == pytest.approx(12) == open_source(video).fps  # the file's own fps

    src = open_source(folder, fps=12)
    assert isinstance(src, PathSource) and src.path == folder and src.fps == 12
    np.testing.assert_array_equal(np.stack(list(src)), frames)  # natural order 2 < 10

    np.testing.assert_array_equal(np.stack(list(open_source(iter(list(frames))))), frames)
    np.testing.assert_array_equal(np.stack(list(open_source(frames, max_frames=5))), frames[:5])
    gray = [f[..., 0] for f in frames[:3]]  # gray frames become 3 equal channels
    assert np.stack(list(open_source(gray))).shape == (3, 32, 32, 3)


def test_source_errors(tmp_path):
    with pytest.raises(GestureError, match="no such video file"):
        open_source(tmp_path / "missing.mp4")
    with pytest.raises(GestureError, match=r"\(N, H, W, 3\)"):
        open_source(np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(GestureError, match="not a frame source"):
        open_source(3.5)
    with pytest.raises(GestureError, match="camera 97"):  # no camera on a test machine
        open_source(97)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GestureError, match="no images"):
        open_source(tmp_path / "empty")


def test_mirror_flips_frames_and_swaps_left_right():
    frames, truth = make_stream(("swipe_left", "swipe_left"))
    mirrored = np.stack(list(open_source(frames, mirror=True)))
    np.testing.assert_array_equal(mirrored, frames[:, :, ::-1])

    plain = StreamingRecognizer(FakeMotionModel(), CFG).run(frames)
    flipped = StreamingRecognizer(FakeMotionModel(), replace(CFG, mirror=True))
    res = flipped.run(frames)
    assert [e.label for e in plain.events] == ["swipe_left", "swipe_left"]
    assert [e.label for e in res.events] == ["swipe_right", "swipe_right"]
    # frame level: mirrored predictions agree with mirrored ground truth, not the original
    mirrored_truth = [mirror_label(t) for t in truth]
    assert frame_accuracy(res.frame_top, mirrored_truth) == pytest.approx(
        frame_accuracy(plain.frame_top, truth))
    assert frame_accuracy(res.frame_top, mirrored_truth) > frame_accuracy(res.frame_top, truth)
    assert mirror_label("swipe_up") == "swipe_up" and mirror_label("swipe_right") == "swipe_left"


# ------------------------------------------------------------------ streaming


def test_ring_buffer_order_and_padding():
    ring = EmbeddingRing(3)
    ring.push([1.0])
    np.testing.assert_array_equal(ring.window()[:, 0], [1, 1, 1])  # padded with oldest
    for v in (2, 3, 4, 5):
        ring.push([float(v)])
    assert ring.full
    np.testing.assert_array_equal(ring.window()[:, 0], [3, 4, 5])  # oldest first


def test_one_encoder_pass_per_frame_and_head_stride():
    frames, _ = make_stream(("swipe_left",))
    model = FakeMotionModel()
    cfg = StreamConfig(frame_step=2, head_every=3)
    res = StreamingRecognizer(model, cfg).run(frames)
    n = len(frames)
    assert model.encoded == (n + 1) // 2          # one encoder pass per kept frame
    T = model.num_frames
    expected = [2 * (T - 1 + 3 * j) for j in range((n + 1) // 2) if T - 1 + 3 * j < (n + 1) // 2]
    assert res.head_frames.tolist() == expected   # head once the ring is full, then every 3
    assert res.latency["work_p50_ms"] > 0 and res.total_ms.shape == (n,)
    assert np.isnan(res.encode_ms[1::2]).all() and not np.isnan(res.encode_ms[::2]).any()
    assert np.isfinite(res.head_ms).sum() == len(expected)
    assert res.latency["mean_ms"] == pytest.approx(res.total_ms.mean())


def test_streaming_equals_clip_inference_on_the_same_window():
    """TorchStreamingAdapter over the real ViTTemporal: at every head pass the streamed
    probabilities equal the clip model's on the window of kept frames."""
    import torch

    from gesture_utils.config import ModelConfig
    from gesture_utils.datasets import to_tensor
    from gesture_utils.models import build_model
    from gesture_utils.stream import TorchStreamingAdapter
    from gesture_utils.video import resize_frame

    torch.manual_seed(0)
    net = build_model(ModelConfig(num_frames=4, temporal_depth=1), 3, labels=LABELS).eval()
    model = TorchStreamingAdapter(net)
    assert model.labels == LABELS and model.num_frames == 4 == net.clip.num_frames
    T, S, c, step = 4, net.clip.image_size, net.clip, 2
    frames, _ = make_stream(("swipe_right",), idle=2, length=8, size=40)
    rec = StreamingRecognizer(model, StreamConfig(frame_step=step, ema_alpha=1.0))
    checked = 0
    for i, frame in enumerate(frames):
        st = rec.step(frame, source_id="s")
        if st.probs is None:
            continue
        window = frames[: i + 1][::-1][::step][:T][::-1]      # the last T kept frames
        assert i % step == 0 and len(window) == T
        x = to_tensor(np.stack([resize_frame(f, S) for f in window]), c.mean, c.std)
        with torch.no_grad():
            clip_probs = torch.softmax(net(x[None]), -1)[0].numpy()
        np.testing.assert_allclose(st.probs, clip_probs, rtol=1e-4, atol=1e-5)
        checked += 1
    assert checked == (len(frames) + 1) // step - T + 1


def test_reset_on_source_change():
    a, _ = make_stream(("swipe_left",))
    b, _ = make_stream(("swipe_right",), idle=2)
    rec = StreamingRecognizer(FakeMotionModel(), CFG)
    for f in a[:16]:                          # stop half-way through A's gesture
        rec.step(f, source_id="A")
    got = [rec.step(f, source_id="B") for f in b]
    fresh = StreamingRecognizer(FakeMotionModel(), CFG)
    want = [fresh.step(f, source_id="B") for f in b]
    assert got[0].frame_index == 0 and rec.ring.count == len(b)
    for g, w in zip(got, want, strict=True):
        assert g.label == w.label and g.event == w.event
        assert (g.probs is None) == (w.probs is None)
        if g.probs is not None:
            np.testing.assert_array_equal(g.probs, w.probs)
    # same id again: no reset, the counter keeps going
    assert rec.step(b[0], source_id="B").frame_index == len(b)


# ------------------------------------------------------------------ decisions


def _run(decider, probs_seq):
    return [(i, ev.label) for i, p in enumerate(probs_seq)
            if (ev := decider.update(p, i)) is not None]


L_, R_, IDLE = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.05, 0.05, 0.9]   # left, right, idle


def test_decider_one_event_per_gesture_none_during_idle():
    d = EventDecider(LABELS, StreamConfig(ema_alpha=0.5, min_consecutive=2, cooldown_frames=5))
    seq = [IDLE] * 10 + [L_] * 8 + [IDLE] * 10 + [R_] * 8 + [IDLE] * 10
    events = _run(d, seq)
    assert [lab for _, lab in events] == ["swipe_left", "swipe_right"]
    assert all(10 <= i < 18 for i, lab in events if lab == "swipe_left")
    d.reset()
    assert _run(d, [IDLE] * 50) == []


def test_decider_min_consecutive_ignores_single_spikes():
    d = EventDecider(LABELS, StreamConfig(ema_alpha=1.0, min_consecutive=2, cooldown_frames=0))
    assert _run(d, [IDLE, L_, IDLE, R_, IDLE, L_, IDLE]) == []
    assert _run(d, [IDLE, L_, L_, IDLE]) == [(2, "swipe_left")]


def test_hysteresis_prevents_double_firing():
    wobble = [IDLE] * 3 + [[0.7, 0.2, 0.1], [0.5, 0.3, 0.2]] * 6 + [IDLE] * 3  # around 0.6
    base = dict(ema_alpha=1.0, min_consecutive=1, cooldown_frames=0, enter_threshold=0.6)
    with_h = EventDecider(LABELS, StreamConfig(**base, exit_threshold=0.4))
    without = EventDecider(LABELS, StreamConfig(**base, exit_threshold=0.6))
    assert len(_run(with_h, wobble)) == 1
    assert len(_run(without, wobble)) == 6


def test_cooldown_blocks_quick_refire():
    seq = [L_, L_, IDLE, L_, L_, IDLE, IDLE, IDLE, IDLE, IDLE, L_, L_]
    cfg = dict(ema_alpha=1.0, min_consecutive=1)
    assert [i for i, _ in _run(EventDecider(LABELS, StreamConfig(**cfg, cooldown_frames=0)), seq)] \
        == [0, 3, 10]
    assert [i for i, _ in _run(EventDecider(LABELS, StreamConfig(**cfg, cooldown_frames=5)), seq)] \
        == [0, 10]


def test_ema_matches_formula_and_rest_never_fires():
    d = EventDecider(LABELS, StreamConfig(ema_alpha=0.3))
    p1, p2 = np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.1, 0.3])
    d.update(p1)
    d.update(p2)
    np.testing.assert_allclose(d.smoothed, 0.3 * p2 + 0.7 * p1)
    assert _run(EventDecider(LABELS, StreamConfig(min_consecutive=1)), [[0, 0, 1.0]] * 20) == []
    with pytest.raises(GestureError, match="exit_threshold"):
        EventDecider(LABELS, StreamConfig(enter_threshold=0.5, exit_threshold=0.7))
    with pytest.raises(GestureError, match="probabilities"):
        EventDecider(LABELS).update([0.5, 0.5])


def test_recogniser_end_to_end_on_a_stream():
    frames, truth = make_stream(("swipe_left", "swipe_right", "swipe_left", "swipe_right"))
    res = StreamingRecognizer(FakeMotionModel(), StreamConfig(frame_step=1, ema_alpha=0.6,
                                                              cooldown_frames=5)).run(frames)
    m = event_metrics(res.events, truth, tolerance=5)
    assert (m.tp, m.fp, m.fn) == (4, 0, 0) and m.levenshtein_accuracy == 1.0
    idle = {i for i, t in enumerate(truth) if t == "no_gesture"}
    assert not [e for e in res.events if e.frame in idle and truth[e.frame - 5] == "no_gesture"]
    assert all(0 <= d <= 10 for d in m.delays)


def test_score_streams_runs_each_stream_at_its_fps_and_pools_the_scores():
    from types import SimpleNamespace

    from gesture_utils.evaluation import pool_scores, stream_scores
    from gesture_utils.stream import score_streams

    streams = []
    for gestures, fps in ((("swipe_left", "swipe_right"), 8), (("swipe_right",), 16)):
        frames, labels = make_stream(gestures)
        events, start = [], None
        for i, lab in enumerate(labels + ["no_gesture"]):
            if lab != "no_gesture" and start is None:
                start = i
            if lab == "no_gesture" and start is not None:
                events.append({"label": labels[start], "start": start, "end": i,
                               "motion_start": start, "motion_end": i})
                start = None
        streams.append(SimpleNamespace(frames=frames, labels=labels, events=events, fps=fps))
    cfg = StreamConfig(frame_step=0, window_seconds=4 * 4 / 16, ema_alpha=0.6, cooldown_frames=5)
    pooled, runs = score_streams(FakeMotionModel(), streams, cfg, tolerance_s=0.5)
    want = []
    for stream, fps in zip(streams, (8, 16), strict=True):
        rec = StreamingRecognizer(FakeMotionModel(), cfg)
        res = rec.run(ArraySource(stream.frames, fps=fps))
        assert rec.frame_step == {8: 2, 16: 4}[fps]  # 1 s of the window at each stream's fps
        want.append(stream_scores(res.events, stream, round(0.5 * fps)))
    assert pooled == pool_scores(want) and len(runs) == 2
    assert pooled["gestures"] == 3 and pooled["streams"] == 2


# -------------------------------------------------------- rejecting non-hands

SKIN = (224, 172, 140)


class FakeEvidenceModel(FakeMotionModel):
    """A motion-happy head (any bright blob that moves is a swipe) with a hand probe that
    sees only skin-coloured pixels: what the decider gets from a model whose classifier
    is fooled by a moving object while its probe knows there is no hand."""

    def encode_frame(self, frame):
        skin = np.all(np.abs(frame.astype(int) - SKIN) < 12, axis=-1)
        ys, xs = np.nonzero(skin)
        seen = [1.0, xs.mean() / (frame.shape[1] - 1), ys.mean() / (frame.shape[0] - 1)] \
            if skin.any() else [0.0, 0.0, 0.0]
        return np.concatenate([super().encode_frame(frame), seen]).astype(np.float32)

    def classify_window(self, emb):
        return self.probs(emb[:, :2]), emb[:, 2:]


def moving_things(size=32, n=16):
    """A white card sliding left, then a textured wall panning left under a still grey
    disc: motion in every frame, no hand anywhere."""
    rng = np.random.default_rng(0)
    wall = rng.integers(0, 256, (size, 3 * size, 3)).astype(np.uint8)
    frames = [_frame(x, size) for x in np.linspace(size - 8, 2, n)]
    for k in range(n):
        f = wall[:, 2 * k:2 * k + size].copy() // 2
        f[12:20, 12:20] = 128
        frames.append(f)
    return np.stack(frames)


def test_decisions_reject_moving_things_that_are_not_a_hand():
    frames = moving_things()
    model = FakeEvidenceModel()
    cfg = replace(CFG, cooldown_frames=4)
    fooled = StreamingRecognizer(model, replace(cfg, hand_evidence=False)).run(frames)
    assert [e.label for e in fooled.events][:1] == ["swipe_left"]  # the head alone fires
    assert StreamingRecognizer(model, cfg).run(frames).events == []


def test_decisions_need_a_hand_moving_the_way_of_the_swipe():
    hand = np.zeros((4, 3))
    hand[:, 0] = 1.0
    hand[:, 1] = np.linspace(0.8, 0.3, 4)  # the hand goes left
    assert hand_supports("swipe_left", hand, 3, 0.15)
    assert not hand_supports("swipe_right", hand, 3, 0.15)
    assert not hand_supports("swipe_up", hand, 3, 0.15)
    assert hand_supports("stop", hand, 3, 0.15)
    hand[:2, 0] = 0.2  # in view in 2 of 4 frames only
    assert not hand_supports("swipe_left", hand, 3, 0.15)
    assert not hand_supports("stop", hand, 3, 0.15)
    hand[:, 0] = 1.0
    d = EventDecider(LABELS, replace(CFG, min_hand_frames=3))
    still = np.tile([1.0, 0.5, 0.5], (4, 1))
    assert d.update(L_, 0, hand=still) is None        # a hand, but it did not move
    assert d.update(L_, 1, hand=hand[::-1].copy()) is None  # moved the other way
    assert d.update(L_, 2, hand=hand).label == "swipe_left"


# -------------------------------------------------------------------- latency


def test_latency_stats_fps():
    s = RunningLatency(window=10)
    for i in range(5):
        s.add(start=i * 0.1, encode_ms=2.0, head_ms=1.0 if i % 2 else None, total_ms=4.0)
    assert s.fps == pytest.approx(10.0)
    assert s.capacity_fps == pytest.approx(250.0)
    summary = s.summary()
    assert summary["head_p50_ms"] == 1.0 and summary["fps"] == pytest.approx(10.0)
    assert summary["mean_ms"] == 4.0 and summary["work_p95_ms"] == 4.0


def test_latency_summary_separates_work_frames_from_skipped_ones():
    lat = latency_summary([5.0, None, None, 7.0], [1.0, None, None, None], [9.0, 0.1, 0.1, 8.0])
    assert lat["encode_p50_ms"] == 6.0 and lat["head_p50_ms"] == 1.0
    assert lat["work_p50_ms"] == 8.5                 # only frames that ran the encoder
    assert lat["mean_ms"] == pytest.approx(17.2 / 4)  # amortised over every frame
    assert lat["capacity_fps"] == pytest.approx(4000 / 17.2) and np.isnan(lat["fps"])


# ---------------------------------------------------------- ONNX path and CLI


def _tiny_onnx(folder, T=4, S=8, D=5, K=3, labels=LABELS):
    """Hand-built clip / encoder / head graphs of one linear model (no export needed):
    encoder = x.reshape(N, 3SS) @ A, head = emb.reshape(B, T*D) @ W, clip = both."""
    import json

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    A = rng.normal(0, 0.05, (3 * S * S, D)).astype(np.float32)
    W = rng.normal(0, 1.0, (T * D, K)).astype(np.float32)
    meta = {"labels": json.dumps(list(labels)), "num_frames": str(T), "image_size": str(S),
            "mean": json.dumps([0.5] * 3), "std": json.dumps([0.25] * 3), "causal": "false",
            "embed_dim": str(D), "hand_probe": "false"}
    c = lambda name, v: numpy_helper.from_array(np.asarray(v, dtype=np.int64), name)  # noqa: E731

    def save(name, inp, out, nodes, inits):
        graph = helper.make_graph(nodes, name, [inp], [out],
                                  [numpy_helper.from_array(A, "A"), numpy_helper.from_array(W, "W"),
                                   *inits])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        for k, v in meta.items():
            model.metadata_props.add(key=k, value=v)
        onnx.checker.check_model(model)
        onnx.save(model, str(folder / name))

    f32 = TensorProto.FLOAT
    save("tiny.encoder.onnx", helper.make_tensor_value_info("frames", f32, ["N", 3, S, S]),
         helper.make_tensor_value_info("embeddings", f32, ["N", D]),
         [helper.make_node("Reshape", ["frames", "s1"], ["flat"]),
          helper.make_node("MatMul", ["flat", "A"], ["embeddings"])], [c("s1", [-1, 3 * S * S])])
    save("tiny.head.onnx", helper.make_tensor_value_info("embeddings", f32, ["B", T, D]),
         helper.make_tensor_value_info("logits", f32, ["B", K]),
         [helper.make_node("Reshape", ["embeddings", "s2"], ["flat"]),
          helper.make_node("MatMul", ["flat", "W"], ["logits"])], [c("s2", [-1, T * D])])
    save("tiny.onnx", helper.make_tensor_value_info("video", f32, ["B", T, 3, S, S]),
         helper.make_tensor_value_info("logits", f32, ["B", K]),
         [helper.make_node("Reshape", ["video", "s1"], ["flat"]),
          helper.make_node("MatMul", ["flat", "A"], ["emb"]),
          helper.make_node("Reshape", ["emb", "s2"], ["flat2"]),
          helper.make_node("MatMul", ["flat2", "W"], ["logits"])],
         [c("s1", [-1, 3 * S * S]), c("s2", [-1, T * D])])
    return folder / "tiny"


def test_onnx_streaming_equals_onnx_clip_on_the_same_window(tmp_path):
    from gesture_utils.inference import OnnxGestureClassifier
    from gesture_utils.stream import load_streaming_model

    prefix = _tiny_onnx(tmp_path)
    model = load_streaming_model(str(prefix) + ".encoder.onnx")
    clip = OnnxGestureClassifier(str(prefix) + ".onnx")
    frames, _ = make_stream(("swipe_left",), idle=2, length=8)
    step, T = 3, model.num_frames
    rec = StreamingRecognizer(model, StreamConfig(frame_step=step, ema_alpha=1.0))
    compared = 0
    for i, frame in enumerate(frames):
        st = rec.step(frame)
        if st.probs is not None:
            window = frames[: i + 1][::-1][::step][:T][::-1]
            np.testing.assert_allclose(st.probs, clip.predict_proba(window), atol=1e-5)
            compared += 1
    assert compared == (len(frames) + step - 1) // step - T + 1 > 0
    with pytest.raises(GestureError, match="streaming graph not found"):
        load_streaming_model(tmp_path / "other")


def test_cli_stream_prints_events(tmp_path, capsys):
    from gesture_utils.cli import main

    prefix = _tiny_onnx(tmp_path)
    frames, _ = make_stream(("swipe_left",), idle=2, length=8)
    video = write_video(tmp_path / "s.mp4", frames, fps=12)
    assert main(["stream", str(video), "--model", str(prefix), "--frame-step", "1",
                 "--enter", "0.0", "--exit", "0.0", "--min-consecutive", "1",
                 "--max-frames", "10"]) == 0
    out = capsys.readouterr().out
    assert "10 frames" in out and "fps achieved" in out and "frame      3" in out
    assert main(["stream", str(tmp_path / "missing.mp4"), "--model", str(prefix)]) == 2
    assert "missing.mp4" in capsys.readouterr().err
