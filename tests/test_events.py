"""Event metrics (gesture_utils.evaluation, notebook 06): matching predicted events to
true gestures, precision / recall / F1, delays and Levenshtein accuracy."""

from __future__ import annotations

import pytest

from gesture_utils.evaluation import (
    Segment,
    event_metrics,
    levenshtein,
    match_events,
    segments_from_events,
    segments_from_frame_labels,
)
from gesture_utils.stream import GestureEvent


def test_levenshtein_known_values():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein([], ["a", "b"]) == 2
    assert levenshtein(["a", "b", "c"], ["a", "c"]) == 1
    assert levenshtein(["l", "r"], ["r", "l"]) == 2


def test_segments_and_event_metrics_known_values():
    truth = ["n"] * 3 + ["L"] * 4 + ["n"] * 2 + ["R"] * 3 + ["n"] * 3 + ["L"] * 2
    segs = segments_from_frame_labels(truth, rest_label="n")
    assert segs == [Segment("L", 3, 7), Segment("R", 9, 12), Segment("L", 15, 17)]
    events = [GestureEvent("L", 5, 0.9),    # TP, delay 2
              GestureEvent("L", 6, 0.9),    # duplicate -> FP
              GestureEvent("L", 11, 0.9),   # wrong class inside R -> FP, wrong_label
              GestureEvent("L", 18, 0.9)]   # within tolerance 2 after L ends at 17 -> TP
    m = event_metrics(events, segs, tolerance=2)
    assert (m.tp, m.fp, m.fn, m.wrong_label) == (2, 2, 1, 1)
    assert m.precision == 0.5 and m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m.delays == (2, 3) and m.mean_delay == 2.5
    assert m.levenshtein == 2 and m.levenshtein_accuracy == pytest.approx(1 / 3)  # LLLL vs LRL
    assert event_metrics(events, truth, tolerance=2, rest_label="n") == m  # per-frame labels
    assert match_events([GestureEvent("L", 20, 1.0)], segs, tolerance=2) == []
    onset = segments_from_events([{"label": "L", "start": 3, "end": 7, "motion_start": 4}])
    assert event_metrics([GestureEvent("L", 5, 1.0)], onset, tolerance=0).delays == (1,)
