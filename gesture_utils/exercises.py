"""The student edition's exercise checks.

In ``notebooks/student/`` each exercise cell keeps its ``def`` line and docstring, and
its body reads ``raise NotImplementedError`` until the learner writes it. The cell after
it runs the teacher's asserts inside ``check``: they pass, fail with the assert's
message, or (while the body is still unwritten) say so and let the notebook run on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def check(name: str) -> Iterator[None]:
    """Run an exercise's asserts; an unwritten exercise prints a note instead of failing."""
    try:
        yield
    except NotImplementedError:
        print(f"Exercise `{name}` is not written yet: fill in the cell above, then re-run this one.")
    else:
        print(f"Exercise `{name}`: all checks pass.")
