"""Intake throughput: many residents filing appeals at once, against a bare aiogram echo bot.

    python -m bench.bench_intake [--residents 1000] [--photo] [--postgres URL] [--profile]

The bot runs as ``python -m bot`` against the fake Bot API (SQLite in a temp directory; with
``--postgres`` also on a fresh database ``bench_intake`` there), with every department's group
bound, so the cards flow through the outbox while residents talk. Every resident goes through
the whole conversation at once (``bench.residents``). Then ``bench.echo_bot`` faces the same
number of residents sending as many messages: its rate of answered messages is what aiogram
and the fake manage with no bot logic at all, and ours is reported as a share of it.

``--profile`` runs our bot under cProfile and prints where its event-loop thread spends time;
the CPU time of each of its threads is printed in any case (aiosqlite runs SQLite in its own).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.chat_index import IndexedTelegram
from bench.postgres import DEFAULT_POSTGRES, fresh_postgres
from bench.processes import COORDINATOR_ID, BotSubprocess, bot_env
from bench.residents import Driver, DriveResult, Resident, percentile, step_table
from tests.fakes.fake_telegram import Request

TARGET_RATIO = 0.5
PROFILE = Path(tempfile.gettempdir()) / "priemnaya-bench-intake.prof"
ECHO_MESSAGES = 7  # what a resident sends in the whole conversation without a photo
FIRST_GROUP = -100_500_000
BENCH_DATABASE = "bench_intake"


@dataclass
class Row:
    bot: str
    database: str
    result: DriveResult
    appeals: int
    cpu_seconds: float
    threads: dict[str, float]
    calls: Counter[str] = field(default_factory=Counter)  # Bot API calls by method, no polls

    @property
    def rate(self) -> float:
        return self.result.answered / self.result.seconds


async def bind_all_groups(fake: IndexedTelegram) -> int:
    """The coordinator opens the bot and binds one group per department; returns how many."""
    coordinator = fake.user(COORDINATOR_ID, "Ольга", "Координаторова")
    since = fake.chat_mark(COORDINATOR_ID)
    fake.send_text(coordinator, "/start")
    assert await fake.wait_chat(COORDINATOR_ID, lambda r: True, since, 30) is not None
    index, departments = 0, 1
    while index < departments:
        chat_id = FIRST_GROUP - index
        fake.group(chat_id, f"Отдел {index + 1}")
        since = fake.chat_mark(chat_id)
        fake.send_text(coordinator, "/bind", chat=chat_id)
        found = await fake.wait_chat(chat_id, _bind_menu, since, 30)
        assert found is not None and found[0].message is not None, "no /bind menu"
        menu, since = found
        assert menu.message is not None
        choices = [d for d in menu.callback_data if d.startswith("b:")]
        departments = len(choices)
        fake.press_forged(coordinator, menu.message, choices[index])
        bound = await fake.wait_chat(chat_id, lambda r: "Группа привязана" in r.text, since, 30)
        assert bound is not None, f"group {chat_id} not bound"
        index += 1
    return departments


def _bind_menu(request: Request) -> bool:
    return any(d.startswith("b:") for d in request.callback_data)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of a process (the main thread is the event loop)."""
    ticks = os.sysconf("SC_CLK_TCK")
    usage: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        name = "main (event loop)" if task.name == str(pid) else name
        fields = stat.rsplit(")", 1)[1].split()
        usage[name] = usage.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return usage


async def run_ours(
    residents: int, photo: bool, database: str, label: str, workdir: Path, profile: Path | None
) -> Row:
    fake = IndexedTelegram()
    await fake.start()
    env = bot_env(fake.base_url, database)
    module = "bot"
    bot = BotSubprocess(module, env, workdir / "cwd", workdir / f"bot-{label}.log")
    if profile is not None:
        bot.module = "cProfile"
        bot.args = ["-o", str(profile), "-m", "bot"]
    try:
        await bot.start(fake)
        departments = await bind_all_groups(fake)
        print(f"{label}: {departments} department groups bound; {residents} residents start")
        driver = Driver(fake)
        cpu_before = bot.cpu_seconds()
        threads_before = thread_cpu(bot.pid)
        mark = fake.mark()
        result = await driver.drive(driver.residents(residents, photo))
        cpu = bot.cpu_seconds() - cpu_before
        threads = {
            name: seconds - threads_before.get(name, 0.0)
            for name, seconds in thread_cpu(bot.pid).items()
        }
        calls = api_calls(fake, mark)
    finally:
        await bot.stop()
        await fake.stop()
    return Row("priemnaya", label, result, len(result.numbers), cpu, threads, calls)


def api_calls(fake: IndexedTelegram, since: int) -> Counter[str]:
    """The bot's Bot API calls after ``since`` by method, long polls left out."""
    return Counter(r.method for r in fake.requests[since:] if r.name != "getupdates")


async def run_echo(residents: int, messages: int, workdir: Path) -> Row:
    fake = IndexedTelegram()
    await fake.start()
    env = bot_env(fake.base_url, "")
    bot = BotSubprocess("bench.echo_bot", env, workdir / "cwd", workdir / "echo.log")
    try:
        await bot.start(fake)
        driver = Driver(fake)
        people = driver.residents(residents)
        cpu_before = bot.cpu_seconds()
        mark = fake.mark()
        began = time.time()
        await asyncio.gather(*(echo_chat(fake, r, messages) for r in people))
        ends = [began, *(fake.by_chat[r.chat_id][-1].at for r in people if r.latencies)]
        cpu = bot.cpu_seconds() - cpu_before
        calls = api_calls(fake, mark)
    finally:
        await bot.stop()
        await fake.stop()
    return Row("aiogram echo", "—", DriveResult(people, max(ends) - began), 0, cpu, {}, calls)


async def echo_chat(fake: IndexedTelegram, resident: Resident, messages: int) -> None:
    """A resident sending ``messages`` texts, each after the echo of the one before."""
    for n in range(messages):
        text = f"Сообщение {n} от жителя {resident.index}"
        since = fake.chat_mark(resident.chat_id)
        sent_at = time.time()
        fake.send_text(resident.user, text)
        found = await fake.wait_chat(resident.chat_id, _echoes(text), since, 120)
        if found is None:
            resident.failed = f"no echo of message {n}"
            return
        resident.latencies.append((resident.reached, found[0].at - sent_at))


def _echoes(text: str) -> Callable[[Request], bool]:
    return lambda request: request.text == text


def table(rows: list[Row], echo_rate: float) -> str:
    head = (
        f"{'bot':<14}{'database':<12}{'residents':>10}{'answered':>10}{'seconds':>9}"
        f"{'updates/s':>11}{'appeals/s':>11}{'p50 s':>8}{'p95 s':>8}{'CPU s':>8}"
        f"{'CPU ms/upd':>11}{'vs echo':>9}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        result, latencies = row.result, row.result.latencies
        appeals = f"{row.appeals / result.seconds:.1f}" if row.appeals else "—"
        lines.append(
            f"{row.bot:<14}{row.database:<12}{len(result.residents):>10}{result.answered:>10}"
            f"{result.seconds:>9.1f}{row.rate:>11.1f}{appeals:>11}"
            f"{percentile(latencies, 0.5):>8.3f}{percentile(latencies, 0.95):>8.3f}"
            f"{row.cpu_seconds:>8.1f}{1000 * row.cpu_seconds / max(result.answered, 1):>11.2f}"
            f"{row.rate / echo_rate:>9.2f}"
        )
    return "\n".join(lines) + f"\ntarget: updates/s ≥ {TARGET_RATIO} × the echo bot's"


def print_profile(path: Path, top: int = 25) -> None:
    stats = pstats.Stats(str(path))
    print(f"\n== cProfile of the bot's event-loop thread ({path}), top {top} by own time ==")
    stats.sort_stats("tottime").print_stats(top)
    print(f"== top {top} by cumulative time ==")
    stats.sort_stats("cumulative").print_stats(top)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="priemnaya-intake-") as tmp:
        workdir = Path(tmp)
        echo = await run_echo(args.residents, ECHO_MESSAGES, workdir)
        print(f"echo: {echo.rate:.1f} messages answered per second")
        profile = PROFILE if args.profile else None
        sqlite = f"sqlite+aiosqlite:///{workdir / 'bot.db'}"
        rows = [
            echo,
            await run_ours(args.residents, args.photo, sqlite, "SQLite", workdir, profile),
        ]
        if args.postgres:
            url = await fresh_postgres(args.postgres, BENCH_DATABASE)
            if url is not None:
                rows.append(
                    await run_ours(args.residents, args.photo, url, "PostgreSQL", workdir, None)
                )
        for row in rows[1:]:
            print(f"\n{row.bot} on {row.database}: latency per step")
            print(step_table(row.result))
            failed = row.result.failed
            resends = sum(r.resends for r in row.result.residents)
            print(f"failed residents: {len(failed)}; steps re-sent after a timeout: {resends}")
            busy = sorted(row.threads.items(), key=lambda item: -item[1])
            print("bot CPU by thread: " + ", ".join(f"{n} {s:.1f}s" for n, s in busy if s >= 0.1))
            per_update = sum(row.calls.values()) / max(row.result.answered, 1)
            methods = ", ".join(f"{m} {n}" for m, n in row.calls.most_common())
            print(f"Bot API calls: {per_update:.2f} per update ({methods})")
        if profile is not None and profile.exists():
            print_profile(profile)
        print()
        print(table(rows, echo.rate))


def main() -> None:
    parser = argparse.ArgumentParser(description="Intake throughput against an echo bot.")
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--photo", action="store_true", help="each resident sends one photo")
    parser.add_argument(
        "--postgres", nargs="?", const=DEFAULT_POSTGRES, help="also on PostgreSQL (asyncpg URL)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile our bot (SQLite run)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
