"""Telegram updates have their effect once: a batch handed over again after a crash, a webhook
retried, a webhook post without the secret token — through the real dispatcher, over HTTP to
the fake Bot API."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Update
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.core import texts
from bot.core.appeals import StaffService
from bot.core.config import CoreConfig
from bot.core.intake import IntakeService
from bot.core.routing import RoutingService
from handlers.telegram import errors
from handlers.telegram.errors import LATER, SORRY
from handlers.telegram.polling import handle_batch, poll
from handlers.telegram.setup import build_dispatcher
from handlers.telegram.webhook import webhook_app
from storage.models import ProcessedEvent
from storage.uow import Database, SavedDraft
from tests.core.recording import RecordingSender, make_worker
from tests.fakes.fake_telegram import JSON, FakeTelegram
from tests.fakes.webhook import SECRET_HEADER

TOKEN = "123456:TEST"
SECRET = "the-webhook-secret"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    made = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
    yield made
    await made.session.close()


def dispatcher(db: Database, config: CoreConfig) -> Dispatcher:
    return build_dispatcher(
        IntakeService(db, config),
        StaffService(db, config),
        RoutingService(db, config),
        make_worker(db, config, RecordingSender()),
        config.coordinator_ids,
    )


async def draft_of(db: Database, user_id: int) -> SavedDraft | None:
    async with db.uow() as uow:
        return await uow.drafts.get("telegram", str(user_id))


async def test_a_batch_handed_over_again_changes_nothing(
    db: Database, config: CoreConfig, fake: FakeTelegram, bot: Bot
) -> None:
    dp = dispatcher(db, config)
    polling = asyncio.create_task(poll(bot, dp, ["message", "callback_query"]))
    anna = fake.user(501, "Анна")
    updates: list[JSON] = []
    try:
        since = fake.mark()
        fake.send_text(anna, "/start")
        updates.append(copy.deepcopy(fake.updates[-1]))
        menu = await fake.wait_for(
            lambda r: r.is_send(501) and "i:category:roads" in r.callback_data, since=since
        )
        assert menu.message is not None
        fake.press(anna, menu.message, "i:category:roads")
        updates.append(copy.deepcopy(fake.updates[-1]))
        await fake.wait_for(lambda r: r.is_send(501) and "Опишите" in r.text, since=since)
        fake.send_text(anna, "Яма во дворе дома, глубокая")
        updates.append(copy.deepcopy(fake.updates[-1]))
        await fake.wait_for(lambda r: r.is_send(501) and "Где это?" in r.text, since=since)
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
    draft = await draft_of(db, 501)
    assert draft is not None and draft.step == "address"
    assert draft.data["description"] == "Яма во дворе дома, глубокая"

    # A crash before the batch was confirmed: Telegram hands the same updates over again.
    since = fake.mark()
    await handle_batch(bot, dp, [Update.model_validate(u) for u in updates])
    assert fake.sent_to(501, since) == []  # nothing said twice
    again = await draft_of(db, 501)
    assert again is not None and (again.step, again.data) == (draft.step, draft.data)
    async with db.uow() as uow:
        keys = await uow.session.scalar(
            select(func.count()).where(ProcessedEvent.key.like("tg:123456:%"))
        )
    assert keys == 3  # each recorded in the transaction that had its effect


async def test_a_batch_handed_over_to_a_restarted_bot_asks_once_where_the_resident_stands(
    db: Database, config: CoreConfig, fake: FakeTelegram, bot: Bot
) -> None:
    """The process died after the steps were stored: whether their answers left is unknown.
    The restarted bot changes nothing, and says once where the draft stands, so the resident
    is not left waiting for a question that died with the process."""
    first = dispatcher(db, config)
    anna = fake.user(501, "Анна")
    updates: list[Update] = []
    for said in ("/start", "Яма во дворе дома, глубокая", "Рядом с подъездом"):
        fake.send_text(anna, said)
        updates.append(Update.model_validate(fake.updates.pop()))
        await handle_batch(bot, first, updates[-1:])
    draft = await draft_of(db, 501)
    assert draft is not None and draft.step == "category"
    assert "Рядом с подъездом" in draft.data["description"]

    restarted = dispatcher(db, config)
    since = fake.mark()
    await handle_batch(bot, restarted, updates)
    told = fake.sent_to(501, since)
    assert len(told) == 2 and told[0].text == texts.ASKED_AGAIN
    assert "Выберите категорию" in told[1].text
    assert "i:category:roads" in told[1].callback_data
    again = await draft_of(db, 501)
    assert again is not None and (again.step, again.data) == (draft.step, draft.data)

    # Handed over once more to the same process (the batch was not confirmed): said already.
    since = fake.mark()
    await handle_batch(bot, restarted, updates)
    assert fake.sent_to(501, since) == []


async def test_polling_confirms_a_batch_only_after_handling_it(
    db: Database, config: CoreConfig, fake: FakeTelegram, bot: Bot
) -> None:
    dp = dispatcher(db, config)
    anna = fake.user(501, "Анна")
    fake.send_text(anna, "/start")
    fake.send_text(anna, "/help")
    polling = asyncio.create_task(poll(bot, dp, ["message", "callback_query"]))
    try:
        await fake.wait_for(lambda r: r.is_send(501) and "Как это работает" in r.text)
        # Handled, not yet confirmed: still queued until the next getUpdates says so.
        for _ in range(100):
            if fake.confirmed_offset > 2:
                break
            await asyncio.sleep(0.05)
        assert fake.confirmed_offset == 3
        assert fake.updates == []
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)


async def test_an_update_failing_as_if_the_storage_were_away_while_it_answers_is_let_go(
    db: Database, config: CoreConfig, fake: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement slower than its timeout fails like a database that is away, every time.
    Once the database is seen answering while the batch still fails, that update's failure
    is its own: it is answered with the apology and the batch confirmed, rather than polling
    stopping on it for ever."""
    dp = dispatcher(db, config)

    async def too_slow(*args: object) -> None:
        raise TimeoutError  # as asyncpg's command_timeout ends a statement

    monkeypatch.setattr(dp["intake"], "help", too_slow)
    monkeypatch.setattr(errors, "_told", set())  # update ids start at 1 in every fake
    anna = fake.user(501, "Анна")
    fake.send_text(anna, "/help")
    fake.send_text(anna, "/start")
    polling = asyncio.create_task(poll(bot, dp, ["message", "callback_query"]))
    try:
        sorry = await fake.wait_for(lambda r: r.is_send(501) and r.text == SORRY, timeout=30)
        started = await fake.wait_for(
            lambda r: r.is_send(501) and "Выберите категорию" in r.text, since=sorry.seq
        )
        assert started.seq > sorry.seq  # the chat's next update waited its turn
        told = [r.text for r in fake.sent_to(501)]
        assert told.count(LATER) == 1  # told to wait once, while it looked like an outage
        for _ in range(100):
            if fake.confirmed_offset > 2:
                break
            await asyncio.sleep(0.05)
        assert fake.confirmed_offset == 3 and fake.updates == []
    finally:
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)


async def test_webhook_takes_only_updates_with_the_secret(
    db: Database, config: CoreConfig, fake: FakeTelegram, bot: Bot
) -> None:
    server = TestServer(webhook_app(bot, dispatcher(db, config), "/tg", SECRET))
    await server.start_server()
    anna = fake.user(501, "Анна")
    fake.send_text(anna, "/start")
    update = fake.updates[-1]
    try:
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {SECRET_HEADER: "guess"}):
                async with http.post(server.make_url("/tg"), json=update, headers=headers) as r:
                    assert r.status == 401
            assert await draft_of(db, 501) is None
            assert fake.sent_to(501) == []
            for _ in range(2):  # Telegram retries a post it saw no answer to
                async with http.post(
                    server.make_url("/tg"), json=update, headers={SECRET_HEADER: SECRET}
                ) as r:
                    assert r.status == 200
            async with http.get(server.make_url("/healthz")) as r:
                assert (r.status, await r.text()) == (200, "ok")
    finally:
        await server.close()
    draft = await draft_of(db, 501)
    assert draft is not None and draft.step == "category"
    menus = [r for r in fake.sent_to(501) if "i:category:roads" in r.callback_data]
    assert len(menus) == 1


async def test_an_update_that_wrote_nothing_is_not_answered_twice(
    db: Database, config: CoreConfig, fake: FakeTelegram, bot: Bot
) -> None:
    dp = dispatcher(db, config)
    anna = fake.user(501, "Анна")
    fake.send_text(anna, "/help")
    update = Update.model_validate(copy.deepcopy(fake.updates[-1]))
    await handle_batch(bot, dp, [update])
    assert len([r for r in fake.sent_to(501) if "Как это работает" in r.text]) == 1
    await handle_batch(bot, dp, [update])  # handed over again after a crash
    assert len([r for r in fake.sent_to(501) if "Как это работает" in r.text]) == 1
