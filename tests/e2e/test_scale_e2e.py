"""Two bot processes behind a load balancer, on one PostgreSQL and one Redis, in webhook mode:
every appeal is handled once, every notification delivered once; when the process doing the
sending is killed, the other one takes over."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import create_engine
from tests.conftest import POSTGRES_URL
from tests.e2e.helpers import (
    COORDINATOR_ID,
    ROADS_DEPARTMENT,
    ROADS_GROUP,
    STAFF_ID,
    BotProcess,
    bind_group,
    card_in,
    say,
    start_appeal,
    submit,
    text_to,
    until,
)
from tests.fakes.fake_telegram import JSON
from tests.fakes.webhook import Balancer, WebhookTelegram

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "s3cret-token_for-tests"
RESIDENTS = 16


async def _redis_up() -> bool:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


@pytest.fixture
async def postgres_database() -> AsyncIterator[str]:
    """A database of its own on the test server (the bot migrates it on start)."""
    name = f"scale_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        await admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: multi-process test skipped")
    if not await _redis_up():
        await admin.dispose()
        pytest.skip(f"Redis not reachable at {REDIS_URL}: multi-process test skipped")
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(sql))).all()]
    finally:
        await engine.dispose()


async def _file_appeal(fake: WebhookTelegram, resident: JSON, n: int) -> str:
    await start_appeal(fake, resident, "roads")
    await say(fake, resident, f"Яма на дороге номер {n}, глубокая и опасная", "Где это?")
    await say(fake, resident, f"ул. Ленина, д. {n}", "Пришлите фото")
    await say(fake, resident, "Пропустить", "телефон")
    await say(fake, resident, "Пропустить", "Проверьте")
    return await submit(fake, resident, ("Дороги",))


async def test_two_processes_share_the_work_and_survive_one(
    postgres_database: str, tmp_path: Path
) -> None:
    fake = WebhookTelegram()
    api = await fake.start()
    ports = [_free_port(), _free_port()]
    balancer = Balancer([f"http://127.0.0.1:{port}" for port in ports])
    entry = await balancer.start()
    bots = [
        BotProcess(
            api,
            tmp_path / "unused.db",
            tmp_path,
            tmp_path / f"bot{i}.log",
            extra_env={
                "DATABASE_URL": postgres_database,
                "REDIS_URL": REDIS_URL,
                "WEBHOOK_URL": f"{entry}/telegram/webhook",
                "WEBHOOK_SECRET": SECRET,
                "WEBHOOK_LISTEN": f"127.0.0.1:{port}",
                "SCAN_INTERVAL": "2",
            },
        )
        for i, port in enumerate(ports)
    ]
    try:
        await bots[0].start(fake, ready=lambda: bool(fake.webhook_url), polls=False)
        await bots[1].start(
            fake, ready=lambda: bots[1].log().count("webhook server") > 0, polls=False
        )
        assert fake.webhook_secret == SECRET
        assert fake.polls_started == 0  # nobody long-polls in webhook mode

        coordinator = fake.user(COORDINATOR_ID, "Ольга", "Координатор")
        staff = fake.user(STAFF_ID, "Пётр", "Сидоров")
        fake.group(ROADS_GROUP, "Дороги — отдел")
        await say(fake, coordinator, "/start", "Вы координатор")
        await bind_group(fake, coordinator, ROADS_GROUP, ROADS_DEPARTMENT, "/bind")

        # --- A load of residents at once, spread over both processes --------------------
        residents = [fake.user(5000 + n, f"Житель{n}") for n in range(RESIDENTS)]
        accepted = await asyncio.gather(
            *(_file_appeal(fake, resident, n) for n, resident in enumerate(residents))
        )
        assert all(port_count > 0 for port_count in balancer.forwarded.values()), balancer.forwarded
        numbers = [line.split("№ ")[1].split()[0] for line in accepted]
        assert len(set(numbers)) == RESIDENTS
        rows = await _rows(postgres_database, "SELECT number, resident_id FROM appeals")
        assert sorted(str(r[0]) for r in rows) == sorted(numbers)
        assert len({r[1] for r in rows}) == RESIDENTS  # one appeal per resident

        # Each card reaches the group once, and each resident heard «принято» once.
        for number in numbers:
            await fake.wait_for(card_in(ROADS_GROUP, number), what=f"card {number}")
        for resident in residents:
            told = fake.find(text_to(resident["id"], "принято"))
            assert len(told) == 1, [r.text for r in told]

        # --- Staff take every appeal; the sending process is killed meanwhile ------------
        outbox_holder = next(
            b for b in bots if "standing by: another process does outbox" not in b.log()
        )
        cards = {number: fake.find(card_in(ROADS_GROUP, number))[0].message for number in numbers}
        since = fake.mark()
        for number, card in cards.items():
            assert card is not None
            take = next(
                button["callback_data"]
                for row in card["reply_markup"]["inline_keyboard"]
                for button in row
                if button["callback_data"].startswith("s:take:")
            )
            fake.press(staff, card, take)
            if number == numbers[RESIDENTS // 2]:
                await outbox_holder.kill()  # mid-run: the other process must carry on
        survivor = next(b for b in bots if b is not outbox_holder)
        for resident in residents:
            await fake.wait_for(
                text_to(resident["id"], "взято в работу"),
                since=since,
                timeout=30,
                what=f"«взято в работу» for {resident['id']}",
            )
        statuses = await _rows(postgres_database, "SELECT status FROM appeals")
        assert Counter(str(r[0]) for r in statuses) == {"in_work": RESIDENTS}
        await until(
            lambda: "taking over outbox" in survivor.log(), "the survivor took over", timeout=20
        )
        # A kill -9 repeats at most the messages that were on their way at that moment, and
        # each of those once.
        for resident in residents:
            told = fake.find(text_to(resident["id"], "взято в работу"), since=since)
            assert 1 <= len(told) <= 2, [r.text for r in told]
        for _ in range(200):
            pending = await _rows(
                postgres_database, "SELECT count(*) FROM outbox WHERE status = 'pending'"
            )
            if pending[0][0] == 0:
                break
            await asyncio.sleep(0.1)
        assert pending[0][0] == 0, "the survivor left messages undelivered"
    finally:
        for process in bots:
            await process.stop()
        await balancer.stop()
        await fake.stop()
