"""Delivery at the platform limit: the real OutboxWorker and senders against fakes that
enforce Telegram's and VK's limits.

    python -m bench.bench_delivery [--messages 5000] [--residents 1000] [--groups 10]
                                   [--group-share 0.1] [--platform telegram|vk|both] [--unlimited]

Queues ``--messages`` texts (a share to department groups, the rest to residents, shuffled)
in a fresh SQLite database, runs ``OutboxWorker.run`` until every one has arrived, and
compares the time with the least the limits allow for that mix. ``--unlimited`` lifts the
limits on both sides (Telegram only) to show how fast the worker itself can go. Every text
is unique, so the fake counts what was lost or arrived twice.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bench.limited_platforms import (
    TELEGRAM_GROUP_PER_MINUTE,
    TELEGRAM_PER_SECOND,
    TELEGRAM_PRIVATE_INTERVAL,
    VK_PER_SECOND,
    LimitedTelegram,
    LimitedVK,
)
from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.ports import Sender
from bot.core.ratelimit import TELEGRAM_LIMITS, VK_LIMITS, Limits, RateLimiter
from handlers.telegram.sender import TelegramSender, is_group_chat
from handlers.vk.client import VkClient
from handlers.vk.sender import VkSender
from storage.db import create_engine, session_factory
from storage.migrate import upgrade_to_head
from storage.uow import Database

TOKEN = "123456:BENCH"
VK_TOKEN = "vk1.a.bench-community-token"
FIRST_RESIDENT = 5_550_000
FIRST_GROUP = -100_700_000
TARGET_SHARE = 0.9
TIMEOUT = 900.0
NO_LIMITS = Limits(per_second=100_000, private_interval=0.0, group_per_minute=0, spaced=False)


@dataclass
class Outcome:
    platform: str
    messages: int
    seconds: float
    bound: float  # the least time the limits allow
    refusals: int
    lost: int
    doubled: int

    @property
    def share(self) -> float:
        return self.bound / self.seconds if self.seconds else 0.0


def mix(args: argparse.Namespace, platform: str) -> list[tuple[str, str]]:
    """(chat id, text) for every message, shuffled; VK has no staff groups."""
    groups = round(args.messages * args.group_share) if platform == "telegram" else 0
    chats = [str(FIRST_GROUP - i % args.groups) for i in range(groups)]
    chats += [str(FIRST_RESIDENT + i % args.residents) for i in range(args.messages - groups)]
    random.Random(1).shuffle(chats)
    return [(chat, f"Уведомление {n} для {chat}") for n, chat in enumerate(chats)]


def lower_bound(queued: list[tuple[str, str]], platform: str) -> float:
    """Seconds the limits need at least from the first message to the last: the overall rate,
    the groups' 20 a minute (each block of 20 after the first waits a minute), and one a second
    to each private chat."""
    per_chat = Counter(chat for chat, _ in queued)
    if platform == "vk":
        return (len(queued) - 1) / VK_PER_SECOND
    bounds = [(len(queued) - 1) / TELEGRAM_PER_SECOND]
    for chat, count in per_chat.items():
        if is_group_chat(chat):
            bounds.append((count - 1) // TELEGRAM_GROUP_PER_MINUTE * 60.0)
        else:
            bounds.append((count - 1) * TELEGRAM_PRIVATE_INTERVAL)
    return max(bounds)


async def queue(db: Database, platform: str, queued: list[tuple[str, str]]) -> None:
    for start in range(0, len(queued), 500):
        async with db.uow() as uow:
            for chat, text in queued[start : start + 500]:
                await uow.outbox.add(platform, chat, "text", {"text": text})
            await uow.commit()


async def deliver(args: argparse.Namespace, platform: str, workdir: Path) -> Outcome:
    engine = create_engine(f"sqlite+aiosqlite:///{workdir / f'{platform}.db'}")
    await upgrade_to_head(engine)
    db = Database(session_factory(engine))
    queued = mix(args, platform)
    await queue(db, platform, queued)
    telegram, vk = LimitedTelegram(TOKEN, enforce=not args.unlimited), LimitedVK(VK_TOKEN)
    senders: dict[str, Sender] = {}
    if platform == "telegram":
        api = TelegramAPIServer.from_base(await telegram.start())
        bot = Bot(TOKEN, session=AiohttpSession(api=api))
        senders[platform] = TelegramSender(bot)
        limits = NO_LIMITS if args.unlimited else TELEGRAM_LIMITS
        limiter = RateLimiter(limits, is_group=is_group_chat)
        fake_delivered, close = telegram.delivered, bot.session.close
    else:
        await vk.start()
        client = VkClient(VK_TOKEN, vk.api_url)
        senders[platform] = VkSender(client)
        limiter = RateLimiter(VK_LIMITS, is_group=lambda _chat: False)
        fake_delivered, close = vk.delivered, client.close
    worker = OutboxWorker(db, CoreConfig(), senders, {platform: limiter})
    stop = asyncio.Event()
    began = time.monotonic()
    task = asyncio.create_task(worker.run(stop))
    try:
        while sum(fake_delivered.values()) < len(queued):
            if time.monotonic() - began > TIMEOUT:
                print(f"{platform}: gave up after {TIMEOUT:.0f}s")
                break
            await asyncio.sleep(0.2)
            progress = sum(fake_delivered.values())
            if progress and progress % 1000 < 6:
                print(f"{platform}: {progress} delivered after {time.monotonic() - began:.0f}s")
    finally:
        stop.set()
        worker.wake()
        await task
        await close()
        await telegram.stop()
        await vk.stop()
        await engine.dispose()
    if telegram.refused:
        print(f"{platform}: 429s by limit: {dict(telegram.refused)}")
    last = telegram.last_delivery if platform == "telegram" else vk.last_delivery
    texts = Counter(text for _, text in queued)
    return Outcome(
        platform,
        len(queued),
        last - began,
        lower_bound(queued, platform),
        telegram.refusals if platform == "telegram" else vk.refused,
        sum(1 for text in texts if fake_delivered[text] == 0),
        sum(count - 1 for count in fake_delivered.values() if count > 1),
    )


def table(outcomes: list[Outcome], args: argparse.Namespace) -> str:
    head = (
        f"{'platform':<10}{'messages':>9}{'seconds':>9}{'rate/s':>8}{'allowed/s':>10}"
        f"{'least s':>9}{'share':>7}{'429/err6':>9}{'lost':>6}{'twice':>7}"
    )
    lines = [
        f"{args.residents} residents, {args.groups} groups ({args.group_share:.0%} of Telegram's "
        f"messages to groups); share target ≥ {TARGET_SHARE}, lost must be 0",
        head,
        "-" * len(head),
    ]
    for o in outcomes:
        lines.append(
            f"{o.platform:<10}{o.messages:>9}{o.seconds:>9.1f}{o.messages / o.seconds:>8.1f}"
            f"{o.messages / o.bound if o.bound else math.inf:>10.1f}{o.bound:>9.1f}"
            f"{o.share:>7.2f}{o.refusals:>9}{o.lost:>6}{o.doubled:>7}"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> None:
    platforms = ["telegram", "vk"] if args.platform == "both" else [args.platform]
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="priemnaya-delivery-") as tmp:
        for platform in platforms:
            outcome = await deliver(args, platform, Path(tmp))
            print(f"{platform}: {outcome.messages} in {outcome.seconds:.1f}s")
            outcomes.append(outcome)
    print()
    print(table(outcomes, args))


def main() -> None:
    parser = argparse.ArgumentParser(description="Outbox delivery against platform limits.")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--group-share", type=float, default=0.1)
    parser.add_argument("--platform", choices=["telegram", "vk", "both"], default="both")
    parser.add_argument(
        "--unlimited",
        action="store_true",
        help="Telegram without limits on either side: the worker's own ceiling",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
