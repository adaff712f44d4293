"""tools/check_executed.py: ``make tutorial`` fails when an executed notebook has no figure."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_executed", ROOT / "tools" / "check_executed.py")
check_executed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_executed)


def _write(path: Path, outputs: list) -> None:
    cell = nbformat.v4.new_code_cell("plt.show()")
    cell.outputs = outputs
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)


def test_a_notebook_without_an_image_is_named(tmp_path: Path):
    png = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    text = nbformat.v4.new_output("stream", name="stdout", text="<Figure size 640x480 with 1 Axes>\n")
    _write(tmp_path / "01_with.ipynb", [png])
    _write(tmp_path / "02_without.ipynb", [text])
    assert check_executed.count_images(tmp_path / "01_with.ipynb") == 1
    assert check_executed.problems(tmp_path) == [
        f"{tmp_path / '02_without.ipynb'}: no inline figure in the executed notebook"]
    assert check_executed.main([str(tmp_path)]) == 1
    (tmp_path / "02_without.ipynb").unlink()
    assert check_executed.main([str(tmp_path)]) == 0


def test_an_empty_folder_is_a_problem(tmp_path: Path):
    assert check_executed.problems(tmp_path) == [f"{tmp_path}: no executed notebooks (run `make tutorial`)"]
