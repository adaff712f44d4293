"""The live demo in a real browser: JupyterLab, Debian's Chromium, and a fake camera fed
with a gesture stream the generator renders (notebooks/live_demo.ipynb, run cell by cell
as a learner would). Needs the full model of `make tutorial` (`make browser-test` makes
it when it is missing). Measured numbers go to artifacts/browser/*.json."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from gesture_utils import generation as gen
from gesture_utils.config import StreamConfig
from gesture_utils.paths import write_json
from gesture_utils.video import write_y4m

from .harness import (
    ARTIFACTS,
    ROOT,
    kernel_execute,
    open_notebook,
    run_all,
    start_lab,
    watch_errors,
)

expect = pytest.importorskip("playwright.sync_api").expect

NOTEBOOK = "notebooks/live_demo.ipynb"
MODEL = ROOT / "artifacts" / "vit_temporal"
CFG = gen.standard_config(quick=False)  # the clips the model was trained on: 12 fps, 112 px
#: the demo notebook's "threshold" rule: the test asks for most gestures, which the
#: default rule (built for few false events) does not promise
THRESHOLD_RULE = StreamConfig(ema_alpha=1.0, min_consecutive=1, hand_evidence=False)
OWN = ["wave", "stop", "no_gesture"]  # the demo notebook's OWN_CLASSES
#: The stream's session (room, light, hand). Scenes differ a lot for this model: over six
#: sessions its recall on 16 gestures went from 0.25 to 1.0 (benchmarks/bench_ood.py
#: measures it at scale). This test is about the browser path, so it takes a session the
#: model handles without a browser (checked first) and asks the browser to keep that.
STREAM_SEED = 902


@pytest.fixture(scope="module", autouse=True)
def full_model():
    missing = [p for p in (MODEL.with_suffix(".encoder.onnx"), MODEL.with_suffix(".head.onnx"),
                           MODEL.with_suffix(".pt")) if not p.is_file()]
    if missing:
        pytest.fail(f"{missing[0]} not found: run `make tutorial` first (`make browser-test` does)")


def demo_env(**values: str) -> dict[str, str]:
    base = {"GESTURE_DEMO_MIRROR": "0", "GESTURE_QUICK": "0"}
    return {**base, **{f"GESTURE_DEMO_{k.upper()}": v for k, v in values.items()}}


#: this machine has no internet: what the notebook links from outside (the Colab badge)
#: gets an empty image, so that a failed load is not mistaken for an error of the demo
OUTSIDE = re.compile(r"^https?://(?!127\.0\.0\.1[:/])")
EMPTY_SVG = "<svg xmlns='http://www.w3.org/2000/svg'/>"


def open_demo(browser, lab):
    """The demo notebook, run cell by cell; a copy, so JupyterLab's autosave keeps the
    committed notebook stripped."""
    copy = ARTIFACTS / "live_demo.ipynb"
    shutil.copyfile(ROOT / NOTEBOOK, copy)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.route(OUTSIDE, lambda route: route.fulfill(content_type="image/svg+xml", body=EMPTY_SVG))
    errors = watch_errors(page)
    open_notebook(page, lab, str(copy.relative_to(ROOT)))
    assert run_all(page), "a cell of the demo notebook raised"
    return page, errors


def shown_events(page) -> list[tuple[int, str]]:
    """(frame, label) of every event the widget's log shows now."""
    return page.evaluate("""() => [...document.querySelectorAll('.gc-events li')]
        .map(li => [Number(li.dataset.frame), li.dataset.label])""")


def common_subsequence(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence: events in the right order and label."""
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, start=1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def test_live_camera_shows_the_gestures_of_the_stream(new_browser):
    from gesture_utils.stream import load_streaming_model, score_streams

    stream = gen.render_stream(None, np.random.default_rng(STREAM_SEED), CFG, n_events=16,
                               idle_seconds=(1.0, 2.0))
    camera = write_y4m(ARTIFACTS / "gesture_stream.y4m", stream.frames, stream.fps)
    truth = [e["label"] for e in stream.events]
    offline, _ = score_streams(load_streaming_model(MODEL), [stream], THRESHOLD_RULE)
    assert offline["recall"] >= 0.7, f"the model misses this stream without a browser: {offline}"
    with start_lab(demo_env(autostart="1", rule="threshold")) as lab:
        page, errors = open_demo(new_browser(camera, grant_camera=True), lab)
        root = page.locator(".gc-root")
        expect(root).to_have_attribute("data-state", "live", timeout=30_000)
        expect(page.locator(".gc-source")).to_contain_text("browser camera")
        seen: dict[int, str] = {}
        end = time.monotonic() + len(stream.frames) / stream.fps + 3  # one pass of the file
        while time.monotonic() < end:
            before = len(seen)
            seen.update(shown_events(page))
            if before < 6 <= len(seen):  # just after an event: a hand is in view
                root.screenshot(path=str(ARTIFACTS / "live_demo.png"))
            time.sleep(0.4)
        stats = page.locator(".gc-stats")
        fps, p50, p95 = (float(stats.get_attribute(f"data-{k}")) for k in ("fps", "delay-p50", "delay-p95"))
        kernel = json.loads(kernel_execute(page, "import json; print(json.dumps("
                                           "[[e.frame, e.label] for e in live.events]))"))
        threads = kernel_execute(page, "live.stop(); print(len(live.threads))")
        expect(root).to_have_attribute("data-state", "off")  # the browser was told to stop
        camera = kernel_execute(page, "print(live.widget.camera)")
    events = [label for frame, label in sorted(seen.items()) if frame < len(stream.frames)]
    matched = common_subsequence(events, truth)
    report = {"gestures": len(truth), "events": len(events), "matched_in_order": matched,
              "recall": matched / len(truth), "precision": matched / max(len(events), 1),
              "offline_recall": offline["recall"], "offline_precision": offline["precision"],
              "fps": fps, "capture_to_label_p50_ms": p50, "capture_to_label_p95_ms": p95}
    write_json(ARTIFACTS / "live_demo.json", report)
    print(json.dumps(report, indent=1))
    assert errors == []
    assert matched >= len(truth) / 2 and report["precision"] >= 0.5, report
    assert matched >= round(offline["recall"] * len(truth)) - 2, report  # the browser loses little
    assert [lab for f, lab in sorted(kernel) if f < len(stream.frames)][:len(events)] == events
    assert fps >= 0.7 * 12 and p50 < 500, report
    assert threads.strip() == "0" and camera.strip() == "off"  # no thread left, camera off


def test_a_denied_camera_says_so_and_plays_the_fallback(new_browser):
    if not (ROOT / "artifacts" / "nb06_stream.mp4").is_file():
        pytest.fail("artifacts/nb06_stream.mp4 not found: run `make tutorial` first")
    with start_lab(demo_env(autostart="1")) as lab:
        page, errors = open_demo(new_browser(None, grant_camera=False), lab)
        expect(page.locator(".gc-root")).to_have_attribute("data-state", "denied", timeout=30_000)
        expect(page.locator(".gc-message")).to_contain_text("camera permission denied")
        expect(page.locator(".gc-source")).to_contain_text("file: nb06_stream.mp4", timeout=10_000)
        expect(page.locator(".gc-label")).not_to_have_text("-", timeout=10_000)  # it recognises
        stopped = kernel_execute(page, "live.stop(); print(len(live.threads), live.widget.camera)")
    assert stopped.split() == ["0", "denied"]
    assert errors == []


def rehearsal(rounds: int, seed: int):
    """Someone doing what record_clips asks: per round one clip of each class, each after
    a 1 s countdown (the demo notebook's settings), in one session (room, light, hand)."""
    labels = [c for _ in range(rounds) for c in OWN]
    return gen.render_stream(labels, np.random.default_rng(seed), CFG, idle_seconds=(1.0, 1.0))


def record_session(new_browser, data: Path, name: str, rounds: int, split: str, seed: int) -> Path:
    stream = rehearsal(rounds, seed)
    camera = write_y4m(ARTIFACTS / f"{name}.y4m", stream.frames, stream.fps)
    env = demo_env(record=name, rounds=str(rounds), split=split)
    with start_lab({**env, "GESTURE_DATA_DIR": str(data)}) as lab:
        page, errors = open_demo(new_browser(camera, grant_camera=True), lab)
        expect(page.locator(".gc-message")).to_contain_text(
            f"saved {rounds * len(OWN)} clips", timeout=1000 * (len(stream.frames) / stream.fps + 60))
        page.close()  # a closed tab: the kernel notices, and stops waiting for frames
        time.sleep(4)
        again = new_browser(None).new_page()
        open_notebook(again, lab, "artifacts/browser/live_demo.ipynb")  # the same kernel, a new tab
        state = kernel_execute(again, "print(live.widget.camera, len(live.threads), recorder.done)")
    assert errors == [] and state.split() == ["closed", "0", "True"], state
    return data / name


def test_few_shot_personal_gestures_recorded_through_the_widget(new_browser, tmp_path):
    from gesture_utils.config import TrainConfig
    from gesture_utils.datasets import load_manifest, load_split
    from gesture_utils.evaluation import evaluate_predictor, load_model
    from gesture_utils.training import train

    t0 = time.perf_counter()
    day1 = record_session(new_browser, tmp_path, "day1", 10, "", seed=31)
    day2 = record_session(new_browser, tmp_path, "day2", 6, "test", seed=32)
    recording_s = time.perf_counter() - t0
    assert len(load_manifest(day1)) == 30 and {r.split for r in load_manifest(day2)} == {"test"}
    t0 = time.perf_counter()
    train(day1, tmp_path / "mine.pt", start=MODEL.with_suffix(".pt"), quiet=True,
          train_cfg=TrainConfig(epochs=40, batch_size=8, freeze_backbone=True, seed=0))
    fine_tune_s = time.perf_counter() - t0
    mine = load_model(tmp_path / "mine.pt")
    held_out = load_split(day2, "test", mine.clip, labels=mine.labels)
    result = evaluate_predictor(mine.predict_proba, held_out.clips, held_out.y, mine.labels)
    report = {"classes": OWN, "train_clips": 30, "held_out_clips": len(held_out.y),
              "held_out_accuracy": result.accuracy, "chance": 1 / len(OWN),
              "fine_tune_seconds": fine_tune_s, "recording_seconds": recording_s}
    write_json(ARTIFACTS / "few_shot.json", report)
    print(json.dumps(report, indent=1))
    assert result.accuracy >= report["chance"] + 0.1, report  # weak, but above chance
