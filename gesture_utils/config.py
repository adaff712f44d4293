"""Every default of the series in one place, as dataclasses (all notebooks).

Functions take explicit arguments; when a caller has none it passes one of these
configs.  Each stage owns one dataclass; a notebook's ``parameters`` cell overrides the
fields a learner may turn, e.g. ``GenerateConfig(clips_per_class=8)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

#: The six default classes. ``stop`` is a hand held still in view; ``no_gesture`` has no
#: hand in view at all.
DEFAULT_CLASSES: tuple[str, ...] = (
    "swipe_left",
    "swipe_right",
    "swipe_up",
    "swipe_down",
    "stop",
    "no_gesture",
)

#: The three classes of the original article, for comparison experiments.
ARTICLE_CLASSES: tuple[str, ...] = ("swipe_left", "swipe_right", "stop")

#: Classes that become each other under a horizontal / vertical flip of the frames.
HFLIP_PAIRS: dict[str, str] = {"swipe_left": "swipe_right", "swipe_right": "swipe_left"}
VFLIP_PAIRS: dict[str, str] = {"swipe_up": "swipe_down", "swipe_down": "swipe_up"}


@dataclass(frozen=True)
class GenerateConfig:
    """Synthetic dataset generation (notebook 01, ``gesture-utils generate``)."""

    classes: tuple[str, ...] = DEFAULT_CLASSES
    clips_per_class: int = 60
    size: int = 112  #: frame height = width, pixels
    fps: int = 12
    seconds: float = 2.0
    seed: int = 0
    text_overlay: bool = False  #: the article's label leak; opt-in only (notebook 03)
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    group_size: int = 4  #: clips sharing one "recording session" (split as a unit)


@dataclass(frozen=True)
class ClipConfig:
    """How a clip becomes a model input (notebook 01; recorded in checkpoints)."""

    num_frames: int = 8
    image_size: int = 64
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as a plain JSON-friendly dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


def from_dict(cls: type, data: dict[str, Any]):
    """Rebuild a config from :func:`to_dict` output; unknown keys are an error."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        from gesture_utils.errors import GestureError

        raise GestureError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**kwargs)


__all__ = [
    "ARTICLE_CLASSES",
    "DEFAULT_CLASSES",
    "HFLIP_PAIRS",
    "VFLIP_PAIRS",
    "ClipConfig",
    "GenerateConfig",
    "field",
    "from_dict",
    "replace",
    "to_dict",
]
