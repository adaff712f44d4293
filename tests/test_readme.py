"""The README as the series' front page (issue 8): its notebook table matches the
notebooks (title, time line, Colab links), the pictures it shows exist, and it links the
teacher's guide, which covers every notebook."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
README = (ROOT / "README.md").read_text(encoding="utf-8")
VISIBLE = re.sub(r"<!--.*?-->", "", README, flags=re.S)       # what GitHub renders
COLAB = "https://colab.research.google.com/github/gesture-tutorials/gesture-transformers/blob/main/"


def _head(path: Path) -> str:
    return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4).cells[0].source


def _row(number: str) -> str:
    rows = [ln for ln in VISIBLE.splitlines() if ln.startswith(f"| {number} |")]
    assert len(rows) == 1, f"README needs one notebook-table row for {number}"
    return rows[0]


def test_table_has_one_row_per_notebook_and_no_more():
    numbers = re.findall(r"^\| (\d\d) \|", VISIBLE, re.M)
    assert numbers == [p.name[:2] for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_table_row_matches_the_notebook(path: Path):
    head, row = _head(path), _row(path.name[:2])
    title = re.match(r"# \d\d · (.+)", head).group(1).strip()
    assert f"[{title}](notebooks/{path.name})" in row, f"row must link '{title}'"
    cpu, gpu = re.search(r"⏱ CPU (~[\d.]+) min · GPU (~[\d.]+) min", head).groups()
    assert f"{cpu} min · {gpu} min" in row, "README time must equal the notebook's ⏱ line"
    assert f"({COLAB}notebooks/{path.name})" in row
    assert f"({COLAB}notebooks/student/{path.name})" in row


def test_pictures_shown_exist_and_have_alt_text():
    images = re.findall(r"!\[([^\]]*)\]\(([^)\s]+)\)", VISIBLE)
    local = [(alt, src) for alt, src in images if not src.startswith("http")]
    assert ("docs/images/clip_strip.png" in [src for _, src in local])
    for alt, src in local:
        assert (ROOT / src).is_file(), f"README shows {src}, which does not exist"
        assert len(alt.split()) >= 4, f"{src}: alt text should describe the picture"


def test_teachers_guide_is_linked_and_covers_every_notebook():
    assert "(docs/TEACHERS.md)" in VISIBLE
    guide = (ROOT / "docs" / "TEACHERS.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        title = re.match(r"# (\d\d · .+)", _head(path)).group(1).strip()
        number = path.name[:2]
        assert f"**{number} · " in guide, f"guide lacks checkpoint questions for {number}"
        assert re.search(rf"^\| {number} · ", guide, re.M), f"guide's time table lacks {number}"
        assert title.split(":")[0] in guide, f"guide does not name '{title}'"
