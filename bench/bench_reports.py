"""Time the coordinator's reports on a realistic database.

    python -m bench.bench_reports --appeals 1000000 [--postgres URL] [--refill]

Fills (once; reused while the count matches) a SQLite file and, when reachable, a PostgreSQL
schema with ``bench.fill``, then times each case as the bot runs it minus Telegram: the SQL,
the text, and the PNG or XLSX. Prints the median of ``--repeat`` runs after one warm-up.

To time something new, append a ``(name, async callable)`` pair to ``CASES``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.fill import DAYS, REGION_TZ, FillPlan, fill
from bench.postgres import DEFAULT_POSTGRES
from bot.core import charts
from bot.core.config import CoreConfig
from bot.core.escalation import scan
from bot.core.overdue import overdue, render
from bot.core.periods import Period, last_days
from bot.core.report_render import stats_text
from bot.core.reports import ReportService
from storage.db import create_engine, session_factory
from storage.models import Appeal
from storage.uow import Database

SCHEMA = "bench_reports"
TARGET_SECONDS = 1.0


@dataclass(frozen=True)
class Bench:
    reports: ReportService
    now: datetime
    db: Database
    config: CoreConfig

    def days(self, count: int) -> Period:
        return last_days(count, self.now, REGION_TZ)


async def stats(bench: Bench, period: Period) -> None:
    report = await bench.reports.stats(period, bench.now)
    stats_text(report)
    charts.daily_flow(period.days, report.daily, "bench")


async def heat_map(bench: Bench, period: Period) -> None:
    data = await bench.reports.heat_map(period, None)
    box = data.box
    charts.heat_map(data.cells, data.size, box.south, box.north, box.west, box.east, "bench")


async def export(bench: Bench, period: Period) -> None:
    await bench.reports.export(period, bench.now)


async def overdue_page(bench: Bench, department_id: int | None) -> None:
    page = await overdue(bench.db, bench.config, bench.now, department_id, 0)
    render(page)


async def deadline_scan(bench: Bench) -> None:
    """One run of the minute's scan, as the scheduler starts it (what is due gets its step)."""
    await scan(bench.db, bench.config, bench.now)


Case = tuple[str, Callable[[Bench], Awaitable[None]]]
CASES: list[Case] = [
    ("/stats today", lambda b: stats(b, b.days(1))),
    ("/stats 7 days", lambda b: stats(b, b.days(7))),
    ("/stats 30 days", lambda b: stats(b, b.days(30))),
    (f"/stats whole range ({DAYS} days)", lambda b: stats(b, b.days(DAYS))),
    ("/map 7 days", lambda b: heat_map(b, b.days(7))),
    ("/export 7 days (XLSX)", lambda b: export(b, b.days(7))),
    ("/overdue, all departments", lambda b: overdue_page(b, None)),
    ("/overdue, one department", lambda b: overdue_page(b, 2)),
    ("deadline scan (every minute)", deadline_scan),
]


async def appeal_count(engine: AsyncEngine) -> int:
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(Appeal)) or 0)
    except Exception:
        return -1  # no schema yet


async def prepare(engine: AsyncEngine, appeals: int, refill: bool, label: str) -> datetime:
    """The database filled with ``appeals``; returns the 'now' the data ends at."""
    if refill or await appeal_count(engine) != appeals:
        print(f"{label}: filling {appeals:,} appeals…")
        await fill(engine, FillPlan(appeals, datetime.now(UTC)))
    async with engine.connect() as conn:
        last = await conn.scalar(select(func.max(Appeal.created_at)))
    assert isinstance(last, datetime)
    return max(datetime.now(UTC), last)


async def time_cases(engine: AsyncEngine, now: datetime, repeat: int) -> dict[str, float]:
    config = CoreConfig(tz=REGION_TZ)
    db = Database(session_factory(engine))
    bench = Bench(ReportService(db, config), now, db, config)
    timings = {}
    for name, case in CASES:
        await case(bench)  # warm-up: caches, prepared statements, matplotlib's fonts
        runs = []
        for _ in range(repeat):
            began = time.perf_counter()
            await case(bench)
            runs.append(time.perf_counter() - began)
        timings[name] = statistics.median(runs)
        print(f"  {name}: {timings[name]:.3f}s")
    return timings


async def postgres_engine(url: str) -> AsyncEngine | None:
    admin = create_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
    except Exception as exc:
        print(f"PostgreSQL not reachable at {url} ({exc.__class__.__name__}): skipped")
        return None
    finally:
        await admin.dispose()
    return create_engine(url, connect_args={"server_settings": {"search_path": SCHEMA}})


def table(appeals: int, columns: dict[str, dict[str, float]]) -> str:
    names = [name for name, _ in CASES]
    width = max(len(name) for name in names) + 2
    head = f"{'case':<{width}}" + "".join(f"{db:>14}" for db in columns)
    lines = [f"{appeals:,} appeals, median of runs, seconds (target < {TARGET_SECONDS:g}s)", head]
    lines.append("-" * len(head))
    for name in names:
        cells = ""
        for timings in columns.values():
            seconds = timings.get(name)
            mark = "" if seconds is None or seconds < TARGET_SECONDS else " !"
            cells += f"{'—' if seconds is None else f'{seconds:.3f}{mark}':>14}"
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> None:
    columns: dict[str, dict[str, float]] = {}
    sqlite_path = Path(
        args.sqlite or Path(tempfile.gettempdir()) / f"priemnaya-bench-{args.appeals}.db"
    )
    engines: list[tuple[str, AsyncEngine | None]] = [
        ("SQLite", create_engine(f"sqlite+aiosqlite:///{sqlite_path}"))
    ]
    if not args.no_postgres:
        engines.append(("PostgreSQL", await postgres_engine(args.postgres)))
    for label, engine in engines:
        if engine is None:
            continue
        try:
            now = await prepare(engine, args.appeals, args.refill, label)
            print(f"{label}:")
            columns[label] = await time_cases(engine, now, args.repeat)
        finally:
            await engine.dispose()
    print()
    print(table(args.appeals, columns))


def main() -> None:
    parser = argparse.ArgumentParser(description="Time /stats, /map and /export.")
    parser.add_argument("--appeals", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="an asyncpg URL")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--sqlite", help="the SQLite file (default: in the temp directory)")
    parser.add_argument("--refill", action="store_true", help="fill again even if filled")
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
