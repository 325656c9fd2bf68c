"""digest.schedule: crontab parsing, missed runs against a controlled clock, stopping, logging."""

from __future__ import annotations

import datetime as dt
import io
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

from digest.config import Config, ScheduleSection, parse_config
from digest.errors import ConfigError, DeliveryError
from digest.log import configure_logging, stderr_is_journal
from digest.schedule import JOB_ID, build_trigger, last_fire_time, parse_cron, run_daemon

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


# --- crontab -> trigger -----------------------------------------------------------------------


def test_weekdays_one_to_five_are_monday_to_friday_in_the_configured_zone() -> None:
    trigger = build_trigger(ScheduleSection.model_validate({"cron": "0 7 * * 1-5"}), PARIS)
    saturday_noon = dt.datetime(2025, 3, 8, 12, 0, tzinfo=UTC)
    times = fire_times(trigger, saturday_noon, 6)
    assert [t.strftime("%a %H:%M") for t in times] == [
        "Mon 07:00",
        "Tue 07:00",
        "Wed 07:00",
        "Thu 07:00",
        "Fri 07:00",
        "Mon 07:00",
    ]
    # 07:00 in Paris (UTC+1 in March before the switch) is 06:00 UTC.
    assert times[0].astimezone(UTC) == dt.datetime(2025, 3, 10, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("weekday", "expected"),
    [
        ("0", ["Sun"]),
        ("7", ["Sun"]),
        ("sun", ["Sun"]),
        ("MON,wed", ["Mon", "Wed"]),
        ("fri-sun", ["Sun", "Fri", "Sat"]),
        ("5-7", ["Sun", "Fri", "Sat"]),
        ("*/2", ["Sun", "Tue", "Thu", "Sat"]),
        ("1-5/2", ["Mon", "Wed", "Fri"]),
        ("2/2", ["Tue", "Thu", "Sat"]),
        ("0,6", ["Sun", "Sat"]),
    ],
)
def test_weekday_field_is_read_as_cron_reads_it(weekday: str, expected: list[str]) -> None:
    # expected: the days it fires in the week from Sunday 2 March 2025, in that order
    trigger = parse_cron(f"0 9 * * {weekday}", "UTC")
    week = fire_times(trigger, dt.datetime(2025, 3, 2, 0, 0, tzinfo=UTC), 7)  # from a Sunday
    in_first_week = [t for t in week if t < dt.datetime(2025, 3, 9, tzinfo=UTC)]
    assert [t.strftime("%a") for t in in_first_week] == expected


def test_six_fields_put_seconds_first() -> None:
    trigger = parse_cron("*/3 * * * * *", "UTC")
    start = dt.datetime(2025, 3, 10, 7, 0, 1, tzinfo=UTC)
    assert [t.second for t in fire_times(trigger, start, 4)] == [3, 6, 9, 12]


def test_five_fields_fire_on_the_minute() -> None:
    trigger = parse_cron("*/15 * * * *", "UTC")
    start = dt.datetime(2025, 3, 10, 7, 1, 30, tzinfo=UTC)
    times = fire_times(trigger, start, 3)
    assert [(t.minute, t.second) for t in times] == [(15, 0), (30, 0), (45, 0)]


def test_local_time_is_kept_across_a_daylight_saving_change() -> None:
    trigger = parse_cron("0 7 * * *", "America/New_York")
    # US clocks went forward on 2025-03-09.
    times = fire_times(trigger, dt.datetime(2025, 3, 7, 0, 0, tzinfo=UTC), 4)
    assert {t.hour for t in times} == {7}
    assert [t.astimezone(UTC).hour for t in times] == [12, 12, 11, 11]


def test_cron_shorthands() -> None:
    daily = fire_times(parse_cron("@daily", "UTC"), dt.datetime(2025, 3, 10, 5, tzinfo=UTC), 1)
    assert daily == [dt.datetime(2025, 3, 11, 0, 0, tzinfo=UTC)]
    weekly = fire_times(parse_cron("@weekly", "UTC"), dt.datetime(2025, 3, 10, tzinfo=UTC), 1)
    assert weekly[0].strftime("%a %H:%M") == "Sun 00:00"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 7 *", "expected 5 fields (minute hour day month weekday), got 3"),
        ("1 2 3 4 5 6 7", "expected 5 fields (minute hour day month weekday), got 7"),
        ("   ", "is empty"),
        ("70 7 * * *", "minute field '70'"),
        ("0 25 * * *", "hour field '25'"),
        ("0 7 32 * *", "day field '32'"),
        ("0 7 * 13 *", "month field '13'"),
        ("99 0 7 * * *", "second field '99'"),
        ("0 7 * * 8", "weekday field '8'"),
        ("0 7 * * 5-1", "runs backwards"),
        ("0 7 * * */0", "step '0'"),
        ("0 7 * * funday", "'funday' is not a weekday"),
        ("x 7 * * *", "minute field 'x'"),
        ("0 7 1 * 1", "both day (1) and weekday (1) are restricted"),
        ("@reboot", "unknown shorthand '@reboot'"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expr: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cron(expr, "UTC")
    assert message in str(caught.value)


def test_unknown_time_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        build_trigger(ScheduleSection.model_validate({}), "Mars/Olympus")


def test_bad_cron_is_a_config_error_with_file_and_line(tmp_path: Path) -> None:
    text = '[digest]\ntitle = "x"\n\n[schedule]\nmisfire_grace = 60\ncron = "0 7 *"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "digest.toml")
    assert str(caught.value) == (
        f"{tmp_path / 'digest.toml'}:6: schedule.cron: expected 5 fields "
        "(minute hour day month weekday), got 3; six fields are read as seconds first, "
        "e.g. '*/3 * * * * *' for every 3 seconds"
    )


def test_good_cron_passes_config_validation(tmp_path: Path) -> None:
    config = parse_config('[schedule]\ncron = "*/2 * * * * *"\n', tmp_path / "d.toml")
    assert config.schedule.cron == "*/2 * * * * *"


# --- last_fire_time -------------------------------------------------------------------------


def test_last_fire_time_finds_the_latest_time_within_the_window() -> None:
    daily = parse_cron("0 7 * * *", "UTC")
    at = dt.datetime(2025, 3, 10, 7, 0, 30, tzinfo=UTC)
    assert last_fire_time(daily, at, dt.timedelta(seconds=60)) == at.replace(second=0)
    assert last_fire_time(daily, at, dt.timedelta(seconds=29)) is None
    exactly = dt.datetime(2025, 3, 10, 7, 0, 0, tzinfo=UTC)
    assert last_fire_time(daily, exactly, dt.timedelta(seconds=1)) == exactly
    # Two days of grace: the latest one (today's), not the first one in the window.
    two_days = last_fire_time(daily, at, dt.timedelta(days=2))
    assert two_days == dt.datetime(2025, 3, 10, 7, 0, tzinfo=UTC)


class CountingTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler has no type hints
    def __init__(self, inner: BaseTrigger) -> None:
        self.inner = inner
        self.calls = 0

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        self.calls += 1
        value: dt.datetime | None = self.inner.get_next_fire_time(previous_fire_time, now)
        return value


def test_last_fire_time_is_cheap_for_frequent_schedules() -> None:
    every_second = CountingTrigger(parse_cron("* * * * * *", "UTC"))
    at = dt.datetime(2025, 3, 10, 7, 0, 30, 500_000, tzinfo=UTC)
    assert last_fire_time(every_second, at, dt.timedelta(days=1)) == at.replace(microsecond=0)
    assert every_second.calls < 40


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
    daemon = Daemon(daily_config(tmp_path, grace=600), clock, records)

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
    assert time.monotonic() - started < 3
    assert daemon.runs == []
    assert "SIGINT: finishing the message being sent, then stopping" in records.text()


# --- logging ----------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in ("digest", "apscheduler")}
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_terminal_logging_has_timestamp_level_and_logger() -> None:
    out = io.StringIO()
    configure_logging(0, env={}, stream=out)
    logging.getLogger("digest").info("daemon starting")
    logging.getLogger("digest").debug("not at verbosity 0")
    logging.getLogger("apscheduler.scheduler").warning("APScheduler's own copy")
    line = out.getvalue().strip()
    assert "\n" not in line
    stamp, level_and_rest = line[:23], line[24:]
    dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
    assert level_and_rest == "INFO digest: daemon starting"


@pytest.mark.usefixtures("restore_logging")
def test_verbosity_levels() -> None:
    out = io.StringIO()
    configure_logging(-1, env={}, stream=out)
    logging.getLogger("digest").info("hidden")
    logging.getLogger("digest").warning("shown")
    configure_logging(1, env={}, stream=out)  # replaces the handler: no line twice
    logging.getLogger("digest.pipeline").debug("debug shown")
    logging.getLogger("apscheduler.scheduler").info("scheduler info shown")
    text = out.getvalue()
    assert "hidden" not in text
    assert text.count("shown") == 3
    assert text.count("WARNING digest: shown") == 1


@pytest.mark.usefixtures("restore_logging")
def test_journald_gets_syslog_priorities_and_no_timestamp(tmp_path: Path) -> None:
    with open(tmp_path / "journal", "w+", encoding="utf-8") as stream:
        stat = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert stderr_is_journal(env, stream)
        configure_logging(0, env=env, stream=stream)
        logger = logging.getLogger("digest")
        logger.warning("run finished with exit status 1")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("run failed")
        stream.flush()
        lines = (tmp_path / "journal").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "<4>WARNING digest: run finished with exit status 1"
    assert lines[1] == "<3>ERROR digest: run failed"
    assert all(line.startswith("<3>") for line in lines[2:])
    assert lines[-1] == "<3>RuntimeError: boom"


def test_journal_stream_of_another_file_is_not_the_journal(tmp_path: Path) -> None:
    with open(tmp_path / "a", "w") as first, open(tmp_path / "b", "w") as second:
        stat = os.fstat(first.fileno())
        env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        assert stderr_is_journal(env, first)
        assert not stderr_is_journal(env, second)  # inherited, but stderr was redirected
    assert not stderr_is_journal({"JOURNAL_STREAM": "garbage"}, io.StringIO())
    assert not stderr_is_journal({}, io.StringIO())
