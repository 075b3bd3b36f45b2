"""Fill a database with a realistic region's appeals: ``python -m bench.fill --appeals 1000000``.

Two years ending now, shaped like the seeds describe a large region: more on weekdays and in
the morning and evening, seasonal topics (heating in winter, potholes in spring, yards and
rubbish in summer), most answered within hours, ~40 % with a map pin clustered around a city
centre and its districts, the rest with a street address. Rows are generated with numpy and
written in bulk (SQLite ``executemany`` on the raw driver, PostgreSQL ``COPY``), never as ORM
objects, so a million appeals take one to two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.catalog import load_catalog
from bot.settings import DEFAULT_CATEGORIES_FILE
from storage.db import session_factory
from storage.migrate import upgrade_to_head
from storage.models import Appeal, AppealCounter, Category, Resident
from storage.uow import Database

DAYS = 730
REGION_TZ = ZoneInfo("Asia/Novosibirsk")  # UTC+7, no daylight saving
RESIDENTS = 50_000
BATCH = 20_000
CENTRE = (55.030, 82.920)  # a city of 1.6 million at the heart of a large region
DISTRICTS = [(55.030, 82.920, 0.020), (55.060, 82.960, 0.015), (54.980, 82.880, 0.018),
             (55.000, 83.010, 0.015), (55.100, 82.900, 0.020), (54.860, 83.100, 0.012)]  # fmt: skip
# Share of appeals by category code, and the month (1-12) when each topic peaks, if it does.
CATEGORY_MIX = {
    "housing": (0.30, 1),
    "roads": (0.16, 4),
    "improvement": (0.14, 7),
    "transport": (0.08, None),
    "health": (0.07, 2),
    "education": (0.04, 9),
    "social": (0.05, None),
    "energy": (0.05, 12),
    "waste": (0.08, 7),
    "other": (0.03, None),
}
WEEKDAY = np.array([1.25, 1.2, 1.15, 1.1, 1.0, 0.65, 0.55])  # Monday first
HOURS = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.5, 3, 5, 7, 7.5, 7, 6, 6, 6, 5.5, 5.5, 6, 6.5,
                  7, 6.5, 5, 3.5, 2])  # fmt: skip
STREETS = [
    "ул. Ленина", "Красный пр.", "ул. Кирова", "ул. Гоголя", "ул. Фрунзе", "ул. Советская",
    "ул. Мичурина", "ул. Дуси Ковальчук", "ул. Титова", "ул. Петухова", "Комсомольский пр.",
    "ул. Богдана Хмельницкого", "ул. Народная", "ул. Челюскинцев", "ул. Нарымская",
    "ул. Есенина", "ул. Бориса Богаткова", "ул. Станиславского", "ул. Блюхера", "ул. Немировича",
    "ул. Ватутина", "ул. Зорге", "ул. Сибиряков-Гвардейцев", "ул. Выборная", "ул. Гурьевская",
    "ул. Плахотного", "ул. Связистов", "ул. Ключ-Камышенское плато", "ул. Троллейная",
    "ул. Пархоменко", "ул. Волочаевская", "ул. Кошурникова", "ул. Авиастроителей",
    "ул. Учительская", "ул. Объединения", "ул. Тюленина", "ул. Макаренко", "ул. Лесосечная",
    "ул. Шлюзовая", "ул. Иванова", "ул. Ильича", "Морской пр.", "ул. Арбузова", "ул. Бердское ш.",
]  # fmt: skip
DESCRIPTIONS = [
    "Яма на проезжей части, машины объезжают по встречной.",
    "Нет горячей воды с утра, управляющая компания не отвечает.",
    "Не вывезли мусор, контейнеры переполнены уже третий день.",
    "Автобус по маршруту ходит раз в час вместо заявленных 15 минут.",
    "Не горит уличное освещение во дворе, темно и опасно.",
    "Сломана скамейка и качели на детской площадке.",
    "В подъезде протекает крыша после дождя.",
    "Не могу записаться к терапевту через портал.",
]


@dataclass(frozen=True)
class FillPlan:
    appeals: int
    end: datetime  # the last moment covered: "now" for the benchmark
    seed: int = 2026

    @property
    def start(self) -> datetime:
        """Local midnight (UTC+7), DAYS days back: day d of the plan is a whole local day."""
        local = self.end.astimezone(REGION_TZ)
        first = (local - timedelta(days=DAYS - 1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        return first.astimezone(UTC)


def _day_weights(plan: FillPlan, categories: list[str]) -> np.ndarray:
    """Expected share of appeals per (day, category): weekday x season x topic's season."""
    days = np.arange(DAYS)
    first = plan.start
    weekdays = (first.weekday() + days) % 7
    day_of_year = np.array([(first + timedelta(days=int(d))).timetuple().tm_yday for d in days])
    growth = 1 + 0.15 * days / DAYS  # the service gets known: a little more every month
    weights = np.empty((DAYS, len(categories)))
    for column, code in enumerate(categories):
        share, peak_month = CATEGORY_MIX.get(code, (0.02, None))
        season = np.ones(DAYS)
        if peak_month is not None:
            peak_day = (peak_month - 0.5) * 30.4
            season = 1 + 0.6 * np.cos(2 * math.pi * (day_of_year - peak_day) / 365)
        weights[:, column] = share * season * WEEKDAY[weekdays] * growth
    # A spike in the last week, as the seeds describe (a dusty embankment under repair).
    weights[-7:, categories.index("improvement")] *= 2.5
    normalised: np.ndarray = weights / weights.sum()
    return normalised


def _lognormal_hours(rng: np.random.Generator, median_hours: float, sigma: float, n: int) -> Any:
    return rng.lognormal(math.log(median_hours), sigma, n) * 3600.0


def generate(plan: FillPlan, category_rows: list[tuple[int, str, int, int, bool]]) -> Any:
    """Columns of all appeals, sorted by creation time (numpy arrays, seconds since start)."""
    rng = np.random.default_rng(plan.seed)
    codes = [code for _, code, _, _, _ in category_rows]
    weights = _day_weights(plan, codes)
    cells = rng.multinomial(plan.appeals, weights.ravel())
    cell_index = np.repeat(np.arange(cells.size), cells)
    day, category = np.divmod(cell_index, len(codes))
    hour_p = HOURS / HOURS.sum()
    seconds = day * 86400.0 + rng.choice(24, plan.appeals, p=hour_p) * 3600.0
    seconds += rng.uniform(0, 3600, plan.appeals)
    # Today is not over: what would fall after "now" is spread over the hours already past.
    span = (plan.end - plan.start).total_seconds()
    today = (DAYS - 1) * 86400.0
    late = seconds >= span
    seconds[late] = rng.uniform(today, span, int(late.sum()))
    order = np.argsort(seconds, kind="stable")
    seconds, category = seconds[order], category[order]
    n = plan.appeals
    elapsed = span - seconds
    deadline = np.array([row[3] for row in category_rows], dtype=float)[category]
    answer = _lognormal_hours(rng, 4.0, 0.9, n)  # median 4 h, as the seeds report
    answer[rng.uniform(0, 1, n) < 0.003] = np.inf  # a few are never answered at all
    solve = answer + _lognormal_hours(rng, 30.0, 1.3, n)
    confirm = solve + _lognormal_hours(rng, 20.0, 1.0, n)
    # The status follows from what has had time to happen by now.
    roll = rng.uniform(0, 1, n)
    rejected = roll < 0.04
    reopened_now = (roll >= 0.04) & (roll < 0.07) & (elapsed > solve)
    never_confirmed = (roll >= 0.07) & (roll < 0.20)
    status = np.full(n, "closed", dtype="<U8")
    status[elapsed < confirm] = "resolved"
    status[never_confirmed & (elapsed >= solve)] = "resolved"
    status[elapsed < solve] = "in_work"
    status[reopened_now] = "reopened"
    status[rejected] = "rejected"
    status[elapsed < answer] = "new"
    answered = elapsed >= answer
    reopened = reopened_now.astype(int)
    reopened += (rng.uniform(0, 1, n) < 0.04) & np.isin(status, ["closed", "resolved"])
    has_solution = np.isin(status, ["closed", "resolved"])
    pinned = rng.uniform(0, 1, n) < 0.40
    district = rng.integers(0, len(DISTRICTS), n)
    spread = np.array([d[2] for d in DISTRICTS])[district]
    far = rng.uniform(0, 1, n) < 0.10  # the rest of the region
    spread = np.where(far, 0.6, spread)
    lat = np.array([d[0] for d in DISTRICTS])[district] + rng.normal(0, 1, n) * spread
    lon = np.array([d[1] for d in DISTRICTS])[district] + rng.normal(0, 1.6, n) * spread
    # Some streets and houses are talked about far more than others, none overwhelmingly.
    street_p = 1 / np.arange(1, len(STREETS) + 1) ** 0.8
    street = rng.choice(len(STREETS), n, p=street_p / street_p.sum())
    house_p = 1 / np.arange(1, 121) ** 0.6
    house = rng.choice(120, n, p=house_p / house_p.sum()) + 1
    has_address = ~pinned | (rng.uniform(0, 1, n) < 0.5)
    return {
        "seconds": seconds,
        "category": category,
        "deadline": deadline,
        "answer": np.where(answered, answer, np.nan),
        "solve": np.where(has_solution, solve, np.nan),
        "close": np.where(status == "closed", confirm, np.nan),
        "status": status,
        "reopened": reopened,
        "platform": np.where(rng.uniform(0, 1, n) < 0.7, "telegram", "vk"),
        "lat": np.where(pinned, lat, np.nan),
        "lon": np.where(pinned, lon, np.nan),
        "street": np.where(has_address, street, -1),
        "house": house,
        "resident": rng.integers(1, RESIDENTS + 1, n),
        "description": rng.integers(0, len(DESCRIPTIONS), n),
    }


def _moment(start: datetime, offset: float) -> datetime | None:
    if math.isnan(offset):
        return None
    return start + timedelta(seconds=offset)


def rows(
    plan: FillPlan, columns: Any, category_rows: list[tuple[int, str, int, int, bool]]
) -> Iterator[tuple[Any, ...]]:
    """Appeal rows in ``APPEAL_COLUMNS`` order, naive UTC datetimes (as the columns store them)."""
    start = plan.start.astimezone(UTC).replace(tzinfo=None)
    now = plan.end.astimezone(UTC).replace(tzinfo=None)
    counters: dict[int, int] = {}
    c = columns
    for i in range(plan.appeals):
        created = start + timedelta(seconds=float(c["seconds"][i]))
        year = (created + timedelta(hours=7)).year  # the local year, as numbering uses
        seq = counters[year] = counters.get(year, 0) + 1
        category_id, _, department_id, deadline_s, regional = category_rows[int(c["category"][i])]
        base = float(c["seconds"][i])
        street = int(c["street"][i])
        lat = float(c["lat"][i])
        yield (
            i + 1,
            f"{year}-{seq:06d}",
            year,
            seq,
            int(c["resident"][i]),
            str(c["platform"][i]),
            category_id,
            department_id,
            DESCRIPTIONS[int(c["description"][i])],
            f"{STREETS[street]}, {int(c['house'][i])}" if street >= 0 else None,
            None if math.isnan(lat) else lat,
            None if math.isnan(lat) else float(c["lon"][i]),
            str(c["status"][i]),
            regional,
            created,
            created + timedelta(seconds=deadline_s),
            _moment(start, base + float(c["answer"][i])),
            _moment(start, base + float(c["solve"][i])),
            _moment(start, base + float(c["close"][i])),
            int(c["reopened"][i]),
            created + SOLUTION_DEADLINE,
            _next_check(created, deadline_s, str(c["status"][i]), now),
            created + timedelta(seconds=deadline_s),
        )


SOLUTION_DEADLINE = timedelta(days=3)  # the SOLUTION_DEADLINE default
# When the scan has something to do for an open appeal: the reminder at 75 % and the three
# escalation levels (0, 4 h, 8 h after) of each deadline, as the defaults set them.
CHECKPOINTS = (0.75, 1.0)
LEVELS = (timedelta(0), timedelta(hours=4), timedelta(hours=8))


def _next_check(created: datetime, deadline_s: int, status: str, now: datetime) -> datetime | None:
    """As a running bot leaves it: the next step of an open appeal still to come, none once
    every step is behind it (the scan took them when they came)."""
    if status not in ("new", "in_work", "reopened"):
        return None
    moments = []
    for span in (timedelta(seconds=deadline_s), SOLUTION_DEADLINE):
        moments.append(created + span * CHECKPOINTS[0])
        moments.extend(created + span + level for level in LEVELS)
    upcoming = [m for m in moments if m > now]
    return min(upcoming) if upcoming else None


APPEAL_COLUMNS = (
    "id", "number", "year", "seq", "resident_id", "platform", "category_id", "department_id",
    "description", "address", "latitude", "longitude", "status", "regional", "created_at",
    "deadline_at", "first_answer_at", "resolved_at", "closed_at", "reopened_count",
    "solution_deadline_at", "next_check_at", "first_deadline_at",
)  # fmt: skip


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite storage format
    return value


async def _catalog(db: Database) -> list[tuple[int, str, int, int, bool]]:
    async with db.uow() as uow:
        await uow.catalog.sync(load_catalog(DEFAULT_CATEGORIES_FILE))
        await uow.commit()
        categories = await uow.session.scalars(select(Category).order_by(Category.id))
        return [
            (c.id, c.code, c.department_id, c.answer_deadline_seconds or 8 * 3600, c.regional)
            for c in categories
        ]


async def _residents(engine: AsyncEngine) -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(delete(Appeal))
        await conn.execute(delete(Resident))
        await conn.execute(
            insert(Resident),
            [
                {
                    "id": i,
                    "platform": "telegram",
                    "external_id": str(100_000 + i),
                    "chat_id": str(100_000 + i),
                    "first_name": "Житель",
                    "unreachable": False,
                    "created_at": moment,
                }
                for i in range(1, RESIDENTS + 1)
            ],
        )


async def fill(engine: AsyncEngine, plan: FillPlan, say: Any = print) -> None:
    """Replace the database's appeals with ``plan.appeals`` generated ones."""
    began = time.perf_counter()
    await upgrade_to_head(engine)
    db = Database(session_factory(engine))
    category_rows = await _catalog(db)
    await _residents(engine)
    columns = generate(plan, category_rows)
    say(f"  generated {plan.appeals:,} appeals in {time.perf_counter() - began:.1f}s")
    sqlite = engine.dialect.name == "sqlite"
    placeholders = ", ".join("?" for _ in APPEAL_COLUMNS)
    statement = f"INSERT INTO appeals ({', '.join(APPEAL_COLUMNS)}) VALUES ({placeholders})"
    batch: list[tuple[Any, ...]] = []
    async with engine.begin() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        if sqlite:
            await raw.execute("PRAGMA cache_size=-500000")

        async def flush() -> None:
            if sqlite:
                await raw.executemany(statement, [tuple(map(_sqlite_value, r)) for r in batch])
            else:
                await raw.copy_records_to_table("appeals", records=batch, columns=APPEAL_COLUMNS)
            batch.clear()

        for row in rows(plan, columns, category_rows):
            batch.append(row)
            if len(batch) >= BATCH:
                await flush()
        if batch:
            await flush()
        years = await conn.execute(select(Appeal.year, func.max(Appeal.seq)).group_by(Appeal.year))
        await conn.execute(delete(AppealCounter))
        for year, value in years.all():
            await conn.execute(insert(AppealCounter).values(year=year, value=value))
        if not sqlite:
            await conn.execute(
                text("SELECT setval('appeals_id_seq', (SELECT max(id) FROM appeals))")
            )
    # Fresh statistics for the planner, as a live database gets from autovacuum / ANALYZE.
    async with engine.connect() as conn:
        if sqlite:
            await conn.exec_driver_sql("ANALYZE")
        else:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM ANALYZE appeals")
    say(f"  filled in {time.perf_counter() - began:.1f}s")


def main() -> None:
    from storage.db import create_engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appeals", type=int, default=1_000_000)
    default = Path(tempfile.gettempdir()) / "priemnaya-fill.db"
    parser.add_argument("--url", default=f"sqlite+aiosqlite:///{default}")
    args = parser.parse_args()

    async def run() -> None:
        engine = create_engine(args.url)
        try:
            await fill(engine, FillPlan(args.appeals, datetime.now(UTC)))
        finally:
            await engine.dispose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
