"""Static checks of every notebook against ../shared/CONVENTIONS.md (runs in seconds)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The teacher edition only: notebooks/student/ copies are checked by test_student.py.
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_notebooks_are_numbered_without_gaps():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers, "no notebooks found"
    assert numbers == list(range(1, len(numbers) + 1)), numbers


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_skeleton(path: Path):
    nb = _load(path)
    cells = nb["cells"]
    number = path.name[:2]

    head = _src(cells[0])
    assert cells[0]["cell_type"] == "markdown"
    assert re.match(rf"# {number} · \S", head), f"{path.name}: title must be '# {number} · Title'"
    badge = re.search(r"\(https://colab\.research\.google\.com/github/[^)]*\)", head)
    assert badge and f"notebooks/{path.name}" in badge.group(0), "Colab badge must link this notebook"
    assert re.search(r"⏱ CPU ~\d+(\.\d+)? min · GPU ~\d+(\.\d+)? min · study ~\d+ min", head), \
        "missing ⏱ line with run times (CPU, GPU) and study time"

    intro = _src(cells[1])
    assert "What you will learn" in intro and "Prerequisites" in intro

    params = [c for c in cells if "parameters" in _tags(c)]
    assert len(params) == 1 and params[0]["cell_type"] == "code", "need one cell tagged parameters"
    assert 'os.environ.get("GESTURE_QUICK"' in _src(params[0])

    setup_idx = next((i for i, c in enumerate(cells) if "setup(" in _src(c)), None)
    assert setup_idx is not None and "google.colab" in _src(cells[setup_idx]), "missing setup cell"
    assert cells.index(params[0]) < setup_idx

    headings = [(i, _src(c).strip()) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]
    idx = {}
    for name in ("## Summary", "## Going further", "## Further reading"):
        hits = [i for i, text in headings if any(line.strip() == name for line in text.splitlines())]
        assert hits, f"{path.name}: missing '{name}'"
        idx[name] = hits[-1]
    assert idx["## Summary"] < idx["## Going further"] < idx["## Further reading"]
    # the exercises are core pieces inside the lesson, each before the summary
    solutions = [i for i, c in enumerate(cells) if "solution" in _tags(c)]
    assert solutions and all(setup_idx < i < idx["## Summary"] for i in solutions)


@pytest.mark.parametrize("path", [*NOTEBOOKS, ROOT / "notebooks" / "live_demo.ipynb"],
                         ids=lambda p: p.name)
def test_notebook_is_stripped(path: Path):
    nb = _load(path)
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"
    dirty = [i for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them before committing"
