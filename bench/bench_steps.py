"""What each step of a resident's conversation costs the core, with no Telegram in the way.

    python -m bench.bench_steps [--residents 300] [--postgres [URL]]

Residents go through the whole conversation one after another, in this process, straight
against ``IntakeService`` on a fresh database (SQLite in a temp directory; with
``--postgres`` also on a fresh database ``bench_steps`` there), each step recorded as handled
update the way the Telegram front records it. The table gives the process CPU time (aiosqlite's
thread included) and the statements per step: the part of ``bench_intake``'s cost per message
that is the bot's own storage and logic.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.postgres import DEFAULT_POSTGRES, fresh_postgres
from bot.core import texts
from bot.core.catalog import load_catalog
from bot.core.config import CoreConfig
from bot.core.intake import IntakeResult, IntakeService
from bot.core.model import InputKind, IntakeInput, Platform, ResidentRef
from bot.settings import DEFAULT_CATEGORIES_FILE
from storage.db import create_engine, session_factory
from storage.migrate import upgrade_to_head
from storage.uow import Database, handling_event

BENCH_DATABASE = "bench_steps"
WARM_UP = 20  # residents first, unmeasured: caches, the first validators, the pool


class Meter:
    """CPU time and statements, by step."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.cpu: dict[str, float] = {}
        self.statements: Counter[str] = Counter()
        self.step = ""
        self.updates = 0
        self.on = False
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        if self.on:
            self.statements[self.step] += 1

    async def measure(self, step: str, action: Callable[[], Awaitable[IntakeResult]]) -> None:
        self.updates += 1
        self.step = step
        started = time.process_time()
        with handling_event(f"tg:1:{self.updates}"):  # as OncePerUpdate records an update
            await action()
        if self.on:
            self.cpu[step] = self.cpu.get(step, 0.0) + time.process_time() - started


async def converse(intake: IntakeService, meter: Meter, n: int, category: str) -> None:
    who = ResidentRef(Platform.TELEGRAM, str(10_000 + n), str(10_000 + n), "Анна")

    def typed(words: str) -> Callable[[], Awaitable[IntakeResult]]:
        return lambda: intake.handle(who, IntakeInput(InputKind.TEXT, text=words))

    def pressed(action: str) -> Callable[[], Awaitable[IntakeResult]]:
        return lambda: intake.handle(who, IntakeInput(InputKind.ACTION, action=action))

    await meter.measure("start", lambda: intake.start(who))
    await meter.measure("category", pressed(category))
    await meter.measure("description", typed(f"Яма на дороге у дома {n}, машины объезжают"))
    await meter.measure("address", typed(f"ул. Ленина, д. {n % 200 + 1}"))
    await meter.measure("photos", typed(texts.SKIP))
    await meter.measure("phone", typed(texts.SKIP))
    await meter.measure("confirm", pressed("i:confirm:submit"))


async def run_on(url: str, label: str, residents: int) -> str:
    engine = create_engine(url)
    await upgrade_to_head(engine)
    db = Database(session_factory(engine))
    async with db.uow() as uow:
        await uow.catalog.sync(load_catalog(DEFAULT_CATEGORIES_FILE))
        await uow.commit()
        category = f"i:category:{(await uow.catalog.active_categories())[0].code}"
    config = CoreConfig(tz=ZoneInfo("Europe/Moscow"), coordinator_ids=(900,))
    intake = IntakeService(db, config, confirms_directly=(Platform.TELEGRAM.value,))
    meter = Meter(engine)
    try:
        for n in range(WARM_UP):
            await converse(intake, meter, n, category)
        meter.on = True
        for n in range(WARM_UP, WARM_UP + residents):
            await converse(intake, meter, n, category)
        async with db.uow() as uow:
            filed = await uow.session.scalar(text("SELECT count(*) FROM appeals"))
    finally:
        await engine.dispose()
    assert filed == WARM_UP + residents, f"{filed} appeals filed"
    lines = [f"{label}: {residents} residents, one after another", _header()]
    for step, seconds in meter.cpu.items():
        per = meter.statements[step] / residents
        lines.append(f"{step:<12} {1000 * seconds / residents:>9.2f} {per:>11.1f}")
    total = sum(meter.cpu.values())
    lines.append(f"{'per message':<12} {1000 * total / residents / len(meter.cpu):>9.2f}")
    return "\n".join(lines)


def _header() -> str:
    return f"{'step':<12} {'CPU ms':>9} {'statements':>11}\n" + "-" * 34


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        sqlite = f"sqlite+aiosqlite:///{Path(workdir) / 'steps.db'}"
        print(await run_on(sqlite, "SQLite", args.residents))
    if args.postgres:
        url = await fresh_postgres(args.postgres, BENCH_DATABASE)
        if url is not None:
            print()
            print(await run_on(url, "PostgreSQL", args.residents))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=300)
    parser.add_argument(
        "--postgres", nargs="?", const=DEFAULT_POSTGRES, default=None, help="also on PostgreSQL"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
