"""The bot's memory: resident set size idle, and with many conversations half-finished.

    python -m bench.bench_memory [--drafts 10000] [--batch 500] [--step-timeout 60]

Starts ``python -m bot`` (SQLite) against the fake Bot API, reads VmRSS from /proc after it
settles, then drives ``--drafts`` residents through /start and the category button to the
description step (``--batch`` of them at a time, so the latency stays below the driver's
re-send timeout) and reads VmRSS again. Drafts live in the database; what the process keeps
per conversation (caches, per-user state in the framework) shows up as KB per draft.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.chat_index import IndexedTelegram
from bench.processes import BotSubprocess, bot_env
from bench.residents import Driver, Step

TARGET_MB = 200.0
SETTLE_SECONDS = 5.0


async def echo_idle_mb(fake: IndexedTelegram, root: Path) -> float:
    """A bare aiogram echo bot's RSS after start: the floor the framework itself sets."""
    env = bot_env(fake.base_url, f"sqlite+aiosqlite:///{root / 'unused.db'}")
    echo = BotSubprocess("bench.echo_bot", env, root / "echo-cwd", root / "echo.log")
    try:
        await echo.start(fake)
        await asyncio.sleep(SETTLE_SECONDS)
        return echo.rss_mb()
    finally:
        await echo.stop()


async def run(args: argparse.Namespace) -> None:
    fake = IndexedTelegram()
    await fake.start()
    with tempfile.TemporaryDirectory(prefix="priemnaya-echo-") as tmp:
        floor = await echo_idle_mb(fake, Path(tmp))
    print(f"aiogram echo bot idle: {floor:.1f} MB")
    with tempfile.TemporaryDirectory(prefix="priemnaya-memory-") as tmp:
        root = Path(tmp)
        env = bot_env(fake.base_url, f"sqlite+aiosqlite:///{root / 'bot.db'}")
        bot = BotSubprocess("bot", env, root / "cwd", root / "bot.log")
        try:
            await bot.start(fake)
            await asyncio.sleep(SETTLE_SECONDS)
            idle = bot.rss_mb()
            print(f"idle: {idle:.1f} MB")
            driver = Driver(fake, step_timeout=args.step_timeout, stop_at=Step.DESCRIPTION)
            began, reached, failed = time.monotonic(), 0, 0
            for offset in range(0, args.drafts, args.batch):
                count = min(args.batch, args.drafts - offset)
                result = await driver.drive(driver.residents(count, offset=offset))
                reached += sum(1 for r in result.residents if r.reached is Step.DESCRIPTION)
                failed += len(result.failed)
                print(
                    f"{offset + count} residents at the description step after "
                    f"{time.monotonic() - began:.0f}s: {bot.rss_mb():.1f} MB"
                )
            await asyncio.sleep(SETTLE_SECONDS)
            loaded, peak = bot.rss_mb(), bot.peak_rss_mb()
        finally:
            await bot.stop()
            await fake.stop()
    per_draft = (loaded - idle) * 1024 / max(reached, 1)
    mark = "" if peak <= TARGET_MB else "  (over target)"
    print()
    print(f"{'measure':<38}{'value':>12}")
    print("-" * 50)
    print(f"{'aiogram echo bot, idle (the floor)':<38}{floor:>9.1f} MB")
    print(f"{'RSS idle after start':<38}{idle:>9.1f} MB")
    print(f"{f'RSS with {reached:,} drafts (description step)':<38}{loaded:>9.1f} MB")
    print(f"{'peak RSS (VmHWM)':<38}{peak:>9.1f} MB{mark}")
    print(f"{'per draft':<38}{per_draft:>9.2f} KB")
    print(f"{'residents failed':<38}{failed:>12}")
    print(f"target: ≤ {TARGET_MB:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description="The bot's RSS idle and with many drafts.")
    parser.add_argument("--drafts", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--step-timeout", type=float, default=60.0, help="re-send after (s)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
