"""The README's promises: its test command is exactly what CI runs, its demo command is real."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", readme, flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = next(c for c in _commands() if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_readme_demo_command_installs_and_previews() -> None:
    demo = _commands()[0]
    assert "pip install" in demo and "digest init" in demo and "digest preview" in demo
    assert "digest run" in demo


def test_ci_runs_the_readme_demo_command_verbatim() -> None:
    demo = _commands()[0]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert f"  {{ {demo}; }} > demo.log 2>&1 \\" in ci
