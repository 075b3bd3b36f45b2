"""The coordinator's figures for a period: counts, answer times, on-time share, spikes.

The database aggregates (storage/report_queries.py); this module only adds up a few hundred
grouped rows and decides what counts as a spike.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.config import CoreConfig
from bot.core.export import write_xlsx
from bot.core.periods import Period
from storage import report_queries as q
from storage.models import Appeal
from storage.uow import Database

BASELINE_PERIODS = 8  # how many preceding periods of the same length make a category's norm
BASELINE_DAYS = 120  # …within about four months: older seasons are a different norm
MIN_BASELINE_PERIODS = 3
SPIKE_MIN_COUNT = 5  # fewer appeals than this is never a spike, whatever the norm
SPIKE_SIGMAS = 2.0
SPIKE_MIN_RATIO = 1.5  # and at least this many times the norm, so a tiny σ cannot fire it
TOP_ADDRESSES = 5
HISTORY_TOLERANCE = timedelta(days=1)  # a period that began on the first appeal's day counts
MAP_CELLS = 120  # the heat map's grid: at most 120 x 120 cells over the pins' extent
MAP_MIN_CELLS = 20
MAP_MIN_KM = 2.0  # a handful of pins in one street still shows its neighbourhood
MAP_MIN_CELL_KM = 0.15
MAP_UNPINNED_ADDRESSES = 10
MAP_FOCUS_SHARE = 0.98  # the map shows where 98 % of the pins are; the rest are counted


@dataclass(frozen=True)
class Spike:
    category: str
    count: int
    baseline_mean: float
    baseline_sd: float


@dataclass(frozen=True)
class TimeFigures:
    """Seconds from filing to an event: median and 90th percentile, over ``count`` appeals."""

    count: int
    median: float | None
    p90: float | None


@dataclass
class StatsReport:
    period: Period
    total: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_department: Counter[str] = field(default_factory=Counter)
    by_platform: Counter[str] = field(default_factory=Counter)
    on_time: int = 0
    late: int = 0
    reopened: int = 0
    first_answer: TimeFigures = TimeFigures(0, None, None)
    solution: TimeFigures = TimeFigures(0, None, None)
    top_addresses: list[tuple[str, int]] = field(default_factory=list)
    spikes: list[Spike] = field(default_factory=list)
    spike_norm_periods: int = 0  # how many earlier periods the spikes were measured against
    # The daily flow for the chart: category title -> appeals per day of the period.
    daily: dict[str, list[int]] = field(default_factory=dict)

    @property
    def on_time_share(self) -> float | None:
        judged = self.on_time + self.late
        return self.on_time / judged if judged else None

    @property
    def reopened_share(self) -> float | None:
        return self.reopened / self.total if self.total else None


def find_spikes(
    current: dict[str, int], baseline: dict[str, list[int]], min_count: int = SPIKE_MIN_COUNT
) -> list[Spike]:
    """Categories whose count clearly exceeds their own norm: above mean + 2σ of the preceding
    periods, at least 1.5 times the mean, and not a handful of appeals."""
    spikes = []
    for category, count in current.items():
        history = baseline.get(category, [])
        if not history or count < min_count:
            continue
        mean = statistics.fmean(history)
        sd = statistics.pstdev(history)
        if count > mean + SPIKE_SIGMAS * sd and count >= SPIKE_MIN_RATIO * mean:
            spikes.append(Spike(category, count, mean, sd))
    return sorted(spikes, key=lambda s: s.count - s.baseline_mean, reverse=True)


@dataclass(frozen=True)
class HeatMap:
    extent: q.PinExtent  # every pin of the period
    box: q.Box  # the area drawn: where nearly all pins are, at least MAP_MIN_KM across
    cells: list[tuple[int, int, int]]  # (row, column, appeals) on a size x size grid over box
    outside: int  # pins beyond the box: a few far-off villages would shrink the city to a dot
    unpinned_addresses: list[tuple[str, int]]
    size: int = MAP_CELLS  # cells across


def frame(box: q.Box) -> tuple[q.Box, int]:
    """The area to draw around ``box``: square in kilometres, never under MAP_MIN_KM across,
    with a margin so that pins on the edge are drawn; and how many cells across, so that a
    cell is never smaller than MAP_MIN_CELL_KM (a few pins in a street stay visible)."""
    middle_lat = (box.south + box.north) / 2
    middle_lon = (box.west + box.east) / 2
    km_lat = 111.32
    km_lon = max(km_lat * math.cos(math.radians(middle_lat)), 1.0)
    side = max((box.north - box.south) * km_lat, (box.east - box.west) * km_lon, MAP_MIN_KM)
    side *= 1.1
    half_lat, half_lon = side / 2 / km_lat, side / 2 / km_lon
    framed = q.Box(
        middle_lat - half_lat, middle_lat + half_lat, middle_lon - half_lon, middle_lon + half_lon
    )
    return framed, max(MAP_MIN_CELLS, min(MAP_CELLS, round(side / MAP_MIN_CELL_KM)))


def focus(cells: list[tuple[int, int, int]], size: int, box: q.Box, share: float) -> q.Box:
    """The smallest box holding ``share`` of the pins by rows and by columns (trimming equally
    from both sides), from the counts of a coarse grid over ``box``."""
    total = sum(count for _, _, count in cells)
    rows, columns = [0] * size, [0] * size
    for row, column, count in cells:
        rows[min(max(row, 0), size - 1)] += count
        columns[min(max(column, 0), size - 1)] += count

    def span(marginal: list[int]) -> tuple[int, int]:
        trim = total * (1 - share) / 2
        low, seen = 0, 0
        while low < size - 1 and seen + marginal[low] <= trim:
            seen += marginal[low]
            low += 1
        high, seen = size - 1, 0
        while high > low and seen + marginal[high] <= trim:
            seen += marginal[high]
            high -= 1
        return low, high

    lat_step = (box.north - box.south) / (size - 1)
    lon_step = (box.east - box.west) / (size - 1)
    (low_row, high_row), (low_column, high_column) = span(rows), span(columns)
    return q.Box(
        box.south + low_row * lat_step,
        box.south + (high_row + 1) * lat_step,
        box.west + low_column * lon_step,
        box.west + (high_column + 1) * lon_step,
    )


@asynccontextmanager
async def reading(db: Database) -> AsyncIterator[AsyncSession]:
    """A session that only reads: on SQLite it takes no write lock, so a report over months of
    appeals never makes a resident's new appeal wait."""
    async with db.uow(read_only=True) as uow:
        yield uow.session


class ReportService:
    def __init__(self, db: Database, config: CoreConfig) -> None:
        self.db = db
        self.config = config

    async def _names(self) -> tuple[dict[int, str], dict[int, str], list[str]]:
        async with reading(self.db) as session:
            categories = await q.categories(session)
            departments = await q.departments(session)
        titles = {c.id: c.title for c in categories}
        return titles, {d.id: d.name for d in departments}, [c.title for c in categories]

    async def stats(self, period: Period, now: datetime) -> StatsReport:
        titles, departments, order = await self._names()
        report = StatsReport(period)
        async with reading(self.db) as session:
            rows = await q.breakdown(session, period.start, period.end, now)
        answered = resolved = 0
        for row in rows:
            report.total += row.count
            report.by_status[row.status] += row.count
            report.by_category[titles.get(row.category_id, "?")] += row.count
            report.by_department[departments.get(row.department_id, "?")] += row.count
            report.by_platform[row.platform] += row.count
            report.on_time += row.on_time
            report.late += row.late
            report.reopened += row.reopened
            answered += row.answered
            resolved += row.resolved
        # The rest does not depend on each other: each on a connection of its own, so that the
        # database works on them side by side (SQLite in WAL mode reads in parallel too).
        (
            report.first_answer,
            report.solution,
            report.top_addresses,
            (report.spikes, report.spike_norm_periods),
            report.daily,
        ) = await asyncio.gather(
            self._times(period, q.RESPONDED_AT, answered),
            self._times(period, Appeal.resolved_at, resolved),
            self._top_addresses(period),
            self._spikes(period, titles, report.by_category),
            self._daily(period, titles, order),
        )
        return report

    async def _top_addresses(self, period: Period) -> list[tuple[str, int]]:
        async with reading(self.db) as session:
            return await q.top_addresses(session, period.start, period.end, TOP_ADDRESSES)

    async def _times(self, period: Period, until: q.Column, count: int) -> TimeFigures:
        async with reading(self.db) as session:
            median, p90 = await q.percentiles(
                session, period.start, period.end, until, count, (0.5, 0.9)
            )
        return TimeFigures(count, median, p90)

    async def _spikes(
        self,
        period: Period,
        titles: dict[int, str],
        current: Counter[str],
    ) -> tuple[list[Spike], int]:
        """The period against the same stretch of each of the preceding periods: for «today» up
        to 15:40, the same hours of the previous days; for a week, the previous weeks.

        Periods that began before the first appeal are left out of the norm: the service was
        not running for all of them, and their low counts would make every week a spike."""
        length = period.end - period.start
        periods = BASELINE_DAYS // period.step.days
        periods = max(MIN_BASELINE_PERIODS, min(BASELINE_PERIODS, periods))
        starts = [period.start - back * period.step for back in range(1, periods + 1)]
        baseline: dict[str, list[int]] = {title: [] for title in titles.values()}
        async with reading(self.db) as session:
            oldest = await q.oldest_appeal(session)
            if length.total_seconds() <= 0 or oldest is None:
                return [], 0
            # One small query per window: each is a plain range scan of the covering index,
            # far cheaper than sorting every row of the whole span into windows with CASE.
            usable = [start for start in starts if start >= oldest - HISTORY_TOLERANCE]
            for start in usable:
                counts = await q.category_counts(session, start, start + length)
                for category_id, title in titles.items():
                    baseline[title].append(counts.get(category_id, 0))
        return find_spikes(dict(current), baseline), len(usable)

    async def _daily(
        self, period: Period, titles: dict[int, str], order: list[str]
    ) -> dict[str, list[int]]:
        days = period.days
        index: dict[date, int] = {day: i for i, day in enumerate(days)}
        offset = period.start.utcoffset()
        assert offset is not None
        flow: dict[str, list[int]] = {}
        async with reading(self.db) as session:
            counted = await q.daily_counts(session, period.start, period.end, offset)
        for day, category_id, count in counted:
            if day in index:
                flow.setdefault(titles.get(category_id, "?"), [0] * len(days))[index[day]] += count
        return {title: flow[title] for title in order if title in flow} | {
            title: counts for title, counts in flow.items() if title not in order
        }

    async def category_by_word(self, word: str) -> tuple[int, str] | list[str]:
        """A category (id, title) by its code or title as a coordinator types it, in any case;
        when none matches, the titles that would."""
        wanted = word.strip().casefold()
        async with reading(self.db) as session:
            categories = await q.categories(session)
        for category in categories:
            if wanted in (category.code.casefold(), category.title.casefold()):
                return category.id, category.title
        return [category.title for category in categories if category.active]

    async def heat_map(self, period: Period, category_id: int | None) -> HeatMap:
        async with reading(self.db) as session:
            extent = await q.pin_extent(session, period.start, period.end, category_id)
            cells: list[tuple[int, int, int]] = []
            box = q.Box(extent.south, extent.north, extent.west, extent.east)
            size = MAP_CELLS
            if extent.pins:
                args = (session, period.start, period.end, category_id)
                coarse = await q.pin_grid(*args, box, MAP_CELLS)
                box, size = frame(focus(coarse, MAP_CELLS, box, MAP_FOCUS_SHARE))
                cells = await q.pin_grid(*args, box, size)
            addresses = []
            if extent.unpinned_with_address:
                addresses = await q.top_addresses(
                    session,
                    period.start,
                    period.end,
                    MAP_UNPINNED_ADDRESSES,
                    category_id=category_id,
                    unpinned_only=True,
                )
        outside = extent.pins - sum(count for _, _, count in cells)
        return HeatMap(extent, box, cells, outside, addresses, size)

    async def export(self, period: Period, now: datetime) -> tuple[bytes, int]:
        """The workbook and how many appeals it holds."""
        async with reading(self.db) as session:
            batches = q.export_batches(session, period.start, period.end)
            return await write_xlsx(batches, self.config.tz, now)
