"""Shared fixtures (owned by the data helper; others make local fixtures in their files)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gesture_utils.config import GenerateConfig

#: The tiny dataset's settings: all 6 classes, 4 sessions x 1 clip per class (24 clips),
#: 64 px, 8 frames (1 s at 8 fps). Splits: one session each in val and test, two in train.
TINY_CONFIG = replace(GenerateConfig(), clips_per_class=4, group_size=1, size=64, fps=8,
                      seconds=1.0, seed=0, workers=1)


@pytest.fixture(scope="session")
def tiny_config() -> GenerateConfig:
    """The :class:`GenerateConfig` that made ``tiny_dataset``."""
    return TINY_CONFIG


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a small generated dataset (labels.txt, manifest.csv, config.json, mp4 clips).

    Session-scoped and read-only by convention: copy it (``shutil.copytree``) before
    changing anything.  Generates in well under a second.
    """
    from gesture_utils.generation import generate_dataset

    root = tmp_path_factory.mktemp("data") / "tiny"
    return generate_dataset(root, TINY_CONFIG, progress=False)
