"""Report periods as coordinators ask for them: today, the last N days, a day, a range of days.

Days are local days in ``TIMEZONE``; the database keeps UTC, so a period carries both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_DAYS = 731  # two years: longer ranges would make unreadable charts and slow reports
_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
TODAY_WORDS = frozenset({"today", "сегодня"})


class PeriodError(ValueError):
    """The coordinator's input is not a period; the message says what is expected."""


@dataclass(frozen=True)
class Period:
    first_day: date  # local, inclusive
    last_day: date  # local, inclusive
    start: datetime  # UTC, inclusive: local midnight of first_day
    end: datetime  # UTC, exclusive: local midnight after last_day, or now if earlier
    key: str  # how to ask for it again: "today", "7", "01.11.2026-15.11.2026"

    @property
    def days(self) -> list[date]:
        return [
            self.first_day + timedelta(days=i)
            for i in range((self.last_day - self.first_day).days + 1)
        ]

    @property
    def step(self) -> timedelta:
        """The nominal length: what a 'preceding period of the same length' is shifted by."""
        return timedelta(days=len(self.days))


def midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def make_period(first_day: date, last_day: date, now: datetime, tz: ZoneInfo, key: str) -> Period:
    start = midnight(first_day, tz)
    end = min(midnight(last_day + timedelta(days=1), tz), max(now, start))
    return Period(first_day, last_day, start, end, key)


def last_days(days: int, now: datetime, tz: ZoneInfo) -> Period:
    """The last ``days`` local days, today included (up to now)."""
    today = now.astimezone(tz).date()
    key = "today" if days == 1 else str(days)
    return make_period(today - timedelta(days=days - 1), today, now, tz, key)


def parse_day(text: str) -> date:
    match = _DATE.match(text)
    if not match:
        raise PeriodError(f"«{clip(text)}» — не дата. Пишите так: 01.11.2026.")
    day, month, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise PeriodError(f"Даты {text} не бывает. Пишите так: 01.11.2026.") from None


def clip(text: str, limit: int = 40) -> str:
    """The user's word as quoted back: whole if short, else its start (a reply has a limit)."""
    return text if len(text) <= limit else text[:limit] + "…"


def is_period_word(word: str) -> bool:
    return word.lower() in TODAY_WORDS or word.isdigit() or bool(_DATE.match(word))


def parse_period(words: list[str], now: datetime, tz: ZoneInfo, default_days: int) -> Period:
    """``[]``, ``today``, ``7``, ``01.11.2026`` or ``01.11.2026 15.11.2026``."""
    if not words:
        return last_days(default_days, now, tz)
    if len(words) == 1 and words[0].lower() in TODAY_WORDS:
        return last_days(1, now, tz)
    if len(words) == 1 and words[0].isdigit():
        days = int(words[0])
        if not 1 <= days <= MAX_DAYS:
            raise PeriodError(f"Число дней — от 1 до {MAX_DAYS}.")
        return last_days(days, now, tz)
    if len(words) > 2:
        raise PeriodError("Укажите одну дату или две: 01.11.2026 15.11.2026.")
    first_day = parse_day(words[0])
    last_day = parse_day(words[-1])
    if last_day < first_day:
        raise PeriodError(f"Начало ({words[0]}) позже конца ({words[-1]}): поменяйте даты местами.")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise PeriodError(f"Слишком длинный период: не больше {MAX_DAYS} дней.")
    key = f"{first_day:%d.%m.%Y}-{last_day:%d.%m.%Y}"
    return make_period(first_day, last_day, now, tz, key)


def period_from_key(key: str, now: datetime, tz: ZoneInfo) -> Period:
    """The inverse of ``Period.key`` (for buttons that switch the period)."""
    return parse_period(key.split("-"), now, tz, default_days=1)


def describe(period: Period) -> str:
    if period.key == "today":
        return f"сегодня, {period.first_day:%d.%m.%Y}"
    if period.first_day == period.last_day:
        return f"{period.first_day:%d.%m.%Y}"
    return f"{period.first_day:%d.%m.%Y} — {period.last_day:%d.%m.%Y}"
