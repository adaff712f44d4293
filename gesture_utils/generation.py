"""Synthetic gesture clips with domain randomisation (notebook 01, ``gesture-utils generate``).

A clip is ``(T, H, W, 3)`` uint8 RGB.  Each one shows a *recording session* (background,
clutter, camera, the "hand") and, depending on the class, a hand that swipes, a hand
held still (``stop``), or no gesture (``no_gesture``): no hand at all, or -- in a
fraction ``idle_hand_fraction`` of them -- a still hand that appears or leaves part-way,
as a live stream shows between gestures.

Design decisions (each one is tested in ``tests/test_generation.py``):

* **Sessions are groups.**  A session fixes the background (solid, gradient or
  textured noise), the static clutter, the camera (noise, blur, flicker, shake) and the
  actor (a procedurally drawn hand -- palm, four fingers, thumb, wrist -- or an
  ellipse, rounded rectangle or blob, in a skin-like or other colour).  Every session
  holds clips of every class, and splits are made per session, so the test split shows
  backgrounds and hands the model never saw.
* **The label never influences appearance.**  A clip's random numbers are drawn in the
  same order whatever its class; the class only decides which way the sampled path
  points.  Each clip has its own :class:`numpy.random.SeedSequence` keyed by
  ``(session, class, index)`` -- no seed is shared across classes.
* **Time reversal turns one class into another, exactly.**  ``swipe_left`` played
  backwards is a valid ``swipe_right`` (``stop`` and ``no_gesture`` map to
  themselves): easings come in reversal pairs (ease-in <-> ease-out), idle time before
  and after the motion is drawn symmetrically, per-frame nuisances are i.i.d., and
  nothing (no trail, no arrow, no hand orientation) depends on the direction.
  :func:`mirror_params` gives the parameters of the reversed clip and
  ``render_from_params(mirror_params(p)) == render_from_params(p)[::-1]`` bit for bit.
  So the *set* of frames cannot tell left from right -- only their order can.
* **No label leak** unless ``text_overlay=True`` (the original article's mistake, kept
  as an opt-in for notebook 03's lesson).
* **Deterministic**: same config and seed -> byte-identical frames.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gesture_utils.config import DEFAULT_CLASSES, GenerateConfig, to_dict
from gesture_utils.errors import GestureError, input_error
from gesture_utils.video import write_video

#: Classes the generator can draw (any subset may be chosen).
KNOWN_CLASSES: tuple[str, ...] = DEFAULT_CLASSES
#: What each class becomes when its clip is played backwards.
TIME_REVERSED: dict[str, str] = {
    "swipe_left": "swipe_right",
    "swipe_right": "swipe_left",
    "swipe_up": "swipe_down",
    "swipe_down": "swipe_up",
    "stop": "stop",
    "no_gesture": "no_gesture",
}
#: Easing curves of the motion, closed under time reversal.
EASINGS: tuple[str, ...] = ("linear", "ease_in_out", "ease_in", "ease_out")
REVERSED_EASING: dict[str, str] = {
    "linear": "linear", "ease_in_out": "ease_in_out", "ease_in": "ease_out", "ease_out": "ease_in",
}
ACTOR_SHAPES: tuple[str, ...] = ("hand", "ellipse", "rounded_rect", "blob")
ACTOR_SHAPE_P: tuple[float, ...] = (0.55, 0.15, 0.15, 0.15)
DISTRACTOR_SHAPES: tuple[str, ...] = ("ellipse", "rounded_rect", "blob", "bar")
BACKGROUNDS: tuple[str, ...] = ("solid", "gradient", "texture")
#: Skin-like RGB tones, light to dark; the actor uses one of these 60 % of the time.
SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (255, 224, 196), (241, 194, 160), (224, 172, 137), (198, 134, 97),
    (170, 110, 75), (141, 85, 54), (110, 68, 44), (80, 51, 36),
)
#: ``GenerateConfig()`` (frozen, so safe as a default argument).
DEFAULT_CONFIG = GenerateConfig()
#: Per-frame label of stream frames outside any gesture.
REST_LABEL = "no_gesture"
_SUPERSAMPLE = 4  # sprites are drawn 4x larger, then area-downsampled (anti-aliasing)


# --------------------------------------------------------------------------- config


def n_frames(cfg: GenerateConfig) -> int:
    """Frames per clip: ``round(seconds * fps)``."""
    return int(round(cfg.seconds * cfg.fps))


def check_render_settings(cfg: GenerateConfig) -> None:
    """Raise a one-line :class:`GestureError` if clips cannot be rendered with ``cfg``
    (size, fps, duration); :func:`check_config` adds the dataset settings."""
    checks = [
        (32 <= cfg.size <= 1024, f"size must be between 32 and 1024 pixels, got {cfg.size}"),
        (1 <= cfg.fps <= 120, f"fps must be between 1 and 120, got {cfg.fps}"),
        (cfg.seconds > 0 and 4 <= n_frames(cfg) <= 600,
         f"seconds * fps must give 4..600 frames, got {cfg.seconds} s * {cfg.fps} fps"),
    ]
    for ok, message in checks:
        if not ok:
            raise GestureError(message)


def check_config(cfg: GenerateConfig) -> None:
    """Raise a one-line :class:`GestureError` for settings the generator cannot honour."""
    check_render_settings(cfg)
    if not cfg.classes:
        raise GestureError("no classes chosen (pick some of: " + ", ".join(KNOWN_CLASSES) + ")")
    unknown = [c for c in cfg.classes if c not in KNOWN_CLASSES]
    if unknown:
        raise GestureError(f"unknown class(es) {unknown} (choose from: {', '.join(KNOWN_CLASSES)})")
    if len(set(cfg.classes)) != len(cfg.classes):
        raise GestureError(f"classes listed twice: {list(cfg.classes)}")
    checks = [
        (cfg.clips_per_class >= 1, f"clips_per_class must be >= 1, got {cfg.clips_per_class}"),
        (cfg.group_size >= 1, f"group_size must be >= 1, got {cfg.group_size}"),
        (cfg.seed >= 0, f"seed must be >= 0, got {cfg.seed}"),
        (cfg.workers >= 0, f"workers must be >= 0, got {cfg.workers}"),
        (0 <= cfg.idle_hand_fraction <= 1,
         f"idle_hand_fraction must be in [0, 1], got {cfg.idle_hand_fraction}"),
        (0 <= cfg.val_fraction < 1 and 0 <= cfg.test_fraction < 1
         and cfg.val_fraction + cfg.test_fraction < 1,
         f"val_fraction and test_fraction must be in [0, 1) with sum < 1, "
         f"got {cfg.val_fraction} and {cfg.test_fraction}"),
    ]
    for ok, message in checks:
        if not ok:
            raise GestureError(message)
    needed = 1 + (cfg.val_fraction > 0) + (cfg.test_fraction > 0)
    if n_sessions(cfg) < needed:
        raise GestureError(
            f"clips_per_class={cfg.clips_per_class} with group_size={cfg.group_size} makes "
            f"{n_sessions(cfg)} session(s), but splitting by session needs >= {needed} "
            "(raise clips_per_class, lower group_size, or set val/test fractions to 0)")


# --------------------------------------------------------------------------- sampling


def _color(rng: np.random.Generator) -> list[int]:
    return [int(v) for v in rng.integers(0, 256, size=3)]


def _segment_distance(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance in RGB from colour ``c`` to the segment of colours between ``a`` and ``b``."""
    ab = b - a
    t = float(np.clip(np.dot(c - a, ab) / max(float(np.dot(ab, ab)), 1e-9), 0.0, 1.0))
    return float(np.linalg.norm(c - (a + t * ab)))


def _sample_distractor(rng: np.random.Generator, lo: float, hi: float) -> dict[str, Any]:
    return {
        "shape": DISTRACTOR_SHAPES[int(rng.integers(len(DISTRACTOR_SHAPES)))],
        "size": round(float(rng.uniform(lo, hi)), 4),
        "aspect": round(float(rng.uniform(0.4, 1.0)), 3),
        "angle": round(float(rng.uniform(0, 180)), 2),
        "color": _color(rng),
        "seed": int(rng.integers(2**31)),
        "x": round(float(rng.uniform(0.05, 0.95)), 4),
        "y": round(float(rng.uniform(0.05, 0.95)), 4),
    }


def sample_session(rng: np.random.Generator) -> dict[str, Any]:
    """The shared appearance of one recording session (JSON-able dict).

    Background style and colours, static clutter, camera nuisances and the actor's
    shape, size, base rotation and colour.  Colours are re-drawn until the actor differs
    clearly (RGB distance >= 90) from every background colour it may pass over.
    """
    style = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    kind = ACTOR_SHAPES[int(rng.choice(len(ACTOR_SHAPES), p=ACTOR_SHAPE_P))]
    for _ in range(1000):
        c1, c2 = _color(rng), _color(rng)
        if style == "solid":
            c2 = c1
        if rng.uniform() < 0.6:
            tone = np.array(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], float)
            actor_color = np.clip(tone + rng.normal(0, 10, 3), 0, 255)
        else:
            actor_color = rng.uniform(0, 255, 3)
        if _segment_distance(actor_color, np.array(c1, float), np.array(c2, float)) >= 90:
            break
    background = {
        "style": style,
        "color1": c1,
        "color2": c2,
        "angle": round(float(rng.uniform(0, 360)), 2),
        "cells": int(rng.integers(3, 13)),
        "grain": round(float(rng.uniform(0, 10)), 2),
        "seed": int(rng.integers(2**31)),
    }
    clutter = [_sample_distractor(rng, 0.06, 0.18) for _ in range(int(rng.integers(0, 6)))]
    actor: dict[str, Any] = {
        "shape": kind,
        "size": round(float(rng.uniform(0.32, 0.44)), 4),  # fraction of the frame side
        "angle": round(float(rng.uniform(-30, 30)), 2),  # degrees, 0 = fingers up
        "aspect": round(float(rng.uniform(0.6, 1.0)), 3),
        "color": [int(round(v)) for v in actor_color],
        "shade": round(float(rng.uniform(0.0, 0.3)), 3),  # darker towards the wrist
        "seed": int(rng.integers(2**31)),  # blob outline
        # hand proportions (used when shape == "hand")
        "palm_w": round(float(rng.uniform(0.36, 0.46)), 4),
        "palm_h": round(float(rng.uniform(0.36, 0.46)), 4),
        "finger_len": [round(float(b * rng.uniform(0.8, 1.2)), 4) for b in (0.29, 0.35, 0.33, 0.26)],
        "finger_w": round(float(rng.uniform(0.08, 0.105)), 4),
        "spread": round(float(rng.uniform(2.0, 12.0)), 2),  # degrees between fingers
        "thumb_len": round(float(rng.uniform(0.22, 0.3)), 4),
        "thumb_angle": round(float(rng.uniform(40, 75)), 2),
        "handedness": int(rng.choice([-1, 1])),
    }
    camera = {
        "noise": round(float(rng.uniform(1.0, 7.0)), 3),  # std of pixel noise (0..255)
        "blur": round(float(rng.choice([0.0, rng.uniform(0.4, 1.3)])), 3),  # Gaussian sigma
        "flicker": round(float(rng.uniform(0.0, 0.05)), 4),  # std of per-frame gain
        "shake": round(float(rng.uniform(0.0, 0.008)), 5),  # std of per-frame shift / side
        "tremor": round(float(rng.uniform(0.002, 0.008)), 5),  # std of hand jitter / side
    }
    return {"background": background, "clutter": clutter, "actor": actor, "camera": camera}


def _sample_path(label: str, u: np.ndarray) -> dict[str, Any] | None:
    """Start and end of the actor's centre (fractions of the side) from 6 uniforms.

    ``u`` is drawn for every class, so the class changes only how it is used.  For a
    swipe, ``lo < hi`` are the ends along the motion axis and ``c -/+ d/2`` the (slightly
    slanted) position across it; ``swipe_left`` goes ``hi -> lo`` in x, ``swipe_right``
    ``lo -> hi``.  Swapping start and end maps each swipe onto its reverse, and the
    distribution of the swapped path equals the reverse class's (``d`` is symmetric).

    ``stop`` holds the hand where a swipe rests: at the start or end of the path of a
    swipe in a random direction (``u[4]``, ``u[5]``; their leftover fractions give a
    tiny symmetric drift).  So a stop clip's first frame has the same hand-position
    distribution as a swipe's first frame (likewise the last): the position in one frame
    does not give the class away, only the motion does.
    """
    if label == "no_gesture":
        return None
    r = lambda v: round(float(v), 4)  # noqa: E731
    if label == "stop":
        k = min(int(u[4] * 4), 3)
        like = ("swipe_left", "swipe_right", "swipe_up", "swipe_down")[k]
        at_end = bool(u[5] >= 0.5)
        rest = _sample_path(like, u)
        assert rest is not None
        cx, cy = rest["end" if at_end else "start"]
        fx, fy = u[4] * 4 - k, u[5] * 2 - at_end  # uniform on [0, 1), independent of k
        dx, dy = 0.04 * (fx - 0.5), 0.04 * (fy - 0.5)
        return {"start": [r(cx - dx / 2), r(cy - dy / 2)], "end": [r(cx + dx / 2), r(cy + dy / 2)]}
    travel = 0.4 + 0.24 * u[0]
    lo = 0.18 + (0.64 - travel) * u[1]
    hi = lo + travel
    c = 0.3 + 0.4 * u[2]
    d = 0.12 * (u[3] - 0.5)
    a, b = (lo, hi) if label in ("swipe_right", "swipe_down") else (hi, lo)
    if label in ("swipe_left", "swipe_right"):
        return {"start": [r(a), r(c - d / 2)], "end": [r(b), r(c + d / 2)]}
    return {"start": [r(c - d / 2), r(a)], "end": [r(c + d / 2), r(b)]}


def idle_hand_path(u: np.ndarray, idle: np.ndarray, T: int, enters: bool) -> dict[str, Any]:
    """The hand of an "idle hand" ``no_gesture`` clip: it rests where a ``stop`` rests
    (same ``u``) and is in view only for frames ``visible = [start, end)``, which touch
    one end of the clip: it enters and stays for the last ``span`` frames, or is there
    for the first ``span`` and leaves.  ``span`` is uniform on ``[m, T // 2]`` with
    ``m = ceil(T / 8)``, so at least one of 8 sampled frames shows the hand and at least
    half do not.  The cap at half the clip is what keeps a ``stop`` (hand in view all
    clip long) recognisable in a stream, where a window over a stop also holds frames
    from before or after it (notebook 06; with up to 7T/8, as in v0.2.0, 42 of 45 stops
    in ``benchmarks/bench_idle_hand.py``'s streams were missed).  Played backwards,
    entering is leaving with the same span: the class stays closed under time reversal."""
    path = _sample_path("stop", u)
    assert path is not None
    m = max(1, -(-T // 8))
    span = m + min(int(idle[1] * (T // 2 - m + 1)), T // 2 - m)
    path["visible"] = [T - span, T] if enters else [0, span]
    return path


def sample_clip_params(label: str, rng: np.random.Generator, cfg: GenerateConfig,
                       session: dict[str, Any]) -> dict[str, Any]:
    """Everything that varies from clip to clip inside a session (JSON-able dict).

    The same random numbers are drawn, in the same order, for every label: with equal
    ``rng`` states two labels get identical appearance, lighting, distractors and noise.
    """
    if label not in KNOWN_CLASSES:
        raise GestureError(f"unknown class {label!r} (choose from: {', '.join(KNOWN_CLASSES)})")
    T = n_frames(cfg)
    a = session["actor"]
    jitter = rng.normal(0, 8, 3)
    actor = {
        "size": round(a["size"] * float(rng.uniform(0.9, 1.1)), 4),
        "angle": round(a["angle"] + float(rng.uniform(-12, 12)), 2),
        "color": [int(np.clip(round(c + j), 0, 255)) for c, j in zip(a["color"], jitter, strict=True)],
    }
    gain = round(float(rng.uniform(0.85, 1.15)), 4)
    offset = round(float(rng.uniform(-12, 12)), 3)
    drifters = []
    for _ in range(int(rng.choice(3, p=[0.4, 0.35, 0.25]))):
        dist = _sample_distractor(rng, 0.05, 0.14)
        angle = float(rng.uniform(0, 2 * math.pi))
        span = float(rng.uniform(0.05, 0.3))  # distance travelled over the clip
        step = span / (2 * (T - 1))  # per unit of tau = 2t - (T - 1)
        dist["vel"] = [round(step * math.cos(angle), 6), round(step * math.sin(angle), 6)]
        drifters.append(dist)
    noise_seed = int(rng.integers(2**31))
    time_flip = bool(rng.integers(2))
    # motion: the label only decides how these numbers are used
    u = rng.uniform(size=6)
    easing = EASINGS[int(rng.integers(len(EASINGS)))]
    duration = int(np.clip(round((0.35 + 0.45 * float(rng.uniform())) * (T - 1)), 2, T - 1))
    t0 = int(rng.integers(0, T - duration))  # idle before ~ U{0..T-1-D}; so is idle after
    # drawn last, so a dataset clip of another class is the same as before this setting
    # existed (each clip has its own rng); a stream, which shares one rng, is not
    idle = rng.uniform(size=2)
    path = _sample_path(label, u)
    if label == REST_LABEL and idle[0] < cfg.idle_hand_fraction:
        path = idle_hand_path(u, idle, T, enters=bool(idle[0] < cfg.idle_hand_fraction / 2))
    if path is not None:
        path.update(easing=easing, t0=t0, t1=t0 + duration)
    return {
        "label": label,
        "n_frames": T,
        "actor": actor if path is not None else None,
        "path": path,
        "drifters": drifters,
        "gain": gain,
        "offset": offset,
        "noise_seed": noise_seed,
        "time_flip": time_flip,
    }


def mirror_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters of the time-reversed clip: label reversed (left<->right, up<->down),
    start/end swapped, easing reversed, idle-before/after swapped, drift reversed,
    per-frame nuisances played backwards.  ``render_from_params`` of the result equals
    the original frames reversed, exactly."""
    out = json.loads(json.dumps(params))
    T = out["n_frames"]
    out["label"] = TIME_REVERSED[out["label"]]
    out["time_flip"] = not out["time_flip"]
    for d in out["drifters"]:
        d["vel"] = [-v for v in d["vel"]]
    p = out["path"]
    if p is not None:
        p["start"], p["end"] = p["end"], p["start"]
        p["easing"] = REVERSED_EASING[p["easing"]]
        p["t0"], p["t1"] = T - 1 - p["t1"], T - 1 - p["t0"]
        if "visible" in p:
            p["visible"] = [T - p["visible"][1], T - p["visible"][0]]
    return out


# --------------------------------------------------------------------------- motion


def _ease_in(c: np.ndarray) -> np.ndarray:
    return (c + 1.0) * (c + 1.0) / 2.0 - 1.0


def ease(name: str, c: np.ndarray) -> np.ndarray:
    """Easing in centred form: ``c`` in [-1, 1] (start..end of the motion) -> [-1, 1].

    Centred so that time reversal is exact in floating point: ``ease(rev, -c) ==
    -ease(name, c)`` bit for bit (odd polynomials; ease-out *defined* as the reverse of
    ease-in).
    """
    c = np.asarray(c, dtype=np.float64)
    if name == "linear":
        return c.copy()
    if name == "ease_in_out":  # smoothstep, centred: odd polynomial
        return c * (3.0 - c * c) / 2.0
    if name == "ease_in":
        return _ease_in(c)
    if name == "ease_out":
        return -_ease_in(-c)
    raise GestureError(f"unknown easing {name!r} (choose from: {', '.join(EASINGS)})")


def actor_track(path: dict[str, Any], T: int) -> np.ndarray:
    """Centre of the actor per frame, fractions of the side: ``(T, 2)`` float64 (x, y).

    Idle at ``start`` until frame ``t0``, eased motion until ``t1``, idle at ``end``.
    Computed as ``mid + half * ease(c)`` with the integer-exact centred time
    ``c = (2 (t - t0) - D) / D``, so the reversed path reproduces it exactly.
    """
    t = np.arange(T)
    t0, t1 = int(path["t0"]), int(path["t1"])
    D = t1 - t0
    c = np.clip((2 * (t - t0) - D) / D, -1.0, 1.0)
    g = ease(path["easing"], c)
    s, e = np.array(path["start"], float), np.array(path["end"], float)
    mid, half = (s + e) / 2.0, (e - s) / 2.0
    return mid[None, :] + half[None, :] * g[:, None]


def hand_track(params: Mapping[str, Any]) -> np.ndarray:
    """Where the hand is in every frame of a generated clip: ``(T, 3)`` float32 rows
    ``(visible, x, y)``, the centre in fractions of the side (before camera shake and
    tremor, a few pixels at most); ``x = y = 0`` where no hand is in view.  ``params``
    are a manifest row's (:func:`sample_clip_params`).  The generator knows this for
    free, so training can ask the frame encoder for it too (``TrainConfig.hand_weight``,
    notebook 03)."""
    T, path = int(params["n_frames"]), params.get("path")
    out = np.zeros((T, 3), np.float32)
    if path is None:
        return out
    start, end = path.get("visible", (0, T))
    out[start:end, 0] = 1.0
    out[start:end, 1:] = actor_track(path, T)[start:end]
    return out


def _reflect(p: np.ndarray) -> np.ndarray:
    """Fold positions back into [0, 1] (drifting distractors bounce off the edges)."""
    p = np.mod(p, 2.0)
    return np.where(p > 1.0, 2.0 - p, p)


# --------------------------------------------------------------------------- drawing


def _hand_parts(a: dict[str, Any]) -> list[tuple]:
    """Palm ellipse + wrist, 4 fingers and a thumb as capsules, in units of the actor size
    (origin = palm centre, y down, fingers up)."""
    pw, ph, fw = a["palm_w"], a["palm_h"], a["finger_w"]
    parts: list[tuple] = [("ellipse", (0.0, 0.0), (pw / 2, ph / 2))]
    parts.append(("capsule", (0.0, ph * 0.3), (0.0, ph / 2 + 0.2), pw * 0.7))  # wrist
    for i, length in enumerate(a["finger_len"]):
        bx = (-0.36 + 0.24 * i) * pw
        by = -ph / 2 * 0.7
        th = math.radians((i - 1.5) * a["spread"])
        tip = (bx + length * math.sin(th), by - length * math.cos(th))
        parts.append(("capsule", (bx, by), tip, fw))
    h = a["handedness"]
    base = (h * pw / 2 * 0.75, ph * 0.1)
    th = math.radians(a["thumb_angle"])
    tip = (base[0] + h * a["thumb_len"] * math.sin(th), base[1] - a["thumb_len"] * math.cos(th))
    parts.append(("capsule", base, tip, fw * 1.15))
    return parts


def _shape_mask(spec: dict[str, Any], size_px: float, angle_deg: float) -> np.ndarray:
    """Anti-aliased mask ``(h, w)`` float32 in [0, 1] of one shape, centred in its box."""
    ss = _SUPERSAMPLE
    side = max(3, int(math.ceil(size_px * 1.7)) | 1)
    big = np.zeros((side * ss, side * ss), np.uint8)
    scale = size_px * ss
    ctr = side * ss / 2.0
    rot = math.radians(angle_deg)
    cos, sin = math.cos(rot), math.sin(rot)

    def pt(x: float, y: float) -> tuple[int, int]:
        xr, yr = x * cos - y * sin, x * sin + y * cos
        return int(round(ctr + xr * scale)), int(round(ctr + yr * scale))

    kind = spec["shape"]
    aspect = spec.get("aspect", 1.0)
    if kind == "hand":
        for part in _hand_parts(spec):
            if part[0] == "ellipse":
                _, (x, y), (ax, ay) = part
                cv2.ellipse(big, pt(x, y), (int(ax * scale), int(ay * scale)), angle_deg,
                            0, 360, 255, -1)
            else:
                _, p0, p1, w = part
                cv2.line(big, pt(*p0), pt(*p1), 255, max(1, int(w * scale)))
    elif kind == "ellipse":
        cv2.ellipse(big, pt(0, 0), (int(0.32 * aspect * scale), int(0.4 * scale)), angle_deg,
                    0, 360, 255, -1)
    elif kind == "rounded_rect":
        w, h, r = 0.62 * aspect / 2, 0.72 / 2, 0.12
        corners = [(-w + r, -h + r), (w - r, -h + r), (w - r, h - r), (-w + r, h - r)]
        cv2.fillConvexPoly(big, np.array([pt(x, y) for x, y in
                                          [(-w, -h + r), (-w + r, -h), (w - r, -h), (w, -h + r),
                                           (w, h - r), (w - r, h), (-w + r, h), (-w, h - r)]],
                                         np.int32), 255)
        for x, y in corners:
            cv2.circle(big, pt(x, y), int(r * scale), 255, -1)
    elif kind == "blob":
        brng = np.random.default_rng(spec["seed"])
        theta = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        radius = np.ones_like(theta)
        for k in (2, 3, 4):
            radius += brng.uniform(0.0, 0.18) * np.cos(k * theta + brng.uniform(0, 2 * np.pi))
        radius *= 0.36
        poly = [pt(r * math.cos(t) * (0.6 + 0.4 * aspect), r * math.sin(t))
                for r, t in zip(radius, theta, strict=True)]
        cv2.fillPoly(big, [np.array(poly, np.int32)], 255)
    elif kind == "bar":
        cv2.line(big, pt(-0.45, 0), pt(0.45, 0), 255, max(1, int(0.12 * aspect * scale)))
    else:  # pragma: no cover - guarded by the samplers
        raise GestureError(f"unknown shape {kind!r}")
    small = cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


@dataclass
class _Sprite:
    mask: np.ndarray  # (h, w, 1) float32
    rgb: np.ndarray  # (h, w, 3) float32


def _sprite(spec: dict[str, Any], size_px: float, angle: float, color: Sequence[int],
            shade: float = 0.0) -> _Sprite:
    mask = _shape_mask(spec, size_px, angle)
    h = mask.shape[0]
    ramp = 1.0 - shade * np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None, None]
    rgb = np.asarray(color, np.float32)[None, None, :] * ramp
    rgb = np.broadcast_to(rgb, (h, mask.shape[1], 3)).astype(np.float32)
    # Crop to the drawn pixels, keeping the box centred on the shape's origin, so that
    # pasting costs only what is visible (symmetric crop: the centre does not move).
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if len(rows) and len(cols):
        r = min(rows[0], h - 1 - rows[-1])
        c = min(cols[0], mask.shape[1] - 1 - cols[-1])
        mask, rgb = mask[r:h - r, c:mask.shape[1] - c], rgb[r:h - r, c:mask.shape[1] - c]
    return _Sprite(np.ascontiguousarray(mask[:, :, None]), np.ascontiguousarray(rgb))


def _paste(frame: np.ndarray, sp: _Sprite, cx: float, cy: float) -> None:
    """Alpha-blend ``sp`` into ``frame`` (float32, in place) centred at pixel (cx, cy)."""
    h, w = sp.mask.shape[:2]
    x0 = int(math.floor(cx - w / 2 + 0.5))
    y0 = int(math.floor(cy - h / 2 + 0.5))
    H, W = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    m = sp.mask[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    c = sp.rgb[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0]
    region = frame[fy0:fy1, fx0:fx1]
    region += m * (c - region)


def _margin(session: dict[str, Any], size: int) -> int:
    return max(1, int(math.ceil(3 * session["camera"]["shake"] * size)))


@lru_cache(maxsize=16)
def _background_cached(session_json: str, size: int) -> np.ndarray:
    session = json.loads(session_json)
    bg = session["background"]
    m = _margin(session, size)
    side = size + 2 * m
    c1, c2 = np.array(bg["color1"], np.float32), np.array(bg["color2"], np.float32)
    if bg["style"] == "solid":
        w = np.zeros((side, side), np.float32)
    elif bg["style"] == "gradient":
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / max(side - 1, 1)
        a = math.radians(bg["angle"])
        proj = xx * math.cos(a) + yy * math.sin(a)
        w = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)
    else:  # texture: smooth random blobs, like a wall or a sofa
        trng = np.random.default_rng(bg["seed"])
        cells = trng.uniform(0, 1, (bg["cells"], bg["cells"])).astype(np.float32)
        w = np.clip(cv2.resize(cells, (side, side), interpolation=cv2.INTER_CUBIC), 0, 1)
    img = c1[None, None, :] * (1 - w[:, :, None]) + c2[None, None, :] * w[:, :, None]
    if bg["grain"] > 0:  # static fine texture (the wall's, not the camera's)
        grng = np.random.default_rng(bg["seed"] + 1)
        img = img + grng.normal(0, bg["grain"], img.shape).astype(np.float32)
    for d in session["clutter"]:
        sp = _sprite(d, d["size"] * size, d["angle"], d["color"])
        _paste(img, sp, m + d["x"] * size, m + d["y"] * size)
    img = np.clip(img, 0, 255).astype(np.float32)
    img.setflags(write=False)
    return img


def session_background(session: dict[str, Any], size: int) -> np.ndarray:
    """The static scene of a session, with a margin for camera shake:
    ``(size + 2m, size + 2m, 3)`` float32 (read-only, cached)."""
    return _background_cached(json.dumps(session, sort_keys=True), size)


def _actor_sprite(session: dict[str, Any], actor: dict[str, Any], size: int) -> _Sprite:
    spec = dict(session["actor"])
    return _sprite(spec, actor["size"] * size, actor["angle"], actor["color"], spec["shade"])


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """16 tiles of standard normal noise ``(16, size + 16, size + 16, 3)`` float32.

    Drawing fresh Gaussian noise for every frame costs more than the rest of the
    rendering; a random tile at a random offset looks the same to a model."""
    bank = np.random.default_rng(20240).standard_normal((16, size + 16, size + 16, 3),
                                                         dtype=np.float32)
    bank.setflags(write=False)
    return bank


def _nuisances(seed: int, n: int, size: int, camera: dict[str, Any], margin: int,
               flip: bool = False) -> dict[str, np.ndarray]:
    """Per-frame random nuisances of ``n`` frames, i.i.d. over time, drawn from ``seed``:
    shake ``(n, 2)`` int pixels, flicker ``(n,)`` gain, tremor ``(n, 2)`` pixels, noise
    tile ``(n,)`` and offset ``(n, 2)``.  ``flip`` plays them backwards."""
    rng = np.random.default_rng(seed)
    out = {
        "shake": np.clip(np.round(rng.normal(0, camera["shake"] * size, (n, 2))),
                         -margin, margin).astype(int),
        "flicker": 1.0 + camera["flicker"] * rng.normal(size=n),
        "tremor": rng.normal(0, camera["tremor"] * size, (n, 2)),
        "tile": rng.integers(0, 16, n),
        "noise_xy": rng.integers(0, 17, (n, 2)),
    }
    return {k: v[::-1] for k, v in out.items()} if flip else out


def _compose(session: dict[str, Any], size: int, nuis: dict[str, np.ndarray],
             actor_frames: Sequence[tuple[_Sprite, float, float] | None],
             drifters: Sequence[tuple[_Sprite, np.ndarray]], gain: float, offset: float,
             text: Sequence[str | None] | None = None) -> np.ndarray:
    """Render frames: background crop (shake) -> drifting distractors -> actor (tremor)
    -> gain, flicker -> blur -> noise -> uint8 -> optional text.

    ``nuis`` from :func:`_nuisances`; ``actor_frames[t]`` is ``(sprite, x, y)``
    (fractions of the side, before tremor/shake) or None; ``drifters`` are
    ``(sprite, positions (N, 2))``.  Returns ``(N, size, size, 3)`` uint8.
    """
    cam = session["camera"]
    bg = session_background(session, size)
    bank = _noise_bank(size)
    m = _margin(session, size)
    n = len(actor_frames)
    out = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        sx, sy = int(nuis["shake"][t, 0]), int(nuis["shake"][t, 1])
        frame = bg[m + sy:m + sy + size, m + sx:m + sx + size].copy()
        for sp, pos in drifters:
            _paste(frame, sp, pos[t, 0] * size - sx, pos[t, 1] * size - sy)
        act = actor_frames[t]
        if act is not None:
            sp, x, y = act
            tx, ty = nuis["tremor"][t]
            _paste(frame, sp, x * size + tx - sx, y * size + ty - sy)
        frame *= np.float32(gain * nuis["flicker"][t])
        frame += np.float32(offset)
        if cam["blur"] >= 0.3:
            frame = cv2.GaussianBlur(frame, (0, 0), cam["blur"])
        nx, ny = int(nuis["noise_xy"][t, 0]), int(nuis["noise_xy"][t, 1])
        frame += bank[int(nuis["tile"][t]), ny:ny + size, nx:nx + size] * np.float32(cam["noise"])
        frame += np.float32(0.5)
        np.clip(frame, 0, 255, out=frame)
        out[t] = frame.astype(np.uint8)
        if text is not None and text[t]:
            _put_label(out[t], text[t])
    return out


def _put_label(frame: np.ndarray, label: str) -> None:
    """The article's overlay: the class name in the top-left corner (in place)."""
    size = frame.shape[0]
    scale = size / 320
    org = (max(2, size // 28), max(10, size // 9))
    cv2.putText(frame, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                max(2, size // 80), cv2.LINE_AA)
    cv2.putText(frame, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                max(1, size // 160), cv2.LINE_AA)


def _drifter_tracks(params: dict[str, Any], size: int, T: int) -> list[tuple[_Sprite, np.ndarray]]:
    tau = (2 * np.arange(T) - (T - 1)).astype(np.float64)  # centred time, odd under reversal
    out = []
    for d in params["drifters"]:
        sp = _sprite(d, d["size"] * size, d["angle"], d["color"])
        pos = np.array([d["x"], d["y"]])[None, :] + np.array(d["vel"])[None, :] * tau[:, None]
        out.append((sp, _reflect(pos)))
    return out


def _actor_frames(params: dict[str, Any], session: dict[str, Any],
                  size: int) -> list[tuple[_Sprite, float, float] | None]:
    """``(sprite, x, y)`` of the actor per frame, None where it is out of view."""
    T, path = int(params["n_frames"]), params["path"]
    if path is None:
        return [None] * T
    sp = _actor_sprite(session, params["actor"], size)
    start, end = path.get("visible", (0, T))
    return [(sp, float(x), float(y)) if start <= t < end else None
            for t, (x, y) in enumerate(actor_track(path, T))]


def render_from_params(params: dict[str, Any], session: dict[str, Any],
                       cfg: GenerateConfig) -> np.ndarray:
    """Frames ``(T, size, size, 3)`` uint8 RGB of a clip described by ``params``
    (from :func:`sample_clip_params` or :func:`mirror_params`) in ``session``."""
    size, T = cfg.size, int(params["n_frames"])
    nuis = _nuisances(params["noise_seed"], T, size, session["camera"],
                      _margin(session, size), flip=params["time_flip"])
    actor_frames = _actor_frames(params, session, size)
    text = [params["label"]] * T if cfg.text_overlay else None
    return _compose(session, size, nuis, actor_frames, _drifter_tracks(params, size, T),
                    params["gain"], params["offset"], text)


def render_clip(label: str, rng: np.random.Generator, cfg: GenerateConfig = DEFAULT_CONFIG,
                session: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """One clip of class ``label``: frames ``(T, H, W, 3)`` uint8 RGB and its parameters.

    ``session`` (from :func:`sample_session`) fixes the shared appearance; when None a
    new one is drawn from ``rng`` first.  The returned params (JSON-able) hold the clip's
    parameters plus ``"session"``, so ``render_from_params(p, p["session"], cfg)``
    reproduces the frames.  Notebook 01.
    """
    if session is None:
        session = sample_session(rng)
    params = sample_clip_params(label, rng, cfg, session)
    frames = render_from_params(params, session, cfg)
    return frames, {**params, "session": session}


def reverse_clip(frames: np.ndarray) -> np.ndarray:
    """The clip played backwards: ``frames[::-1]`` (contiguous copy)."""
    return np.ascontiguousarray(np.asarray(frames)[::-1])


# --------------------------------------------------------------------------- streams


@dataclass
class Stream:
    """A long recording with several gestures (issue 7 / notebook 06).

    ``frames``: ``(N, H, W, 3)`` uint8 RGB; ``labels``: the ground-truth class of every
    frame (``REST_LABEL`` between gestures); ``events``: one dict per gesture with
    ``label``, ``start``/``end`` (frames where the hand is in view, end exclusive) and
    ``motion_start``/``motion_end`` (the frames where it moves, end exclusive).
    """

    frames: np.ndarray
    labels: list[str]
    events: list[dict[str, Any]]
    fps: int


def render_stream(labels: Sequence[str] | None, rng: np.random.Generator,
                  cfg: GenerateConfig = DEFAULT_CONFIG, session: dict[str, Any] | None = None,
                  n_events: int = 6, idle_seconds: tuple[float, float] = (0.5, 1.5)) -> Stream:
    """A stream of gestures separated by idle time (no hand), one session throughout.

    ``labels``: the gestures in order; None draws ``n_events`` from ``cfg.classes``
    (``no_gesture`` excluded).  Each gesture is a clip-length segment rendered exactly
    like a dataset clip (hand idle, moves, idle); before each and after the last comes
    ``U(idle_seconds)`` of rest.  Distractors drift (bouncing) for the whole stream.
    """
    check_render_settings(cfg)
    if session is None:
        session = sample_session(rng)
    if labels is None:
        pool = [c for c in cfg.classes if c != REST_LABEL] or [REST_LABEL]
        labels = [pool[int(i)] for i in rng.integers(len(pool), size=n_events)]
    labels = list(labels)
    unknown = sorted(set(labels) - set(KNOWN_CLASSES))
    if unknown:
        raise GestureError(f"unknown class(es) {unknown} (choose from: {', '.join(KNOWN_CLASSES)})")
    T, size, fps = n_frames(cfg), cfg.size, cfg.fps
    lo, hi = (max(0, int(round(s * fps))) for s in idle_seconds)
    if hi < lo:
        raise GestureError(f"idle_seconds must be (min, max), got {idle_seconds}")
    actor_frames: list[tuple[_Sprite, float, float] | None] = []
    frame_labels: list[str] = []
    events: list[dict[str, Any]] = []
    for label in labels:
        gap = int(rng.integers(lo, hi + 1))
        actor_frames += [None] * gap
        frame_labels += [REST_LABEL] * gap
        p = sample_clip_params(label, rng, cfg, session)
        start = len(actor_frames)
        actor_frames += _actor_frames(p, session, size)
        frame_labels += [label] * T
        ev = {"label": label, "start": start, "end": start + T}
        if p["path"] is not None and label != REST_LABEL:
            ev.update(motion_start=start + p["path"]["t0"], motion_end=start + p["path"]["t1"] + 1)
        events.append(ev)
    tail = int(rng.integers(lo, hi + 1))
    actor_frames += [None] * tail
    frame_labels += [REST_LABEL] * tail
    N = len(actor_frames)
    drift_spec = {"drifters": []}
    for _ in range(int(rng.integers(0, 3))):
        d = _sample_distractor(rng, 0.05, 0.14)
        angle = float(rng.uniform(0, 2 * math.pi))
        step = float(rng.uniform(0.05, 0.3)) / (2 * (T - 1))
        d["vel"] = [step * math.cos(angle), step * math.sin(angle)]
        drift_spec["drifters"].append(d)
    drifters = _drifter_tracks(drift_spec, size, N)
    nuis = _nuisances(int(rng.integers(2**31)), N, size, session["camera"], _margin(session, size))
    gain, offset = float(rng.uniform(0.85, 1.15)), float(rng.uniform(-12, 12))
    text = frame_labels if cfg.text_overlay else None
    frames = _compose(session, size, nuis, actor_frames, drifters, gain, offset, text)
    return Stream(frames=frames, labels=frame_labels, events=events, fps=fps)


# --------------------------------------------------------------------------- datasets

MANIFEST = "manifest.csv"
LABELS = "labels.txt"
CONFIG = "config.json"
SESSIONS = "sessions.json"
MANIFEST_COLUMNS = ("path", "label", "split", "group", "params")
#: Config fields that do not change the data (excluded from the load-or-compute check).
_RUNTIME_FIELDS = ("workers",)


#: What :func:`sample_clip_params` draws, as a number stored in ``config.json`` (and so in
#: every checkpoint's ``dataset_config``): 1 = v0.1.0, 2 = v0.2.0 (idle-hand no_gesture
#: clips), 3 = idle hands in view for at most half the clip.  Bump it with
#: ``GOLDEN_PARAMS`` in tests/test_generation.py: older folders are then regenerated and
#: models trained on them are named and skipped by notebooks 04-06 -- all of them, even
#: the few whose clips happen not to change (e.g. ``idle_hand_fraction=0``): simple and safe.
SAMPLER_VERSION = 3


def _content_config(cfg: GenerateConfig) -> dict[str, Any]:
    d = to_dict(cfg)
    for k in _RUNTIME_FIELDS:
        d.pop(k, None)
    d["sampler_version"] = SAMPLER_VERSION
    return d


def older_version(stored: Any, want: Mapping[str, Any]) -> str | None:
    """Why the dataset settings ``stored`` are ``want``'s (both :func:`dataset_config`
    dicts) as written by an older version of this module -- a setting added since is
    missing, or an older sampler -- else None.  :func:`generate_dataset` regenerates such
    a folder; :func:`gesture_utils.models.checkpoint_problem` names such a model."""
    if not isinstance(stored, Mapping):
        return None
    old, now = stored.get("sampler_version", 1), want.get("sampler_version", SAMPLER_VERSION)
    if not (set(stored) <= set(want) and isinstance(old, int) and isinstance(now, int) and old <= now
            and all(stored[k] == want[k] for k in stored if k != "sampler_version")):
        return None
    missing = sorted(set(want) - set(stored) - {"sampler_version"})
    if missing:
        return f"no {', '.join(missing)} setting"
    if old < now:
        return f"sampler version {stored.get('sampler_version', 'not recorded')}, now {now}"
    return None


def dataset_config(source: GenerateConfig | str | os.PathLike[str]) -> dict[str, Any] | None:
    """The settings that decide a dataset's content, as stored in its ``config.json``:
    from a :class:`GenerateConfig`, or read from a dataset folder (None if it has no
    readable ``config.json``, e.g. imported clips).  Training stores it in the checkpoint,
    so notebooks 04-06 can tell a model trained on other data (notebook 03)."""
    if isinstance(source, GenerateConfig):
        return json.loads(json.dumps(_content_config(source)))
    stored = _read_json(Path(source) / CONFIG)
    return stored if isinstance(stored, dict) else None


def n_sessions(cfg: GenerateConfig) -> int:
    """Number of recording sessions (groups): ``ceil(clips_per_class / group_size)``."""
    return -(-cfg.clips_per_class // cfg.group_size)


def session_rng(cfg: GenerateConfig, s: int) -> np.random.Generator:
    """The generator of session ``s``'s appearance (spawn key ``(s, 0)``)."""
    return np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(s, 0)))


def clip_rng(cfg: GenerateConfig, s: int, label: str, k: int) -> np.random.Generator:
    """The generator of clip ``k`` of ``label`` in session ``s``: its own SeedSequence
    keyed by (session, class, index) -- nothing is shared across classes, and choosing a
    subset of classes leaves the other clips unchanged."""
    key = (s, 1 + KNOWN_CLASSES.index(label), k)
    return np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=key))


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _same_sampler(out_dir: Path, cfg: GenerateConfig, rows: list[dict[str, str]]) -> bool:
    """Re-draw the session and parameters of the first clip of each class and compare
    them with ``sessions.json`` / the manifest: False for a dataset written by a version
    of this module that samples differently (same settings, other data)."""
    sessions = _read_json(out_dir / SESSIONS)
    if not isinstance(sessions, dict):
        return False
    seen: set[str] = set()
    try:
        for row in rows:
            label = row["label"]
            if label in seen:
                continue
            seen.add(label)
            s = int(row["group"].lstrip("s"))
            k = int(Path(row["path"]).stem.rsplit("_", 1)[1]) - s * cfg.group_size
            session = sample_session(session_rng(cfg, s))
            params = sample_clip_params(label, clip_rng(cfg, s, label, k), cfg, session)
            if (json.loads(json.dumps(session)) != sessions.get(row["group"])
                    or json.loads(json.dumps(params)) != json.loads(row["params"])):
                return False
    except (KeyError, IndexError, ValueError, GestureError):
        return False
    return True


def is_complete(out_dir: Path, cfg: GenerateConfig) -> bool:
    """True if ``out_dir`` holds a finished dataset generated with ``cfg``: config.json
    matches, labels.txt lists the classes, the manifest (written last) has every clip,
    every clip file exists, and the first clip of each class has the parameters this
    version of the generator draws (so data from an older generator is regenerated)."""
    out_dir = Path(out_dir)
    if not (out_dir / MANIFEST).is_file():
        return False
    if _read_json(out_dir / CONFIG) != _content_config(cfg):
        return False
    try:
        labels = (out_dir / LABELS).read_text(encoding="utf-8").split()
        with open(out_dir / MANIFEST, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error):
        return False
    if labels != list(cfg.classes) or len(rows) != cfg.clips_per_class * len(cfg.classes):
        return False
    if not all((out_dir / r["path"]).is_file() for r in rows if r.get("path")):
        return False
    return _same_sampler(out_dir, cfg, rows)


def _looks_generated(out_dir: Path) -> bool:
    return (out_dir / CONFIG).is_file() or (out_dir / MANIFEST).is_file()


def _clear(out_dir: Path) -> None:
    """Remove what a previous generation wrote (never anything else)."""
    old = _read_json(out_dir / CONFIG) or {}
    classes = set(KNOWN_CLASSES) | set(old.get("classes", []) if isinstance(old, dict) else [])
    for name in (MANIFEST, LABELS, SESSIONS, CONFIG):
        (out_dir / name).unlink(missing_ok=True)
    for c in classes:
        if (out_dir / c).is_dir():
            shutil.rmtree(out_dir / c)


def resolve_workers(cfg: GenerateConfig) -> int:
    """Processes :func:`generate_dataset` uses: ``cfg.workers``, or for 0 one per CPU
    core (at most 8) when the dataset has >= 100 clips, else 1 (starting processes
    costs about a second)."""
    if cfg.workers > 0:
        return cfg.workers
    if cfg.clips_per_class * len(cfg.classes) < 100:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _render_session(task: tuple[GenerateConfig, int, str]) -> tuple[dict, list[dict]]:
    """Render and write every clip of session ``s`` (one unit of work for a worker)."""
    cfg, s, out_dir = task
    session = sample_session(session_rng(cfg, s))
    rows = []
    k_max = min(cfg.group_size, cfg.clips_per_class - s * cfg.group_size)
    for label in cfg.classes:
        for k in range(k_max):
            idx = s * cfg.group_size + k
            params = sample_clip_params(label, clip_rng(cfg, s, label, k), cfg, session)
            frames = render_from_params(params, session, cfg)
            rel = f"{label}/{label}_{idx:04d}.mp4"
            write_video(Path(out_dir) / rel, frames, cfg.fps)
            rows.append({"path": rel, "label": label, "group": f"s{s:03d}", "params": params})
    return session, rows


def generate_dataset(out_dir: str | os.PathLike[str], cfg: GenerateConfig = DEFAULT_CONFIG,
                     overwrite: bool = False, progress: bool = True) -> Path:
    """Write a synthetic dataset to ``out_dir`` and return it (load-or-compute).

    Layout: ``<class>/<class>_NNNN.mp4``, ``labels.txt``, ``config.json``,
    ``sessions.json`` (session appearance per group) and ``manifest.csv`` with columns
    ``path,label,split,group,params`` -- written last, so an interrupted run never looks
    complete.  Splits are by session (group), stratified (:func:`assign_splits`).

    Returns at once when ``out_dir`` already holds a complete dataset made with the same
    ``cfg`` (:func:`is_complete`); ``overwrite=True`` regenerates.  A dataset with the
    same ``cfg`` that is stale (written by an older version of this module,
    :data:`SAMPLER_VERSION`) is regenerated, with a note, and so is an incomplete one (no
    manifest yet: an interrupted run, whatever its settings); a complete one made with
    other settings needs ``overwrite=True``.
    Raises :class:`GestureError` rather than touch a folder that holds something else.
    Notebook 01.
    """
    check_config(cfg)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise input_error(out_dir, "exists and is not a folder", "choose another output folder")
    if not overwrite and is_complete(out_dir, cfg):
        return out_dir
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not _looks_generated(out_dir):
            raise input_error(out_dir, "folder is not empty and holds no generated dataset",
                              "choose a new or empty output folder")
        stored = _read_json(out_dir / CONFIG)
        older = older_version(stored, _content_config(cfg))
        if older:
            print(f"{out_dir}: made by an older version of the package ({older}) - regenerating it")
        complete_other = ((out_dir / MANIFEST).is_file() and not older
                          and stored != _content_config(cfg))
        if complete_other and not overwrite:
            raise input_error(out_dir, "holds a dataset generated with other settings",
                              "pass overwrite=True (CLI: --overwrite) or choose another folder")
        _clear(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text_atomic(out_dir / CONFIG, json.dumps(_content_config(cfg), indent=2) + "\n")

    tasks = [(cfg, s, str(out_dir)) for s in range(n_sessions(cfg))]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc="sessions", unit="session", disable=not progress)
    results: list[tuple[dict, list[dict]]] = []
    workers = min(resolve_workers(cfg), len(tasks))
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # "spawn": safe in Jupyter and after torch/OpenMP started threads (fork is not)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for res in pool.map(_render_session, tasks):
                results.append(res)
                bar.update()
    else:
        for task in tasks:
            results.append(_render_session(task))
            bar.update()
    bar.close()

    # imported here, not at the top: worker processes then skip scikit-learn's import
    from gesture_utils.splits import assign_splits

    sessions = {f"s{s:03d}": sess for s, (sess, _) in enumerate(results)}
    order = {c: i for i, c in enumerate(cfg.classes)}
    rows = sorted((r for _, rs in results for r in rs), key=lambda r: (order[r["label"]], r["path"]))
    splits = assign_splits([r["label"] for r in rows], [r["group"] for r in rows],
                           cfg.val_fraction, cfg.test_fraction, seed=cfg.seed)
    _write_text_atomic(out_dir / SESSIONS, json.dumps(sessions, sort_keys=True) + "\n")
    _write_text_atomic(out_dir / LABELS, "".join(c + "\n" for c in cfg.classes))
    tmp = out_dir / f".{MANIFEST}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(MANIFEST_COLUMNS)
            for r, split in zip(rows, splits, strict=True):
                w.writerow([r["path"], r["label"], split, r["group"],
                            json.dumps(r["params"], sort_keys=True, separators=(",", ":"))])
        os.replace(tmp, out_dir / MANIFEST)
    finally:
        tmp.unlink(missing_ok=True)
    return out_dir


#: The QUICK-mode dataset (CI): 6 sessions x 1 clip per class = 36 clips at 64 px.
QUICK_OVERRIDES: dict[str, Any] = {"clips_per_class": 6, "group_size": 1, "size": 64}


def standard_config(quick: bool | None = None) -> GenerateConfig:
    """The settings of the series' dataset: ``GenerateConfig()`` defaults, or in QUICK
    mode (default: ``GESTURE_QUICK``) the small :data:`QUICK_OVERRIDES` version."""
    from gesture_utils.runtime import is_quick

    quick = is_quick() if quick is None else quick
    return replace(GenerateConfig(), **QUICK_OVERRIDES) if quick else GenerateConfig()


def standard_dataset(quick: bool | None = None, progress: bool = True,
                     overwrite: bool = False, name: str | None = None, **overrides: Any) -> Path:
    """The dataset every notebook uses, generated on first use (load-or-compute):
    ``data_dir()/"synthetic"`` with :func:`standard_config`, or
    ``data_dir()/"synthetic_quick"`` in QUICK mode.  Returns its root.  ``name`` and
    ``overrides`` give a variant in its own folder (``name`` or ``name_quick``), e.g.
    notebook 03's ``standard_dataset(name="synthetic_overlay", text_overlay=True)``.

    As with :func:`generate_dataset`, a folder written by an older version of the package
    is regenerated, with a note, and one generated with other settings (e.g.
    ``gesture-utils generate --clips-per-class 500`` into the same folder) is refused:
    pass ``overwrite=True``."""
    from gesture_utils.paths import data_dir
    from gesture_utils.runtime import is_quick

    quick = is_quick() if quick is None else quick
    folder = name or "synthetic"
    root = data_dir() / (f"{folder}_quick" if quick else folder)
    cfg = replace(standard_config(quick), **overrides)
    return generate_dataset(root, cfg, overwrite=overwrite, progress=progress)


def load_sessions(root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``{group: session}`` of a generated dataset (for re-rendering a clip)."""
    path = Path(root) / SESSIONS
    data = _read_json(path)
    if not isinstance(data, dict):
        raise input_error(path, "missing or unreadable", "regenerate the dataset (--overwrite)")
    return data


# --------------------------------------------------------------------------- CLI


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gesture-utils generate``."""
    d = GenerateConfig()
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <data_dir>/synthetic)")
    parser.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                        help=f"classes to draw (default: all of {' '.join(KNOWN_CLASSES)})")
    parser.add_argument("--clips-per-class", type=int, default=d.clips_per_class)
    parser.add_argument("--size", type=int, default=d.size, help="frame side in pixels")
    parser.add_argument("--fps", type=int, default=d.fps)
    parser.add_argument("--seconds", type=float, default=d.seconds, help="clip length")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--group-size", type=int, default=d.group_size,
                        help="clips of each class per recording session")
    parser.add_argument("--val-fraction", type=float, default=d.val_fraction)
    parser.add_argument("--test-fraction", type=float, default=d.test_fraction)
    parser.add_argument("--idle-hand-fraction", type=float, default=d.idle_hand_fraction,
                        help="share of no_gesture clips where a still hand comes or goes (0-1)")
    parser.add_argument("--workers", type=int, default=d.workers,
                        help="processes (default 0 = one per CPU core for >= 100 clips)")
    parser.add_argument("--text-overlay", action="store_true",
                        help="write the class name on every frame (a label leak; for the lesson)")
    parser.add_argument("--overwrite", action="store_true", help="regenerate even if present")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = replace(
        GenerateConfig(),
        classes=tuple(args.classes) if args.classes else GenerateConfig().classes,
        clips_per_class=args.clips_per_class, size=args.size, fps=args.fps,
        seconds=args.seconds, seed=args.seed, group_size=args.group_size,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction,
        text_overlay=args.text_overlay, workers=args.workers,
        idle_hand_fraction=args.idle_hand_fraction,
    )
    check_config(cfg)
    if args.out is None:
        from gesture_utils.paths import data_dir

        out = data_dir() / "synthetic"
    else:
        out = args.out
    start = time.perf_counter()
    fresh = args.overwrite or not is_complete(out, cfg)
    generate_dataset(out, cfg, overwrite=args.overwrite, progress=not args.no_progress)
    with open(Path(out) / MANIFEST, newline="", encoding="utf-8") as f:
        splits = [r["split"] for r in csv.DictReader(f)]
    counts = " / ".join(f"{s} {splits.count(s)}" for s in ("train", "val", "test"))
    verb = f"wrote {len(splits)} clips" if fresh else f"up to date: {len(splits)} clips"
    print(f"{verb} ({counts}) in {out} [{time.perf_counter() - start:.1f} s]")
    return 0


__all__ = [
    "ACTOR_SHAPES",
    "BACKGROUNDS",
    "QUICK_OVERRIDES",
    "EASINGS",
    "KNOWN_CLASSES",
    "MANIFEST_COLUMNS",
    "REST_LABEL",
    "TIME_REVERSED",
    "Stream",
    "actor_track",
    "check_config",
    "check_render_settings",
    "clip_rng",
    "configure_cli",
    "dataset_config",
    "ease",
    "generate_dataset",
    "hand_track",
    "idle_hand_path",
    "older_version",
    "is_complete",
    "load_sessions",
    "mirror_params",
    "n_frames",
    "n_sessions",
    "render_clip",
    "render_from_params",
    "render_stream",
    "resolve_workers",
    "reverse_clip",
    "sample_clip_params",
    "sample_session",
    "session_background",
    "session_rng",
    "standard_config",
    "standard_dataset",
]
