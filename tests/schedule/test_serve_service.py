"""The systemd unit of `digest serve` (docs/paper-digest-serve.service): as systemd reads it, and
its ExecStart run as written, answering its health check and stopping on its KillSignal."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.schedule.test_service import CONSOLE_SCRIPT, ROOT
from tests.server.conftest import SECRET, make_site, wait_until_serving

UNIT = ROOT / "docs" / "paper-digest-serve.service"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser["Service"]


def test_the_unit_serves_as_the_daemons_user_with_its_state() -> None:
    unit = service()
    assert unit["ExecStart"].endswith("--config /etc/paper-digest/digest.toml serve")
    assert unit["User"] == "paper-digest" and unit["StateDirectory"] == "paper-digest"
    assert unit["ProtectSystem"] == "strict" and unit["EnvironmentFile"].endswith("/env")
    assert "docs/paper-digest-serve.service" in (ROOT / "README.md").read_text()


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None or not CONSOLE_SCRIPT.exists():
        pytest.skip("systemd-analyze or the console script is not installed")
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text().replace("/opt/paper-digest/.venv/bin/digest", str(CONSOLE_SCRIPT))
    )
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert [
        line for line in (result.stdout + result.stderr).splitlines() if unit.name in line
    ] == []


def test_exec_start_serves_and_stops_on_its_kill_signal(tmp_path: Path) -> None:
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"no console script at {CONSOLE_SCRIPT}")
    unit = service()
    site = make_site(tmp_path)
    argv = [
        str(CONSOLE_SCRIPT),
        *[str(site.config) if a == "/etc/paper-digest/digest.toml" else a
          for a in shlex.split(unit["ExecStart"])[1:]],
    ]  # fmt: skip
    environment = dict(pair.split("=", 1) for pair in shlex.split(unit["Environment"]))
    env = {**os.environ, **environment, "DIGEST_SERVER_SECRET": SECRET}
    env.pop("DIGEST_CONFIG", None)
    process = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(process, site.port)
    finally:
        started = time.monotonic()
        process.send_signal(getattr(signal, unit["KillSignal"]))
        process.wait(timeout=float(unit["TimeoutStopSec"]))
    assert time.monotonic() - started < float(unit["TimeoutStopSec"])
