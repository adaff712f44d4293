"""Check that executed notebooks keep their figures: ``make tutorial`` runs this on
``artifacts/executed/``, and it exits non-zero, naming the notebook, when one has no
inline image (a headless run with a non-inline matplotlib backend writes none).

    python tools/check_executed.py [FOLDER]      # default: artifacts/executed
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def count_images(path: Path) -> int:
    """Number of image outputs (PNG, JPEG or SVG) in the notebook at ``path``."""
    nb = nbformat.read(path, as_version=4)
    return sum(any(k.startswith("image/") for k in out.get("data", {}))
               for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)


def problems(folder: Path) -> list[str]:
    """One line per executed notebook in ``folder`` without an image; [] if all have some."""
    found = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not found:
        return [f"{folder}: no executed notebooks (run `make tutorial`)"]
    return [f"{p}: no inline figure in the executed notebook" for p in found if count_images(p) == 0]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else ROOT / "artifacts" / "executed"
    bad = problems(folder)
    for line in bad:
        print(line, file=sys.stderr)
    if not bad:
        print(f"{folder}: every executed notebook keeps its figures")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
