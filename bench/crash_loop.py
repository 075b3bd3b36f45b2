"""Crash loop: ``kill -9`` of the bot at random moments of a load run, restarted at once, N times.

    python -m bench.crash_loop [--residents 300] [--crashes 10] [--seed N] [--postgres [URL]]

The fake Bot API (:class:`bench.chat_index.IndexedTelegram`) serves ``python -m bot`` on SQLite
in a temporary directory (or, with ``--postgres``, on a fresh database ``bench_crash_loop``
beside the one in the URL). The coordinator binds one group per department; then the residents
(:mod:`bench.residents`) go through the whole conversation while a staff simulator presses
«Взять в работу» (``s:take:<id>``) once on every card that arrives in a group, and again when
the appeal is still not taken a while after the press (a press lost with the bot, as staff
would). Meanwhile the bot is killed with SIGKILL at seeded random moments and started again at
once. When the residents are done, every appeal is taken, and the outbox has no pending row,
the bot is stopped and the invariants are checked against its database and the fake's log:

* every number a resident was told exists in the database, for that resident; no two residents
  were told one number; every resident was told a number;
* every outbox row was delivered; each resident got «взято в работу», a repeat at most once per
  crash per resident. In total the issue asks for no more repeats than crashes; the outbox has
  up to 16 messages on their way at once (one per chat), each of which a kill may repeat, so
  that stricter line can fail by design: both are checked, ``total ≤ 16 × crashes`` too.
* each appeal's card was posted once (twice at most, when a crash repeated it).

The table is printed; the exit code is 1 when an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.bench_intake import FIRST_GROUP, bind_all_groups
from bench.chat_index import IndexedTelegram
from bench.postgres import DEFAULT_POSTGRES, fresh_postgres
from bench.processes import BotSubprocess, bot_env
from bench.residents import NUMBER, Driver, DriveResult
from bot.core import texts
from storage.db import READ_ONLY, create_engine
from tests.fakes.fake_telegram import JSON, Request

STAFF_ID = 701
CRASH_DATABASE = "bench_crash_loop"
TAKEN = re.compile(r"Обращение № (\d{4}-\d{6}) взято в работу")
STAFF_BUTTON = re.compile(r"^s:\w+:(\d+)")
# Messages the outbox has on their way at once (``OutboxWorker(concurrency=16)``, as bot/app.py
# builds it), one per chat: a kill can repeat each of them once.
OUTBOX_IN_FLIGHT = 16


@dataclass
class Options:
    residents: int = 300
    crashes: int = 10
    seed: int = 1
    postgres: str | None = None  # an asyncpg URL: run on a fresh database beside it
    database_name: str = CRASH_DATABASE  # that fresh database's name (dropped and created)
    step_timeout: float = 30.0  # a resident re-sends a step not answered within this
    press_timeout: float = 60.0  # staff press again when the appeal is still not taken
    min_gap: float = 3.0  # seconds between a restart and the next kill (seeded uniform)
    max_gap: float = 20.0
    drain_timeout: float = 900.0  # for every appeal taken and the outbox drained
    log_level: str = "INFO"
    workdir: Path | None = None  # keep the bot's database and log here (default: a temp dir)


@dataclass
class Check:
    name: str
    value: int | float | str
    ok: bool | None = None  # None: for information


@dataclass
class Report:
    options: Options
    checks: list[Check] = field(default_factory=list)
    crash_moments: list[float] = field(default_factory=list)  # seconds into the run
    problems: list[str] = field(default_factory=list)  # details of failed invariants
    log_path: Path | None = None

    def add(self, name: str, value: int | float | str, ok: bool | None = None) -> None:
        self.checks.append(Check(name, value, ok))

    def value(self, name: str) -> int | float | str:
        return next(c.value for c in self.checks if c.name == name)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def table(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = [f"{'':<{width}}  {'value':>10}  check", "-" * (width + 20)]
        for c in self.checks:
            mark = "" if c.ok is None else ("ok" if c.ok else "FAILED")
            value = f"{c.value:.1f}" if isinstance(c.value, float) else str(c.value)
            lines.append(f"{c.name:<{width}}  {value:>10}  {mark}")
        return "\n".join(lines)


class RecordingTelegram(IndexedTelegram):
    """The fake that also keeps every update it queued (the fake drops confirmed ones), so that
    a run kept in ``--workdir`` can be read afterwards: ``updates.jsonl``, ``requests.log``."""

    def __init__(self, token: str = "123456:TEST") -> None:
        super().__init__(token)
        self.queued: list[JSON] = []

    def _queue(self, kind: str, payload: JSON) -> JSON:
        update = super()._queue(kind, payload)
        self.queued.append(update)
        return update

    def save(self, root: Path) -> None:
        with (root / "updates.jsonl").open("w", encoding="utf-8") as out:
            for update in self.queued:
                out.write(json.dumps(update, ensure_ascii=False) + "\n")
        (root / "requests.log").write_text(self.dump(), encoding="utf-8")


class StaffSimulator:
    """Takes every appeal into work as its card arrives in a department group.

    Each card is pressed once; an appeal still ``new`` in the database ``press_timeout`` after
    the last press (the press went down with the bot) is pressed again on its latest card.
    """

    def __init__(
        self, fake: IndexedTelegram, groups: list[int], engine: AsyncEngine, press_timeout: float
    ) -> None:
        self.fake = fake
        self.groups = groups
        self.engine = engine
        self.press_timeout = press_timeout
        self.staff = fake.user(STAFF_ID, "Пётр", "Сидоров")
        self.cards: dict[int, JSON] = {}  # appeal id → its latest card message
        self.pressed: dict[int, float] = {}  # appeal id → when last pressed
        self.presses = 0
        self.repressed = 0
        self._positions = dict.fromkeys(groups, 0)

    def look(self) -> None:
        """New cards in the groups: press «Взять в работу» on each appeal's first one."""
        for group in self.groups:
            log = self.fake.by_chat.get(group, [])
            while self._positions[group] < len(log):
                request = log[self._positions[group]]
                self._positions[group] += 1
                appeal_id = take_button(request)
                if appeal_id is None or request.message is None:
                    continue
                self.cards[appeal_id] = request.message
                if appeal_id not in self.pressed:
                    self.press(appeal_id)

    def press(self, appeal_id: int) -> None:
        self.fake.press_forged(self.staff, self.cards[appeal_id], f"s:take:{appeal_id}")
        self.pressed[appeal_id] = time.monotonic()
        self.presses += 1

    async def untaken(self) -> set[int]:
        """Appeals not yet taken into work, as the database says."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT id FROM appeals WHERE status = 'new'"))
            return {int(row[0]) for row in rows}

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.look()
            now = time.monotonic()
            due = [a for a, at in self.pressed.items() if now - at > self.press_timeout]
            if due:
                try:
                    untaken = await self.untaken()
                except Exception:  # the database busy: look again next round
                    untaken = set()
                for appeal_id in due:
                    if appeal_id in untaken:
                        self.repressed += 1
                        self.press(appeal_id)
                    else:
                        self.pressed[appeal_id] = float("inf")  # done with it
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass


def take_button(request: Request) -> int | None:
    """The appeal id of a card (a send with «Взять в работу») or ``None``."""
    if request.name != "sendmessage":
        return None
    for data in request.callback_data:
        if data.startswith("s:take:"):
            return int(data.split(":")[2])
    return None


def card_appeal(request: Request) -> int | None:
    """The appeal a card sent to a group is about (any staff button names it), or ``None``."""
    if request.name != "sendmessage":
        return None
    for data in request.callback_data:
        match = STAFF_BUTTON.match(data)
        if match:
            return int(match.group(1))
    return None


class Crasher:
    """Kills the bot with SIGKILL at seeded random moments and starts it again at once."""

    def __init__(
        self,
        bot: BotSubprocess,
        fake: IndexedTelegram,
        crashes: int,
        rng: random.Random,
        gaps: tuple[float, float],
    ) -> None:
        self.bot = bot
        self.fake = fake
        self.crashes = crashes
        self.rng = rng
        self.gaps = gaps
        self.moments: list[float] = []
        self.restart_seconds: list[float] = []

    async def run(self, began: float) -> None:
        for _ in range(self.crashes):
            await asyncio.sleep(self.rng.uniform(*self.gaps))
            self.moments.append(time.monotonic() - began)
            await self.bot.kill()
            started = time.monotonic()
            await self.bot.start(self.fake)
            self.restart_seconds.append(time.monotonic() - started)


@contextmanager
def _workdir(chosen: Path | None) -> Iterator[Path]:
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        yield chosen
        return
    with tempfile.TemporaryDirectory(prefix="priemnaya-crash-") as tmp:
        yield Path(tmp)


async def run_crash_loop(options: Options) -> Report:
    """The whole loop; the report holds the table and whether every invariant held."""
    report = Report(options)
    rng = random.Random(options.seed)
    with _workdir(options.workdir) as root:
        if options.postgres:
            database = await fresh_postgres(options.postgres, options.database_name)
            if database is None:
                raise RuntimeError(f"PostgreSQL not reachable at {options.postgres}")
        else:
            database = f"sqlite+aiosqlite:///{root / 'bot.db'}"
        report.log_path = root / "bot.log"
        fake = RecordingTelegram()
        await fake.start()
        env = bot_env(fake.base_url, database, LOG_LEVEL=options.log_level)
        bot = BotSubprocess("bot", env, root / "cwd", report.log_path)
        reader = create_engine(database, execution_options={READ_ONLY: True})
        try:
            await bot.start(fake)
            departments = await bind_all_groups(fake)
            groups = [FIRST_GROUP - index for index in range(departments)]
            driver = Driver(fake, step_timeout=options.step_timeout)
            residents = driver.residents(options.residents)
            staff = StaffSimulator(fake, groups, reader, options.press_timeout)
            crasher = Crasher(bot, fake, options.crashes, rng, (options.min_gap, options.max_gap))
            stop_staff = asyncio.Event()
            began = time.monotonic()
            staff_task = asyncio.create_task(staff.run(stop_staff))
            crash_task = asyncio.create_task(crasher.run(began))
            try:
                result = await driver.drive(residents)
                driven = time.monotonic() - began
                await crash_task
                await _settle(staff, reader, options.residents, options.drain_timeout)
            finally:
                stop_staff.set()
                crash_task.cancel()
                await asyncio.gather(staff_task, crash_task, return_exceptions=True)
            wall = time.monotonic() - began
            await bot.stop()
            report.crash_moments = crasher.moments
            await verify(report, fake, reader, result, groups, staff, crasher, driven, wall)
        finally:
            await bot.stop()
            await reader.dispose()
            await fake.stop()
            if options.workdir is not None:
                fake.save(root)
        if options.workdir is None:
            report.log_path = None  # gone with the temp dir
    return report


async def _settle(
    staff: StaffSimulator, engine: AsyncEngine, residents: int, timeout: float
) -> None:
    """Until every appeal is taken and the outbox has no pending row (the bot is up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with engine.connect() as conn:
                untaken = await conn.scalar(
                    text("SELECT count(*) FROM appeals WHERE status = 'new'")
                )
                pending = await conn.scalar(
                    text("SELECT count(*) FROM outbox WHERE status = 'pending'")
                )
        except Exception:
            untaken = pending = -1
        if untaken == 0 and pending == 0:
            return
        if time.monotonic() > deadline:
            print(
                f"gave up waiting after {timeout:.0f}s: {untaken} appeals not taken, "
                f"{pending} outbox rows pending",
                file=sys.stderr,
            )
            return
        await asyncio.sleep(0.5)


async def verify(
    report: Report,
    fake: IndexedTelegram,
    engine: AsyncEngine,
    result: DriveResult,
    groups: list[int],
    staff: StaffSimulator,
    crasher: Crasher,
    driven: float,
    wall: float,
) -> None:
    crashes = len(crasher.moments)
    async with engine.connect() as conn:
        appeals = (
            await conn.execute(
                text(
                    "SELECT a.id, a.number, a.status, r.chat_id FROM appeals a "
                    "JOIN residents r ON r.id = a.resident_id"
                )
            )
        ).all()
        outbox = Counter(
            {
                str(row[0]): int(row[1])
                for row in await conn.execute(
                    text("SELECT status, count(*) FROM outbox GROUP BY status")
                )
            }
        )
        echoed = await conn.scalar(text("SELECT count(*) FROM appeals WHERE address = description"))
        undelivered_rows = (
            await conn.execute(
                text(
                    "SELECT id, kind, chat_id, status, attempts, last_error FROM outbox "
                    "WHERE status NOT IN ('sent', 'cancelled') ORDER BY id LIMIT 20"
                )
            )
        ).all()
    by_number = {str(a.number): a for a in appeals}
    number_count = Counter(str(a.number) for a in appeals)
    appeals_of = Counter(str(a.chat_id) for a in appeals)

    # What each resident was told: what the driver recorded, and any later «принято» in the
    # chat (a resident whose re-sent «Отправить» got «уже отправлено» sees it a moment later).
    told: dict[int, set[str]] = {}
    taken_notices: dict[int, Counter[str]] = {}
    asked_again = 0  # «продолжим с того же места» after a restart (a step's answer may be lost)
    for resident in result.residents:
        numbers = {resident.number} if resident.number else set()
        notices: Counter[str] = Counter()
        for request in fake.by_chat.get(resident.chat_id, []):
            if request.name != "sendmessage":
                continue
            match = NUMBER.search(request.text)
            if match:
                numbers.add(match.group(1))
            taken = TAKEN.search(request.text)
            if taken:
                notices[taken.group(1)] += 1
            asked_again += request.text == texts.ASKED_AGAIN
        told[resident.chat_id] = numbers
        taken_notices[resident.chat_id] = notices

    all_told = [n for numbers in told.values() for n in numbers]
    missing = [n for n in set(all_told) if n not in by_number]
    wrong_owner = [
        (chat, n)
        for chat, numbers in told.items()
        for n in numbers
        if n in by_number and str(by_number[n].chat_id) != str(chat)
    ]
    shared = [n for n, c in Counter(all_told).items() if c > 1]
    db_duplicates = [n for n, c in number_count.items() if c > 1]
    without = [r for r in result.residents if not told[r.chat_id]]
    several = [chat for chat, c in appeals_of.items() if c > 1]

    # «Взято в работу»: every resident's appeal, repeats bounded by the crashes.
    unnotified: list[str] = []
    repeats_total = 0
    worst_repeat = 0
    for resident in result.residents:
        notices = taken_notices[resident.chat_id]
        for number in told[resident.chat_id]:
            if notices[number] == 0:
                unnotified.append(number)
        repeats = sum(max(0, c - 1) for c in notices.values())
        repeats_total += repeats
        worst_repeat = max(worst_repeat, repeats)

    # Cards: posts per appeal in the groups.
    posts: Counter[int] = Counter()
    for group in groups:
        for request in fake.by_chat.get(group, []):
            appeal_id = card_appeal(request)
            if appeal_id is not None:
                posts[appeal_id] += 1
    ids = [int(a.id) for a in appeals]
    no_card = [i for i in ids if posts[i] == 0]
    reposted = [i for i in ids if posts[i] == 2]
    too_many = [i for i in ids if posts[i] > 2]
    not_taken = [str(a.number) for a in appeals if a.status == "new"]

    queued = sum(outbox.values())
    undelivered = queued - outbox["sent"] - outbox["cancelled"]
    add = report.add
    add("residents", len(result.residents))
    add("crashes (kill -9)", crashes, crashes == report.options.crashes)
    add("appeals in DB", len(appeals))
    add("numbers told", len(set(all_told)))
    add("told but missing in DB", len(missing), not missing)
    add("told a number of another resident", len(wrong_owner), not wrong_owner)
    add(
        "duplicate numbers (told or in DB)",
        len(shared) + len(db_duplicates),
        not (shared or db_duplicates),
    )
    add("residents without a number", len(without), not without)
    add("residents with >1 appeal", len(several))
    add("residents the driver gave up on", len(result.failed))
    add("steps re-sent after a timeout", sum(r.resends for r in result.residents))
    add("steps asked again after a restart", asked_again)
    add("appeals whose address repeats the description", int(echoed or 0))
    add("appeals not taken into work", len(not_taken), not not_taken)
    add("staff presses (again after timeout)", f"{staff.presses} ({staff.repressed})")
    add("notifications queued (outbox rows)", queued)
    add("delivered", outbox["sent"])
    add("cancelled (superseded)", outbox["cancelled"])
    add("undelivered", undelivered, undelivered == 0)
    add("residents missing «взято в работу»", len(unnotified), not unnotified)
    add("dup. «взято в работу», total", repeats_total, repeats_total <= crashes)
    add(
        f"dup. «взято в работу», total ≤ {OUTBOX_IN_FLIGHT} × crashes",
        repeats_total,
        repeats_total <= OUTBOX_IN_FLIGHT * crashes,
    )
    add("dup. «взято в работу», worst resident", worst_repeat, worst_repeat <= crashes)
    add("appeals without a card", len(no_card), not no_card)
    add("cards posted twice (crash repeat)", len(reposted))
    add("cards posted 3+ times", len(too_many), not too_many)
    restarts = crasher.restart_seconds
    add("restart seconds (mean / max)", f"{_mean(restarts):.1f} / {max(restarts, default=0):.1f}")
    add("driver seconds", driven)
    add("wall seconds (to drained outbox)", wall)

    problems = report.problems
    if missing:
        problems.append(f"told but missing: {sorted(missing)[:20]}")
    if wrong_owner:
        problems.append(f"told another resident's number: {wrong_owner[:20]}")
    if shared or db_duplicates:
        problems.append(f"duplicate numbers: told {shared[:20]}, in DB {db_duplicates[:20]}")
    if without:
        problems.append(
            "without a number: "
            + ", ".join(f"{r.chat_id} (reached {r.reached}, {r.failed})" for r in without[:20])
        )
    if not_taken:
        problems.append(f"not taken: {not_taken[:20]}")
    if undelivered_rows:
        problems.append("undelivered outbox rows: " + "; ".join(map(str, undelivered_rows)))
    if unnotified:
        problems.append(f"no «взято в работу» for: {sorted(unnotified)[:20]}")
    if repeats_total > crashes:
        heavy = {
            chat: {n: c for n, c in notices.items() if c > 1}
            for chat, notices in taken_notices.items()
            if any(c > 1 for c in notices.values())
        }
        problems.append(f"«взято в работу» repeated: {dict(list(heavy.items())[:20])}")
    if too_many or no_card:
        problems.append(f"cards: none for {no_card[:20]}, 3+ for {too_many[:20]}")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def print_report(report: Report) -> None:
    options = report.options
    where = "PostgreSQL" if options.postgres else "SQLite"
    print(
        f"\ncrash loop: {options.residents} residents, {options.crashes} × kill -9, "
        f"seed {options.seed}, {where}"
    )
    moments = ", ".join(f"{m:.1f}" for m in report.crash_moments)
    print(f"kills at (s into the run): {moments}")
    print(report.table())
    for problem in report.problems:
        print(f"  ! {problem}")
    if report.log_path is not None:
        print(f"bot log: {report.log_path}")
    print(
        "ALL INVARIANTS HOLD" if not report.failed else f"{len(report.failed)} INVARIANT(S) FAILED"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="kill -9 the bot repeatedly during a load run.")
    parser.add_argument("--residents", type=int, default=300)
    parser.add_argument("--crashes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--postgres", nargs="?", const=DEFAULT_POSTGRES, help="run on PostgreSQL (asyncpg URL)"
    )
    parser.add_argument("--step-timeout", type=float, default=Options.step_timeout)
    parser.add_argument("--press-timeout", type=float, default=Options.press_timeout)
    parser.add_argument("--min-gap", type=float, default=Options.min_gap)
    parser.add_argument("--max-gap", type=float, default=Options.max_gap)
    parser.add_argument("--workdir", type=Path, help="keep the database and the bot's log here")
    args = parser.parse_args(argv)
    options = Options(
        residents=args.residents,
        crashes=args.crashes,
        seed=args.seed,
        postgres=args.postgres,
        step_timeout=args.step_timeout,
        press_timeout=args.press_timeout,
        min_gap=args.min_gap,
        max_gap=args.max_gap,
        workdir=args.workdir,
    )
    report = asyncio.run(run_crash_loop(options))
    print_report(report)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
