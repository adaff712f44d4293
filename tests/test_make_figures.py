"""tools/make_figures.py: the README pictures (issue 8).

Only cheap paths are run here: argument handling, refusing QUICK results, and drawing
nothing (with a clear exit status) when a figure's results are missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def make_figures():
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "tools" / "make_figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_unknown_figure_is_a_usage_error(make_figures, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        make_figures.main(["histogram", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "histogram" in capsys.readouterr().err


def test_missing_results_draw_nothing_and_fail_when_asked_for(make_figures, tmp_path):
    empty, out = tmp_path / "artifacts", tmp_path / "out"
    empty.mkdir()
    assert make_figures.main(["confusion", "latency", "--artifacts", str(empty), "--out", str(out)]) == 1
    assert not list(out.glob("*.png"))


def test_quick_results_are_refused(make_figures, tmp_path):
    quick = tmp_path / "quick"
    quick.mkdir()
    assert make_figures.main(["latency", "--artifacts", str(quick), "--out", str(tmp_path)]) == 2


def test_no_arguments_draws_what_it_can(make_figures, tmp_path):
    # the default (every figure) must parse: an empty list once tripped argparse's choices
    empty, out = tmp_path / "artifacts", tmp_path / "out"
    empty.mkdir()
    assert make_figures.main(["--artifacts", str(empty), "--out", str(out)]) == 0
    assert [p.name for p in out.glob("*.png")] == ["clip_strip.png"]
