"""The single exception type a user of the series can cause (all notebooks).

Every message names the offending file (or setting) and what to do about it, so the
CLI can print it as one line and notebooks show it without a long traceback.
"""

from __future__ import annotations

from os import PathLike


class GestureError(Exception):
    """A problem with user input: a file, a folder, a setting or a checkpoint."""


def input_error(path: str | PathLike[str] | None, problem: str, fix: str = "") -> GestureError:
    """Build a one-line ``GestureError``: ``<path>: <problem>[ (<fix>)]``."""
    where = f"{path}: " if path is not None else ""
    tail = f" ({fix})" if fix else ""
    return GestureError(f"{where}{problem}{tail}".replace("\n", " "))
