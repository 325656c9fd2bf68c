"""The daemon loop against a controlled clock: misfires, catch-up, failures, signals."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import apscheduler.executors.base
import apscheduler.schedulers.base
import pytest
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger

from digest.config import Config, parse_config
from digest.errors import DeliveryError
from digest.schedule.daemon import JOB_ID, AliveMark, run_daemon

UTC = dt.UTC
PARIS = "Europe/Paris"


def fire_times(trigger: BaseTrigger, after: dt.datetime, count: int) -> list[dt.datetime]:
    times: list[dt.datetime] = []
    previous = None
    moment = after
    for _ in range(count):
        upcoming = trigger.get_next_fire_time(previous, moment)
        assert upcoming is not None
        times.append(upcoming)
        previous = moment = upcoming
    return times


# --- the daemon against a controlled clock ----------------------------------------------------


class Clock:
    """The one time source for both the daemon and APScheduler in these tests."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def set(self, moment: dt.datetime) -> None:
        with self._lock:
            self._now = moment


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """APScheduler 3.x decides what is due (schedulers.base) and what is missed (executors.base)
    with ``datetime.now``; both modules' ``datetime`` now reads this clock."""
    state = Clock(dt.datetime(2025, 3, 10, 6, 0, tzinfo=UTC))  # a Monday, an hour before 07:00

    class FrozenDatetime(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> FrozenDatetime:
            moment = state.now()
            value = moment.astimezone(tz) if tz else moment.replace(tzinfo=None)
            return cls.fromtimestamp(value.timestamp(), value.tzinfo)

    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", FrozenDatetime)
    monkeypatch.setattr(apscheduler.executors.base, "datetime", FrozenDatetime)
    return state


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock2:
            self.lines.append(f"{record.levelname} {record.getMessage()}")

    def text(self) -> str:
        with self._lock2:
            return "\n".join(self.lines)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("test.digest.daemon")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def daily_config(tmp_path: Path, grace: int = 600, cron: str = "0 7 * * *") -> Config:
    text = (
        f'[schedule]\ncron = "{cron}"\nmisfire_grace = {grace}\n'
        '[[sources]]\nkind = "page"\npath = "pages/*.txt"\n'
        '[[subscribers]]\nemail = "ada@example.org"\n'
        '[[subscribers]]\nemail = "grace@example.org"\n'
    )
    return parse_config(text, tmp_path / "digest.toml")


class Daemon:
    """``run_daemon`` on the test's main thread, steered by a driver thread."""

    def __init__(self, config: Config, clock: Clock, records: Records) -> None:
        self.config = config
        self.clock = clock
        self.records = records
        self.scheduler = BlockingScheduler(timezone=UTC)
        self.runs: list[dt.datetime] = []
        self.behaviour: list[Callable[[Callable[[], bool]], int]] = []

    def run_once(self, should_stop: Callable[[], bool]) -> int:
        self.runs.append(self.clock.now())
        if self.behaviour:
            return self.behaviour.pop(0)(should_stop)
        return 0

    def run(self, drive: Callable[[], None], *, signals: bool = False) -> int:
        failure: list[BaseException] = []

        def driver() -> None:
            try:
                wait_for(lambda: self.scheduler.running, "the scheduler to start")
                drive()
            except BaseException as exc:
                failure.append(exc)
            finally:
                if self.scheduler.running:
                    self.scheduler.shutdown(wait=True)

        thread = threading.Thread(target=driver)
        thread.start()
        status = run_daemon(
            self.config,
            self.run_once,
            scheduler=self.scheduler,
            install_signal_handlers=signals,
            log=logging.getLogger("test.digest.daemon"),
            now=self.clock.now,
        )
        thread.join(timeout=10)
        if failure:
            raise failure[0]
        return status

    def advance(self, moment: dt.datetime) -> None:
        self.clock.set(moment)
        self.scheduler.wakeup()

    def next_run_time(self) -> dt.datetime:
        job = self.scheduler.get_job(JOB_ID)
        assert job is not None
        value: dt.datetime = job.next_run_time
        return value


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, minute, second, tzinfo=UTC)


def test_a_run_late_within_the_grace_still_happens_once(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    daemon = Daemon(daily_config(tmp_path, grace=600), clock, records)

    def drive() -> None:
        assert daemon.next_run_time() == at(10, 7)
        daemon.advance(at(10, 7, 5))  # asleep through 07:00, awake 5 minutes late
        wait_for(lambda: "run finished" in records.text(), "the late run")
        wait_for(lambda: daemon.next_run_time() == at(11, 7), "the next run to be planned")

    assert daemon.run(drive) == 0
    assert daemon.runs == [at(10, 7, 5)]
    assert "skipped" not in records.text()
    assert "next run at 2025-03-11 07:00:00+00:00" in records.text()


def test_a_run_late_beyond_the_grace_is_skipped_and_logged(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    daemon = Daemon(daily_config(tmp_path, grace=600), clock, records)

    def drive() -> None:
        daemon.advance(at(10, 7, 30))  # 30 minutes late, the grace is 10
        wait_for(lambda: "skipped" in records.text(), "the skip to be logged")
        assert daemon.runs == []
        # The daemon keeps its schedule: the next day's run happens on time.
        daemon.advance(at(11, 7, 0, 1))
        wait_for(lambda: "run finished" in records.text(), "the next day's run")

    assert daemon.run(drive) == 0
    assert daemon.runs == [at(11, 7, 0, 1)]
    assert (
        "WARNING skipped the run scheduled at 2025-03-10 07:00:00+00:00: it is 0:30:00 late, "
        "more than misfire_grace (600s), and a late digest would be stale news; "
        "next run at 2025-03-11 07:00:00+00:00"
    ) in records.text()


def test_several_missed_times_coalesce_into_one_run(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    daemon = Daemon(daily_config(tmp_path, grace=600), clock, records)

    def drive() -> None:
        daemon.advance(at(12, 7, 3))  # suspended from Monday 06:00 to Wednesday 07:03
        wait_for(lambda: "run finished" in records.text(), "the coalesced run")
        wait_for(lambda: daemon.next_run_time() == at(13, 7), "the next run to be planned")

    assert daemon.run(drive) == 0
    assert daemon.runs == [at(12, 7, 3)]
    assert "skipped" not in records.text()


def test_a_restart_within_the_grace_catches_up_at_once(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    clock.set(at(10, 7, 4))
    config = daily_config(tmp_path, grace=600)
    AliveMark.of(config).note(at(10, 6, 58))  # the daemon ran until just before 07:00
    daemon = Daemon(config, clock, records)

    def drive() -> None:
        wait_for(lambda: "run finished" in records.text(), "the catch-up run")

    assert daemon.run(drive) == 0
    assert daemon.runs == [at(10, 7, 4)]
    assert (
        "catching up the run scheduled at 2025-03-10 07:00:00+00:00: 0:04:00 ago, "
        "within misfire_grace (600s)"
    ) in records.text()


def test_a_restart_beyond_the_grace_waits_for_the_next_time(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    clock.set(at(10, 7, 11))
    daemon = Daemon(daily_config(tmp_path, grace=600), clock, records)

    def drive() -> None:
        # Jobs run only once their next run time has come, and it is tomorrow.
        assert daemon.next_run_time() == at(11, 7)

    assert daemon.run(drive) == 0
    assert daemon.runs == []
    assert "catching up" not in records.text()


def test_start_logs_config_sources_subscribers_and_next_run(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    daemon = Daemon(daily_config(tmp_path), clock, records)
    assert daemon.run(lambda: None) == 0
    text = records.text()
    assert f"config {tmp_path / 'digest.toml'}; 1 source(s): pages/*.txt; 2 subscriber(s)" in text
    assert "schedule '0 7 * * *' in UTC, misfire_grace 600s; next run at 2025-03-10 07:00" in text
    assert text.rstrip().endswith("INFO daemon stopped")


def test_failing_runs_are_logged_and_the_daemon_keeps_going(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    daemon = Daemon(daily_config(tmp_path), clock, records)

    def refuse(_: Callable[[], bool]) -> int:
        raise DeliveryError("connection refused", where="smtp.example.org:587", hint="is it up?")

    def crash(_: Callable[[], bool]) -> int:
        raise RuntimeError("disk on fire")

    daemon.behaviour = [refuse, crash, lambda _: 1, lambda _: 0]

    def drive() -> None:
        for day in (10, 11, 12, 13):
            daemon.advance(at(day, 7, 0, 1))
            planned = f"next run at 2025-03-{day + 1} 07:00:00+00:00"
            wait_for(lambda: planned in records.text(), f"the run of March {day}")  # noqa: B023

    assert daemon.run(drive) == 0
    assert len(daemon.runs) == 4
    text = records.text()
    assert (
        "ERROR run failed: smtp.example.org:587: connection refused (is it up?); "
        "the daemon keeps going"
    ) in text
    assert "ERROR run failed: unexpected RuntimeError; the daemon keeps going" in text
    assert "WARNING run finished in" in text and "with exit status 1" in text
    assert text.count("INFO run finished in") == 1


def test_sigterm_lets_the_current_run_finish_then_exits_zero(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    daemon = Daemon(daily_config(tmp_path), clock, records)
    saw_stop: list[bool] = []
    started = threading.Event()

    def long_run(should_stop: Callable[[], bool]) -> int:
        started.set()
        # The pipeline checks should_stop() between messages; here: until told, at most 5 s.
        deadline = time.monotonic() + 5
        while not should_stop() and time.monotonic() < deadline:
            time.sleep(0.01)
        saw_stop.append(should_stop())
        return 0

    daemon.behaviour = [long_run]
    before = signal.getsignal(signal.SIGTERM)

    def drive() -> None:
        daemon.advance(at(10, 7, 0, 1))
        assert started.wait(5)
        os.kill(os.getpid(), signal.SIGTERM)
        wait_for(lambda: not daemon.scheduler.running, "the scheduler to stop")

    assert daemon.run(drive, signals=True) == 0
    assert saw_stop == [True]
    assert signal.getsignal(signal.SIGTERM) is before
    lines = records.lines
    stop_line = next(i for i, line in enumerate(lines) if "SIGTERM" in line)
    finished = next(i for i, line in enumerate(lines) if "run finished" in line)
    assert stop_line < finished < len(lines) - 1
    assert lines[-1] == "INFO daemon stopped"
    assert not any("next run at" in line for line in lines[finished:])


def test_sigint_before_any_run_stops_promptly(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    daemon = Daemon(daily_config(tmp_path), clock, records)

    def drive() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        wait_for(lambda: not daemon.scheduler.running, "the scheduler to stop")

    started = time.monotonic()
    assert daemon.run(drive, signals=True) == 0
    # The next run is an hour away on the test's clock: returning at all means it did not wait.
    assert time.monotonic() - started < 60
    assert daemon.runs == []
    assert "SIGINT: finishing the message being sent, then stopping" in records.text()


def test_a_first_start_never_runs_a_time_scheduled_before_it_existed(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    clock.set(at(10, 7, 59))  # started at 07:59 with the default grace of an hour
    config = daily_config(tmp_path, grace=3600)
    daemon = Daemon(config, clock, records)

    def drive() -> None:
        assert daemon.next_run_time() == at(11, 7)

    assert daemon.run(drive) == 0
    assert daemon.runs == []
    text = records.text()
    assert "not catching up the run scheduled at 2025-03-10 07:00:00+00:00" in text
    assert "next run at 2025-03-11 07:00:00+00:00" in text
    assert AliveMark.of(config).last() is not None  # the next start is a restart


def test_a_daemon_down_since_yesterday_does_not_catch_up_this_morning(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    clock.set(at(10, 7, 30))
    config = daily_config(tmp_path, grace=3600)
    AliveMark.of(config).note(at(9, 18))
    daemon = Daemon(config, clock, records)
    assert daemon.run(lambda: None) == 0
    assert daemon.runs == [] and "not catching up" in records.text()


def test_the_next_run_it_logs_is_in_the_future(
    tmp_path: Path, clock: Clock, records: Records
) -> None:
    clock.set(at(10, 7))  # started exactly at a scheduled time, no daemon before
    daemon = Daemon(daily_config(tmp_path, grace=600), clock, records)
    assert daemon.run(lambda: None) == 0
    assert "next run at 2025-03-11 07:00:00+00:00" in records.text()
