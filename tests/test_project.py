"""The project's own promises: two README commands, CI calls the test command, and
environment.yml lists exactly what pyproject.toml does."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;@]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    pip_lines, in_pip = [], False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^\s*- pip:\s*$", line):
            in_pip = True
            continue
        if in_pip:
            m = re.match(r"^\s{6,}- (.+?)\s*$", line)
            if not m:
                break
            pip_lines.append(m.group(1))
    listed = {p for p in pip_lines if not p.startswith("-e")}
    assert listed == wanted, (
        f"environment.yml and pyproject differ: only in environment.yml {sorted(listed - wanted)}, "
        f"only in pyproject {sorted(wanted - listed)}"
    )
    assert any(p.startswith("-e .") for p in pip_lines), "environment.yml must install the package"


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make tutorial" in readme
    assert re.search(r"^\s*make test\s*$", ci, re.M), ".ci/run must call `make test`"


def test_readme_has_exactly_two_setup_commands():
    """The README's quick start shows exactly the two commands: tutorial and test."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Quick start")
    section = readme[start: readme.index("\n## ", start + 1)]
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", section, re.S)
    commands = [ln.strip() for b in blocks for ln in b.splitlines()
                if ln.strip() and not ln.strip().startswith("#")]
    assert commands == ["make tutorial", "make test"], commands


def test_makefile_installs_the_torch_pair_first_and_ranges_stay_ranges():
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.14.1 torchvision==0.29.1" in makefile
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = [d for d in deps if "==" in d]
    assert not pinned, f"user-facing requirements must be ranges, found pins: {pinned}"
    names = {_requirement_name(d) for d in deps}
    assert {"torch", "timm", "onnxruntime", "opencv-python", "scikit-learn"} <= names
