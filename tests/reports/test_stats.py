"""/stats figures on SQLite and PostgreSQL against appeals whose answers we worked out by hand."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.core.config import CoreConfig
from bot.core.periods import PeriodError, parse_period
from bot.core.report_render import amount, duration, spike_line, stats_text
from bot.core.reports import ReportService, Spike, StatsReport, find_spikes, reading
from storage.models import Appeal
from storage.uow import Database
from tests.reports.seed import HOUR, Seeder

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=MOSCOW)  # a Friday noon; the week is 14.11–20.11


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=MOSCOW)


async def seed_week(db: Database) -> None:
    seeder = Seeder(db)
    lenina = "ул. Ленина, 1"
    # roads: answered in 1 h (on time), solved in 5 h, confirmed
    await seeder.add(
        "roads", at(15, 10), status="closed", answer_after=HOUR, solved_after=5 * HOUR,
        address=lenina, pin=(55.75, 37.62),
    )  # fmt: skip
    # roads from VK: answered in 3 h (on time), still in work
    await seeder.add(
        "roads", at(16, 10), platform="vk", status="in_work", answer_after=3 * HOUR, address=lenina
    )
    # housing: answered in 10 h (late), solved in 20 h, reopened once by the resident
    await seeder.add(
        "housing", at(17, 10), status="resolved", answer_after=10 * HOUR,
        solved_after=20 * HOUR, reopened=1, address="пр. Мира, 5",
    )  # fmt: skip
    # housing: never answered, deadline passed long ago (late)
    await seeder.add("housing", at(18, 10))
    # waste: filed half an hour ago, still within its deadline (not judged yet)
    await seeder.add("waste", at(20, 11, 30))
    # outside the week: counted nowhere
    await seeder.add("roads", at(10, 10), answer_after=HOUR)
    await seeder.add("roads", at(20, 12, 30))  # after "now": the future is not in the period


async def test_week_figures_match_the_database(db: Database, config: CoreConfig) -> None:
    await seed_week(db)
    period = parse_period(["7"], NOW, MOSCOW, default_days=1)
    assert (period.first_day, period.last_day) == (date(2026, 11, 14), date(2026, 11, 20))

    report = await ReportService(db, config).stats(period, NOW)

    assert report.total == 5
    assert report.by_status == {"closed": 1, "in_work": 1, "resolved": 1, "new": 2}
    assert report.by_category == {"Дороги": 2, "ЖКХ": 2, "Мусор / ТКО": 1}
    assert report.by_platform == {"telegram": 4, "vk": 1}
    assert sum(report.by_department.values()) == 5
    assert (report.on_time, report.late) == (2, 2)  # the waste appeal is still within deadline
    assert report.on_time_share == 0.5
    assert report.reopened == 1 and report.reopened_share == pytest.approx(0.2)
    # first answers 1 h, 3 h, 10 h: median 3 h; 90th percentile 3 + 0.8 x 7 = 8.6 h
    assert report.first_answer.count == 3
    assert report.first_answer.median == pytest.approx(3 * 3600, abs=1)
    assert report.first_answer.p90 == pytest.approx(8.6 * 3600, abs=1)
    # solutions 5 h and 20 h: median 12.5 h; 90th percentile 5 + 0.9 x 15 = 18.5 h
    assert report.solution.count == 2
    assert report.solution.median == pytest.approx(12.5 * 3600, abs=1)
    assert report.solution.p90 == pytest.approx(18.5 * 3600, abs=1)
    assert report.top_addresses == [("ул. Ленина, 1", 2), ("пр. Мира, 5", 1)]
    # the daily flow: one bar per local day from 14.11 to 20.11
    assert report.daily["Дороги"] == [0, 1, 1, 0, 0, 0, 0]
    assert report.daily["ЖКХ"] == [0, 0, 0, 1, 1, 0, 0]
    assert report.daily["Мусор / ТКО"] == [0, 0, 0, 0, 0, 0, 1]
    assert report.spikes == []

    text = stats_text(report)
    assert "Всего обращений: 5 (Telegram: 4 · ВКонтакте: 1)" in text
    assert "Первый ответ: медиана 3 ч, у 90 % — не дольше 8 ч 36 мин (с ответом: 3)." in text
    assert "Решение: медиана 12 ч 30 мин, у 90 % — не дольше 18 ч 30 мин (решено: 2)." in text
    assert "Ответили в срок: 50 % (2 из 4; без ответа, но в пределах срока: 1)." in text
    assert "Возобновлены жителями («не решена»): 20 % (1)." in text
    assert "• ул. Ленина, 1: 2" in text
    assert "Всплески: сравнить пока не с чем" in text  # all five came this week


async def test_local_days_follow_the_time_zone(db: Database, config: CoreConfig) -> None:
    """00:30 in Moscow is 21:30 UTC the day before: it belongs to the Moscow day."""
    seeder = Seeder(db)
    await seeder.add("roads", at(19, 0, 30))
    await seeder.add("roads", at(18, 23, 30))
    period = parse_period(["19.11.2026"], NOW, MOSCOW, default_days=1)
    report = await ReportService(db, config).stats(period, NOW)
    assert report.total == 1
    assert report.daily == {"Дороги": [1]}


async def test_a_spike_is_named_against_its_own_baseline(db: Database, config: CoreConfig) -> None:
    seeder = Seeder(db)
    week_start = at(14, 9)
    for weeks_back in range(1, 9):  # eight ordinary weeks: 2 road and 3 housing appeals each
        start = week_start - timedelta(weeks=weeks_back)
        for i in range(2):
            await seeder.add("roads", start + timedelta(days=i))
        for i in range(3):
            await seeder.add("housing", start + timedelta(days=i, hours=2))
    for i in range(10):  # this week: roads jump to 10, housing stays at 3
        await seeder.add("roads", week_start + timedelta(hours=7 * i))
    for i in range(3):
        await seeder.add("housing", week_start + timedelta(days=i, hours=2))

    period = parse_period(["7"], NOW, MOSCOW, default_days=1)
    report = await ReportService(db, config).stats(period, NOW)

    assert [(s.category, s.count, s.baseline_mean) for s in report.spikes] == [("Дороги", 10, 2.0)]
    assert "• Дороги: 10 при обычных ~2 — в 5,0 раза больше обычного." in stats_text(report)


def test_spike_rule() -> None:
    steady = {"Дороги": [10, 12, 11, 9, 10, 12, 11, 10]}
    assert find_spikes({"Дороги": 13}, steady) == []  # within mean + 2σ
    assert [s.count for s in find_spikes({"Дороги": 20}, steady)] == [20]
    # from nothing to four is not yet a spike: too few to mean anything
    assert find_spikes({"Транспорт": 4}, {"Транспорт": [0] * 8}) == []
    assert [s.count for s in find_spikes({"Транспорт": 6}, {"Транспорт": [0] * 8})] == [6]


async def test_empty_period(db: Database, config: CoreConfig) -> None:
    period = parse_period(["today"], NOW, MOSCOW, default_days=1)
    report = await ReportService(db, config).stats(period, NOW)
    assert report.total == 0
    assert report.first_answer.median is None
    assert "Обращений за этот период нет." in stats_text(report)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["99.99.2026"], "Даты 99.99.2026 не бывает"),
        (["15.11.2026", "01.11.2026"], "позже конца"),
        (["abc"], "«abc» — не дата"),
        (["0"], "Число дней — от 1 до 731"),
        (["01.01.2020", "01.01.2026"], "Слишком длинный период"),
        (["1.1.2026", "2.1.2026", "3.1.2026"], "одну дату или две"),
    ],
)
def test_bad_periods_are_explained(words: list[str], message: str) -> None:
    with pytest.raises(PeriodError, match=message):
        parse_period(words, NOW, MOSCOW, default_days=1)


def test_durations_read_naturally() -> None:
    assert duration(20) == "меньше минуты"
    assert duration(45 * 60) == "45 мин"
    assert duration(3 * 3600) == "3 ч"
    assert duration(8.6 * 3600) == "8 ч 36 мин"
    assert duration(52 * 3600) == "2 дн 4 ч"


async def test_a_report_being_read_does_not_hold_up_new_appeals(sqlite_db: Database) -> None:
    """SQLite: a report's transaction takes no write lock (without it this waits 30 s, fails)."""
    seeder = Seeder(sqlite_db)
    await seeder.add("roads", at(18, 10))
    async with reading(sqlite_db) as session:
        assert await session.scalar(select(func.count()).select_from(Appeal)) == 1
        # A resident's appeal, written meanwhile by another task (as the bot's would be).
        async with asyncio.timeout(5):
            await asyncio.create_task(seeder.add("roads", at(18, 11)))
        # the report still sees its own snapshot
        assert await session.scalar(select(func.count()).select_from(Appeal)) == 1
    async with reading(sqlite_db) as session:
        assert await session.scalar(select(func.count()).select_from(Appeal)) == 2


def test_big_numbers_read_naturally() -> None:
    assert amount(11540) == "11\u00a0540"
    assert spike_line(Spike("Благоустройство", 2447, 1359.5, 80.0)) == (
        "• Благоустройство: 2\u00a0447 при обычных ~1\u00a0360 — в 1,8 раза больше обычного."
    )


async def test_a_rejection_is_a_reply_to_the_resident(db: Database, config: CoreConfig) -> None:
    """Spam rejected within an hour is answered on time; one rejected a day later is late."""
    seeder = Seeder(db)
    quick = await seeder.add("roads", at(16, 10), status="rejected")
    slow = await seeder.add("roads", at(17, 10), status="rejected")
    async with db.uow() as uow:
        for appeal, after in ((quick, HOUR), (slow, 24 * HOUR)):
            stored = await uow.session.get(Appeal, appeal.id)
            assert stored is not None
            stored.closed_at = stored.created_at + after
        await uow.commit()
    period = parse_period(["7"], NOW, MOSCOW, default_days=1)

    report = await ReportService(db, config).stats(period, NOW)

    assert (report.on_time, report.late) == (1, 1)
    assert report.first_answer.count == 2
    assert report.first_answer.median == pytest.approx(12.5 * 3600, abs=1)
    content, _ = await ReportService(db, config).export(period, NOW)
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    assert [row[9] for row in rows[1:]] == ["да", "нет"]


def test_a_long_categories_file_keeps_stats_within_one_message() -> None:
    period = parse_period(["7"], NOW, MOSCOW, default_days=1)
    report = StatsReport(period, total=4000)
    report.by_status = Counter({"new": 4000})
    report.by_platform = Counter({"telegram": 4000})
    report.by_category = Counter(
        {f"Категория номер {i} с длинным названием": 100 for i in range(40)}
    )
    report.by_department = Counter(
        {f"Управление номер {i} администрации города": 100 for i in range(40)}
    )
    text = stats_text(report)
    assert len(text) <= 4096
    assert "• остальные (29): 2\xa0900" in text  # 11 shown, the rest summed up
