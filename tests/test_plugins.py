"""Plugins from outside the package: the example `examples/jsonl-source` pip-installed into a
fresh virtual environment and found through its entry point, exactly as the built-in kinds are;
a broken one named in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "jsonl-source"
API = ROOT / "tests" / "fixtures" / "samples" / "hf" / "api_2025-10-06.json"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment that sees this one's packages (a ``.pth`` file: no network
    is needed for paper-digest and its dependencies) and has the example plugin pip-installed
    into it, as a user would (no build isolation: its build backend is already here); its
    Python."""
    import site
    import sysconfig

    venv = tmp_path_factory.mktemp("plugin-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    ours = sorted({sysconfig.get_paths()["purelib"], *site.getsitepackages()})
    # an `import` line of a .pth runs at start-up: these folders' own .pth files count too
    # (an editable install of this project is one)
    lines = [f"import site; site.addsitedir({folder!r})" for folder in ours]
    (Path(own) / "this-project.pth").write_text("\n".join(lines) + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", str(EXAMPLE)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return python


def digest(
    folder: Path, python: Path, *args: str, path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DIGEST_CONFIG", "PYTHONPATH")}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return subprocess.run(
        [str(python), "-m", "digest", "--config", str(folder / "digest.toml"), *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_jsonl_plugin_reads_real_entries_through_its_entry_point(
    tmp_path: Path, installed: Path
) -> None:
    entries = json.loads(API.read_text(encoding="utf-8"))
    lines = [json.dumps(e) for e in entries[:8]] + [json.dumps(e["paper"]) for e in entries[8:]]
    (tmp_path / "day.jsonl").write_text("\n".join([*lines, "not json"]) + "\n")
    (tmp_path / "digest.toml").write_text(
        '[[sources]]\nkind = "jsonl"\npath = "day.jsonl"\n'
        '[[subscribers]]\nemail = "ada@example.org"\n'
    )
    done = digest(tmp_path, installed, "fetch", "--json")
    assert done.returncode == 0, done.stderr
    papers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [p["arxiv_id"] for p in papers] == [e["paper"]["id"] for e in entries]
    assert "line 17: not JSON" in done.stderr  # the bad line skipped, named
    check = digest(tmp_path, installed, "check")
    assert check.returncode == 0, check.stderr
    assert "jsonl (plugin paper-digest-jsonl 0.1.0)" in check.stdout
    without = digest(tmp_path, Path(sys.executable), "check")  # not installed: an unknown kind
    assert without.returncode == 2 and "jsonl" in without.stderr


def test_a_plugin_with_a_broken_entry_point_is_one_line(tmp_path: Path, installed: Path) -> None:
    broken = tmp_path / "broken"
    dist = broken / "paper_digest_broken-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: paper-digest-broken\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text("[paper_digest.sources]\nbroken = no_such_module:Kind\n")
    (tmp_path / "digest.toml").write_text('[[subscribers]]\nemail = "ada@example.org"\n')
    done = digest(tmp_path, Path(sys.executable), "check", path=broken)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("digest: error:")]
    assert "paper-digest-broken 1.0" in line and "no_such_module:Kind" in line
