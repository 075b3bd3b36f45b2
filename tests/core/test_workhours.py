"""Working-hours deadlines: pure arithmetic on the centre's wall clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.config import CoreConfig
from bot.core.workhours import WorkSchedule, parse_days, parse_hours

MSK = ZoneInfo("Europe/Moscow")
SCHEDULE = WorkSchedule(tz=MSK, holidays=frozenset({date(2026, 12, 31)}))


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)


def test_within_one_working_day() -> None:
    assert SCHEDULE.add(msk(2026, 11, 23, 10, 0), timedelta(hours=3)) == msk(2026, 11, 23, 13, 0)


def test_friday_evening_rolls_over_the_weekend() -> None:
    # Friday 17:00 + 8 working hours: 1 h on Friday, 7 h from Monday 09:00.
    due = SCHEDULE.add(msk(2026, 11, 27, 17, 0), timedelta(hours=8))
    assert due == msk(2026, 11, 30, 16, 0)
    assert due.tzinfo == UTC  # stored as UTC like every other moment


def test_night_filing_starts_at_opening_and_holidays_are_skipped() -> None:
    assert SCHEDULE.add(msk(2026, 11, 24, 3, 0), timedelta(hours=1)) == msk(2026, 11, 24, 10, 0)
    # 30 Dec 17:30 + 1 h: half an hour that day, 31 Dec is a holiday, then 1 Jan (Friday).
    assert SCHEDULE.add(msk(2026, 12, 30, 17, 30), timedelta(hours=1)) == msk(2027, 1, 1, 9, 30)


def test_exactly_at_closing_and_config_uses_the_schedule() -> None:
    assert SCHEDULE.add(msk(2026, 11, 23, 9, 0), timedelta(hours=9)) == msk(2026, 11, 23, 18, 0)
    calendar = CoreConfig(tz=MSK)
    working = CoreConfig(tz=MSK, schedule=SCHEDULE)
    start = msk(2026, 11, 28, 12, 0)  # a Saturday
    assert calendar.due(start, timedelta(hours=2)) == msk(2026, 11, 28, 14, 0)
    assert working.due(start, timedelta(hours=2)) == msk(2026, 11, 30, 11, 0)


def test_parsing_and_bad_values() -> None:
    assert parse_hours("08:30-17:15") == (time(8, 30), time(17, 15))
    assert parse_days("1-5") == frozenset(range(5))
    assert parse_days("1,3,6-7") == frozenset({0, 2, 5, 6})
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hours("nine to five")
    with pytest.raises(ValueError, match="Monday"):
        parse_days("0-8")
    with pytest.raises(ValueError, match="open before"):
        WorkSchedule(tz=MSK, opens=time(18), closes=time(9))


def test_whole_days_are_working_days() -> None:
    # Monday 10:00 + P3D: Thursday 10:00 (not 72 working hours, which would be 8 days).
    assert SCHEDULE.add(msk(2026, 11, 23, 10, 0), timedelta(days=3)) == msk(2026, 11, 26, 10, 0)
    # Friday 17:00 + P1D: Monday 17:00.
    assert SCHEDULE.add(msk(2026, 11, 27, 17, 0), timedelta(days=1)) == msk(2026, 11, 30, 17, 0)
    # Saturday noon: the clock starts Monday 09:00; one working day on is Tuesday 09:00.
    assert SCHEDULE.add(msk(2026, 11, 28, 12, 0), timedelta(days=1)) == msk(2026, 12, 1, 9, 0)
    # Over the New Year holiday (31 Dec) and the weekend: 30 Dec 11:00 + P2D = 4 Jan 11:00.
    assert SCHEDULE.add(msk(2026, 12, 30, 11, 0), timedelta(days=2)) == msk(2027, 1, 4, 11, 0)
    # Hours still count working hours: 12 h from Monday 10:00 is Tuesday 13:00.
    assert SCHEDULE.add(msk(2026, 11, 23, 10, 0), timedelta(hours=12)) == msk(2026, 11, 24, 13, 0)
