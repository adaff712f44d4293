"""Where data and artefacts live (all notebooks).

Paths are relative to the repository so that a notebook run from ``notebooks/`` (as
nbval and nbconvert do) and a script run from the repo root agree.  Environment
variables override them: ``GESTURE_DATA_DIR`` and ``GESTURE_ARTIFACTS_DIR``.
Outside a checkout (Colab after ``pip install``) the current directory is the root.
"""

from __future__ import annotations

import os
from pathlib import Path

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
