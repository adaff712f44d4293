"""Build the student edition of the series: ``notebooks/student/NN_*.ipynb``.

Each cell tagged ``solution`` marks the learner's part with ``### BEGIN SOLUTION`` and
``### END SOLUTION`` lines (nbgrader's convention); the student copy keeps the rest of
the cell (the ``def`` line, the docstring) and puts ``raise NotImplementedError`` in the
marked part, and the cell is tagged ``exercise``. The cell after it, tagged ``check``,
runs the asserts inside ``gesture_utils.exercises.check``, so an unwritten exercise
says so and the notebook still runs on. Outputs and execution counts are stripped; the
Colab badge points at the student copy. ``--check`` writes nothing and
exits non-zero (naming the stale files) when the committed copies differ from what
would be built; ``tests/test_student.py`` runs the same check in-process.

    make student                            # (re)build the copies
    python tools/make_student.py --check    # verify they are current

A student copy must still run from top to bottom, so only ``check`` cells may use a
name that a solution cell defines (``tests/test_student.py`` checks this).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

from gesture_utils.paths import write_text

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks"
TARGET = SOURCE / "student"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_REGION = re.compile(rf"^([ \t]*){BEGIN}\n.*?^[ \t]*{END}[ \t]*$", re.M | re.S)
PLACEHOLDER = ('{indent}# Your code here (the teacher\'s edition in notebooks/ has one).\n'
               '{indent}raise NotImplementedError')
NOTE = ("> **Student edition.** Solutions are removed; the full notebook is "
        "`notebooks/{name}`.")


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def blank(source: str, where: str) -> str:
    """``source`` with every marked solution region replaced by the placeholder."""
    out, n = _REGION.subn(lambda m: PLACEHOLDER.format(indent=m.group(1)), source)
    if n == 0:
        raise ValueError(f"{where}: a `solution` cell needs {BEGIN} / {END} lines")
    return out


def student_copy(nb: dict, name: str) -> dict:
    """The student edition of notebook ``nb`` (a parsed .ipynb dict) named ``name``."""
    out = copy.deepcopy(nb)
    cells = []
    for i, cell in enumerate(out["cells"]):
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags:
            cell["metadata"]["tags"] = [t for t in tags if t != "solution"] + ["exercise"]
            cell["source"] = blank(_src(cell), f"{name} cell {i}")
        cells.append(cell)
    first = cells[0]
    first["source"] = (_src(first).replace(f"notebooks/{name}", f"notebooks/student/{name}")
                       + "\n\n" + NOTE.format(name=name))
    out["cells"] = cells
    return out


def render(nb: dict) -> str:
    """The file text nbformat writes for ``nb`` (sorted keys, one-space indent)."""
    return nbformat.writes(nbformat.from_dict(nb), version=4) + "\n"


def sources(root: Path = SOURCE) -> list[Path]:
    """The teacher notebooks ``NN_*.ipynb`` directly under ``root``."""
    return sorted(root.glob("[0-9][0-9]_*.ipynb"))


def expected(root: Path = SOURCE) -> dict[str, str]:
    """File name -> text of every student copy that ``root``'s notebooks produce."""
    return {p.name: render(student_copy(nbformat.reads(p.read_text(encoding="utf-8"), as_version=4),
                                        p.name))
            for p in sources(root)}


def problems(root: Path = SOURCE, target: Path | None = None) -> list[str]:
    """Why the copies in ``target`` (default ``root/student``) are not current; [] if they
    are. Writes nothing."""
    target = root / "student" if target is None else target
    want = expected(root)
    if not want:
        return [f"{root}: no notebooks found"]
    out = []
    for name, text in want.items():
        dest = target / name
        if not dest.exists():
            out.append(f"{dest} is missing")
        elif dest.read_text(encoding="utf-8") != text:
            out.append(f"{dest} is out of date")
    out += [f"{p} has no teacher notebook" for p in sorted(target.glob("*.ipynb"))
            if p.name not in want]
    return out


def build(root: Path = SOURCE, target: Path | None = None) -> int:
    """Write the copies that changed (atomically), remove orphans; returns how many
    were rewritten."""
    target = root / "student" if target is None else target
    target.mkdir(exist_ok=True)
    want, rebuilt = expected(root), 0
    for name, text in want.items():
        dest = target / name
        if not dest.exists() or dest.read_text(encoding="utf-8") != text:
            write_text(dest, text)
            rebuilt += 1
    for p in target.glob("*.ipynb"):
        if p.name not in want:
            p.unlink()
    return rebuilt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="verify instead of writing")
    args = ap.parse_args(argv)
    if not sources():
        print(f"{SOURCE}: no notebooks found", file=sys.stderr)
        return 2
    if args.check:
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        if found:
            print("run `make student` and commit notebooks/student/", file=sys.stderr)
        return 1 if found else 0
    rebuilt = build()
    print(f"student edition: {len(sources())} notebooks in {TARGET.relative_to(ROOT)}/ "
          f"({rebuilt} rebuilt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
