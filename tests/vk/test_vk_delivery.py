"""The outbox delivering to VK residents through the real VK sender, over HTTP to the fake VK:
random_id kept across retries, VK's errors 6/9/10/901, the solution photo's upload trio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy import select

from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.model import Platform, StaffActor
from bot.core.ports import PhotoRef
from bot.core.ratelimit import VK_LIMITS, RateLimiter
from handlers.vk.client import VkClient
from handlers.vk.sender import VkSender, split_text
from storage.models import OutboxMessage, Resident
from storage.uow import Database, utcnow
from tests.core.recording import NO_LIMITS, RecordingSender, drain
from tests.core.test_delivery import make_due
from tests.core.test_lifecycle import ANNA, ROADS_GROUP, make_world
from tests.fakes.fake_vk import FakeVK

TOKEN = "vk1.a.test-community-token-0123456789"
VK_ANNA = replace(ANNA, platform=Platform.VK, user_id="5552001", chat_id="5552001")


@pytest.fixture
async def fake_vk() -> AsyncIterator[FakeVK]:
    fake = FakeVK(TOKEN)
    await fake.start()
    fake.allowed.add(int(VK_ANNA.chat_id))  # she wrote to the community
    yield fake
    await fake.stop()


@pytest.fixture
async def client(fake_vk: FakeVK) -> AsyncIterator[VkClient]:
    made = VkClient(TOKEN, fake_vk.api_url)
    yield made
    await made.close()


class Clock:
    """The limiters' time, moved by the test (a pause VK asked for passes at once)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def vk_world(db: Database, config: CoreConfig, client: VkClient, clock: Clock | None = None):  # type: ignore[no-untyped-def]
    world = await make_world(db, config)
    ticks = clock or Clock()
    limiter = RateLimiter(NO_LIMITS, is_group=lambda chat: chat.startswith("-"), clock=ticks)
    world.worker = OutboxWorker(
        db,
        config,
        {"telegram": world.sender, "vk": VkSender(client)},
        {"telegram": limiter, "vk": RateLimiter(VK_LIMITS, is_group=lambda _: False, clock=ticks)},
    )
    return world


async def test_a_retried_send_keeps_its_random_id(
    sqlite_db: Database, config: CoreConfig, client: VkClient, fake_vk: FakeVK
) -> None:
    world = await vk_world(sqlite_db, config, client)
    fake_vk.inject("messages.send", 10)  # VK's internal error: the first attempt fails
    _, number = await world.file(VK_ANNA, "roads")
    await drain(world.worker)
    await make_due(sqlite_db)
    await drain(world.worker)

    sends = fake_vk.find("messages.send")
    accepted = [c for c in sends if "принято" in c.params.get("message", "")]
    assert [c.error for c in accepted] == [10, None]
    assert accepted[0].params["random_id"] == accepted[1].params["random_id"]
    assert all(int(c.params["random_id"]) > 0 for c in sends)
    received = [t for t in fake_vk.texts_to(int(VK_ANNA.chat_id)) if number in t]
    assert len(received) == 1


async def test_vk_drops_a_repeat_after_a_lost_answer(
    sqlite_db: Database, config: CoreConfig, client: VkClient, fake_vk: FakeVK
) -> None:
    """VK took the message but the answer never came: the worker sends again, VK drops it."""
    world = await vk_world(sqlite_db, config, client)
    _, number = await world.file(VK_ANNA, "roads")
    async with sqlite_db.uow() as uow:
        row = await uow.session.scalar(select(OutboxMessage).where(OutboxMessage.platform == "vk"))
        assert row is not None
        random_id = int(row.payload["random_id"])
    await client.send(int(VK_ANNA.chat_id), random_id, "первая попытка")  # the lost one
    await drain(world.worker)
    texts = fake_vk.texts_to(int(VK_ANNA.chat_id))
    assert texts == ["первая попытка"]  # the retry was the same message: nothing new
    async with sqlite_db.uow() as uow:
        status = await uow.outbox.status_of(row.id)
    assert status == "sent" and number


@pytest.mark.parametrize(("code", "pause"), [(6, 1.0), (9, 10.0), (29, 600.0)])
async def test_too_many_requests_waits_then_delivers(
    sqlite_db: Database,
    config: CoreConfig,
    client: VkClient,
    fake_vk: FakeVK,
    code: int,
    pause: float,
) -> None:
    clock = Clock()
    world = await vk_world(sqlite_db, config, client, clock)
    fake_vk.inject("messages.send", code)
    _, number = await world.file(VK_ANNA, "roads")
    await drain(world.worker)
    async with sqlite_db.uow() as uow:
        row = await uow.session.scalar(select(OutboxMessage).where(OutboxMessage.platform == "vk"))
    assert row is not None and row.status == "pending" and row.next_attempt_at > utcnow()
    left = (row.next_attempt_at - utcnow()).total_seconds()
    assert pause - 1.5 < left <= pause  # the pause VK's error calls for, not a generic backoff
    clock.now += pause
    await make_due(sqlite_db)
    await drain(world.worker)
    assert any(number in t for t in fake_vk.texts_to(int(VK_ANNA.chat_id)))


async def test_a_resident_who_forbade_messages_is_marked_unreachable(
    sqlite_db: Database, config: CoreConfig, client: VkClient, fake_vk: FakeVK
) -> None:
    world = await vk_world(sqlite_db, config, client)
    fake_vk.allowed.discard(int(VK_ANNA.chat_id))  # 901 from now on
    _, number = await world.file(VK_ANNA, "roads")
    await drain(world.worker)
    async with sqlite_db.uow() as uow:
        resident = await uow.session.scalar(select(Resident).where(Resident.platform == "vk"))
    assert resident is not None and resident.unreachable
    cards = [s for s in world.sender.to(ROADS_GROUP) if number in s.text]
    assert "Житель недоступен (закрыл сообщения сообщества)" in cards[-1].text


async def test_the_solution_photo_reaches_a_vk_resident_through_the_upload_trio(
    sqlite_db: Database, config: CoreConfig, client: VkClient, fake_vk: FakeVK
) -> None:
    world = await vk_world(sqlite_db, config, client)
    appeal_id, _ = await world.file(VK_ANNA, "roads")
    await drain(world.worker)
    ivan = StaffActor(user_id=701, name="Иван", chat_id=ROADS_GROUP)
    assert (await world.staff.take(ivan, appeal_id)).ok
    assert (await world.staff.answer(ivan, appeal_id, "Бригада выехала")).ok
    photo = PhotoRef("telegram", "solution-file-id")
    assert (await world.staff.solution_photo(ivan, appeal_id, photo, "Яму заделали", None)).ok
    await drain(world.worker)
    await make_due(sqlite_db)
    await drain(world.worker)

    to_anna = fake_vk.sent_to(int(VK_ANNA.chat_id))
    assert any("в работу" in s.text.lower() for s in to_anna)
    assert any("Бригада выехала" in s.text for s in to_anna)
    with_photo = [s for s in to_anna if s.attachments]
    assert len(with_photo) == 1 and "Яму заделали" in with_photo[0].text
    # Fetched from Telegram, uploaded to VK: the bytes arrived.
    assert with_photo[0].photos == [b"bytes of solution-file-id"]
    methods = [c.method for c in fake_vk.calls]
    assert "photos.getMessagesUploadServer" in methods and "photos.saveMessagesPhoto" in methods
    assert isinstance(world.sender, RecordingSender) and world.sender.fetched == [
        "solution-file-id"
    ]


def test_long_texts_are_split_at_line_breaks() -> None:
    text = ("строка\n" * 1000).strip()
    parts = split_text(text, limit=4096)
    assert len(parts) == 2 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text
