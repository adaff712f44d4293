"""Latency harness, FLOP counting and backends (gesture_utils.benchmark, notebook 05)."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from gesture_utils import benchmark as bm
from gesture_utils.errors import GestureError
from gesture_utils.runtime import LatencyStats, ort_session, time_calls


def test_stats_of_known_samples_match_numpy():
    samples = np.arange(1, 101).astype(float)  # 1..100 ms
    s = LatencyStats.from_ms(samples, name="x", batch=4)
    assert s.n == 100
    assert s.p50_ms == pytest.approx(50.5)
    assert s.p95_ms == pytest.approx(np.percentile(np.arange(1, 101), 95))
    assert s.mean_ms == pytest.approx(50.5)
    assert s.std_ms == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert s.per_item_ms == pytest.approx(50.5 / 4)


def test_percentiles_are_positive_and_ordered():
    rng = np.random.default_rng(0)
    s = time_calls({"sum": lambda: rng.standard_normal(2000).sum()}, runs=50, warmup=2)["sum"]
    assert s.n == 50
    assert 0 < s.p50_ms <= s.p95_ms <= s.p99_ms
    assert s.std_ms >= 0 and np.isfinite(s.mean_ms)


def test_time_calls_measures_a_known_sleep():
    s = time_calls({"sleep": lambda: time.sleep(0.02)}, runs=5, warmup=1)["sleep"]
    # sleep never returns early; a busy shared machine may add a few ms
    assert 19.9 <= s.min_ms <= s.p50_ms < 40 and 19.9 <= s.mean_ms <= s.max_ms, s


def test_interleaved_keeps_ratios_and_order():
    calls: list[str] = []

    def sleeper(name: str, sec: float):
        def f():
            calls.append(name)
            time.sleep(sec)
        return f

    res = time_calls({"fast": sleeper("fast", 0.004), "slow": sleeper("slow", 0.012)},
                     runs=6, warmup=1)
    assert list(res) == ["fast", "slow"]
    assert res["fast"].n == res["slow"].n == 6
    assert 2.0 < res["slow"].p50_ms / res["fast"].p50_ms < 3.5
    timed = calls[2:]  # after warm-up: rounds alternate which backend goes first
    assert timed[0:2] == ["slow", "fast"] and timed[2:4] == ["fast", "slow"]


def test_time_calls_rejects_zero_runs():
    with pytest.raises(ValueError):
        time_calls({"none": lambda: None}, runs=0)


def test_flops_of_linear_equal_the_formula():
    b, n_in, n_out = 5, 32, 48
    layer = torch.nn.Linear(n_in, n_out)
    assert bm.count_flops(layer, torch.randn(b, n_in)) == 2 * b * n_in * n_out


def test_flops_of_conv_equal_the_formula():
    conv = torch.nn.Conv2d(3, 16, kernel_size=4, stride=4)  # a ViT patch embedding
    h = w = 32
    out_hw = (h // 4) * (w // 4)
    assert bm.count_flops(conv, torch.randn(1, 3, h, w)) == 2 * out_hw * 16 * 3 * 4 * 4


def test_flops_of_attention_on_cpu_are_counted():
    b, heads, length, d = 2, 3, 17, 8
    q = torch.randn(b, heads, length, d)
    flops = bm.count_flops(torch.nn.functional.scaled_dot_product_attention, q, q, q)
    assert flops == 2 * (2 * b * heads * length * length * d)  # QK^T and AV


def test_peak_matmul_is_positive_and_restores_threads():
    before = torch.get_num_threads()
    peak = bm.peak_matmul_flops(threads=1, n=256, repeats=2)
    assert torch.get_num_threads() == before
    assert 1e8 < peak < 1e14


def test_bound_fraction_arithmetic():
    # 1 GFLOP in 10 ms = 100 GFLOP/s; against a 200 GFLOP/s bound that is one half
    assert bm.bound_fraction(1e9, 10.0, 2e11) == pytest.approx(0.5)


def test_machine_info_names_threads_and_versions():
    info = bm.machine_info(threads=1)
    assert info["threads"] == 1 and info["usable_cores"] >= 1
    assert info["torch"] == torch.__version__
    text = bm.format_machine(info)
    assert "threads=1" in text and "onnxruntime" in text


def _linear_onnx(path, w: np.ndarray, input_name: str = "x"):
    """y = x @ w as a one-node ONNX graph with a dynamic batch axis."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", [input_name, "w"], ["y"])], "lin",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["b", w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", w.shape[1]])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel().tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_ort_session_uses_the_threads_asked_for(tmp_path):
    path = _linear_onnx(tmp_path / "lin.onnx", np.eye(4, dtype=np.float32))
    sess = ort_session(path, threads=1, optimization="basic", spinning=False)
    opts = sess.get_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(GestureError, match="not one of"):
        ort_session(path, threads=1, optimization="max")
    with pytest.raises(GestureError, match="missing.onnx"):
        ort_session(tmp_path / "missing.onnx")


def test_pick_ort_threads_keeps_the_faster_count(tmp_path, monkeypatch):
    path = _linear_onnx(tmp_path / "lin.onnx", np.eye(64, dtype=np.float32))
    x = np.ones((8, 64), np.float32)
    best, p50 = bm.pick_ort_threads(path, x, (2, 1, 1), warmup=1, runs=5)
    assert sorted(p50) == [1, 2] and all(v > 0 for v in p50.values())
    assert best == (2 if p50[2] * 1.05 < p50[1] else 1)
    # the choice follows the timings: 2 threads win only by more than the margin
    timings = {}
    monkeypatch.setattr(bm, "time_calls", lambda fns, runs, warmup: timings)
    for t1, t2, expected in ((5.0, 1.0, 2), (1.0, 5.0, 1), (1.0, 0.97, 1), (1.0, 0.9, 2)):
        timings.update({"1": LatencyStats.from_ms([t1] * 3), "2": LatencyStats.from_ms([t2] * 3)})
        assert bm.pick_ort_threads(path, x, (1, 2))[0] == expected, (t1, t2)
    # "auto" asks pick_ort_threads (on the clip graph) and reports its timings
    monkeypatch.setattr(bm, "pick_ort_threads", lambda *a, **k: (1, {1: 1.0, 2: 1.5}))
    said = []
    assert bm.resolve_ort_threads(bm.BenchmarkConfig(), 2, bm.ModelFiles(name="lin", onnx=path),
                                  1, 1, log=said.append) == (1, {1: 1.0, 2: 1.5})
    assert "auto -> 1" in said[0]
    files = bm.ModelFiles(name="lin", onnx=path)
    cfg = bm.BenchmarkConfig()
    assert bm.resolve_ort_threads(replace(cfg, ort_threads=None), 2, files, 1, 1)[0] == 2
    assert bm.resolve_ort_threads(replace(cfg, ort_threads=3), 2, files, 1, 1)[0] == 3
    with pytest.raises(GestureError, match="ort_threads"):
        bm.resolve_ort_threads(replace(cfg, ort_threads="many"), 2, files, 1, 1)


def test_ort_and_torch_backends_compute_the_same_thing(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 3)).astype(np.float32)
    layer = torch.nn.Linear(6, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w.T))
    x = rng.standard_normal((2, 6)).astype(np.float32)
    ort_b = bm.ort_backend("ort", _linear_onnx(tmp_path / "lin.onnx", w), threads=1)
    torch_b = bm.torch_backend(layer)
    np.testing.assert_allclose(ort_b.clip(x), torch_b.clip(x).numpy(), atol=1e-5)
    with pytest.raises(GestureError, match="no streaming"):
        ort_b.frame_update(x, x)


def test_frame_update_runs_encoder_then_head():
    seen = []
    b = bm.Backend("fake", clip=lambda x: x, encode=lambda f: seen.append(("enc", f.shape)),
                   head=lambda w: seen.append(("head", w.shape)) or "logits")
    out = b.frame_update(np.zeros((1, 3, 8, 8)), np.zeros((1, 4, 16)))
    assert out == "logits" and seen == [("enc", (1, 3, 8, 8)), ("head", (1, 4, 16))]


# --------------------------------------------------------------------------- end to end
T, S, D, K = 4, 32, 128, 3  # D = the tiny ViT width


def _graph_with_meta(path, nodes, inp, out, inits):
    graph = helper.make_graph(nodes, path.stem, [inp], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    meta = {"labels": '["a", "b", "c"]', "num_frames": str(T), "image_size": str(S),
            "mean": "[0.5, 0.5, 0.5]", "std": "[0.5, 0.5, 0.5]", "embed_dim": str(D),
            "causal": "false", "hand_probe": "false"}
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _tiny_model_folder(folder):
    """A tiny ViTTemporal checkpoint plus small hand-made ONNX graphs of the right shapes.

    The graphs are not an export of the checkpoint (a real export takes a minute on this
    CPU); the harness only needs runnable graphs with the contract's inputs and outputs.
    """
    from gesture_utils.config import ModelConfig
    from gesture_utils.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model(ModelConfig(image_size=S, num_frames=T, temporal_depth=1), K,
                        labels=["a", "b", "c"])
    save_checkpoint(folder / "vit_temporal.pt", model)
    f32 = TensorProto.FLOAT
    w_enc = np.ones((3, D), np.float32)
    w_head = np.ones((D, K), np.float32)
    w_clip = np.ones((3, K), np.float32)

    def t(name, arr, dtype=f32):
        return helper.make_tensor(name, dtype, arr.shape, arr.ravel().tolist())

    _graph_with_meta(folder / "vit_temporal.onnx",
                     [helper.make_node("ReduceMean", ["video", "ax"], ["m"], keepdims=0),
                      helper.make_node("MatMul", ["m", "w"], ["logits"])],
                     helper.make_tensor_value_info("video", f32, ["batch", T, 3, S, S]),
                     helper.make_tensor_value_info("logits", f32, ["batch", K]),
                     [t("ax", np.array([1, 3, 4]), TensorProto.INT64), t("w", w_clip)])
    _graph_with_meta(folder / "vit_temporal.encoder.onnx",
                     [helper.make_node("ReduceMean", ["frames", "ax"], ["m"], keepdims=0),
                      helper.make_node("MatMul", ["m", "w"], ["embeddings"])],
                     helper.make_tensor_value_info("frames", f32, ["n", 3, S, S]),
                     helper.make_tensor_value_info("embeddings", f32, ["n", D]),
                     [t("ax", np.array([2, 3]), TensorProto.INT64), t("w", w_enc)])
    _graph_with_meta(folder / "vit_temporal.head.onnx",
                     [helper.make_node("ReduceMean", ["embeddings", "ax"], ["m"], keepdims=0),
                      helper.make_node("MatMul", ["m", "w"], ["logits"])],
                     helper.make_tensor_value_info("embeddings", f32, ["batch", T, D]),
                     helper.make_tensor_value_info("logits", f32, ["batch", K]),
                     [t("ax", np.array([1]), TensorProto.INT64), t("w", w_head)])
    return model


def test_benchmark_cli_end_to_end(tmp_path, capsys):
    import json

    from gesture_utils.cli import main
    from gesture_utils.video import write_video

    model = _tiny_model_folder(tmp_path)
    clip = write_video(tmp_path / "clip.mp4", np.zeros((10, 40, 48, 3), np.uint8), fps=10)
    code = main(["benchmark", str(tmp_path / "vit_temporal.pt"), "--runs", "3", "--warmup", "1",
                 "--threads", "1", "--batch-sizes", "1,2", "--clip", str(clip), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["threads"] == 1 and report["machine"]["threads"] == 1
    assert report["config"]["ort_threads"] == 1  # auto with one core: nothing to choose
    assert list(report["clip"]) == ["torch-eager", "ort-fp32"]  # no INT8 file: not benchmarked
    for section in ("clip", "frame"):
        for s in report[section].values():
            assert s["n"] == 3 and 0 < s["min_ms"] <= s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert [s["batch"] for s in report["batch"]["ort-fp32"]] == [1, 2]
    assert report["speedup_vs_eager"]["torch-eager"] == pytest.approx(1.0)
    # FLOPs: a clip is T frames through the encoder plus one head pass, exactly
    f = report["flops"]
    assert f["clip"] == T * f["frame_encoder"] + f["head"] > 0
    assert f["streamed_update"] == f["frame_encoder"] + f["head"]
    assert f["clip"] == bm.count_flops(model, torch.zeros(1, T, 3, S, S))
    assert set(report["preprocess"]) == {"decode", "sample+resize", "normalise", "frame (camera)"}
    assert set(report["targets"]) == {"ort_fp32_speedup", "frame_p95_ms"}
    text = bm.format_report(report)
    assert "ort-fp32" in text and "streamed frame" in text and "target" in text


def test_benchmark_cli_reports_a_missing_model(tmp_path, capsys):
    from gesture_utils.cli import main

    assert main(["benchmark", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "nothing" in err and len(err.strip().splitlines()) == 1
    assert main(["benchmark", str(tmp_path)]) == 2  # empty folder: says what to do
    assert "vit_temporal.pt" in capsys.readouterr().err


def test_cpu_time_counts_work_not_waiting():
    assert bm.cpu_time_per_call(lambda: time.sleep(0.02), warmup=0, runs=3) < 5.0

    def spin():
        t0 = time.process_time()
        while time.process_time() - t0 < 0.01:
            pass

    assert 9.5 <= bm.cpu_time_per_call(spin, warmup=0, runs=3) < 20.0
