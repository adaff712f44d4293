"""Where data and artefacts live, and the one way files are written (all notebooks).

Paths are relative to the repository so that a notebook run from ``notebooks/`` (as
nbval and nbconvert do) and a script run from the repo root agree.  Environment
variables override them: ``GESTURE_DATA_DIR`` and ``GESTURE_ARTIFACTS_DIR``.
Outside a checkout (Colab after ``pip install``) the current directory is the root.
Every artefact is written through :func:`atomic_path`, so an interrupted run never
leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gesture_utils.runtime import is_quick


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding ``gesture_utils/``
    and ``notebooks/``; the current directory when there is none."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "gesture_utils").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return here


def data_dir() -> Path:
    """Root of all datasets: ``$GESTURE_DATA_DIR`` or ``<root>/data``."""
    env = os.environ.get("GESTURE_DATA_DIR")
    return Path(env).resolve() if env else project_root() / "data"


def artifacts_dir(quick: bool | None = None) -> Path:
    """Where notebooks save models, figures and results.

    ``$GESTURE_ARTIFACTS_DIR`` or ``<root>/artifacts``; QUICK runs use the ``quick/``
    subfolder so a CI run never overwrites a learner's full-mode results.
    """
    env = os.environ.get("GESTURE_ARTIFACTS_DIR")
    base = Path(env).resolve() if env else project_root() / "artifacts"
    quick = is_quick() if quick is None else quick
    path = base / "quick" if quick else base
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path`` (same folder and suffix, so writers
    that pick a format from the suffix still work); on success rename it onto ``path``,
    on any error delete it. A crash never leaves a half-written ``path``.

    >>> with atomic_path("out.json") as tmp:
    ...     tmp.write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; returns the path."""
    return write_text(path, json.dumps(obj, indent=2) + "\n")
