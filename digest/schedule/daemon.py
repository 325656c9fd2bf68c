"""`digest daemon`: the loop that runs `digest run` on the configured schedule until SIGTERM or
SIGINT, on an APScheduler 3.x cron trigger built from :mod:`digest.schedule.crontab`.

Missed runs: a scheduled time the daemon could not honour on time (machine asleep, previous run
still going, daemon restarted) still runs once if it is at most ``misfire_grace`` seconds late;
later than that it is skipped with a log line, because a digest mailed hours late is stale news.
Several missed times coalesce into one run.

Only the daemon's own misses are caught up. It notes that it is alive (:class:`AliveMark`, a small
file beside the store, rewritten at start, after each run and once a minute), so at start it can
tell a restart within the grace (it was alive shortly before the scheduled time: that run is
caught up) from a first start (it never was, or long ago: a time scheduled before it existed
is not run, and the first run is the next scheduled one).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_SCHEDULER_STARTED,
    JobExecutionEvent,
    JobSubmissionEvent,
    SchedulerEvent,
)
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from digest.errors import ConfigError, DigestError
from digest.schedule.crontab import parse_crontab

if TYPE_CHECKING:
    from digest.config import Config, ScheduleSection

__all__ = ["JOB_ID", "build_trigger", "last_fire_time", "parse_cron", "run_daemon"]

JOB_ID = "digest-run"
ALIVE_EVERY = 60.0  # seconds between notes that the daemon is alive


class AliveMark:
    """When a daemon of this store was last alive, kept in a file (best effort: a read-only
    place only costs the catch-up after a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, config: Config) -> AliveMark:
        """The mark beside ``config``'s SQLite store, else in the config's folder."""
        from digest.config import store_location

        location = store_location(config)
        if "://" in location:
            return cls(config.base_dir / ".digest-daemon.alive")
        store = Path(location)
        store = store if store.is_absolute() else config.base_dir / store
        return cls(store.with_name(store.name + ".daemon"))

    def last(self) -> datetime | None:
        """When a daemon last noted it was alive, if ever."""
        try:
            return datetime.fromisoformat(self.path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None

    def note(self, moment: datetime) -> None:
        """Note that the daemon is alive at ``moment``."""
        with contextlib.suppress(OSError):
            partial = self.path.with_name(self.path.name + ".tmp")
            partial.write_text(moment.isoformat(), encoding="utf-8")
            os.replace(partial, self.path)


def build_trigger(schedule: ScheduleSection, timezone: str) -> BaseTrigger:
    """The trigger for ``[schedule] cron`` in ``[digest] timezone``; ValueError if either is bad."""
    return parse_cron(schedule.cron, timezone)


def parse_cron(expr: str, timezone: str | tzinfo = "UTC") -> CronTrigger:
    """A CronTrigger firing when the crontab ``expr`` (see :mod:`digest.schedule.crontab`) says."""
    zone = _zone(timezone)
    return CronTrigger(timezone=zone, **parse_crontab(expr).as_trigger_arguments())


def _zone(timezone: str | tzinfo) -> tzinfo:
    if not isinstance(timezone, str):
        return timezone
    try:
        return zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {timezone!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from exc


def last_fire_time(trigger: BaseTrigger, now: datetime, within: timedelta) -> datetime | None:
    """The latest time ``trigger`` fired in ``[now - within, now]``, or None.

    Searches back in doubling steps, so a schedule firing every second with a day of grace costs
    a few dozen trigger evaluations, not 86,400.
    """
    earliest = now - within
    step = timedelta(seconds=1)
    while True:
        start = max(now - step, earliest)
        found: datetime | None = trigger.get_next_fire_time(None, start)
        if found is not None and found <= now:
            break
        if start <= earliest:
            return None
        step *= 2
    while True:
        later: datetime | None = trigger.get_next_fire_time(found, now)
        if later is None or later > now:
            return found
        found = later


class _Daemon:
    """The scheduled job, its event listeners and the stop protocol of one ``run_daemon`` call."""

    def __init__(
        self,
        run_once: Callable[[Callable[[], bool]], int],
        scheduler: BlockingScheduler,
        trigger: BaseTrigger,
        grace: int,
        log: logging.Logger,
        now: Callable[[], datetime],
    ) -> None:
        self.run_once = run_once
        self.scheduler = scheduler
        self.trigger = trigger
        self.grace = grace
        self.log = log
        self.now = now
        self.stop = threading.Event()
        # Set once the scheduler is running (or will never run): only then can it be shut down.
        self.stoppable = threading.Event()
        self.stopper: threading.Thread | None = None
        self.alive: AliveMark | None = None

    def job(self) -> None:
        """One scheduled run: exactly `digest run`; whatever happens, the daemon keeps going."""
        if self.stop.is_set():
            self.log.info("stopping: not starting another run")
            return
        self.log.info("run starting")
        started = time.monotonic()
        try:
            status = self.run_once(self.stop.is_set)
        except DigestError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            self.log.error("run failed: %s%s; the daemon keeps going", exc, hint)
            status = None
        except Exception as exc:
            self.log.exception(
                "run failed: unexpected %s; the daemon keeps going", type(exc).__name__
            )
            status = None
        took = time.monotonic() - started
        if status == 0:
            self.log.info("run finished in %.1fs", took)
        elif status is not None:
            self.log.warning(
                "run finished in %.1fs with exit status %d: something failed and is retried "
                "next run (see the lines above)",
                took,
                status,
            )
        if self.alive is not None:
            self.alive.note(self.now())
        if not self.stop.is_set():
            self.log.info("next run at %s", self.next_run_after(self.now()))

    def next_run_after(self, moment: datetime) -> str:
        # Not scheduler.get_job(): shutdown(wait=True) holds the job-store lock while waiting
        # for this very job to finish, so asking the scheduler from here would deadlock.
        after = moment + timedelta(microseconds=1)  # a time that is now is not "next"
        upcoming: datetime | None = self.trigger.get_next_fire_time(None, after)
        return upcoming.isoformat(sep=" ") if upcoming else "never (the schedule has ended)"

    def on_event(self, event: SchedulerEvent) -> None:
        if event.code == EVENT_SCHEDULER_STARTED:
            self.stoppable.set()
        elif event.code == EVENT_JOB_MISSED and isinstance(event, JobExecutionEvent):
            late = self.now() - event.scheduled_run_time
            self.log.warning(
                "skipped the run scheduled at %s: it is %s late, more than misfire_grace (%ds), "
                "and a late digest would be stale news; next run at %s",
                event.scheduled_run_time.isoformat(sep=" "),
                _rounded(late),
                self.grace,
                self.next_run_after(self.now()),
            )
        elif event.code == EVENT_JOB_MAX_INSTANCES and isinstance(event, JobSubmissionEvent):
            times = ", ".join(t.isoformat(sep=" ") for t in event.scheduled_run_times)
            self.log.warning(
                "the run scheduled at %s did not start: the previous run is still going", times
            )

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            self.log.info("%s: already stopping", name)
            return
        self.log.info("%s: finishing the message being sent, then stopping", name)
        self.request_stop()

    def request_stop(self) -> None:
        """Ask the run in progress to stop after its current message, then stop the scheduler."""
        self.stop.set()
        # Shutting down waits for the running job; a signal handler must not block on that.
        self.stopper = threading.Thread(target=self._shutdown, name="digest-stop", daemon=True)
        self.stopper.start()

    def _shutdown(self) -> None:
        self.stoppable.wait()
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=True)


def _rounded(delta: timedelta) -> timedelta:
    return timedelta(seconds=round(delta.total_seconds()))


def run_daemon(
    config: Config,
    run_once: Callable[[Callable[[], bool]], int],
    *,
    scheduler: BlockingScheduler | None = None,
    install_signal_handlers: bool = True,
    log: logging.Logger = logging.getLogger("digest"),  # noqa: B008 - one shared named logger
    now: Callable[[], datetime] | None = None,
) -> int:
    """Run ``run_once`` on ``config``'s schedule until SIGTERM/SIGINT (or the scheduler is shut
    down); returns 0.

    ``run_once(should_stop)`` is one `digest run`; ``should_stop()`` turns True once a stop is
    asked for, so the run finishes the message it is sending, records it and returns. A
    scheduled time found at most ``misfire_grace`` seconds in the past at start (a restart
    shortly after it) is run at once; ``now`` is the clock for that and for log lines.

    The scheduler loop runs on a thread of its own while this (main) thread waits in short
    steps, so signal handlers run promptly whichever thread the kernel delivers a signal to.
    """
    try:
        trigger = build_trigger(config.schedule, config.digest.timezone)
    except ValueError as exc:
        raise ConfigError(
            f"schedule.cron: {exc}", where=str(config.path) if config.path else None
        ) from exc
    zone = _zone(config.digest.timezone)
    clock = now or (lambda: datetime.now(zone))
    if scheduler is None:
        scheduler = BlockingScheduler(timezone=zone)
    grace = config.schedule.misfire_grace
    daemon = _Daemon(run_once, scheduler, trigger, grace, log, clock)
    # Handlers first: once "daemon starting" is logged, SIGTERM means a clean stop, never a kill.
    previous: dict[signal.Signals, Any] = {}
    if install_signal_handlers:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, daemon.on_signal)
    try:
        _serve(config, daemon, clock)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("daemon stopped")
    return 0


def _serve(config: Config, daemon: _Daemon, clock: Callable[[], datetime]) -> None:
    scheduler, trigger, grace, log = daemon.scheduler, daemon.trigger, daemon.grace, daemon.log
    started_at = clock()
    mark = AliveMark.of(config)
    alive = mark.last()
    first = last_fire_time(trigger, started_at, timedelta(seconds=grace))
    if first is not None and alive is not None and alive >= first - timedelta(seconds=grace):
        log.info(
            "catching up the run scheduled at %s: %s ago, within misfire_grace (%ds)",
            first.isoformat(sep=" "),
            _rounded(started_at - first),
            grace,
        )
    else:
        if first is not None:
            log.info(
                "not catching up the run scheduled at %s: no daemon was running then "
                "(a first start runs from the next scheduled time)",
                first.isoformat(sep=" "),
            )
        # the next time strictly after now, never one that has already passed
        first = trigger.get_next_fire_time(None, started_at + timedelta(microseconds=1))
    mark.note(started_at)
    daemon.alive = mark
    scheduler.add_listener(
        daemon.on_event, EVENT_SCHEDULER_STARTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
    )
    scheduler.add_job(
        daemon.job,
        trigger=trigger,
        id=JOB_ID,
        name="digest run",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=grace,
        next_run_time=first,
        replace_existing=True,
    )
    _log_start(config, log, grace, first)

    failure: list[BaseException] = []

    def serve() -> None:
        try:
            if not daemon.stop.is_set():
                scheduler.start()
        except BaseException as exc:
            failure.append(exc)
        finally:
            daemon.stoppable.set()

    runner = threading.Thread(target=serve, name="digest-scheduler")
    try:
        runner.start()
        # Python runs signal handlers on the main thread, but the kernel may deliver SIGTERM to
        # any thread; a main thread asleep in one long wait would not notice it until the next
        # scheduled run. Short waits bound that delay.
        noted = time.monotonic()
        while runner.is_alive():
            runner.join(timeout=0.2)
            if time.monotonic() - noted >= ALIVE_EVERY:
                mark.note(clock())
                noted = time.monotonic()
    except BaseException:
        # KeyboardInterrupt when no handlers are installed: still let the current run finish.
        daemon.request_stop()
        runner.join()
        raise
    finally:
        daemon.stoppable.set()
        if daemon.stopper is not None:
            daemon.stopper.join()
        mark.note(clock())
    if failure:
        raise failure[0]


def _log_start(config: Config, log: logging.Logger, grace: int, first: datetime | None) -> None:
    sources = ", ".join(source.label for source in config.sources) or "none"
    log.info(
        "daemon starting: config %s; %d source(s): %s; %d subscriber(s)",
        config.path or "(not from a file)",
        len(config.sources),
        sources,
        len(config.subscribers),
    )
    log.info(
        "schedule %r in %s, misfire_grace %ds; next run at %s",
        config.schedule.cron,
        config.digest.timezone,
        grace,
        first.isoformat(sep=" ") if first else "never (the schedule has ended)",
    )
