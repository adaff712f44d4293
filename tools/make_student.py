"""Build the student edition of the series: ``notebooks/student/NN_*.ipynb``.

Each cell tagged ``solution`` is replaced by an empty code cell that invites the
learner's own answer; outputs and execution counts are stripped. ``--check`` exits
non-zero (naming the stale files) when the committed copies differ from what would be
built, which CI uses to keep them up to date.

    python tools/make_student.py          # (re)build the copies
    python tools/make_student.py --check  # verify they are current
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "notebooks"
TARGET = SOURCE / "student"
PLACEHOLDER = "# Your solution here. (The teacher's edition in notebooks/ has one.)\n"
NOTE = ("> **Student edition.** Solutions are removed; the full notebook is "
        "`notebooks/{name}`.\n")


def student_copy(nb: dict, name: str) -> dict:
    """The student edition of notebook ``nb`` (a parsed .ipynb dict)."""
    out = copy.deepcopy(nb)
    cells = []
    for cell in out["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        if "solution" in cell.get("metadata", {}).get("tags", []):
            tags = [t for t in cell["metadata"]["tags"] if t != "solution"] + ["exercise"]
            cell = {"cell_type": "code", "execution_count": None, "id": cell.get("id", ""),
                    "metadata": {"tags": tags}, "outputs": [], "source": PLACEHOLDER}
            if not cell["id"]:
                del cell["id"]
        cells.append(cell)
    first = cells[0]
    src = first["source"] if isinstance(first["source"], str) else "".join(first["source"])
    first["source"] = src.replace(f"notebooks/{name}", f"notebooks/student/{name}") + "\n\n" + NOTE.format(name=name)
    out["cells"] = cells
    return out


def render(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def build(check: bool) -> int:
    stale = []
    sources = sorted(SOURCE.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        print(f"{SOURCE}: no notebooks found", file=sys.stderr)
        return 2
    TARGET.mkdir(exist_ok=True)
    wanted = set()
    for path in sources:
        text = render(student_copy(json.loads(path.read_text(encoding="utf-8")), path.name))
        dest = TARGET / path.name
        wanted.add(dest.name)
        current = dest.read_text(encoding="utf-8") if dest.exists() else None
        if current != text:
            stale.append(dest)
            if not check:
                tmp = dest.with_suffix(".tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(dest)
    extra = [p for p in TARGET.glob("*.ipynb") if p.name not in wanted]
    if check:
        problems = [f"{p.relative_to(ROOT)} is out of date" for p in stale]
        problems += [f"{p.relative_to(ROOT)} has no teacher notebook" for p in extra]
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run `make student` and commit the result", file=sys.stderr)
        return 1 if problems else 0
    for p in extra:
        p.unlink()
    print(f"student edition: {len(sources)} notebooks in {TARGET.relative_to(ROOT)}/ "
          f"({len(stale)} rebuilt)")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="verify instead of writing")
    sys.exit(build(ap.parse_args().check))
