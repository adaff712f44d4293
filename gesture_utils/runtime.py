"""Seeding, device choice and the one-line notebook setup (all notebooks)."""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

QUICK_ENV = "GESTURE_QUICK"


def is_quick() -> bool:
    """True when ``GESTURE_QUICK=1``: tiny data and few steps, so CI runs every notebook."""
    return os.environ.get(QUICK_ENV, "0") == "1"


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if installed) PyTorch on every device."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


def pick_device(prefer: str | None = None) -> str:
    """``prefer`` if given, else the best available of ``cuda``, ``mps``, ``cpu``."""
    if prefer:
        return prefer
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


@dataclass(frozen=True)
class Setup:
    """What :func:`setup` decided, for the notebook to use."""

    device: str
    colab: bool
    quick: bool
    seed: int

    def __str__(self) -> str:
        yes = {True: "yes", False: "no"}
        return (f"device={self.device} · colab={yes[self.colab]} · "
                f"quick={yes[self.quick]} · seed={self.seed}")


def setup(seed: int = 0, device: str | None = None, quiet: bool = False) -> Setup:
    """Seed everything, pick the device and print one short line. Used by every notebook."""
    seed_everything(seed)
    info = Setup(device=pick_device(device), colab=in_colab(), quick=is_quick(), seed=seed)
    if not quiet:
        print(info)
    return info
