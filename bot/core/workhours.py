"""Deadlines counted in working hours: a daily window on working days, minus holidays.

Pure arithmetic on wall-clock time in the centre's time zone, so «8 часов» filed on Friday
evening falls due on Monday, as residents are told by the centres that work this way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY = timedelta(days=1)


@dataclass(frozen=True)
class WorkSchedule:
    tz: ZoneInfo
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    workdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday is 0
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if self.opens >= self.closes:
            raise ValueError("the working day must open before it closes")
        if not self.workdays:
            raise ValueError("at least one working day is needed")

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.workdays and day not in self.holidays

    def add(self, start: datetime, span: timedelta) -> datetime:
        """``start`` plus ``span`` of working time (aware in, aware UTC out).

        Whole days (P3D, P14D) count working days, as people mean them; anything else counts
        working hours."""
        if span >= DAY and span % DAY == timedelta(0):
            return self._add_days(start, span // DAY)
        wall = start.astimezone(self.tz).replace(tzinfo=None)
        remaining = span
        day = wall.date()
        at = wall.time()
        # A year of days is far more than any deadline needs; the bound only stops a bad loop.
        for _ in range(366 * 3):
            if self.is_working_day(day) and at < self.closes:
                begin = max(at, self.opens)
                opened = datetime.combine(day, begin)
                available = datetime.combine(day, self.closes) - opened
                if remaining <= available:
                    return (opened + remaining).replace(tzinfo=self.tz).astimezone(UTC)
                remaining -= available
            day += timedelta(days=1)
            at = time(0, 0)
        raise ValueError("no working time found within three years")

    def _add_days(self, start: datetime, days: int) -> datetime:
        """``days`` working days on, at the same time of day; filed outside working hours,
        the clock starts at the next opening."""
        wall = start.astimezone(self.tz).replace(tzinfo=None)
        day, at = wall.date(), wall.time()
        if not self.is_working_day(day) or at >= self.closes:
            day, at = self._next_working_day(day), self.opens
        elif at < self.opens:
            at = self.opens
        for _ in range(days):
            day = self._next_working_day(day)
        return datetime.combine(day, at).replace(tzinfo=self.tz).astimezone(UTC)

    def _next_working_day(self, day: date) -> date:
        for _ in range(366 * 3):
            day += DAY
            if self.is_working_day(day):
                return day
        raise ValueError("no working day found within three years")


def parse_hours(text: str) -> tuple[time, time]:
    """``09:00-18:00`` → (09:00, 18:00)."""
    try:
        opens_text, closes_text = (part.strip() for part in text.split("-", 1))
        return time.fromisoformat(opens_text), time.fromisoformat(closes_text)
    except ValueError as exc:
        raise ValueError(f"{text!r}: expected HH:MM-HH:MM, e.g. 09:00-18:00") from exc


def parse_days(text: str) -> frozenset[int]:
    """``1-5`` or ``1,2,3,4,5,6`` (Monday is 1) → weekday numbers as Python counts them."""
    days: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if not 1 <= low <= high <= 7:
            raise ValueError(f"{part!r}: days are 1 (Monday) … 7 (Sunday)")
        days.update(range(low - 1, high))
    if not days:
        raise ValueError("no working days given")
    return frozenset(days)
