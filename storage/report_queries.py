"""Report queries: every figure is aggregated by the database (GROUP BY, ORDER BY … OFFSET),
so a report costs a few index range scans however many appeals there are.

Portable across SQLite and PostgreSQL: the few expressions that differ (time differences, days,
grid cells) are built per dialect in one place each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Float, Integer, and_, case, cast, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

from storage.models import Appeal, Category, Department, UTCDateTime

Column = ColumnElement[Any] | QueryableAttribute[Any]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def seconds_between(session: AsyncSession, later: Column, earlier: Column) -> ColumnElement[float]:
    if _dialect(session) == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return cast(func.extract("epoch", later - earlier), Float)


def local_day(session: AsyncSession, offset: timedelta) -> ColumnElement[Any]:
    """The local day of ``created_at`` at a fixed UTC offset (the zone's offset for the period;
    a DST change inside a period shifts that period's day boundaries by its hour)."""
    minutes = int(offset.total_seconds() // 60)
    if _dialect(session) == "sqlite":
        return func.date(Appeal.created_at, f"{minutes:+d} minutes")
    # A literal, not a parameter: GROUP BY must repeat the very same expression.
    return cast(Appeal.created_at + literal_column(f"interval '{minutes} minutes'"), Date)


def _truncate(session: AsyncSession, value: ColumnElement[Any]) -> ColumnElement[int]:
    """Towards zero in both: PostgreSQL's CAST rounds, SQLite's truncates."""
    if _dialect(session) == "sqlite":
        return cast(value, Integer)
    return cast(func.trunc(value), Integer)


async def categories(session: AsyncSession) -> list[Category]:
    """Every category, retired ones too: old appeals keep their titles in reports."""
    return list(await session.scalars(select(Category).order_by(Category.position, Category.id)))


async def departments(session: AsyncSession) -> list[Department]:
    return list(await session.scalars(select(Department).order_by(Department.id)))


# When the resident first heard back: an answer, or a rejection (spam, a duplicate, not ours)
# for an appeal rejected unanswered — that too is a reply within the deadline or not.
RESPONDED_AT = func.coalesce(Appeal.first_answer_at, Appeal.closed_at)
# The first answer's deadline (a resident's «не решена» starts a new round in deadline_at).
ANSWER_DUE = func.coalesce(Appeal.first_deadline_at, Appeal.deadline_at, type_=UTCDateTime())


def in_period(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(Appeal.created_at >= start, Appeal.created_at < end)


@dataclass(frozen=True)
class BreakdownRow:
    status: str
    category_id: int
    department_id: int
    platform: str
    count: int
    reopened: int  # reopened at least once by the resident
    on_time: int  # first answer no later than the deadline
    late: int  # answered late, or unanswered past the deadline
    answered: int  # the resident heard back (RESPONDED_AT)
    resolved: int


async def breakdown(
    session: AsyncSession, start: datetime, end: datetime, now: datetime
) -> list[BreakdownRow]:
    """One pass over the period grouped by everything the report splits by: a few hundred rows
    at most (statuses x categories x departments x platforms), summed up by the caller."""
    on_time = RESPONDED_AT <= ANSWER_DUE
    late = or_(
        RESPONDED_AT > ANSWER_DUE,
        and_(RESPONDED_AT.is_(None), ANSWER_DUE < now),
    )
    stmt = (
        select(
            Appeal.status,
            Appeal.category_id,
            Appeal.department_id,
            Appeal.platform,
            func.count(),
            func.sum(case((Appeal.reopened_count > 0, 1), else_=0)),
            func.sum(case((on_time, 1), else_=0)),
            func.sum(case((late, 1), else_=0)),
            func.count(RESPONDED_AT),
            func.count(Appeal.resolved_at),
        )
        .where(in_period(start, end))
        .group_by(Appeal.status, Appeal.category_id, Appeal.department_id, Appeal.platform)
    )
    rows = await session.execute(stmt)
    return [
        BreakdownRow(row[0], row[1], row[2], row[3], *(int(value or 0) for value in row[4:]))
        for row in rows
    ]


async def percentiles(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    until: Column,
    count: int,
    fractions: Sequence[float],
) -> list[float | None]:
    """Percentiles of ``until - created_at`` in seconds over the ``count`` appeals of the period
    that have ``until``; linear between the two nearest ranks (as numpy's default does).

    The database numbers the sorted durations once (row_number) and returns only the few rows
    at the wanted ranks: one sort for all the fractions, a handful of values back."""
    if count == 0:
        return [None for _ in fractions]
    positions = [fraction * (count - 1) for fraction in fractions]
    ranks = sorted({int(p) + 1 for p in positions} | {min(int(p) + 2, count) for p in positions})
    duration = seconds_between(session, until, Appeal.created_at).label("seconds")
    numbered = (
        select(duration, func.row_number().over(order_by=duration).label("rank"))
        .where(in_period(start, end), until.is_not(None))
        .subquery()
    )
    stmt = select(numbered.c.rank, numbered.c.seconds).where(numbered.c.rank.in_(ranks))
    at_rank = {int(rank): float(value) for rank, value in await session.execute(stmt)}
    result: list[float | None] = []
    for position in positions:
        below = at_rank.get(int(position) + 1)
        above = at_rank.get(min(int(position) + 2, count), below)
        if below is None or above is None:
            result.append(None)  # changed between the count and now: rare, not worth a retry
        else:
            result.append(below + (above - below) * (position - int(position)))
    return result


async def daily_counts(
    session: AsyncSession, start: datetime, end: datetime, offset: timedelta
) -> list[tuple[date, int, int]]:
    """(local day, category id, appeals) for the chart of the daily flow."""
    day = local_day(session, offset)
    stmt = (
        select(day, Appeal.category_id, func.count())
        .where(in_period(start, end))
        .group_by(day, Appeal.category_id)
    )
    result = []
    for raw_day, category_id, count in await session.execute(stmt):
        as_date = raw_day if isinstance(raw_day, date) else date.fromisoformat(str(raw_day))
        result.append((as_date, int(category_id), int(count)))
    return result


async def oldest_appeal(session: AsyncSession) -> datetime | None:
    """When the first appeal came in (the created_at index answers it at once)."""
    return await session.scalar(select(func.min(Appeal.created_at)))


async def category_counts(session: AsyncSession, start: datetime, end: datetime) -> dict[int, int]:
    """Appeals per category id in [start, end): one index range scan, nothing computed per row."""
    stmt = (
        select(Appeal.category_id, func.count())
        .where(in_period(start, end))
        .group_by(Appeal.category_id)
    )
    return {int(category_id): int(count) for category_id, count in await session.execute(stmt)}


async def top_addresses(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    limit: int,
    category_id: int | None = None,
    unpinned_only: bool = False,
) -> list[tuple[str, int]]:
    conditions = [in_period(start, end), Appeal.address.is_not(None), Appeal.address != ""]
    if category_id is not None:
        conditions.append(Appeal.category_id == category_id)
    if unpinned_only:
        conditions.append(Appeal.latitude.is_(None))
    count = func.count().label("n")
    stmt = (
        select(Appeal.address, count)
        .where(*conditions)
        .group_by(Appeal.address)
        .order_by(count.desc(), Appeal.address)
        .limit(limit)
    )
    return [(str(address), int(n)) for address, n in await session.execute(stmt)]


@dataclass(frozen=True)
class PinExtent:
    pins: int
    unpinned_with_address: int
    south: float
    north: float
    west: float
    east: float


async def pin_extent(
    session: AsyncSession, start: datetime, end: datetime, category_id: int | None
) -> PinExtent:
    pinned = Appeal.latitude.is_not(None) & Appeal.longitude.is_not(None)
    unpinned = Appeal.latitude.is_(None) & Appeal.address.is_not(None) & (Appeal.address != "")
    conditions = [in_period(start, end)]
    if category_id is not None:
        conditions.append(Appeal.category_id == category_id)
    stmt = select(
        func.sum(case((pinned, 1), else_=0)),
        func.sum(case((unpinned, 1), else_=0)),
        func.min(Appeal.latitude),
        func.max(Appeal.latitude),
        func.min(Appeal.longitude),
        func.max(Appeal.longitude),
    ).where(*conditions)
    row = (await session.execute(stmt)).one()
    return PinExtent(
        int(row[0] or 0),
        int(row[1] or 0),
        float(row[2] or 0.0),
        float(row[3] or 0.0),
        float(row[4] or 0.0),
        float(row[5] or 0.0),
    )


@dataclass(frozen=True)
class Box:
    south: float
    north: float
    west: float
    east: float


async def pin_grid(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    category_id: int | None,
    box: Box,
    cells: int,
) -> list[tuple[int, int, int]]:
    """(row, column, appeals) on a ``cells`` x ``cells`` grid over the box (pins outside it are
    left out): the heat map is drawn from counts per cell, never from the individual pins."""
    lat_span = max(box.north - box.south, 1e-9)
    lon_span = max(box.east - box.west, 1e-9)
    row = _truncate(session, (Appeal.latitude - box.south) * ((cells - 1) / lat_span))
    column = _truncate(session, (Appeal.longitude - box.west) * ((cells - 1) / lon_span))
    conditions = [
        in_period(start, end),
        Appeal.latitude.between(box.south, box.north),
        Appeal.longitude.between(box.west, box.east),
    ]
    if category_id is not None:
        conditions.append(Appeal.category_id == category_id)
    stmt = select(row, column, func.count()).where(*conditions).group_by(row, column)
    return [(int(r), int(c), int(n)) for r, c, n in await session.execute(stmt)]


EXPORT_COLUMNS = (
    Appeal.number,
    Appeal.created_at,
    Appeal.first_answer_at,
    Appeal.resolved_at,
    Appeal.closed_at,
    Category.title,
    Department.name,
    Appeal.status,
    ANSWER_DUE,
    Appeal.address,
    Appeal.latitude,
    Appeal.longitude,
    Appeal.platform,
    Appeal.reopened_count,
    Appeal.solution_deadline_at,
    Appeal.taken_by_name,
)


async def export_batches(
    session: AsyncSession, start: datetime, end: datetime, batch: int = 2000
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """The period's appeals oldest first, streamed in batches (a year's export fits no list)."""
    stmt = (
        select(*EXPORT_COLUMNS)
        .join(Category, Category.id == Appeal.category_id)
        .join(Department, Department.id == Appeal.department_id)
        .where(in_period(start, end))
        .order_by(Appeal.created_at, Appeal.id)
        .execution_options(yield_per=batch)
    )
    result = await session.stream(stmt)
    async for partition in result.partitions():  # one await per batch, not per row
        yield partition
