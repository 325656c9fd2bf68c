"""The crontab dialect: fields read as cron reads them, errors that name the field, and the
APScheduler trigger built from them (fire times checked against the calendar)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from apscheduler.triggers.base import BaseTrigger

from digest.config import ScheduleSection, parse_config
from digest.errors import ConfigError
from digest.schedule.daemon import build_trigger, last_fire_time, parse_cron

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
