"""Synthetic gesture clips with domain randomisation (notebook 01, ``gesture-utils generate``).

A clip is ``(T, H, W, 3)`` uint8 RGB of one *recording session* (background, people,
camera, hand): a hand that swipes, is held still (``stop``), or ``no_gesture`` (no hand, a
still hand that comes or goes, or one that fidgets); ``wave`` (not a default class) sways
side to side and back.  ``scene="photo"`` is webcam-like (real photos, faces, a hand with
forearm, a moving camera); ``"procedural"`` the flat look.  ``holdout=True`` uses the
photos, faces, hand style and motion reserved for the out-of-distribution set.
Decisions, each tested in ``tests/test_generation.py``:

* Sessions are groups: splits are per session, so test scenes and hands are unseen.
* The label never influences appearance: a clip's random numbers are drawn in the same
  order whatever its class; each clip has its own seed, keyed by (session, class, index).
* Time reversal turns one class into another, exactly:
  ``render_from_params(mirror_params(p)) == render_from_params(p)[::-1]`` bit for bit,
  so only the order of the frames tells left from right.
* No label leak unless ``text_overlay=True`` (notebook 03's lesson); deterministic.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gesture_utils.config import DEFAULT_CLASSES, GenerateConfig, to_dict
from gesture_utils.errors import GestureError, input_error
from gesture_utils.importers import LABELS_FILE, MANIFEST_FILE, ManifestRow, write_dataset_index
from gesture_utils.paths import data_dir, write_json, write_text
from gesture_utils.photos import face_indices, faces, photo, photo_names
from gesture_utils.runtime import is_quick
from gesture_utils.splits import assign_splits
from gesture_utils.video import write_video

#: Classes the generator can draw (any subset may be chosen): the defaults, then ``wave``
#: (few-shot demos).  Append only: :func:`clip_rng` keys each class by its index here.
KNOWN_CLASSES: tuple[str, ...] = DEFAULT_CLASSES + ("wave",)
#: What each class becomes when its clip is played backwards.
TIME_REVERSED: dict[str, str] = {"swipe_left": "swipe_right", "swipe_right": "swipe_left",
                                 "swipe_up": "swipe_down", "swipe_down": "swipe_up",
                                 "stop": "stop", "no_gesture": "no_gesture", "wave": "wave"}
#: Easing curves of the motion, closed under time reversal.
EASINGS: tuple[str, ...] = ("linear", "ease_in_out", "ease_in", "ease_out")
#: The held-out motion profile (anticipate / overshoot, on a bowed path): only
#: ``GenerateConfig(holdout=True)``, the out-of-distribution set, uses it.
HOLDOUT_EASINGS: tuple[str, ...] = ("back_in", "back_out")
REVERSED_EASING: dict[str, str] = {
    "linear": "linear", "ease_in_out": "ease_in_out", "ease_in": "ease_out", "ease_out": "ease_in",
    "back_in": "back_out", "back_out": "back_in",
}
#: ``GenerateConfig.scene``: webcam-like photo scenes, or the flat procedural look.
SCENES: tuple[str, ...] = ("photo", "procedural")
ACTOR_SHAPES: tuple[str, ...] = ("hand", "ellipse", "rounded_rect", "blob")
ACTOR_SHAPE_P: tuple[float, ...] = (0.55, 0.15, 0.15, 0.15)
DISTRACTOR_SHAPES: tuple[str, ...] = ("ellipse", "rounded_rect", "blob", "bar")
BACKGROUNDS: tuple[str, ...] = ("solid", "gradient", "texture")
#: Skin-like RGB tones, light to dark: every photo-scene hand and face, and 60 % of the
#: procedural actors.
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


def _check(checks: Sequence[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise GestureError(message)


def check_render_settings(cfg: GenerateConfig) -> None:
    """Raise a one-line :class:`GestureError` if clips cannot be rendered with ``cfg``."""
    _check([
        (32 <= cfg.size <= 1024, f"size must be between 32 and 1024 pixels, got {cfg.size}"),
        (1 <= cfg.fps <= 120, f"fps must be between 1 and 120, got {cfg.fps}"),
        (cfg.seconds > 0 and 4 <= n_frames(cfg) <= 600,
         f"seconds * fps must give 4..600 frames, got {cfg.seconds} s * {cfg.fps} fps"),
    ])


def _unknown_classes(classes: Sequence[str]) -> None:
    unknown = [c for c in classes if c not in KNOWN_CLASSES]
    if unknown:
        raise GestureError(f"unknown class(es) {unknown} (choose from: {', '.join(KNOWN_CLASSES)})")


def check_config(cfg: GenerateConfig) -> None:
    """Raise a one-line :class:`GestureError` for settings the generator cannot honour."""
    check_render_settings(cfg)
    _check([(cfg.scene in SCENES, f"unknown scene {cfg.scene!r} (choose from: {', '.join(SCENES)})"),
            (not cfg.holdout or cfg.scene == "photo",
             "holdout=True draws from the reserved photos: it needs scene='photo'"),
            (bool(cfg.classes), "no classes chosen (pick some of: " + ", ".join(KNOWN_CLASSES) + ")")])
    _unknown_classes(cfg.classes)
    needed = 1 + (cfg.val_fraction > 0) + (cfg.test_fraction > 0)
    _check([
        (len(set(cfg.classes)) == len(cfg.classes), f"classes listed twice: {list(cfg.classes)}"),
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
        (cfg.group_size < 1 or n_sessions(cfg) >= needed,
         f"clips_per_class={cfg.clips_per_class} with group_size={cfg.group_size} makes "
         f"{n_sessions(cfg) if cfg.group_size >= 1 else 0} session(s), but splitting by session "
         f"needs >= {needed} (raise clips_per_class, lower group_size, or set val/test "
         "fractions to 0)"),
    ])


# --------------------------------------------------------------------------- sampling


def _color(rng: np.random.Generator) -> list[int]:
    return [int(v) for v in rng.integers(0, 256, size=3)]


def _segment_distance(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance in RGB from colour ``c`` to the segment of colours between ``a`` and ``b``."""
    ab = b - a
    t = float(np.clip(np.dot(c - a, ab) / max(float(np.dot(ab, ab)), 1e-9), 0.0, 1.0))
    return float(np.linalg.norm(c - (a + t * ab)))


def _u(rng: np.random.Generator, lo: float, hi: float, digits: int = 4) -> float:
    return round(float(rng.uniform(lo, hi)), digits)


def _sample_distractor(rng: np.random.Generator, lo: float, hi: float) -> dict[str, Any]:
    return {
        "shape": DISTRACTOR_SHAPES[int(rng.integers(len(DISTRACTOR_SHAPES)))],
        "size": _u(rng, lo, hi), "aspect": _u(rng, 0.4, 1.0, 3), "angle": _u(rng, 0, 180, 2),
        "color": _color(rng), "seed": int(rng.integers(2**31)),
        "x": _u(rng, 0.05, 0.95), "y": _u(rng, 0.05, 0.95),
    }


def _skin(rng: np.random.Generator) -> list[int]:
    tone = np.array(SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], float)
    return [int(round(v)) for v in np.clip(tone + rng.normal(0, 10, 3), 0, 255)]


def _photo_shot(rng: np.random.Generator, names: Sequence[str]) -> dict[str, Any]:
    """One camera view of a photo: crop centre and side (fractions), stretch, mirror."""
    return {"photo": names[int(rng.integers(len(names)))], "cx": _u(rng, 0, 1),
            "cy": _u(rng, 0, 1), "scale": _u(rng, 0.4, 1.0),
            "stretch": round(math.exp(float(rng.uniform(-0.25, 0.25))), 4),
            "flip": bool(rng.integers(2))}


def _sample_hand(rng: np.random.Generator, holdout: bool) -> dict[str, Any]:
    """A skin-coloured hand with fingers, thumb and a forearm with a sleeve."""
    return {
        "shape": "mitten" if holdout else "hand",
        "size": _u(rng, 0.3, 0.5),  # fraction of the frame side
        "angle": _u(rng, -50, 50, 2),  # degrees, 0 = fingers up, the forearm below
        "aspect": round(math.exp(float(rng.uniform(-0.25, 0.25))), 3),  # width stretch
        "color": _skin(rng),
        "shade": _u(rng, 0.0, 0.3, 3),
        "seed": int(rng.integers(2**31)),
        "palm_w": _u(rng, 0.36, 0.46), "palm_h": _u(rng, 0.36, 0.46),
        "finger_len": [round(float(b * rng.uniform(0.8, 1.2)), 4) for b in (0.29, 0.35, 0.33, 0.26)],
        "finger_w": _u(rng, 0.08, 0.105),
        "spread": _u(rng, 2.0, 12.0, 2),
        "thumb_len": _u(rng, 0.22, 0.3), "thumb_angle": _u(rng, 40, 75, 2),
        "handedness": int(rng.choice([-1, 1])),
        "arm_w": _u(rng, 0.26, 0.34),  # forearm width, in hand sizes
        "sleeve_at": _u(rng, 0.6, 2.5, 3),  # where the sleeve starts, hand sizes from the palm
        "sleeve": _color(rng),
    }


def _sample_person(rng: np.random.Generator, faces: Sequence[int]) -> dict[str, Any]:
    """Someone in the background: a real face (LFW), hair, neck and shoulders."""
    return {"face": int(faces[int(rng.integers(len(faces)))]), "x": _u(rng, 0.05, 0.95),
            "y": _u(rng, 0.15, 0.6), "size": _u(rng, 0.14, 0.34), "skin": _skin(rng),
            "hair": _color(rng), "shirt": _color(rng)}


def _procedural_session(rng: np.random.Generator) -> dict[str, Any]:
    """The flat look: solid, gradient or blotchy background, clutter shapes, and an actor
    that is a hand or a plain shape (no forearm, no people, a still camera)."""
    style = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    kind = ACTOR_SHAPES[int(rng.choice(len(ACTOR_SHAPES), p=ACTOR_SHAPE_P))]
    for _ in range(1000):
        c1, c2 = _color(rng), _color(rng)
        if style == "solid":
            c2 = c1
        actor_color = np.array(_skin(rng), float) if rng.uniform() < 0.6 else rng.uniform(0, 255, 3)
        if _segment_distance(actor_color, np.array(c1, float), np.array(c2, float)) >= 90:
            break
    background = {"style": style, "color1": c1, "color2": c2, "angle": _u(rng, 0, 360, 2),
                  "cells": int(rng.integers(3, 13)), "grain": _u(rng, 0, 10, 2),
                  "seed": int(rng.integers(2**31))}
    clutter = [_sample_distractor(rng, 0.06, 0.18) for _ in range(int(rng.integers(0, 6)))]
    actor = _sample_hand(rng, holdout=False)
    actor.update(shape=kind, size=_u(rng, 0.32, 0.44), angle=_u(rng, -30, 30, 2),
                 aspect=_u(rng, 0.6, 1.0, 3), color=[int(round(v)) for v in actor_color],
                 arm_w=0.0)
    return {"background": background, "clutter": clutter, "actor": actor, "people": []}


def _photo_session(rng: np.random.Generator, holdout: bool) -> dict[str, Any]:
    """A webcam-like scene: a real photograph (cropped, scaled, mirrored, tinted), up to
    two people with real faces, and a hand with its forearm."""
    names, faces = photo_names(holdout), face_indices(holdout)
    background = {"style": "photo", **_photo_shot(rng, names),
                  "tint": [_u(rng, 0.8, 1.2, 3) for _ in range(3)],
                  "brightness": _u(rng, 0.45, 1.1, 3), "grain": _u(rng, 0, 4, 2),
                  "defocus": _u(rng, 0.0, 1.5, 3)}  # blur sigma, pixels: depth of field
    people = [_sample_person(rng, faces) for _ in range(int(rng.choice(3, p=[0.45, 0.4, 0.15])))]
    return {"background": background, "clutter": [], "actor": _sample_hand(rng, holdout),
            "people": people}


def sample_session(rng: np.random.Generator, cfg: GenerateConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    """The shared appearance of one recording session (JSON-able): background,
    people, the actor (hand) and the camera's nuisances, for ``cfg.scene`` and ``cfg.holdout``."""
    session = (_procedural_session(rng) if cfg.scene == "procedural"
               else _photo_session(rng, cfg.holdout))
    session["camera"] = {
        "noise": _u(rng, 1.0, 7.0, 3),  # std of pixel noise (0..255)
        "blur": round(float(rng.choice([0.0, rng.uniform(0.4, 1.3)])), 3),  # Gaussian sigma
        "flicker": _u(rng, 0.0, 0.05),  # std of per-frame gain
        "shake": _u(rng, 0.0, 0.008, 5),  # std of per-frame shift / side
        "tremor": _u(rng, 0.002, 0.008, 5),  # std of hand jitter / side
    }
    return session


def _sample_path(label: str, u: np.ndarray) -> dict[str, Any] | None:
    """Start and end of the actor's centre (fractions of the side) from 6 uniforms ``u``,
    drawn for every class: the class only decides how they are used.  Swapping start and end
    maps each swipe onto its reverse.  ``stop`` rests where a swipe in a random direction
    starts or ends, so no single frame gives the class away; ``wave`` rests there too, with
    ``"wave": [amplitude, cycles]`` (0.12-0.2 of the side, one or two sways over the
    whole clip: slow enough for the 8 frames a model samples of it) for
    :func:`actor_track`."""
    if label == "no_gesture":
        return None
    r = lambda v: round(float(v), 4)  # noqa: E731
    if label in ("stop", "wave"):
        k = min(int(u[4] * 4), 3)
        like = ("swipe_left", "swipe_right", "swipe_up", "swipe_down")[k]
        at_end = bool(u[5] >= 0.5)
        rest = _sample_path(like, u)
        assert rest is not None
        cx, cy = rest["end" if at_end else "start"]
        fx, fy = u[4] * 4 - k, u[5] * 2 - at_end  # uniform on [0, 1), independent of k
        if label == "wave":  # no drift: it ends where it began
            return {"start": [cx, cy], "end": [cx, cy], "wave": [r(0.12 + 0.08 * fx), 1 + int(fy >= 0.5)]}
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
    """An idle-hand ``no_gesture`` clip: the hand rests where a ``stop`` rests and is in
    view for ``visible = [start, end)`` frames touching one end of the clip (it enters or
    leaves), ``span`` uniform on ``[ceil(T/8), T//2]``: at least one of 8 sampled frames,
    at most half the clip.  Reversed, entering is leaving: the class stays closed."""
    path = _sample_path("stop", u)
    assert path is not None
    m = max(1, -(-T // 8))
    span = m + min(int(idle[1] * (T // 2 - m + 1)), T // 2 - m)
    path["visible"] = [T - span, T] if enters else [0, span]
    return path


def fidget_path(u: np.ndarray, f: np.ndarray, T: int) -> dict[str, Any]:
    """A hard negative: a hand in view all clip long circling (radius 0.06-0.14, 1-2
    turns) round where a ``stop`` rests, travelling less than any swipe."""
    path = _sample_path("stop", u)
    assert path is not None
    turns = 1.0 + float(f[1])
    path["loop"] = [round(0.06 + 0.08 * float(f[0]), 4), round(2 * math.pi * turns / (2 * (T - 1)), 6),
                    round(2 * math.pi * float(f[2]), 4)]
    return path


def _pan(rng: np.random.Generator, T: int, lo: float, hi: float) -> list[float]:
    """A velocity per unit of centred time ``tau = 2t - (T - 1)``: ``U(lo, hi)`` per clip."""
    angle = float(rng.uniform(0, 2 * math.pi))
    step = float(rng.uniform(lo, hi)) / (2 * (T - 1))
    return [round(step * math.cos(angle), 7), round(step * math.sin(angle), 7)]


def _sample_scene(rng: np.random.Generator, cfg: GenerateConfig, session: dict[str, Any],
                  T: int, n: int) -> dict[str, Any]:
    """What moves besides the hand over ``n`` frames (speeds per clip of ``T``):
    drifting objects, lighting, camera pan/zoom/cut and people.  Same draws for every class."""
    drifters = []
    for _ in range(int(rng.choice(3, p=[0.65, 0.25, 0.1]))):
        d = _sample_distractor(rng, 0.05, 0.14)
        d["vel"] = _pan(rng, T, 0.05, 0.3)
        drifters.append(d)
    out: dict[str, Any] = {
        "drifters": drifters, "gain": _u(rng, 0.85, 1.15), "offset": _u(rng, -12, 12, 3),
        "noise_seed": int(rng.integers(2**31)), "time_flip": bool(rng.integers(2)),
        "camera": {"pan": [0.0, 0.0], "zoom": 0.0, "cuts": [], "shots": []},
        "light": [0.0, 0.0, 0.0], "people": []}
    if session["background"]["style"] != "photo":
        return out
    kind = int(rng.choice(4, p=[0.7, 0.15, 0.1, 0.05]))  # still, pan, zoom, cut
    pan, zoom = _pan(rng, T, 0.05, 0.5), float(rng.uniform(0.1, 0.4)) / (2 * (T - 1))
    n_cuts = int(kind == 3) if n == T else int(rng.poisson(n / (6 * T)))
    cuts = sorted({int(c) for c in rng.integers(1, n, size=n_cuts)})
    names = photo_names(cfg.holdout)
    shot0 = {k: session["background"][k] for k in ("photo", "cx", "cy", "scale", "stretch", "flip")}
    pans = kind == 1 or (n > T and rng.uniform() < 0.5)  # a stream: a slow pan, half of them
    out["camera"] = {"pan": pan if pans else [0.0, 0.0],
                     "zoom": round(zoom * float(rng.choice([-1, 1])), 7) if kind == 2 else 0.0,
                     "cuts": cuts, "shots": [shot0] + [_photo_shot(rng, names) for _ in cuts]}
    if rng.uniform() < 0.5:  # a lighting change: gain 1 + a sin(phase + w tau)
        out["light"] = [_u(rng, 0.05, 0.25), round(math.pi * float(rng.uniform(0.5, 2)) / (2 * (T - 1)), 6),
                        _u(rng, 0, 2 * math.pi)]
    for _ in session["people"]:
        sway = math.pi * float(rng.uniform(0.5, 3)) / (2 * (T - 1))
        out["people"].append({"sway": [_u(rng, 0.005, 0.05), round(sway, 6), _u(rng, 0, 2 * math.pi)],
                              "vel": _pan(rng, T, 0.0, 0.3) if rng.uniform() < 0.4 else [0.0, 0.0]})
    return out


def _durations(cfg: GenerateConfig) -> tuple[float, float]:
    """Share of the clip the motion takes: ``U(lo, hi)``."""
    if cfg.holdout:
        return 0.2, 0.5
    return (0.35, 0.8) if cfg.scene == "procedural" else (0.3, 0.75)


def sample_clip_params(label: str, rng: np.random.Generator, cfg: GenerateConfig,
                       session: dict[str, Any]) -> dict[str, Any]:
    """Everything that varies from clip to clip inside a session (JSON-able dict); the
    same random numbers are drawn in the same order for every label."""
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
    scene = _sample_scene(rng, cfg, session, T, T)
    # motion: the label only decides how these numbers are used
    u = rng.uniform(size=6)
    easings = HOLDOUT_EASINGS if cfg.holdout else EASINGS
    easing = easings[int(rng.integers(len(easings)))]
    lo, hi = _durations(cfg)
    duration = int(np.clip(round((lo + (hi - lo) * float(rng.uniform())) * (T - 1)), 2, T - 1))
    t0 = int(rng.integers(0, T - duration))  # idle before ~ U{0..T-1-D}; so is idle after
    idle, fidget = rng.uniform(size=2), rng.uniform(size=3)
    bow = round(float(rng.uniform(0.04, 0.12) * rng.choice([-1, 1])), 4)
    path = _sample_path(label, u)
    f = cfg.idle_hand_fraction
    if label == REST_LABEL and idle[0] < f:
        path = idle_hand_path(u, idle, T, enters=bool(idle[0] < f / 2))
    elif label == REST_LABEL and cfg.scene == "photo" and idle[0] < f + (1 - f) / 2:
        path = fidget_path(u, fidget, T)
    if path is not None:
        path.update(easing=easing, t0=t0, t1=t0 + duration)
        if label == "wave":  # a wave lasts: it sways over the whole clip
            path.update(t0=0, t1=T - 1)
        if cfg.holdout and label.startswith("swipe"):
            path["bow"] = bow
    return {"label": label, "n_frames": T, "actor": actor if path is not None else None,
            "path": path, **scene}


def mirror_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters of the time-reversed clip (label reversed, start/end and idle times
    swapped, speeds and wave amplitude negated, cuts mirrored, nuisances played backwards):
    ``render_from_params`` of the result is the original frames reversed, exactly."""
    out = json.loads(json.dumps(params))
    T = out["n_frames"]
    out["label"] = TIME_REVERSED[out["label"]]
    out["time_flip"] = not out["time_flip"]
    for d in out["drifters"] + out["people"]:
        d["vel"] = [-v for v in d["vel"]]
    for person in out["people"]:
        person["sway"][1] = -person["sway"][1]
    out["light"][1] = -out["light"][1]
    cam = out["camera"]
    cam["pan"], cam["zoom"] = [-v for v in cam["pan"]], -cam["zoom"]
    cam["cuts"], cam["shots"] = sorted(T - c for c in cam["cuts"]), cam["shots"][::-1]
    p = out["path"]
    if p is not None:
        p["start"], p["end"] = p["end"], p["start"]
        p["easing"] = REVERSED_EASING[p["easing"]]
        p["t0"], p["t1"] = T - 1 - p["t1"], T - 1 - p["t0"]
        if "visible" in p:
            p["visible"] = [T - p["visible"][1], T - p["visible"][0]]
        if "loop" in p:
            p["loop"][1] = -p["loop"][1]
        if "bow" in p:
            p["bow"] = -p["bow"]
        if "wave" in p:
            p["wave"][0] = -p["wave"][0]
    return out


# --------------------------------------------------------------------------- motion


def _ease_in(c: np.ndarray) -> np.ndarray:
    return (c + 1.0) * (c + 1.0) / 2.0 - 1.0


def _back_out(c: np.ndarray) -> np.ndarray:
    """Overshoot past the end, then settle (centred form of the usual ease-out-back)."""
    s = (c + 1.0) / 2.0 - 1.0
    return 2.0 * (1.0 + 2.2 * s * s * s + 1.2 * s * s) - 1.0


def ease(name: str, c: np.ndarray) -> np.ndarray:
    """Easing in centred form, ``c`` in [-1, 1] -> [-1, 1], exact under reversal:
    ``ease(rev, -c) == -ease(name, c)`` bit for bit.  ``back_*`` is the held-out profile."""
    c = np.asarray(c, dtype=np.float64)
    if name == "linear":
        return c.copy()
    if name == "ease_in_out":  # smoothstep, centred: odd polynomial
        return c * (3.0 - c * c) / 2.0
    if name == "ease_in":
        return _ease_in(c)
    if name == "ease_out":
        return -_ease_in(-c)
    if name == "back_out":
        return _back_out(c)
    if name == "back_in":
        return -_back_out(-c)
    raise GestureError(f"unknown easing {name!r} (choose from: {', '.join(EASINGS + HOLDOUT_EASINGS)})")


def _tau(T: int) -> np.ndarray:
    """Centred time ``2t - (T - 1)``: odd under reversal, so ``v * tau`` reverses exactly."""
    return (2 * np.arange(T) - (T - 1)).astype(np.float64)


def actor_track(path: dict[str, Any], T: int) -> np.ndarray:
    """Centre of the actor per frame, fractions of the side: ``(T, 2)`` float64: idle at
    ``start`` until ``t0``, eased motion until ``t1``, idle at ``end``, plus an optional
    ``bow`` (sideways), ``loop``, or ``wave`` (x offset ``amplitude * sin(pi * cycles * c)``
    while moving, ``c`` = centred time in [-1, 1]); computed in centred time, so reversal is exact."""
    t = np.arange(T)
    t0, t1 = int(path["t0"]), int(path["t1"])
    D = t1 - t0
    c = np.clip((2 * (t - t0) - D) / D, -1.0, 1.0)
    g = ease(path["easing"], c)
    s, e = np.array(path["start"], float), np.array(path["end"], float)
    mid, half = (s + e) / 2.0, (e - s) / 2.0
    out = mid[None, :] + half[None, :] * g[:, None]
    if path.get("bow"):
        side = np.array([-half[1], half[0]]) / max(float(np.hypot(*half)), 1e-9)
        out = out + side[None, :] * (path["bow"] * (1.0 - c * c))[:, None]
    if "loop" in path:
        r, w, phase = path["loop"]
        a = phase + w * _tau(T)
        out = out + r * np.stack([np.cos(a), np.sin(a)], axis=1)
    if "wave" in path:
        amplitude, cycles = path["wave"]
        out[:, 0] += amplitude * np.sign(c) * np.sin(np.pi * cycles * np.abs(c))  # odd in c, exactly
    return out


def hand_track(params: Mapping[str, Any]) -> np.ndarray:
    """Where the hand is in every frame of a generated clip: ``(T, 3)`` float32 rows
    ``(visible, x, y)`` (palm centre, fractions of the side; 0 where out of view), from a
    manifest row's ``params``: the target of the hand loss (notebook 03)."""
    T, path = int(params["n_frames"]), params.get("path")
    out = np.zeros((T, 3), np.float32)
    if path is None:
        return out
    start, end = path.get("visible", (0, T))
    out[start:end, 0] = 1.0
    out[start:end, 1:] = actor_track(path, T)[start:end]
    return out


def _reflect(p: np.ndarray) -> np.ndarray:
    """Fold positions back into [0, 1] (drifting things bounce off the edges)."""
    p = np.mod(p, 2.0)
    return np.where(p > 1.0, 2.0 - p, p)


# --------------------------------------------------------------------------- drawing


def _hand_parts(a: dict[str, Any]) -> list[tuple]:
    """Palm ellipse + wrist, four fingers (or one mitten block) and a thumb as capsules, in
    units of the actor size (origin = palm centre, y down, fingers up)."""
    pw, ph, fw = a["palm_w"], a["palm_h"], a["finger_w"]
    parts: list[tuple] = [("ellipse", (0.0, 0.0), (pw / 2, ph / 2))]
    parts.append(("capsule", (0.0, ph * 0.3), (0.0, ph / 2 + 0.2), pw * 0.7))  # wrist
    if a["shape"] == "mitten":  # the held-out style: fingers held together
        length = float(np.mean(a["finger_len"]))
        parts.append(("capsule", (0.0, -ph / 2 * 0.4), (0.0, -ph / 2 - length * 0.75), pw * 0.8))
    else:
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


class _Canvas:
    """A supersampled drawing area for one sprite, centred on the shape's origin."""

    def __init__(self, size_px: float, angle_deg: float, reach: float = 1.7,
                 aspect: float = 1.0):
        self.ss = _SUPERSAMPLE
        self.side = max(3, int(math.ceil(size_px * reach)) | 1)
        self.scale, self.ctr = size_px * self.ss, self.side * self.ss / 2.0
        rot = math.radians(angle_deg)
        self.cos, self.sin, self.aspect, self.angle = math.cos(rot), math.sin(rot), aspect, angle_deg

    def blank(self) -> np.ndarray:
        return np.zeros((self.side * self.ss, self.side * self.ss), np.uint8)

    def pt(self, x: float, y: float) -> tuple[int, int]:
        xr, yr = x * self.cos - y * self.sin, x * self.sin + y * self.cos
        return int(round(self.ctr + xr * self.scale * self.aspect)), int(round(self.ctr + yr * self.scale))

    def draw(self, big: np.ndarray, parts: Sequence[tuple]) -> None:
        for part in parts:
            if part[0] == "ellipse":
                _, (x, y), (ax, ay) = part
                cv2.ellipse(big, self.pt(x, y), (int(ax * self.scale * self.aspect), int(ay * self.scale)),
                            self.angle, 0, 360, 255, -1)
            else:
                _, p0, p1, w = part
                cv2.line(big, self.pt(*p0), self.pt(*p1), 255, max(1, int(w * self.scale * self.aspect)))

    def down(self, big: np.ndarray) -> np.ndarray:
        small = cv2.resize(big, (self.side, self.side), interpolation=cv2.INTER_AREA)
        return small.astype(np.float32) / 255.0


def _shape_mask(spec: dict[str, Any], size_px: float, angle_deg: float) -> np.ndarray:
    """Anti-aliased mask ``(h, w)`` float32 in [0, 1] of one shape, centred in its box."""
    cv = _Canvas(size_px, angle_deg)
    big = cv.blank()
    kind, aspect = spec["shape"], spec.get("aspect", 1.0)
    if kind in ("hand", "mitten"):
        cv.draw(big, _hand_parts(spec))
    elif kind == "ellipse":
        cv.draw(big, [("ellipse", (0, 0), (0.32 * aspect, 0.4))])
    elif kind == "rounded_rect":
        w, h, r = 0.62 * aspect / 2, 0.72 / 2, 0.12
        poly = [(-w, -h + r), (-w + r, -h), (w - r, -h), (w, -h + r), (w, h - r), (w - r, h),
                (-w + r, h), (-w, h - r)]
        cv2.fillConvexPoly(big, np.array([cv.pt(x, y) for x, y in poly], np.int32), 255)
        for x, y in [(-w + r, -h + r), (w - r, -h + r), (w - r, h - r), (-w + r, h - r)]:
            cv2.circle(big, cv.pt(x, y), int(r * cv.scale), 255, -1)
    elif kind == "blob":
        brng = np.random.default_rng(spec["seed"])
        theta = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        radius = np.ones_like(theta)
        for k in (2, 3, 4):
            radius += brng.uniform(0.0, 0.18) * np.cos(k * theta + brng.uniform(0, 2 * np.pi))
        radius *= 0.36
        poly = [cv.pt(r * math.cos(t) * (0.6 + 0.4 * aspect), r * math.sin(t))
                for r, t in zip(radius, theta, strict=True)]
        cv2.fillPoly(big, [np.array(poly, np.int32)], 255)
    elif kind == "bar":
        cv2.line(big, cv.pt(-0.45, 0), cv.pt(0.45, 0), 255, max(1, int(0.12 * aspect * cv.scale)))
    else:  # pragma: no cover - guarded by the samplers
        raise GestureError(f"unknown shape {kind!r}")
    return cv.down(big)


@dataclass
class _Sprite:
    mask: np.ndarray  # (h, w, 1) float32
    rgb: np.ndarray  # (h, w, 3) float32


def _crop_centred(sp: _Sprite) -> _Sprite:
    """Crop to the drawn pixels, keeping the box centred on the shape's origin, so that
    pasting costs only what is visible (symmetric crop: the centre does not move)."""
    m = sp.mask[:, :, 0]
    h, w = m.shape
    rows, cols = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
    if len(rows) and len(cols):
        r, c = min(rows[0], h - 1 - rows[-1]), min(cols[0], w - 1 - cols[-1])
        sp = _Sprite(sp.mask[r:h - r, c:w - c], sp.rgb[r:h - r, c:w - c])
    return _Sprite(np.ascontiguousarray(sp.mask), np.ascontiguousarray(sp.rgb))


def _shaded(mask: np.ndarray, color: Sequence[int], shade: float) -> np.ndarray:
    h, w = mask.shape
    ramp = 1.0 - shade * np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(np.asarray(color, np.float32)[None, None, :] * ramp, (h, w, 3))


def _sprite(spec: dict[str, Any], size_px: float, angle: float, color: Sequence[int],
            shade: float = 0.0) -> _Sprite:
    mask = _shape_mask(spec, size_px, angle)
    return _crop_centred(_Sprite(mask[:, :, None], _shaded(mask, color, shade).astype(np.float32)))


def _hand_sprite(spec: dict[str, Any], size_px: float, angle: float, color: Sequence[int],
                 frame_side: int) -> _Sprite:
    """The hand and its forearm (reaching 1.5 frame sides down, so it enters from an
    edge; skin, then the sleeve), shaded darker at the edges; ``mitten`` is outlined."""
    arm = 1.5 * frame_side / size_px  # in hand sizes
    cv = _Canvas(size_px, angle, reach=2 * arm + 1.7, aspect=spec["aspect"])
    skin, sleeve = cv.blank(), cv.blank()
    cv.draw(skin, _hand_parts(spec) + [("capsule", (0.0, 0.2), (0.0, arm), spec["arm_w"])])
    cv.draw(sleeve, [("capsule", (0.0, spec["sleeve_at"]), (0.0, arm), spec["arm_w"] * 1.25)])
    m_skin, m_sleeve = cv.down(skin), cv.down(sleeve)
    mask = m_sleeve + m_skin * (1 - m_sleeve)  # the sleeve over the skin, premultiplied
    rgb = _shaded(m_skin, color, spec["shade"]) * (m_skin * (1 - m_sleeve))[:, :, None]
    rgb = rgb + np.asarray(spec["sleeve"], np.float32) * m_sleeve[:, :, None]
    rgb = rgb / np.maximum(mask, 1e-3)[:, :, None]
    core = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.05 * mask.shape[0] / (2 * arm + 1.7)))
    rgb = rgb * (0.65 + 0.35 * np.clip(core / np.maximum(mask, 1e-3), 0, 1))[:, :, None]  # round
    if spec["shape"] == "mitten":
        edge = mask - cv2.erode(mask, np.ones((3, 3), np.uint8))
        rgb = rgb * (1.0 - 0.6 * edge)[:, :, None]
    return _crop_centred(_Sprite(mask[:, :, None], rgb.astype(np.float32)))


def _person_sprite(person: dict[str, Any], size: int) -> _Sprite:
    """Head (a real LFW face, tinted to the person's skin), hair, neck and shoulders;
    the sprite's centre is the face's centre."""
    h = person["size"] * size
    side = max(5, int(math.ceil(h * 4)) | 1)
    ss = 2
    c = side * ss / 2.0
    layers = []
    for part, colour in (("shirt", person["shirt"]), ("hair", person["hair"]), ("neck", person["skin"])):
        big = np.zeros((side * ss, side * ss), np.uint8)
        centre, axes = {"shirt": ((0, 1.45), (1.15, 0.95)), "hair": ((0, -0.08), (0.44, 0.54)),
                        "neck": ((0, 0.6), (0.2, 0.35))}[part]
        cv2.ellipse(big, (int(c), int(c + centre[1] * h * ss)),
                    (max(1, int(axes[0] * h * ss)), max(1, int(axes[1] * h * ss))), 0, 0, 360, 255, -1)
        layers.append((cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA) / 255.0, colour))
    face_mask = np.zeros((side * ss, side * ss), np.uint8)
    cv2.ellipse(face_mask, (int(c), int(c)), (max(1, int(0.37 * h * ss)), max(1, int(0.48 * h * ss))),
                0, 0, 360, 255, -1)
    fm = cv2.resize(face_mask, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    fw, fh = max(1, int(0.78 * h)), max(1, int(h))
    grey = cv2.resize(faces()[person["face"]], (fw, fh), interpolation=cv2.INTER_LINEAR)
    face = np.zeros((side, side), np.float32)
    y0, x0 = side // 2 - fh // 2, side // 2 - fw // 2
    face[y0:y0 + fh, x0:x0 + fw] = grey
    mask = np.zeros((side, side), np.float32)
    rgb = np.zeros((side, side, 3), np.float32)
    for m, colour in layers + [(fm, None)]:
        col = (np.asarray(person["skin"], np.float32) * (0.3 + 0.8 * face[:, :, None])
               if colour is None else np.asarray(colour, np.float32))
        rgb = rgb + m[:, :, None] * (col - rgb)
        mask = mask + m * (1 - mask)
    rgb = rgb / np.maximum(mask, 1e-3)[:, :, None]
    return _Sprite(np.ascontiguousarray(mask[:, :, None].astype(np.float32)), rgb)


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
    """The static scene of a procedural session, with a margin for camera shake:
    ``(size + 2m, size + 2m, 3)`` float32 (read-only, cached)."""
    return _background_cached(json.dumps(session, sort_keys=True), size)


def _bounce(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(_reflect(np.array((x - lo) / (hi - lo))))


def _photo_view(shot: dict[str, Any], camera: dict[str, Any], tau: float, shake: np.ndarray,
                size: int) -> np.ndarray:
    """One frame of a photo seen through the moving camera: ``(size, size, 3)`` float32."""
    img = photo(shot["photo"])
    h, w = img.shape[:2]
    side = _bounce(shot["scale"] * (1.0 + camera["zoom"] * tau), 0.3, 1.0) * min(h, w)
    cw, ch = side * math.sqrt(shot["stretch"]), side / math.sqrt(shot["stretch"])
    cx = cw / 2 + _bounce(shot["cx"] + camera["pan"][0] * tau) * (w - cw)
    cy = ch / 2 + _bounce(shot["cy"] + camera["pan"][1] * tau) * (h - ch)
    sx, sy = (-cw if shot["flip"] else cw) / size, ch / size
    M = np.array([[sx, 0.0, cx - 0.5 + sx * (0.5 - size / 2 + shake[0])],
                  [0.0, sy, cy - 0.5 + sy * (0.5 - size / 2 + shake[1])]])
    return cv2.warpAffine(img, M, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT101)


def _backgrounds(session: dict[str, Any], scene: dict[str, Any], size: int,
                 nuis: dict[str, np.ndarray]) -> Iterator[np.ndarray]:
    """The background of every frame (float32, writable): the photo through the moving
    camera, tinted, or the procedural canvas cropped by the camera shake."""
    bg, n = session["background"], len(nuis["shake"])
    if bg["style"] != "photo":
        canvas, m = session_background(session, size), _margin(session, size)
        for sx, sy in nuis["shake"]:
            yield canvas[m + sy:m + sy + size, m + sx:m + sx + size].copy()
        return
    cam, tau = scene["camera"], _tau(n)
    tint = np.asarray(bg["tint"], np.float32) * np.float32(bg["brightness"])
    grain = _noise_bank(size)[0, :size, :size] * np.float32(bg["grain"])  # the sensor's pattern
    for t in range(n):
        k = sum(c <= t for c in cam["cuts"])
        frame = _photo_view(cam["shots"][k], cam, float(tau[t]), nuis["shake"][t], size)
        if bg["defocus"] > 0:
            frame = cv2.GaussianBlur(frame, (0, 0), bg["defocus"])
        yield frame * tint + grain


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """16 tiles of standard normal noise ``(16, size + 16, size + 16, 3)`` float32: a
    random tile at a random offset per frame costs far less than fresh noise."""
    bank = np.random.default_rng(20240).standard_normal((16, size + 16, size + 16, 3),
                                                         dtype=np.float32)
    bank.setflags(write=False)
    return bank


def _nuisances(seed: int, n: int, size: int, camera: dict[str, Any], margin: int,
               flip: bool = False) -> dict[str, np.ndarray]:
    """Per-frame nuisances of ``n`` frames, i.i.d. over time from ``seed``: shake,
    flicker, tremor, noise tile and offset; ``flip`` plays them backwards."""
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


def _movers(session: dict[str, Any], scene: dict[str, Any], size: int,
            n: int) -> list[tuple[_Sprite, np.ndarray]]:
    """Sprites that move but are not the hand, each with its positions ``(n, 2)``
    (fractions of the side): people (drift plus sway), then drifting objects."""
    tau = _tau(n)
    out = []
    for person, motion in zip(session["people"], scene["people"], strict=True):
        a, w, phase = motion["sway"]
        base = np.array([person["x"], person["y"]])[None, :] + np.array(motion["vel"])[None, :] * tau[:, None]
        sway = a * np.stack([np.sin(phase + w * tau), 0.3 * np.sin(2 * (phase + w * tau))], axis=1)
        out.append((_person_sprite(person, size), _reflect(base) + sway))
    for d in scene["drifters"]:
        pos = np.array([d["x"], d["y"]])[None, :] + np.array(d["vel"])[None, :] * tau[:, None]
        out.append((_sprite(d, d["size"] * size, d["angle"], d["color"]), _reflect(pos)))
    return out


def _compose(session: dict[str, Any], scene: dict[str, Any], size: int,
             actor_frames: Sequence[tuple[_Sprite, float, float] | None],
             text: Sequence[str | None] | None = None) -> np.ndarray:
    """Render ``(N, size, size, 3)`` uint8 frames: background (camera) -> people and
    objects -> actor (``actor_frames[t] = (sprite, x, y)`` or None) -> lighting, flicker ->
    blur -> noise -> optional text.  ``scene``: :func:`_sample_scene`'s keys."""
    cam, n = session["camera"], len(actor_frames)
    nuis = _nuisances(scene["noise_seed"], n, size, cam, _margin(session, size),
                      flip=scene["time_flip"])
    bank = _noise_bank(size)
    movers = _movers(session, scene, size, n)
    amp, w, phase = scene["light"]
    light = scene["gain"] * (1.0 + amp * np.sin(phase + w * _tau(n))) * nuis["flicker"]
    out = np.empty((n, size, size, 3), np.uint8)
    for t, frame in enumerate(_backgrounds(session, scene, size, nuis)):
        sx, sy = int(nuis["shake"][t, 0]), int(nuis["shake"][t, 1])
        for sp, pos in movers:
            _paste(frame, sp, pos[t, 0] * size - sx, pos[t, 1] * size - sy)
        act = actor_frames[t]
        if act is not None:
            sp, x, y = act
            tx, ty = nuis["tremor"][t]
            _paste(frame, sp, x * size + tx - sx, y * size + ty - sy)
        frame *= np.float32(light[t])
        frame += np.float32(scene["offset"])
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


def _actor_sprite(session: dict[str, Any], actor: dict[str, Any], size: int) -> _Sprite:
    spec = dict(session["actor"])
    if spec.get("arm_w", 0) > 0:
        return _hand_sprite(spec, actor["size"] * size, actor["angle"], actor["color"], size)
    return _sprite(spec, actor["size"] * size, actor["angle"], actor["color"], spec["shade"])


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
    T = int(params["n_frames"])
    text = [params["label"]] * T if cfg.text_overlay else None
    return _compose(session, params, cfg.size, _actor_frames(params, session, cfg.size), text)


def render_clip(label: str, rng: np.random.Generator, cfg: GenerateConfig = DEFAULT_CONFIG,
                session: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """One clip of class ``label``: frames ``(T, H, W, 3)`` uint8 RGB and its params
    (JSON-able, with ``"session"``; a new session is drawn from ``rng`` when None)."""
    if session is None:
        session = sample_session(rng, cfg)
    params = sample_clip_params(label, rng, cfg, session)
    frames = render_from_params(params, session, cfg)
    return frames, {**params, "session": session}


def reverse_clip(frames: np.ndarray) -> np.ndarray:
    """The clip played backwards: ``frames[::-1]`` (contiguous copy)."""
    return np.ascontiguousarray(np.asarray(frames)[::-1])


# --------------------------------------------------------------------------- streams


@dataclass
class Stream:
    """A long recording with several gestures (notebook 06): ``frames`` ``(N, H, W, 3)``
    uint8, the class of every frame (``REST_LABEL`` between gestures), and ``events`` with
    ``label``, ``start``/``end`` (hand in view) and ``motion_start``/``motion_end``."""

    frames: np.ndarray
    labels: list[str]
    events: list[dict[str, Any]]
    fps: int


def render_stream(labels: Sequence[str] | None, rng: np.random.Generator,
                  cfg: GenerateConfig = DEFAULT_CONFIG, session: dict[str, Any] | None = None,
                  n_events: int = 6, idle_seconds: tuple[float, float] = (0.5, 1.5)) -> Stream:
    """A stream of gestures (``labels``, or ``n_events`` drawn from ``cfg.classes``)
    separated by ``U(idle_seconds)`` of rest, in one session with a moving scene.  Each
    segment's hand moves like a dataset clip's; a ``no_gesture`` segment is rest."""
    check_render_settings(cfg)
    if session is None:
        session = sample_session(rng, cfg)
    if labels is None:
        pool = [c for c in cfg.classes if c != REST_LABEL] or [REST_LABEL]
        labels = [pool[int(i)] for i in rng.integers(len(pool), size=n_events)]
    labels = list(labels)
    _unknown_classes(sorted(set(labels)))
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
        if label != REST_LABEL:
            events.append({"label": label, "start": start, "end": start + T,
                           "motion_start": start + p["path"]["t0"],
                           "motion_end": start + p["path"]["t1"] + 1})
    tail = int(rng.integers(lo, hi + 1))
    actor_frames += [None] * tail
    frame_labels += [REST_LABEL] * tail
    scene = _sample_scene(rng, cfg, session, T, len(actor_frames))
    text = frame_labels if cfg.text_overlay else None
    frames = _compose(session, scene, size, actor_frames, text)
    return Stream(frames=frames, labels=frame_labels, events=events, fps=fps)


# --------------------------------------------------------------------------- datasets

CONFIG = "config.json"
SESSIONS = "sessions.json"
#: Config fields that do not change the data (excluded from the load-or-compute check).
_RUNTIME_FIELDS = ("workers",)


def _content_config(cfg: GenerateConfig) -> dict[str, Any]:
    d = to_dict(cfg)
    for k in _RUNTIME_FIELDS:
        d.pop(k, None)
    return d


def dataset_config(source: GenerateConfig | str | os.PathLike[str]) -> dict[str, Any] | None:
    """The settings that decide a dataset's content, as in its ``config.json``: from a
    :class:`GenerateConfig`, or read from a dataset folder (None without one).  Training
    stores it in the checkpoint, so later notebooks can tell a model trained on other data."""
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
    """The generator of clip ``k`` of ``label`` in session ``s``, keyed by (session, class,
    index): nothing is shared across classes, and a subset of classes keeps its clips."""
    key = (s, 1 + KNOWN_CLASSES.index(label), k)
    return np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=key))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _manifest_rows(out_dir: Path) -> list[dict[str, str]] | None:
    try:
        with open(out_dir / MANIFEST_FILE, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error):
        return None


def is_complete(out_dir: str | os.PathLike[str], cfg: GenerateConfig) -> bool:
    """True if ``out_dir`` holds a finished dataset generated with ``cfg``: config.json
    matches, labels.txt lists the classes, the manifest (written last) has every clip,
    and every clip file exists."""
    out_dir = Path(out_dir)
    if _read_json(out_dir / CONFIG) != _content_config(cfg):
        return False
    rows = _manifest_rows(out_dir)
    try:
        labels = (out_dir / LABELS_FILE).read_text(encoding="utf-8").split()
    except OSError:
        return False
    if rows is None or labels != list(cfg.classes):
        return False
    if len(rows) != cfg.clips_per_class * len(cfg.classes):
        return False
    return all((out_dir / r["path"]).is_file() for r in rows if r.get("path"))


def _differences(stored: Mapping[str, Any], cfg: GenerateConfig) -> str:
    want = _content_config(cfg)
    keys = sorted(k for k in set(stored) | set(want) if stored.get(k) != want.get(k))
    return ", ".join(f"{k}={stored.get(k)!r}, now {want.get(k)!r}" for k in keys[:3])


def _clear(out_dir: Path) -> None:
    """Remove what a previous generation wrote (never anything else)."""
    old = _read_json(out_dir / CONFIG)
    classes = set(KNOWN_CLASSES) | set(old.get("classes", []) if isinstance(old, dict) else [])
    for name in (MANIFEST_FILE, LABELS_FILE, SESSIONS, CONFIG):
        (out_dir / name).unlink(missing_ok=True)
    for c in classes:
        if (out_dir / c).is_dir():
            shutil.rmtree(out_dir / c)


def _make_room(out_dir: Path, cfg: GenerateConfig, overwrite: bool) -> None:
    """Clear what an earlier generation left in ``out_dir`` (saying so when its settings
    were others); refuse a folder that holds anything else (a dataset without recorded
    settings, e.g. imported clips, only with ``overwrite``)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise input_error(out_dir, "exists and is not a folder", "choose another output folder")
    if not (out_dir.is_dir() and any(out_dir.iterdir())):
        return
    if not ((out_dir / CONFIG).is_file() or (out_dir / MANIFEST_FILE).is_file()):
        raise input_error(out_dir, "folder is not empty and holds no generated dataset",
                          "choose a new or empty output folder")
    stored = _read_json(out_dir / CONFIG)
    if not isinstance(stored, dict) and not overwrite:
        raise input_error(out_dir, "holds a dataset without recorded settings (no readable "
                          f"{CONFIG})", "pass overwrite=True (CLI: --overwrite) or choose another folder")
    if isinstance(stored, dict) and stored != _content_config(cfg):
        print(f"{out_dir}: made with other settings ({_differences(stored, cfg)}) - regenerating it")
    _clear(out_dir)


def resolve_workers(cfg: GenerateConfig) -> int:
    """Processes :func:`generate_dataset` uses: ``cfg.workers``, or for 0 one per CPU
    core (at most 8) for >= 100 clips, else 1 (starting processes costs about a second)."""
    if cfg.workers > 0:
        return cfg.workers
    if cfg.clips_per_class * len(cfg.classes) < 100:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _render_session(task: tuple[GenerateConfig, int, str]) -> tuple[dict, list[dict]]:
    """Render and write every clip of session ``s`` (one unit of work for a worker)."""
    cfg, s, out_dir = task
    session = sample_session(session_rng(cfg, s), cfg)
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


def _render_sessions(cfg: GenerateConfig, out_dir: Path,
                     progress: bool) -> list[tuple[dict, list[dict]]]:
    """Every session rendered and written, in order, by one or more processes."""
    from tqdm.auto import tqdm

    tasks = [(cfg, s, str(out_dir)) for s in range(n_sessions(cfg))]
    workers = min(resolve_workers(cfg), len(tasks))
    results = []
    with ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=len(tasks), desc="sessions", unit="session",
                                       disable=not progress))
        done: Iterator = map(_render_session, tasks)
        if workers > 1:  # "spawn": safe in Jupyter and after torch/OpenMP started threads
            ctx = multiprocessing.get_context("spawn")
            done = stack.enter_context(ProcessPoolExecutor(workers, mp_context=ctx)).map(
                _render_session, tasks)
        for res in done:
            results.append(res)
            bar.update()
    return results


def _write_index(out_dir: Path, cfg: GenerateConfig,
                 results: list[tuple[dict, list[dict]]]) -> None:
    """sessions.json, then labels.txt and manifest.csv (splits by session)."""
    sessions = {f"s{s:03d}": sess for s, (sess, _) in enumerate(results)}
    order = {c: i for i, c in enumerate(cfg.classes)}
    rows = sorted((r for _, rs in results for r in rs), key=lambda r: (order[r["label"]], r["path"]))
    splits = assign_splits([r["label"] for r in rows], [r["group"] for r in rows],
                           cfg.val_fraction, cfg.test_fraction, seed=cfg.seed)
    write_text(out_dir / SESSIONS, json.dumps(sessions, sort_keys=True) + "\n")
    write_dataset_index(out_dir, cfg.classes, [
        ManifestRow(r["path"], r["label"], split, r["group"], r["params"])
        for r, split in zip(rows, splits, strict=True)])


def generate_dataset(out_dir: str | os.PathLike[str], cfg: GenerateConfig = DEFAULT_CONFIG,
                     overwrite: bool = False, progress: bool = True) -> Path:
    """Write a synthetic dataset to ``out_dir`` and return it (load-or-compute).

    Layout: ``<class>/<class>_NNNN.mp4``, ``config.json``, ``sessions.json``, ``labels.txt``
    and ``manifest.csv`` (last: an interrupted run never looks complete); splits by session.
    A complete dataset made with ``cfg`` is kept unless ``overwrite``; one made with other
    settings is regenerated with a one-line note; a folder holding anything else is refused."""
    check_config(cfg)
    out_dir = Path(out_dir)
    if not overwrite and is_complete(out_dir, cfg):
        return out_dir
    _make_room(out_dir, cfg, overwrite)
    write_json(out_dir / CONFIG, _content_config(cfg))
    _write_index(out_dir, cfg, _render_sessions(cfg, out_dir, progress))
    return out_dir


#: The QUICK-mode dataset (CI): 6 sessions x 1 clip per class = 36 clips at 64 px.
QUICK_OVERRIDES: dict[str, Any] = {"clips_per_class": 6, "group_size": 1, "size": 64}


def standard_config(quick: bool | None = None) -> GenerateConfig:
    """The settings of the series' dataset: ``GenerateConfig()`` defaults, or in QUICK
    mode (default: ``GESTURE_QUICK``) the small :data:`QUICK_OVERRIDES` version."""
    quick = is_quick() if quick is None else quick
    return replace(GenerateConfig(), **QUICK_OVERRIDES) if quick else GenerateConfig()


def standard_dataset(quick: bool | None = None, progress: bool = True,
                     overwrite: bool = False, name: str | None = None, **overrides: Any) -> Path:
    """The dataset every notebook uses, generated on first use: ``data_dir()/"synthetic"``
    (``synthetic_quick`` in QUICK mode).  ``name`` and ``overrides`` give a variant in its
    own folder, e.g. ``standard_dataset(name="synthetic_overlay", text_overlay=True)``."""
    quick = is_quick() if quick is None else quick
    folder = name or "synthetic"
    root = data_dir() / (f"{folder}_quick" if quick else folder)
    cfg = replace(standard_config(quick), **overrides)
    return generate_dataset(root, cfg, overwrite=overwrite, progress=progress)


#: The out-of-distribution set (``benchmarks/bench_ood.py``, notebooks 03 and 05): the
#: reserved photos and faces, the held-out hand style and motion profile, and another
#: seed, frame rate and clip length.  No decision about the recipe is ever made on it.
OOD_OVERRIDES: dict[str, Any] = {"holdout": True, "seed": 7007, "fps": 24, "seconds": 2.5,
                                 "clips_per_class": 60, "group_size": 2,
                                 "val_fraction": 0.0, "test_fraction": 0.0}


def ood_dataset(quick: bool | None = None, progress: bool = True) -> Path:
    """The out-of-distribution set in ``data_dir()/"ood"`` (``ood_quick``: 4 clips per
    class), generated on first use; every clip is in ``train``, nothing trains on it."""
    quick = is_quick() if quick is None else quick
    small = {"clips_per_class": 4, "group_size": 1} if quick else {}
    return standard_dataset(quick, progress, name="ood", **{**OOD_OVERRIDES, **small})


def load_sessions(root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``{group: session}`` of a generated dataset (for re-rendering a clip)."""
    path = Path(root) / SESSIONS
    data = _read_json(path)
    if not isinstance(data, dict):
        raise input_error(path, "missing or unreadable", "regenerate the dataset (--overwrite)")
    return data


# --------------------------------------------------------------------------- CLI


#: ``gesture-utils generate`` flags that set a :class:`GenerateConfig` field of that name.
_CLI_FIELDS: dict[str, str | None] = {
    "clips_per_class": None, "size": "frame side in pixels", "fps": None,
    "seconds": "clip length", "seed": None,
    "group_size": "clips of each class per recording session",
    "val_fraction": None, "test_fraction": None,
    "idle_hand_fraction": "share of no_gesture clips where a still hand comes or goes (0-1)",
    "workers": "processes (default 0 = one per CPU core for >= 100 clips)",
}


def configure_cli(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gesture-utils generate``."""
    d = GenerateConfig()
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <data_dir>/synthetic)")
    parser.add_argument("--classes", nargs="+", default=None, metavar="CLASS",
                        help=f"classes to draw, any of {' '.join(KNOWN_CLASSES)} "
                             f"(default: {' '.join(DEFAULT_CLASSES)})")
    for name, text in _CLI_FIELDS.items():
        value = getattr(d, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value, help=text)
    parser.add_argument("--scene", choices=SCENES, default=d.scene,
                        help="photo: webcam-like scenes (default); procedural: the flat look")
    parser.add_argument("--holdout", action="store_true",
                        help="draw from the photos, faces, hand style and motion reserved "
                             "for the out-of-distribution set")
    parser.add_argument("--text-overlay", action="store_true",
                        help="write the class name on every frame (a label leak; for the lesson)")
    parser.add_argument("--overwrite", action="store_true", help="regenerate even if present")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    fields = {k: getattr(args, k) for k in (*_CLI_FIELDS, "scene", "holdout", "text_overlay")}
    cfg = replace(GenerateConfig(), **fields, **({"classes": tuple(args.classes)} if args.classes else {}))
    check_config(cfg)
    out = data_dir() / "synthetic" if args.out is None else args.out
    start = time.perf_counter()
    fresh = args.overwrite or not is_complete(out, cfg)
    generate_dataset(out, cfg, overwrite=args.overwrite, progress=not args.no_progress)
    splits = [r["split"] for r in _manifest_rows(Path(out)) or []]
    counts = " / ".join(f"{s} {splits.count(s)}" for s in ("train", "val", "test"))
    verb = f"wrote {len(splits)} clips" if fresh else f"up to date: {len(splits)} clips"
    print(f"{verb} ({counts}) in {out} [{time.perf_counter() - start:.1f} s]")
    return 0
