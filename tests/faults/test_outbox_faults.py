"""The outbox worker with the real senders, over real HTTP, against platforms that misbehave.

A few hundred messages to some thirty chats go out through the real ``TelegramSender`` (aiogram)
or ``VkSender`` (vkbottle) to a fake platform that answers at random (seeded): server errors,
hangs past the client's timeout, dropped connections, "too many requests" with a pause, and
answers lost after the message was accepted. Some residents blocked the bot (Telegram 403) or
never allowed the community to write (VK 901).

What the platform's world holds afterwards is compared with the queue: every deliverable
message arrived, in the order queued, per chat; a message shows up twice in Telegram only when
an earlier attempt was accepted and its answer lost (and exactly as often as that happened), in
VK never (``random_id``); a refusing resident is marked unreachable, their messages failed, and
after the refusal reached the bot nothing more was tried.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from sqlalchemy import select
from vkbottle.http import AiohttpClient

import bot.core.delivery as delivery
from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.ratelimit import RateLimiter
from handlers.telegram.sender import TelegramSender, is_group_chat
from handlers.vk.client import RequestPace, VkClient
from handlers.vk.sender import VkSender
from storage.models import OutboxMessage, Resident
from storage.uow import Database
from tests.core.recording import NO_LIMITS
from tests.fakes.fake_telegram import FakeTelegram
from tests.fakes.faults import (
    DROP,
    ERROR,
    HANG,
    LOST,
    OK,
    RETRY,
    Faulted,
    FaultPlan,
    FaultyTelegram,
    FaultyVK,
)

TOKEN = "123456:FAULTS"
VK_TOKEN = "vk1.a.faults-community-token-0123456789"
CLIENT_TIMEOUT = 0.5  # seconds; the fakes hang for twice as long
RETRY_AFTER = 1  # seconds, as the fake's 429 / VK's error 6 ask
WEIGHTS = {OK: 60, ERROR: 10, RETRY: 4, HANG: 4, DROP: 6, LOST: 8}
SEED = 20260505


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Transient failures are retried after 50 ms instead of seconds to minutes."""
    monkeypatch.setattr(delivery, "backoff", lambda attempts: timedelta(milliseconds=50))


def _plan() -> FaultPlan:
    return FaultPlan(SEED, WEIGHTS, hang_seconds=CLIENT_TIMEOUT * 2)


async def _residents(db: Database, platform: str, ids: list[int]) -> None:
    async with db.uow() as uow:
        for user_id in ids:
            await uow.residents.upsert(platform, str(user_id), str(user_id), f"Житель {user_id}")
        await uow.commit()


async def _run_until_idle(worker: OutboxWorker, db: Database, timeout: float = 40.0) -> float:
    """Runs the worker as the bot does until nothing is pending; returns the seconds it took."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    started = time.monotonic()
    try:
        while True:
            await asyncio.sleep(0.1)
            if task.done():
                task.result()
                raise AssertionError("the worker stopped by itself")
            async with db.uow() as uow:
                pending = await uow.outbox.pending(1)
            if not pending:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"still pending after {timeout}s: {pending}")
    finally:
        stop.set()
        worker.wake()
        await asyncio.wait_for(task, 5)


async def _rows(db: Database, platform: str) -> list[OutboxMessage]:
    async with db.uow() as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.platform == platform)
            .order_by(OutboxMessage.id)
        )
        return list(rows)


async def _unreachable(db: Database, platform: str) -> set[int]:
    async with db.uow() as uow:
        rows = await uow.session.scalars(
            select(Resident).where(Resident.platform == platform, Resident.unreachable)
        )
        return {int(r.chat_id) for r in rows}


def _by_chat(entries: list[Faulted]) -> dict[int, list[Faulted]]:
    grouped: dict[int, list[Faulted]] = defaultdict(list)
    for entry in entries:
        assert entry.chat_id is not None
        grouped[entry.chat_id].append(entry)
    return grouped


def _check_pauses_kept(entries: list[Faulted]) -> int:
    """After a "too many requests" for a chat, that chat was not tried again before the pause
    was over (a little slack for clocks). Returns how many such pauses there were."""
    pauses = 0
    for chat_entries in _by_chat(entries).values():
        for before, after in itertools.pairwise(chat_entries):
            if before.fault == RETRY:
                pauses += 1
                assert after.at - before.at >= RETRY_AFTER - 0.05, (before, after)
    return pauses


def _check_refusals(entries: list[Faulted], refusing: set[int], code: int) -> None:
    """The chat's refusal was the last thing that happened there: once it was answered, nothing
    more went to that chat (the fake cannot tell whether a loaded client heard the answer; a
    client that missed it may try once more, and hear it again)."""
    grouped = _by_chat(entries)
    for chat in refusing:
        last = grouped[chat][-1]
        assert last.answered and last.status == code, grouped[chat]
        assert all(e.status in (0, code) for e in grouped[chat]), grouped[chat]


def _spread(chats: list[int], count: int, seed: int) -> Iterator[tuple[int, int]]:
    """``count`` messages over ``chats`` at random (each chat gets some): (chat, index)."""
    chooser = random.Random(seed)
    numbers: dict[int, int] = defaultdict(int)
    order = chats + [chooser.choice(chats) for _ in range(count - len(chats))]
    chooser.shuffle(order)
    for chat in order:
        numbers[chat] += 1
        yield chat, numbers[chat]


# Telegram ----------------------------------------------------------------------------------------

TG_RESIDENTS = list(range(610_001, 610_025))  # 24 residents
TG_BLOCKED = {610_003, 610_011, 610_017, 610_024}  # blocked the bot
TG_GROUPS = [-100_2000_000_001 - n for n in range(6)]  # groups (staff, coordinators' chats)
TG_MESSAGES = 270


class WatchedSession(AiohttpSession):
    """aiogram's own HTTP session, noting what each send looked like from the bot's side."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outcomes: dict[tuple[int, str], list[str]] = defaultdict(list)
        self.log: list[tuple[int, str]] = []  # (chat, outcome) in the order they came

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        chat = getattr(method, "chat_id", None)
        text = str(getattr(method, "text", None) or getattr(method, "caption", None) or "")
        key = (int(chat) if isinstance(chat, int | str) else 0, text)
        try:
            result = await super().make_request(bot, method, timeout)
        except TelegramNetworkError:
            self._note(key, "network")  # a timeout, a dropped connection
            raise
        except Exception as exc:
            self._note(key, type(exc).__name__)
            raise
        self._note(key, "ok")
        return result

    def _note(self, key: tuple[int, str], outcome: str) -> None:
        self.outcomes[key].append(outcome)
        self.log.append((key[0], outcome))


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[FaultyTelegram, Bot]]:
    fake = FaultyTelegram(
        _plan(), frozenset({"sendmessage", "sendphoto"}), RETRY_AFTER, token=TOKEN
    )
    await fake.start()
    for user_id in TG_RESIDENTS:
        user = fake.user(user_id, f"Житель {user_id}")
        fake.send_text(user, "/start")  # wrote to the bot, so the bot may write back
        if user_id in TG_BLOCKED:
            fake.block(user_id)
    for index, chat_id in enumerate(TG_GROUPS):
        fake.group(chat_id, f"Отдел {index}")
    session = WatchedSession(api=TelegramAPIServer.from_base(fake.base_url), timeout=CLIENT_TIMEOUT)
    bot = Bot(TOKEN, session=session)
    yield fake, bot
    await bot.session.close()
    await fake.stop()


async def test_telegram_delivery_through_random_faults(
    db: Database, config: CoreConfig, telegram: tuple[FaultyTelegram, Bot]
) -> None:
    fake, bot = telegram
    await _residents(db, "telegram", TG_RESIDENTS)
    # A photo Telegram knows (a resident sent it): some messages go as photos with captions.
    photo_id = fake.send_photo(fake.users[TG_RESIDENTS[0]])["photo"][-1]["file_id"]
    chats = TG_RESIDENTS + TG_GROUPS
    queued: dict[int, list[str]] = defaultdict(list)
    async with db.uow() as uow:
        for chat, index in _spread(chats, TG_MESSAGES, SEED):
            text = f"Сообщение {index} для {chat}"
            queued[chat].append(text)
            payload: dict[str, Any]
            if index % 5 == 0:
                payload = {"photo": {"platform": "telegram", "ref": photo_id}, "text": text}
                await uow.outbox.add("telegram", chat, "photo", payload)
            else:
                await uow.outbox.add("telegram", chat, "text", {"text": text})
        await uow.commit()
    limiter = RateLimiter(NO_LIMITS, is_group=is_group_chat)
    worker = OutboxWorker(
        db, config, {"telegram": TelegramSender(bot)}, {"telegram": limiter}, idle_interval=0.05
    )

    took = await _run_until_idle(worker, db)

    # Every fault happened, more than once: the run proves something about each.
    seen = defaultdict(int)
    for entry in fake.faulted:
        seen[entry.fault if entry.fault != LOST else f"lost ({entry.detail})"] += 1
    for fault in (OK, ERROR, RETRY, HANG, DROP, "lost (timeout)", "lost (connection dropped)"):
        assert seen[fault] >= 2, dict(seen)
    assert isinstance(bot.session, WatchedSession)
    outcomes = bot.session.outcomes
    duplicates = 0
    for chat in chats:
        world = [r.text for r in fake.requests if r.is_send(chat)]
        if chat in TG_BLOCKED:
            assert world == []
            continue
        expected: list[str] = []
        for text in queued[chat]:
            accepted = fake.accepted(chat, text)
            seen_by_bot = outcomes[(chat, text)]
            # The bot learnt of one success and stopped there.
            assert seen_by_bot[-1] == "ok" and seen_by_bot.count("ok") == 1, seen_by_bot
            # Each further copy is an attempt Telegram accepted while the bot saw it fail on
            # the way (a timeout, a dropped connection): the fake lost the answer on purpose,
            # or a loaded loop let the client's timeout strike first.
            assert seen_by_bot.count("network") >= len(accepted) - 1, (accepted, seen_by_bot)
            assert any(e.fault == OK for e in accepted), accepted
            duplicates += len(accepted) - 1
            expected += [text] * len(accepted)
        assert world == expected, f"chat {chat}"
    assert duplicates >= 2  # the lost answers did cause repeats, and they were accounted for

    _check_refusals(fake.faulted, TG_BLOCKED, 403)
    for chat in TG_BLOCKED:  # the same, as the bot saw it: one refusal, then silence
        seen_by_bot = [outcome for to, outcome in bot.session.log if to == chat]
        assert seen_by_bot.count("TelegramForbiddenError") == 1, seen_by_bot
        assert seen_by_bot[-1] == "TelegramForbiddenError", seen_by_bot
    assert _check_pauses_kept(fake.faulted) >= 2
    assert await _unreachable(db, "telegram") == TG_BLOCKED
    rows = await _rows(db, "telegram")
    assert len(rows) == TG_MESSAGES
    for row in rows:
        assert row.status == ("failed" if int(row.chat_id) in TG_BLOCKED else "sent"), row.chat_id
    print(
        f"telegram: {TG_MESSAGES} messages, {len(fake.faulted)} requests, {dict(seen)}, {took:.1f}s"
    )


# VK ----------------------------------------------------------------------------------------------

VK_RESIDENTS = list(range(5_700_001, 5_700_031))  # 30 residents
VK_FORBIDDEN = {5_700_004, 5_700_015, 5_700_029}  # never allowed the community to write (901)
VK_MESSAGES = 250


@pytest.fixture
async def vk() -> AsyncIterator[tuple[FaultyVK, VkClient]]:
    fake = FaultyVK(VK_TOKEN, _plan(), frozenset({"messages.send"}))
    await fake.start()
    fake.allowed.update(set(VK_RESIDENTS) - VK_FORBIDDEN)
    client = VkClient(VK_TOKEN, fake.api_url)
    client.api.http_client = AiohttpClient(timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT))
    client.pace = RequestPace(limit=1000)  # VK's 20 a second would make the run take 15 s
    yield fake, client
    await client.close()
    await fake.stop()


async def test_vk_delivery_through_random_faults(
    db: Database, config: CoreConfig, vk: tuple[FaultyVK, VkClient]
) -> None:
    fake, client = vk
    await _residents(db, "vk", VK_RESIDENTS)
    queued: dict[int, list[str]] = defaultdict(list)
    async with db.uow() as uow:
        for chat, index in _spread(VK_RESIDENTS, VK_MESSAGES, SEED + 1):
            text = f"Сообщение {index} для {chat}"
            queued[chat].append(text)
            await uow.outbox.add("vk", chat, "text", {"text": text})
        await uow.commit()
    random_ids = {
        (int(row.chat_id), row.payload["text"]): str(row.payload["random_id"])
        for row in await _rows(db, "vk")
    }
    limiter = RateLimiter(NO_LIMITS, is_group=lambda _: False)
    worker = OutboxWorker(db, config, {"vk": VkSender(client)}, {"vk": limiter}, idle_interval=0.05)

    took = await _run_until_idle(worker, db)

    seen = defaultdict(int)
    for entry in fake.faulted:
        seen[entry.fault] += 1
        # Every attempt of a message carried the random_id stored with it.
        assert entry.chat_id is not None
        assert entry.detail == random_ids[(entry.chat_id, entry.text)], entry
    for fault in (OK, ERROR, RETRY, HANG, DROP, LOST):
        assert seen[fault] >= 2, dict(seen)
    # VK took some messages whose answer was lost, and the resend was dropped by random_id.
    repeats = [e for e in fake.faulted if e.fault == LOST and e.status == 0]
    assert len(repeats) >= 2
    for chat in VK_RESIDENTS:
        world = fake.texts_to(chat)
        assert world == ([] if chat in VK_FORBIDDEN else queued[chat]), f"peer {chat}"

    _check_refusals(fake.faulted, VK_FORBIDDEN, 901)
    assert _check_pauses_kept(fake.faulted) >= 2
    assert await _unreachable(db, "vk") == VK_FORBIDDEN
    rows = await _rows(db, "vk")
    assert len(rows) == VK_MESSAGES
    for row in rows:
        assert row.status == ("failed" if int(row.chat_id) in VK_FORBIDDEN else "sent"), row.chat_id
    print(f"vk: {VK_MESSAGES} messages, {len(fake.faulted)} requests, {dict(seen)}, {took:.1f}s")


async def test_a_request_too_large_for_telegram_fails_alone(
    db: Database, config: CoreConfig
) -> None:
    """A 413 (a VK resident's photo bigger than Telegram takes) will never fit: that message
    fails, and the chat's later messages go on instead of waiting behind its retries."""
    fake = FakeTelegram(token=TOKEN)
    await fake.start()
    group = TG_GROUPS[0]
    fake.group(group, "Отдел дорог")
    photo_id = fake.send_photo(fake.user(TG_RESIDENTS[0], "Анна"))["photo"][-1]["file_id"]
    fake.inject_error("sendPhoto", 413, "Request Entity Too Large", chat_id=group)
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
    try:
        async with db.uow() as uow:
            photo = {"photo": {"platform": "telegram", "ref": photo_id}, "text": "Фото жителя"}
            await uow.outbox.add("telegram", group, "photo", photo)
            for n in (1, 2):
                await uow.outbox.add("telegram", group, "text", {"text": f"Дополнение {n}"})
            await uow.commit()
        limiter = RateLimiter(NO_LIMITS, is_group=is_group_chat)
        worker = OutboxWorker(
            db, config, {"telegram": TelegramSender(bot)}, {"telegram": limiter}, idle_interval=0.05
        )
        await _run_until_idle(worker, db, timeout=10)
    finally:
        await bot.session.close()
        await fake.stop()
    assert [r.text for r in fake.requests if r.is_send(group)] == ["Дополнение 1", "Дополнение 2"]
    rows = await _rows(db, "telegram")
    assert [(r.kind, r.status, r.attempts) for r in rows] == [
        ("photo", "failed", 1),
        ("text", "sent", 1),
        ("text", "sent", 1),
    ]
