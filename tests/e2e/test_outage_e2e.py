"""The database or Redis away for a while, the bot running (`python -m bot` against the fake Bot
API, the service behind a proxy the test cuts): what people sent meanwhile is not counted as
handled, so Telegram hands it over again, and it has its effect once the service is back.

Before, the update was answered with an apology and confirmed: a resident's «Отправить» or a
staff member's answer to a card were gone for good.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from handlers.telegram.errors import LATER
from storage.db import create_engine
from tests.conftest import POSTGRES_URL
from tests.e2e.helpers import (
    COORDINATOR_ID,
    ROADS_DEPARTMENT,
    ROADS_GROUP,
    STAFF_ID,
    BotProcess,
    answer_to,
    bind_group,
    card_in,
    say,
    start_appeal,
    submit,
    text_to,
    with_button,
)
from tests.e2e.test_scale_e2e import REDIS_URL, SECRET, _free_port, _redis_up
from tests.fakes.fake_telegram import FakeTelegram
from tests.fakes.proxy import Proxy
from tests.fakes.webhook import WebhookTelegram

BACK_WITHIN = 60.0  # seconds: the retries' pauses grow while the service is away


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A database of its own on the test server (the bot migrates it on start)."""
    name = f"outage_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        await admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: outage test skipped")
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _appeals(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.scalars(text("SELECT number FROM appeals"))).all())
    finally:
        await engine.dispose()


async def test_a_summary_sent_while_the_database_is_away_is_filed_once_it_is_back(
    postgres_url: str, tmp_path: Path
) -> None:
    server = make_url(postgres_url)
    proxy = Proxy(server.host or "127.0.0.1", server.port or 5432)
    through_proxy = server.set(host="127.0.0.1", port=await proxy.start())
    fake = FakeTelegram()
    api = await fake.start()
    bot = BotProcess(
        api,
        tmp_path / "unused.db",
        tmp_path,
        tmp_path / "bot.log",
        extra_env={"DATABASE_URL": through_proxy.render_as_string(hide_password=False)},
    )
    try:
        await bot.start(fake)
        resident = fake.user(5001, "Анна")
        chat = resident["id"]
        await start_appeal(fake, resident, "roads")
        await say(fake, resident, "Яма на дороге у школы, глубокая", "Где это?")
        await say(fake, resident, "ул. Ленина, д. 1", "Пришлите фото")
        await say(fake, resident, "Пропустить", "телефон")
        await say(fake, resident, "Пропустить", "Проверьте")
        summary = await fake.wait_for(with_button(chat, "i:confirm:submit"), what="the summary")
        assert summary.message is not None

        await proxy.cut()
        since = fake.mark()
        query = fake.press(resident, summary.message, "i:confirm:submit")
        told = await fake.wait_for(answer_to(query), since=since, what="the press answered")
        assert told.params.get("text") == LATER[:200]  # told to wait, not to send it again
        update_id = fake.updates[-1]["update_id"]
        await _still_away(fake, chat, since)
        assert fake.confirmed_offset <= update_id  # not confirmed: Telegram keeps it

        await proxy.restore()
        accepted = await fake.wait_for(
            text_to(chat, "принято"), timeout=BACK_WITHIN, since=since, what="«принято»"
        )
        number = accepted.text.split("№ ")[1].split()[0]
        assert await _appeals(postgres_url) == [number]
        # Told to wait once, however many times the update came again meanwhile.
        waits = [r for r in fake.requests[since:] if r.params.get("text") == LATER[:200]]
        assert len(waits) == 1
        assert not [r for r in fake.requests[since:] if "Не получилось" in r.text]
    finally:
        await bot.stop()
        await fake.stop()
        await proxy.cut()


async def test_a_staff_answer_sent_while_redis_is_away_reaches_the_resident(
    tmp_path: Path,
) -> None:
    if not await _redis_up():
        pytest.skip(f"Redis not reachable at {REDIS_URL}: outage test skipped")
    redis = make_url(REDIS_URL.replace("redis://", "postgresql://", 1))  # host and port only
    proxy = Proxy(redis.host or "127.0.0.1", redis.port or 6379)
    port = await proxy.start()
    fake = WebhookTelegram()
    api = await fake.start()
    listen = _free_port()
    bot = BotProcess(
        api,
        tmp_path / "bot.db",
        tmp_path,
        tmp_path / "bot.log",
        extra_env={
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "WEBHOOK_URL": f"http://127.0.0.1:{listen}/telegram/webhook",
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_LISTEN": f"127.0.0.1:{listen}",
        },
    )
    try:
        await bot.start(fake, ready=lambda: bool(fake.webhook_url), polls=False)
        coordinator = fake.user(COORDINATOR_ID, "Ольга", "Координатор")
        staff = fake.user(STAFF_ID, "Пётр", "Сидоров")
        fake.group(ROADS_GROUP, "Дороги — отдел")
        await say(fake, coordinator, "/start", "Вы координатор")
        await bind_group(fake, coordinator, ROADS_GROUP, ROADS_DEPARTMENT, "/bind")
        resident = fake.user(5002, "Борис")
        await start_appeal(fake, resident, "roads")
        await say(fake, resident, "Не горит фонарь у подъезда", "Где это?")
        await say(fake, resident, "ул. Мира, д. 7", "Пришлите фото")
        await say(fake, resident, "Пропустить", "телефон")
        await say(fake, resident, "Пропустить", "Проверьте")
        accepted = await submit(fake, resident, ("Дороги",))
        number = accepted.split("№ ")[1].split()[0]
        card = await fake.wait_for(card_in(ROADS_GROUP, number), what="the card")
        assert card.message is not None

        await proxy.cut()
        since, refused = fake.mark(), fake.webhook_failures
        fake.send_text(
            staff, "Заменим лампу завтра утром.", chat=ROADS_GROUP, reply_to=card.message
        )
        for _ in range(100):  # Telegram is refused (503) and keeps the update
            if fake.webhook_failures > refused:
                break
            await _pause()
        assert fake.webhook_failures > refused and fake.updates
        assert not [r for r in fake.requests[since:] if r.is_send(resident["id"])]

        await proxy.restore()
        answer = await fake.wait_for(
            text_to(resident["id"], "Заменим лампу"), timeout=BACK_WITHIN, since=since
        )
        assert number in answer.text
        assert not fake.updates  # handled, and only now taken off Telegram's queue
    finally:
        await bot.stop()
        await fake.stop()
        await proxy.cut()


async def _still_away(fake: FakeTelegram, chat: int, since: int) -> None:
    """A few seconds with the database away: nothing is filed, nothing more is said."""
    for _ in range(20):
        await _pause()
        assert not [r for r in fake.requests[since:] if r.is_send(chat)]


async def _pause() -> None:
    await asyncio.sleep(0.1)
