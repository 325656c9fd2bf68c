"""`digest daemon` end to end in a subprocess, and the systemd unit and crontab line as written."""

from __future__ import annotations

import configparser
import contextlib
import datetime as dt
import email
import email.policy
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from digest.schedule.daemon import parse_cron
from tests.conftest import LocalServer, Reply

ROOT = Path(__file__).resolve().parent.parent.parent
PAGES = Path(__file__).resolve().parent.parent / "fixtures" / "samples" / "text-pages"
UNIT = ROOT / "docs" / "paper-digest.service"
CRONTAB = ROOT / "docs" / "crontab"
CONSOLE_SCRIPT = Path(sys.executable).parent / "digest"


def write_config(folder: Path, cron: str = "*/2 * * * * *", *, name: str = "digest.toml") -> Path:
    shutil.copytree(PAGES, folder / "pages")
    path = folder / name
    path.write_text(
        f'[digest]\nstore = "digest.db"\ntimezone = "Europe/Paris"\n'
        f'[schedule]\ncron = "{cron}"\nmisfire_grace = 60\n'
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n'
        # max_papers above the number of matches: one run delivers everything there is.
        '[[subscribers]]\nemail = "ada@example.org"\nname = "Ada"\n'
        'keywords = ["attention head", "mixture of experts"]\nmax_papers = 500\n'
        '[[subscribers]]\nemail = "grace@example.org"\nname = "Grace"\n'
        'keywords = ["agent", "retrieval"]\nmax_papers = 500\n',
        encoding="utf-8",
    )
    return path


class Daemon:
    """A `digest daemon` subprocess whose stderr lines are collected as they come."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._new.put(line.rstrip("\n"))

    def wait_for(self, text: str, count: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while sum(text in line for line in self.lines) < count:
            left = deadline - time.monotonic()
            if left <= 0 or (self.process.poll() is not None and self._new.empty()):
                log = "\n".join(self.lines)
                raise AssertionError(f"no {count} x {text!r} in the daemon's log:\n{log}")
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._new.get(timeout=min(left, 0.2)))

    def stop(self, timeout: float) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=timeout)
        took = time.monotonic() - started
        self._reader.join(timeout=2)
        while not self._new.empty():
            self.lines.append(self._new.get())
        return status, took

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "JOURNAL_"))}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


def outbox_messages(folder: Path) -> dict[str, list[Path]]:
    by_recipient: dict[str, list[Path]] = {}
    for path in sorted((folder / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        by_recipient.setdefault(str(message["To"]), []).append(path)
    return by_recipient


def test_daemon_runs_on_schedule_without_duplicates_and_stops_on_sigterm(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    config = write_config(tmp_path)
    argv = [sys.executable, "-m", "digest", "--config", str(config), "daemon"]
    daemon = Daemon(argv, tmp_path, child_env())
    daemons.append(daemon)

    daemon.wait_for("daemon starting")
    daemon.wait_for("run finished", count=2, timeout=12)
    status, took = daemon.stop(timeout=10)

    log = "\n".join(daemon.lines)
    assert status == 0, log  # stop(timeout=10) fails the test if SIGTERM is not honoured
    assert took < 10, log
    assert "SIGTERM: finishing the message being sent, then stopping" in log
    assert log.rstrip().endswith("INFO digest: daemon stopped")
    assert f"config {config}; 1 source(s): pages/*.txt; 2 subscriber(s)" in log
    assert "schedule '*/2 * * * * *' in Europe/Paris, misfire_grace 60s; next run at" in log
    # The first run delivers; the second finds every paper already seen and sends nothing.
    summaries = [line for line in daemon.lines if "distinct papers" in line]
    assert "178 distinct papers, 178 new" in summaries[0]
    assert "178 distinct papers, 0 new" in summaries[1]
    assert "Traceback" not in log
    messages = outbox_messages(tmp_path)
    assert sorted(messages) == ["Ada <ada@example.org>", "Grace <grace@example.org>"]
    assert [len(paths) for paths in messages.values()] == [1, 1], messages


# --- the systemd unit -------------------------------------------------------------------------


def read_unit() -> configparser.ConfigParser:
    # systemd allows a key more than once (SystemCallFilter=); only the keys checked here matter.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_unit_runs_the_daemon_as_a_dedicated_user_with_writable_state_only() -> None:
    service = read_unit()["Service"]
    assert service["Type"] == "simple"
    assert service["ExecStart"] == (
        "/opt/paper-digest/.venv/bin/digest --config /etc/paper-digest/digest.toml daemon"
    )
    assert service["Restart"] == "on-failure"
    assert service["User"] not in ("", "root")
    assert service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "paper-digest"
    assert service["WorkingDirectory"] == "/var/lib/paper-digest"
    # The daemon needs TimeoutStopSec to finish the message it is sending after SIGTERM.
    assert service.get("KillSignal", "SIGTERM") == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 30
    # Under ProtectSystem=strict only the state directory is writable: the unit's own
    # instructions must say so for the store and the outbox.
    text = UNIT.read_text(encoding="utf-8")
    assert 'store  = "/var/lib/paper-digest/digest.db"' in text
    assert 'outbox = "/var/lib/paper-digest/outbox"' in text


def installed_unit(folder: Path) -> Path:
    """The unit as written, with its program path pointing at this checkout's `digest`."""
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"no console script at {CONSOLE_SCRIPT} (project not installed)")
    text = UNIT.read_text(encoding="utf-8")
    path = folder / "paper-digest.service"
    path.write_text(
        text.replace("/opt/paper-digest/.venv/bin/digest", str(CONSOLE_SCRIPT)), encoding="utf-8"
    )
    return path


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = installed_unit(tmp_path)
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if unit.name in line
    ]
    assert result.returncode == 0, result.stderr
    assert complaints == []  # unknown keys and bad values are only warnings, rc stays 0


def test_unit_exec_start_runs_and_stops_cleanly(tmp_path: Path, daemons: list[Daemon]) -> None:
    """ExecStart as written (program and config swapped for local ones), in the unit's
    environment and working directory, stopped with its KillSignal within TimeoutStopSec."""
    service = read_unit()["Service"]
    unit_argv = shlex.split(service["ExecStart"])
    assert unit_argv[0] == "/opt/paper-digest/.venv/bin/digest"
    config = write_config(tmp_path, cron="0 7 * * 1-5")
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"no console script at {CONSOLE_SCRIPT} (project not installed)")
    argv = [
        str(CONSOLE_SCRIPT),
        *[str(config) if arg == "/etc/paper-digest/digest.toml" else arg for arg in unit_argv[1:]],
    ]
    environment = dict(pair.split("=", 1) for pair in shlex.split(service["Environment"]))
    daemon = Daemon(argv, tmp_path, child_env(**environment))
    daemons.append(daemon)

    daemon.wait_for("next run at")
    status, took = daemon.stop(timeout=float(service["TimeoutStopSec"]))
    log = "\n".join(daemon.lines)
    assert status == 0, log
    # What matters is stopping before systemd gives up (TimeoutStopSec) and SIGKILLs.
    assert took < float(service["TimeoutStopSec"]), log
    assert "schedule '0 7 * * 1-5' in Europe/Paris" in log


# --- the crontab line -------------------------------------------------------------------------


def crontab_entry() -> tuple[str, str]:
    lines = [
        line
        for line in CRONTAB.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(lines) == 1, lines
    fields = lines[0].split(None, 5)
    return " ".join(fields[:5]), fields[5]


def test_crontab_schedule_is_weekday_mornings() -> None:
    schedule, command = crontab_entry()
    trigger = parse_cron(schedule, "UTC")
    moment = dt.datetime(2025, 3, 8, 12, 0, tzinfo=dt.UTC)  # a Saturday
    previous = None
    days = []
    for _ in range(6):
        moment = previous = trigger.get_next_fire_time(previous, moment)
        days.append(moment.strftime("%a %H:%M"))
    assert days == ["Mon 07:00", "Tue 07:00", "Wed 07:00", "Thu 07:00", "Fri 07:00", "Mon 07:00"]
    # cron turns an unescaped % in the command into a newline.
    assert "%" not in command


def test_crontab_command_runs_as_cron_would(tmp_path: Path) -> None:
    """The command part verbatim under /bin/sh with cron's bare environment, its folder swapped for
    a temporary one holding a digest.toml and a .venv/bin/digest (this checkout's)."""
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"no console script at {CONSOLE_SCRIPT} (project not installed)")
    _, command = crontab_entry()
    assert "/srv/paper-digest" in command
    home = tmp_path / "srv-digest"
    home.mkdir()
    write_config(home)
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin" / "digest").symlink_to(CONSOLE_SCRIPT)
    cron_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh"}
    runnable = command.replace("/srv/paper-digest", shlex.quote(str(home)))

    for _ in range(2):
        result = subprocess.run(
            ["/bin/sh", "-c", runnable], env=cron_env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (home / "digest.log").read_text(encoding="utf-8")
        assert result.stdout == result.stderr == ""  # all of it went to digest.log

    log = (home / "digest.log").read_text(encoding="utf-8")
    assert "178 distinct papers, 178 new" in log
    assert "178 distinct papers, 0 new" in log  # the second run appended, it did not overwrite
    assert [len(paths) for paths in outbox_messages(home).values()] == [1, 1]


README = ROOT / "README.md"


def readme_recipe() -> list[str]:
    """The command lines of the README's systemd recipe."""
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- systemd-recipe -->", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_systemd_recipe_runs_as_written_in_a_throwaway_root(tmp_path: Path) -> None:
    """Each step of the README recipe that can run here, run as written with its absolute
    paths moved under a throwaway root: the user is created there (``useradd --prefix``, as
    root), the program is this checkout's (installing it again would need the network), the
    group of ``install -g`` is the current one (the new user exists only in the throwaway root),
    and systemd itself is checked with ``systemd-analyze verify`` (above) instead of started."""
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"no console script at {CONSOLE_SCRIPT} (project not installed)")
    root = tmp_path / "root"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        if Path("/etc", name).exists():
            shutil.copy(Path("/etc", name), root / "etc" / name)
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()
    ran: list[str] = []
    for line in readme_recipe():
        argv = shlex.split(line)
        assert argv[0] in ("sudo", "journalctl"), line
        command = argv[1:] if argv[0] == "sudo" else argv
        program = command[0]
        if program in ("systemctl", "journalctl") or "venv" in command or "pip" in program:
            continue
        if program == "useradd":
            if os.geteuid() != 0 or shutil.which("useradd") is None:
                continue
            command = [*command, "--prefix", str(root)]  # its paths are inside the root
        moved = (
            command
            if program == "useradd"
            else [
                word.replace("/etc/", f"{root}/etc/")
                .replace("/var/lib/", f"{root}/var/lib/")
                .replace("/opt/paper-digest/.venv/bin/digest", str(CONSOLE_SCRIPT))
                for word in command
            ]
        )
        if program == "install" and "-g" in moved:
            moved[moved.index("-g") + 1] = group
        done = subprocess.run(moved, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (line, done.stderr)
        ran.append(program)
    assert {"install", "sed", "cp"} <= set(ran) and any("digest" in p for p in ran), ran
    if "useradd" in ran:
        users = (root / "etc" / "passwd").read_text().splitlines()
        entry = next(u for u in users if u.startswith("paper-digest:"))
        assert entry.endswith(":/var/lib/paper-digest:/usr/sbin/nologin")
        assert int(entry.split(":")[2]) < 1000  # a system account
    config = root / "etc" / "paper-digest" / "digest.toml"
    text = config.read_text(encoding="utf-8")
    assert f'store = "{root}/var/lib/paper-digest/digest.db"' in text  # the sed line matched
    assert f'outbox = "{root}/var/lib/paper-digest/outbox"' in text
    assert (root / "etc" / "paper-digest" / "env").stat().st_mode & 0o777 == 0o640
    assert (root / "etc" / "systemd" / "system" / "paper-digest.service").read_bytes() == (
        UNIT.read_bytes()
    )
    state = root / "var" / "lib" / "paper-digest"
    state.mkdir(parents=True)  # StateDirectory=: systemd creates it at start
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_CONFIG"}
    for verb in ("check", "run"):
        done = subprocess.run(
            [str(CONSOLE_SCRIPT), "--config", str(config), verb],
            cwd=state, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, (verb, done.stderr)
    assert (state / "digest.db").exists() and list((state / "outbox").glob("*.eml"))


def test_sigterm_during_a_fetch_that_never_answers_stops_the_daemon_at_once(
    tmp_path: Path, daemons: list[Daemon], server: LocalServer
) -> None:
    server.script.replies["*"] = [Reply(hang=True)]
    config = tmp_path / "digest.toml"
    config.write_text(
        '[digest]\ntimezone = "Europe/Paris"\n[schedule]\ncron = "*/2 * * * * *"\n'
        f'[[sources]]\nkind = "hf-api"\nurl = "{server.url}/api"\ndays = 1\n'
        '[delivery]\nmethod = "file"\noutbox = "outbox"\nfrom = "Digest <digest@example.org>"\n'
        '[[subscribers]]\nemail = "ada@example.org"\n',
        encoding="utf-8",
    )
    argv = [sys.executable, "-m", "digest", "--config", str(config), "daemon"]
    daemon = Daemon(argv, tmp_path, child_env())
    daemons.append(daemon)
    daemon.wait_for("run starting", timeout=15)
    deadline = time.monotonic() + 10
    while not server.script.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.script.in_flight  # the run waits on the request that never answers
    status, took = daemon.stop(timeout=20)
    log = "\n".join(daemon.lines)
    assert status == 0, log
    # it did not wait out the request's 30 s deadline (a guard against hanging, not a timing)
    assert took < 15, log
    assert log.rstrip().endswith("INFO digest: daemon stopped") and "Traceback" not in log
    assert not list((tmp_path / "outbox").glob("*.eml"))
