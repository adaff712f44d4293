"""The Colab path of every notebook (issue 8).

* Every notebook's setup cell installs the package from the repository pinned to the
  release the README names (``v`` + the version in pyproject.toml), and all six agree.
* Notebooks that train or time models ask Colab for a GPU runtime.
* The setup cell works on a "fresh Colab runtime", simulated as far as this machine
  allows: a new virtual environment whose preinstalled packages are this venv's minus
  ``gesture_utils`` and the ONNX packages Colab lacks, ``google.colab`` present, the
  notebook's own setup cell run through IPython (so ``%pip`` is the real magic) with
  only the install source swapped from the git URL to a copy of this checkout; then
  every import the notebooks make must succeed, from the freshly installed package,
  with the preinstalled torch untouched.  (~30-60 s: venv + pip from the local index.)
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
import tomllib
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPO_URL = "https://github.com/gesture-tutorials/gesture-transformers"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
TAG = f"v{VERSION}"
PINNED = f"gesture-utils @ git+{REPO_URL}@{TAG}"
# Notebooks that train (or, run alone on Colab, train a stand-in) or time CUDA backends.
GPU_NOTEBOOKS = ("03", "04", "05", "06")
# Not preinstalled on Colab: the install must fetch them (from the package registry).
NOT_ON_COLAB = ("onnx", "onnxruntime", "onnxscript")


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)


def _setup_cell(nb: nbformat.NotebookNode) -> str:
    cells = [c.source for c in nb.cells
             if c.cell_type == "code" and "google.colab" in c.source and "setup(" in c.source]
    assert len(cells) == 1, "need exactly one setup cell"
    return cells[0]


def _parameters_cell(nb: nbformat.NotebookNode) -> str:
    return next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))


def test_setup_cells_install_the_release_the_readme_names():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert PINNED in readme, f"README must name the pinned install: {PINNED}"
    assert re.search(rf"\b{re.escape(TAG)}\b", readme)
    cells = {}
    for path in NOTEBOOKS:
        src = _setup_cell(_load(path))
        installs = re.findall(r'^\s*%pip install -q "([^"]+)"\s*$', src, re.M)
        assert installs == [PINNED], f"{path.name}: setup cell installs {installs}, want [{PINNED!r}]"
        cells[path.name] = src
    # one cell text for all: the simulation below then stands for every notebook
    assert len(set(cells.values())) == 1, "setup cells differ: " + ", ".join(cells)


def test_dependencies_keep_colabs_torch():
    """Ranges only, with lower bounds Colab's torch stack has long satisfied."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0]: d for d in deps}
    for name in ("torch", "torchvision"):
        assert re.fullmatch(rf"{name}>=[\d.]+", spec[name]), f"{spec[name]}: use a lower bound only"
    assert float(spec["torch"].split(">=")[1]) <= 2.1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_gpu_notebooks_ask_colab_for_a_gpu(path: Path):
    meta = _load(path).metadata
    if path.name[:2] in GPU_NOTEBOOKS:
        assert meta.get("accelerator") == "GPU", f"{path.name}: metadata needs accelerator: GPU"
        assert meta.get("colab", {}).get("gpuType") == "T4", f"{path.name}: colab.gpuType T4"
    else:
        assert "accelerator" not in meta, f"{path.name} needs no GPU runtime"


def _notebook_imports() -> list[str]:
    """Every top-level import statement of every notebook code cell, once each."""
    tm, out = TransformerManager(), []
    for path in NOTEBOOKS:
        for cell in _load(path).cells:
            if cell.cell_type != "code":
                continue
            for node in ast.parse(tm.transform_cell(cell.source)).body:
                if isinstance(node, ast.Import | ast.ImportFrom):
                    line = ast.unparse(node)
                    if line not in out:
                        out.append(line)
    return out


# Runs inside the fresh venv; prints one JSON line.
DRIVER = r'''
import importlib, importlib.util, json, sys
cfg = json.loads(sys.argv[1])
spec = lambda name: importlib.util.find_spec(name)
out = {"before": spec("gesture_utils") is not None,
       "missing_before": [m for m in cfg["not_on_colab"] if spec(m) is None],
       "torch_before": spec("torch").origin}
sys.path.insert(0, cfg["fake_colab"])
import google.colab  # noqa: the fake Colab module; the setup cell looks for it
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
for name, src in (("parameters", cfg["parameters"]), ("setup", cfg["setup"])):
    r = shell.run_cell(src, silent=True)
    if not r.success:
        out["failed"] = f"{name} cell: {r.error_in_exec or r.error_before_exec!r}"
        break
out["pip_exit"] = shell.user_ns.get("_exit_code")
out["colab"] = bool(shell.user_ns.get("IN_COLAB"))
out["widgets"] = getattr(sys.modules.get("google.colab.output"), "enabled", False)
out["info"] = str(shell.user_ns.get("info"))
out["import_errors"] = {}
for line in cfg["imports"]:
    r = shell.run_cell(line, silent=True)
    if not r.success:
        out["import_errors"][line] = repr(r.error_in_exec or r.error_before_exec)
mods = sys.modules
out["gesture_utils"] = getattr(mods.get("gesture_utils"), "__file__", None)
out["torch_after"] = getattr(mods.get("torch"), "__file__", None)
out["installed_deps"] = {m: getattr(spec(m), "origin", None) for m in cfg["not_on_colab"]}
print("RESULT " + json.dumps(out))
'''


def _colab_like_site(dest: Path) -> Path:
    """Links to this venv's packages minus gesture_utils (and its editable hook) and the
    packages Colab does not preinstall: what a fresh Colab runtime offers."""
    dest.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    names = "|".join(NOT_ON_COLAB)               # also drops onnx_ir, which Colab lacks too
    drop = re.compile(rf"(gesture_utils|__editable__|({names})([-_.].*)?$)", re.I)
    for entry in site.iterdir():
        if entry.suffix == ".pth" or drop.match(entry.name):
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


def _package_copy(dest: Path) -> Path:
    """What `git+URL@tag` would fetch, minus everything the build does not need."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "gesture_utils", dest / "gesture_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def test_setup_cell_installs_the_package_on_a_fresh_colab_like_runtime(tmp_path: Path):
    nb = _load(NOTEBOOKS[0])
    setup_src = _setup_cell(nb)
    assert PINNED in setup_src
    local_spec = f"gesture-utils @ {_package_copy(tmp_path / 'src').as_uri()}"
    venv = tmp_path / "colab-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    py = venv / "bin" / "python"
    venv_site = Path(subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    preinstalled = _colab_like_site(tmp_path / "preinstalled")
    (venv_site / "colab_preinstalled.pth").write_text(f"{preinstalled}\n")
    fake = tmp_path / "fake_colab"
    (fake / "google" / "colab").mkdir(parents=True)    # namespace `google`, as protobuf's
    (fake / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab."""\n')
    (fake / "google" / "colab" / "output.py").write_text(  # records the widget manager call
        "enabled = False\n\ndef enable_custom_widget_manager():\n    global enabled\n"
        "    enabled = True\n")

    cfg = {"fake_colab": str(fake), "not_on_colab": list(NOT_ON_COLAB),
           "parameters": _parameters_cell(nb),
           "setup": setup_src.replace(PINNED, local_spec),
           "imports": _notebook_imports()}
    # this environment (registry settings, certificates) minus anything that could put
    # the checkout or this venv on the path; cwd is outside the checkout
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("GESTURE_")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", GESTURE_QUICK="1",
               MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([py, "-c", DRIVER, json.dumps(cfg)], cwd=tmp_path, text=True,
                          capture_output=True, timeout=600, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"driver failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    out = json.loads(lines[-1][len("RESULT "):])

    # a fresh runtime: no gesture_utils, no ONNX packages, but a torch of its own
    assert out["before"] is False, "gesture_utils was importable before the install"
    assert out.get("widgets") is True, "the setup cell must enable Colab's custom widgets"
    assert out["missing_before"] == list(NOT_ON_COLAB)
    assert out["torch_before"].startswith(str(preinstalled))
    assert "failed" not in out, out.get("failed")
    assert out["colab"] and "colab=yes" in out["info"], out["info"]
    assert out["pip_exit"] == 0, proc.stdout[-3000:]
    assert not out["import_errors"], out["import_errors"]
    # the package and its missing dependencies came from the install ...
    assert out["gesture_utils"].startswith(str(venv_site)), out["gesture_utils"]
    for name, where in out["installed_deps"].items():
        assert where and where.startswith(str(venv_site)), f"{name} from {where}"
    # ... and Colab's torch was kept, not reinstalled or upgraded
    assert out["torch_after"].startswith(str(preinstalled)), out["torch_after"]
    assert not (venv_site / "torch").exists()
