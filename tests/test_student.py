"""The student edition, ``notebooks/student/`` (issue 8; built by ``make student``).

The committed copies must equal what tools/make_student.py builds from the teacher's
notebooks right now (so editing a notebook without ``make student`` fails here), every
solution must be gone (the marked part of each exercise), every exercise is followed by
the cell that checks it, and nothing else may depend on a solution, so the copies still
run top to bottom (``make test`` executes them after the teacher's).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

_spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
make_student = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_student)


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_student_copies_are_up_to_date():
    problems = make_student.problems()
    assert not problems, "\n".join(problems) + "\nrun `make student` and commit notebooks/student/"


def test_check_notices_an_edited_notebook_and_an_orphan(tmp_path: Path):
    src = tmp_path / "notebooks"
    src.mkdir()
    shutil.copy(NOTEBOOKS[0], src / NOTEBOOKS[0].name)
    assert make_student.problems(src) == [f"{src / 'student' / NOTEBOOKS[0].name} is missing"]
    assert make_student.build(src) == 1 and make_student.problems(src) == []
    assert make_student.build(src) == 0                      # nothing to rebuild
    nb = _load(src / NOTEBOOKS[0].name)
    nb.cells[-1].source += "\nOne more line."
    (src / NOTEBOOKS[0].name).write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
    (src / "student" / "99_gone.ipynb").write_text("{}")
    assert make_student.problems(src) == [f"{src / 'student' / NOTEBOOKS[0].name} is out of date",
                                          f"{src / 'student' / '99_gone.ipynb'} has no teacher notebook"]
    make_student.build(src)
    assert make_student.problems(src) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_copy_hides_solutions_and_keeps_the_rest(path: Path):
    teacher = _load(path)
    student = _load(ROOT / "notebooks" / "student" / path.name)
    assert len(student.cells) == len(teacher.cells)
    assert student.metadata == teacher.metadata              # kernelspec, Colab GPU request
    head = student.cells[0].source
    assert f"blob/main/notebooks/student/{path.name})" in head, "badge must open the student copy"
    assert "Student edition" in head
    n_solutions = 0
    for t, s in zip(teacher.cells[1:], student.cells[1:], strict=True):
        if s.cell_type == "code":
            assert s.outputs == [] and s.execution_count is None
        if "solution" in _tags(t):
            n_solutions += 1
            assert s.cell_type == "code" and "exercise" in _tags(s) and "solution" not in _tags(s)
            assert s.source == make_student.blank(t.source, path.name)
            assert "raise NotImplementedError" in s.source and make_student.BEGIN not in s.source
        else:
            assert (s.cell_type, s.source, _tags(s)) == (t.cell_type, t.source, _tags(t))
    assert 2 <= n_solutions <= 4, f"{path.name}: {n_solutions} exercises, want 2-4"


def test_blank_keeps_the_signature_and_removes_only_the_marked_part():
    source = ('def twice(x):\n    """Double it."""\n    ### BEGIN SOLUTION\n    y = x + x\n'
              '    return y\n    ### END SOLUTION\n\nprint("kept")')
    out = make_student.blank(source, "nb")
    assert out.startswith('def twice(x):\n    """Double it."""\n    # Your code here')
    assert "\n    raise NotImplementedError\n" in out and out.endswith('print("kept")')
    assert "x + x" not in out and "return y" not in out
    namespace: dict = {}
    exec(out, namespace)                                     # the skeleton still runs
    with pytest.raises(NotImplementedError):
        namespace["twice"](2)
    with pytest.raises(ValueError, match="nb: a `solution` cell needs"):
        make_student.blank("y = 1", "nb")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_is_followed_by_its_check(path: Path):
    code = [c for c in _load(path).cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        if "solution" in _tags(cell):
            after = code[i + 1] if i + 1 < len(code) else nbformat.v4.new_code_cell("")
            assert "check" in _tags(after), f"{path.name}: no `check` cell after {cell.source[:60]!r}"
            assert "with check(" in after.source and "assert" in after.source


def test_check_reports_an_unwritten_exercise_and_fails_a_wrong_one(capsys):
    from gesture_utils.exercises import check
    with check("twice"):
        raise NotImplementedError
    assert "`twice` is not written yet" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="off by one"), check("twice"):
        assert 2 + 2 == 5, "off by one"
    with check("twice"):
        assert 2 + 2 == 4
    assert "all checks pass" in capsys.readouterr().out


def _parse(source: str) -> ast.Module:
    return ast.parse(TransformerManager().transform_cell(source))   # IPython magics translated


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds in its own scope, names it reads anywhere)."""
    return _names_in(_parse(source))


def _names_in(tree: ast.Module) -> tuple[set[str], set[str]]:
    """:func:`_names` of a parsed cell; a function's or comprehension's locals are not
    the cell's."""
    bound, read = set(), set()
    local = set()                                            # a function's or comprehension's own
    for scope in ast.walk(tree):
        if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
                      | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            names = [n for n in ast.walk(scope) if n is not scope and isinstance(n, ast.Name)]
            own = {n.id for n in names if isinstance(n.ctx, ast.Store)}
            own |= {a.arg for a in ast.walk(scope) if isinstance(a, ast.arg)}
            local |= {id(n) for n in names if n.id in own}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run_line_magic", "run_cell_magic")
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in ("time", "timeit", "prun")):
            code = node.args[-1].value                       # %time stmt: the stmt counts
            if node.func.attr == "run_line_magic":           # drop options like -n 3 -r 1
                code = re.sub(r"^\s*(-\w+(\s+\d+)?\s+)*", "", code)
            b, r = _names(code)
            bound, read = bound | b, read | r
        elif isinstance(node, ast.Name):
            if id(node) in local:
                continue
            (bound if isinstance(node.ctx, ast.Store | ast.Del) else read).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return bound, read


def _bound_under_check(tree: ast.Module) -> set[str]:
    """Names bound inside a ``with check(...)`` block of a parsed cell: unbound while the
    exercise is unwritten."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call) and getattr(item.context_expr.func, "id", "") == "check"
                for item in node.items):
            out |= _names_in(ast.Module(body=node.body, type_ignores=[]))[0]
    return out


def solution_dependencies(nb) -> list[str]:
    """Cells other than exercises and their checks that read a name whose latest binding
    (in notebook order) is in a solution cell, or inside a check's ``with check`` block:
    they would break, or silently change, once the solutions are removed."""
    last_bound_by: dict[str, int] = {}
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tree = _parse(cell.source)
        bound, read = _names_in(tree)
        tags = set(_tags(cell))
        if not {"solution", "check"} & tags:                  # a name the cell binds itself is its own
            found += [f"cell {i} reads {name!r} from solution cell {last_bound_by[name]}"
                      for name in sorted(read - bound) if name in last_bound_by]
        under_check = _bound_under_check(tree) if "check" in tags else set()
        for name in bound:
            if "solution" in tags or name in under_check:
                last_bound_by[name] = i
            else:
                last_bound_by.pop(name, None)
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_depends_on_a_solution(path: Path):
    assert solution_dependencies(_load(path)) == []


def test_solution_dependency_check_can_fail():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1\ny = 2"),
        nbformat.v4.new_code_cell("x = 10\nz = 3", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("print(x, z)", metadata={"tags": ["check"]}),  # may read them
        nbformat.v4.new_code_cell("%time print(x, y)"),           # x rebound by the solution
        nbformat.v4.new_code_cell("%timeit -n 2 -r 1 out = z + 1"),  # z read from the solution
        nbformat.v4.new_code_cell("z = 0"),
        nbformat.v4.new_code_cell("print(z)"),                    # z rebound outside: fine
        nbformat.v4.new_code_cell("w = 1\nwith check('x'):\n    v = f(x)", metadata={"tags": ["check"]}),
        nbformat.v4.new_code_cell("print(w, v)"),                 # v unbound if f is unwritten
    ])
    assert solution_dependencies(nb) == ["cell 3 reads 'x' from solution cell 1",
                                         "cell 4 reads 'z' from solution cell 1",
                                         "cell 8 reads 'v' from solution cell 7"]
