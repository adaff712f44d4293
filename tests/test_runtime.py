"""The machine helpers every stage shares: atomic writes, the timer, ORT sessions."""

import json
import os

import numpy as np
import pytest

from gesture_utils.errors import GestureError
from gesture_utils.paths import atomic_path, write_json
from gesture_utils.runtime import LatencyStats, ort_session, time_calls


def test_atomic_path_renames_on_success_and_keeps_suffix(tmp_path):
    target = tmp_path / "sub" / "figure.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".png" and tmp != target
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["figure.png"]


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = write_json(tmp_path / "result.json", {"accuracy": 0.5})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"accuracy": 0.5}
    assert os.listdir(tmp_path) == ["result.json"]


def test_latency_stats_match_numpy():
    ms = [1.0, 2.0, 3.0, 4.0, 10.0]
    s = LatencyStats.from_ms(ms, name="x", batch=2)
    assert s.p50_ms == pytest.approx(np.percentile(ms, 50))
    assert s.p95_ms == pytest.approx(np.percentile(ms, 95))
    assert s.std_ms == pytest.approx(np.std(ms, ddof=1))
    assert s.per_item_ms == pytest.approx(1.5)
    with pytest.raises(ValueError):
        LatencyStats.from_ms([])


def test_time_calls_times_each_function_runs_times_after_warmup():
    calls = {"a": 0, "b": 0}

    def bump(name):
        calls[name] += 1

    stats = time_calls({"a": lambda: bump("a"), "b": lambda: bump("b")}, runs=7, warmup=3)
    assert calls == {"a": 10, "b": 10}
    assert [s.n for s in stats.values()] == [7, 7] and list(stats) == ["a", "b"]


def test_ort_session_names_a_missing_or_broken_file(tmp_path):
    with pytest.raises(GestureError, match="missing.onnx: model file not found"):
        ort_session(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(GestureError, match="bad.onnx: not a loadable ONNX model"):
        ort_session(bad)
    with pytest.raises(GestureError, match="graph optimisation"):
        ort_session(bad, optimization="max")
