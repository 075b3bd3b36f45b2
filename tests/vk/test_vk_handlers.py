"""VK handlers through vkbottle's own bot and router, with a fake HTTP client under its API
(as vkbottle's tests do): events go in as VK's long poll gives them, the requests the bot makes
come out to the fake VK, and the database is real.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.core import texts
from bot.core.appeals import StaffService
from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.intake import IntakeService
from bot.core.model import StaffActor, Status
from bot.core.ratelimit import RateLimiter
from handlers.vk.client import VkClient
from handlers.vk.conversation import VkConversation
from handlers.vk.polling import VkPoller
from handlers.vk.sender import VkSender
from handlers.vk.setup import build_vk_front
from storage.models import Appeal, AppealPhoto, Draft, ProcessedEvent
from storage.uow import Database
from tests.conftest import COORDINATOR
from tests.core.recording import NO_LIMITS, RecordingSender, drain
from tests.core.test_delivery import make_due
from tests.fakes.fake_vk import GROUP_ID, FakeVK, Sent
from tests.vk.fake_http import FakeHttpClient

TOKEN = "vk1.a.test-community-token-0123456789"
RESIDENT = 5551001


@dataclass
class VkHarness:
    fake: FakeVK
    poller: VkPoller
    worker: OutboxWorker
    sender: RecordingSender
    db: Database
    staff: StaffService
    seen: int = 0

    async def deliver(self) -> None:
        """The long poll hands the bot what residents did since the last call; the outbox
        then delivers the answers (to VK through the real VK sender)."""
        batch = self.fake.events[self.seen :]
        self.seen = len(self.fake.events)
        await self.poller.handle_batch(batch)
        await drain(self.worker)

    async def says(self, user_id: int, text: str = "", **kwargs: Any) -> list[Sent]:
        before = len(self.fake.sent)
        self.fake.write(user_id, text, **kwargs)
        await self.deliver()
        return [s for s in self.fake.sent[before:] if s.peer_id == user_id]

    async def presses(self, user_id: int, under: Sent, action: str) -> list[Sent]:
        before = len(self.fake.sent)
        self.fake.press(user_id, under, action)
        await self.deliver()
        return [s for s in self.fake.sent[before:] if s.peer_id == user_id]

    async def presses_forged(self, user_id: int, under: Sent, action: str) -> list[Sent]:
        before = len(self.fake.sent)
        self.fake.press_forged(user_id, under, action)
        await self.deliver()
        return [s for s in self.fake.sent[before:] if s.peer_id == user_id]

    def last_with(self, user_id: int, action_prefix: str) -> Sent:
        for sent in reversed(self.fake.sent_to(user_id)):
            if any(p.startswith(action_prefix) for p in sent.payloads):
                return sent
        raise AssertionError(f"no message with a {action_prefix!r} button")


@pytest.fixture
async def vk(db: Database, config: CoreConfig) -> AsyncIterator[VkHarness]:
    fake = FakeVK(TOKEN)
    await fake.start()  # serves the residents' photos; API calls go through the fake client
    fake.user(RESIDENT, "Мария")
    client = VkClient(TOKEN, "https://vk.invalid/method/")
    client.api.http_client = FakeHttpClient(fake)
    sender = RecordingSender()  # Telegram: the groups and the coordinators
    limiter = RateLimiter(NO_LIMITS, is_group=lambda chat: chat.startswith("-"))
    worker = OutboxWorker(
        db,
        config,
        {"telegram": sender, "vk": VkSender(client)},
        {"telegram": limiter, "vk": RateLimiter(NO_LIMITS, is_group=lambda _: False)},
    )
    staff = StaffService(db, config)
    front = build_vk_front(client, IntakeService(db, config), staff, worker, db)
    yield VkHarness(fake, front.poller(db, GROUP_ID), worker, sender, db, staff)
    await client.close()
    await fake.stop()


async def file_appeal(vk: VkHarness, photos: int = 2) -> str:
    said = await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    assert any(texts.ASK_CATEGORY in s.text for s in said)
    categories = vk.last_with(RESIDENT, "i:category:")
    assert categories.keyboard is not None and categories.keyboard.get("inline") is True
    await vk.presses(RESIDENT, categories, "i:category:roads")
    said = await vk.says(RESIDENT, "Глубокая яма на проезжей части у остановки, уже месяц")
    assert any("Где это?" in s.text for s in said)
    said = await vk.says(RESIDENT, geo=(55.7512, 37.6184))
    assert any(texts.ASK_PHOTOS.split(" —")[0] in s.text for s in said)
    if photos:
        attachments = [vk.fake.photo_attachment() for _ in range(photos)]
        said = await vk.says(RESIDENT, attachments=attachments)
        assert said and texts.PHOTO_ADDED in said[0].text
        await vk.says(RESIDENT, texts.DONE)
    else:
        await vk.says(RESIDENT, texts.SKIP)
    said = await vk.says(RESIDENT, "+7 912 345-67-89")
    confirm = vk.last_with(RESIDENT, "i:confirm:")
    said = await vk.presses(RESIDENT, confirm, "i:confirm:submit")
    accepted = next(s for s in said if "принято" in s.text)
    assert accepted.random_id > 0  # the random_id stored on its outbox row
    return accepted.text.split("№ ")[1].split()[0]


async def test_a_vk_resident_files_an_appeal_with_photos_and_a_map_point(vk: VkHarness) -> None:
    number = await file_appeal(vk, photos=2)

    async with vk.db.uow() as uow:
        appeal = await uow.appeals.by_number(number)
        assert appeal is not None
        photos = await uow.appeals.photos(appeal.id, "resident")
        resident = await uow.residents.get(appeal.resident_id)
    assert appeal.platform == "vk" and appeal.status == Status.NEW.value
    assert (appeal.latitude, appeal.longitude) == (55.7512, 37.6184)
    assert appeal.phone == "+79123456789"
    assert resident is not None and resident.first_name == "Мария"
    assert [p.platform for p in photos] == ["vk", "vk"]
    assert all(p.file_ref.startswith(vk.fake.base + "/photos/") for p in photos)
    # Every message to the resident carried a random_id, each a different one.
    sends = vk.fake.find("messages.send")
    assert sends and all(int(c.params["random_id"]) > 0 for c in sends)
    assert len({c.params["random_id"] for c in sends}) == len(sends)
    # Every button press was answered (the spinner stops).
    assert vk.fake.pending_event_ids == set()

    # The card goes to the coordinators (no group is bound) with the VK photos as uploads.
    await drain(vk.worker)
    card = next(s for s in vk.sender.to(COORDINATOR) if s.method == "text" and number in s.text)
    assert "VK" in card.text and "Мария" in card.text
    album = next(s for s in vk.sender.to(COORDINATOR) if s.method == "photos")
    assert album.uploaded == 2  # downloaded from VK, uploaded to Telegram


async def test_an_event_handed_over_twice_changes_nothing_twice(vk: VkHarness) -> None:
    await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    categories = vk.last_with(RESIDENT, "i:category:")
    await vk.presses(RESIDENT, categories, "i:category:roads")
    vk.fake.write(RESIDENT, "Не горит фонарь во дворе дома уже неделю")
    event = vk.fake.events[-1]
    await vk.poller.handle_batch([event])
    sent_before = len(vk.fake.sent)
    await vk.poller.handle_batch([event])  # a restart before the ts was stored

    assert len(vk.fake.sent) == sent_before  # nothing answered twice
    await drain(vk.worker)
    asked = [s.text for s in vk.fake.sent_to(RESIDENT)[-2:]]
    assert "Где это?" in asked[-1] and texts.ASKED_AGAIN not in " ".join(asked)
    # The answer went out, so the courtesy «where we stand» (same random_id) was dropped by VK.
    assert sum("Где это?" in s.text for s in vk.fake.sent_to(RESIDENT)) == 1
    async with vk.db.uow() as uow:
        draft = await uow.drafts.get("vk", str(RESIDENT))
        keys = list(await uow.session.scalars(select(ProcessedEvent.key)))
    claims = [key for key in keys if not key.startswith("vk:pressed:")]
    assert draft is not None and draft.step == "address"  # not taken as the address
    assert draft.data["description"] == "Не горит фонарь во дворе дома уже неделю"
    assert len(claims) == 3  # start, category, description: one claim each
    assert len(keys) == 4  # and the category message marked as pressed


async def test_an_answer_lost_after_the_step_was_stored_is_given_when_the_event_comes_again(
    vk: VkHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step is committed, then the process dies before the answer is queued: the event
    comes again (its ts was not stored), finds its claim, and the resident is told where the
    draft stands instead of waiting for a question that never comes."""
    await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    await vk.presses(RESIDENT, vk.last_with(RESIDENT, "i:category:"), "i:category:roads")
    queue = VkConversation._send

    async def dies_before_queueing(self: VkConversation, *args: Any, **kwargs: Any) -> None:
        raise asyncio.CancelledError  # as a kill -9 between the two transactions

    monkeypatch.setattr(VkConversation, "_send", dies_before_queueing)
    vk.fake.write(RESIDENT, "Не горит фонарь во дворе дома уже неделю")
    event = vk.fake.events[-1]
    vk.seen = len(vk.fake.events)
    with pytest.raises(asyncio.CancelledError):
        await vk.poller.handle_batch([event])
    await drain(vk.worker)
    assert not any("Где это?" in s.text for s in vk.fake.sent_to(RESIDENT))

    monkeypatch.setattr(VkConversation, "_send", queue)  # the restarted bot
    before = len(vk.fake.sent)
    await vk.poller.handle_batch([event])
    await drain(vk.worker)
    [told] = [s for s in vk.fake.sent[before:] if s.peer_id == RESIDENT]
    assert told.text.startswith(texts.ASKED_AGAIN) and "Где это?" in told.text
    assert told.keyboard is not None  # the step's buttons (a map point), as the first time
    async with vk.db.uow() as uow:
        draft = await uow.drafts.get("vk", str(RESIDENT))
    assert draft is not None and draft.step == "address"  # the event was not handled twice

    # A batch handed over once more: the same random_id, so VK shows it once.
    await vk.poller.handle_batch([event])
    await drain(vk.worker)
    assert [s for s in vk.fake.sent[before:] if s.peer_id == RESIDENT] == [told]


async def test_an_event_that_found_no_free_connection_comes_again(
    vk: VkHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool had no connection to give (every one busy past its wait): the storage was
    away, not the event at fault. The batch stops, its position is not stored, and the event
    has its effect when it comes again, instead of being dropped after three attempts."""
    await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    categories = vk.last_with(RESIDENT, "i:category:")
    await vk.presses(RESIDENT, categories, "i:category:roads")
    vk.fake.write(RESIDENT, "Не горит фонарь во дворе дома уже неделю")
    event = vk.fake.events[-1]
    handle = IntakeService.handle
    busy = [PoolTimeout("QueuePool limit of size 12 overflow 18 reached")]

    async def pool_busy_once(self: IntakeService, *args: Any, **kwargs: Any) -> Any:
        if busy:
            raise busy.pop()
        return await handle(self, *args, **kwargs)

    monkeypatch.setattr(IntakeService, "handle", pool_busy_once)
    with pytest.raises(PoolTimeout):
        await vk.poller.handle_batch([event])
    await vk.poller.handle_batch([event])  # fetched again from the stored position
    async with vk.db.uow() as uow:
        draft = await uow.drafts.get("vk", str(RESIDENT))
    assert draft is not None and draft.step == "address"
    assert draft.data["description"] == "Не горит фонарь во дворе дома уже неделю"


async def test_odd_input_gets_a_clear_answer_and_the_draft_stays(vk: VkHarness) -> None:
    await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    await vk.presses(RESIDENT, vk.last_with(RESIDENT, "i:category:"), "i:category:housing")

    sticker = {"type": "sticker", "sticker": {"sticker_id": 1}}
    said = await vk.says(RESIDENT, attachments=[sticker])
    assert said[0].text.startswith(texts.UNSUPPORTED["sticker"])
    voice = {"type": "audio_message", "audio_message": {"duration": 3}}
    said = await vk.says(RESIDENT, attachments=[voice])
    assert said[0].text.startswith(texts.UNSUPPORTED["voice"])
    said = await vk.says(RESIDENT, "я" * 10_000)
    assert str(texts.MAX_DESCRIPTION) in said[0].text
    forged = await vk.says(RESIDENT, "✅ Отправить", payload=json.dumps({"a": "i:confirm:submit"}))
    assert forged[0].text.startswith(texts.STALE_BUTTON)
    junk = await vk.says(RESIDENT, "кнопка", payload="{not json")
    assert junk  # answered as text at the description step
    unknown = await vk.says(RESIDENT, "/bind roads")
    assert unknown[0].text == texts.UNKNOWN_COMMAND

    async with vk.db.uow() as uow:
        draft = await uow.drafts.get("vk", str(RESIDENT))
    assert draft is not None and draft.step == "description"
    assert draft.data["category"] == "housing"


async def test_my_appeals_and_the_resident_verdict(vk: VkHarness, config: CoreConfig) -> None:
    number = await file_appeal(vk, photos=0)
    said = await vk.says(RESIDENT, "/my")
    assert number in said[0].text

    async with vk.db.uow() as uow:
        appeal = await uow.appeals.by_number(number)
    assert appeal is not None
    coordinator = StaffActor(COORDINATOR, "Координатор", COORDINATOR, is_coordinator=True)
    assert (await vk.staff.resolve(coordinator, appeal.id)).ok
    await drain(vk.worker)
    # The verdict buttons arrive as VK callback buttons; pressing «Не решена» reopens it.
    question = vk.last_with(RESIDENT, "f:")
    assert question.keyboard is not None and question.keyboard["inline"] is True
    said = await vk.presses(RESIDENT, question, f"f:{appeal.id}:no")
    assert any(number in s.text and "возвращено в работу" in s.text for s in said)
    async with vk.db.uow() as uow:
        reopened = await uow.appeals.get(appeal.id)
    assert reopened is not None and reopened.status == Status.REOPENED.value


async def test_a_reply_to_a_notice_reaches_the_department(vk: VkHarness) -> None:
    number = await file_appeal(vk, photos=0)
    await drain(vk.worker)
    async with vk.db.uow() as uow:
        appeal = await uow.appeals.by_number(number)
        assert appeal is not None
        # The acceptance notice as VK delivered it: remembered under its VK message id.
        await uow.cards.add(appeal.id, RESIDENT, 777, "notice", "vk")
        await uow.commit()
    notice = Sent(777, RESIDENT, 1, "Обращение принято", None, [])
    said = await vk.says(
        RESIDENT,
        "Добавлю: яма стала больше",
        attachments=[vk.fake.photo_attachment()],
        reply_to=notice,
    )
    assert number in said[0].text
    await drain(vk.worker)
    comment = [s for s in vk.sender.to(COORDINATOR) if "яма стала больше" in s.text]
    assert comment and comment[0].method == "photos" and comment[0].uploaded == 1

    # Words longer than a comment may be, with photos: refused whole, nothing passed on.
    before = len(vk.sender.sent)
    said = await vk.says(
        RESIDENT,
        "Подробно: " + "яма " * 600,
        attachments=[vk.fake.photo_attachment(), vk.fake.photo_attachment()],
        reply_to=notice,
    )
    assert [s.text for s in said] == [
        texts.comment_too_long(len(("Подробно: " + "яма " * 600).strip()))
    ]
    await drain(vk.worker)
    assert [s for s in vk.sender.sent[before:] if s.method != "edit"] == []


async def test_group_conversations_and_other_communities_are_ignored(vk: VkHarness) -> None:
    vk.fake.write(RESIDENT, "Здравствуйте")
    vk.fake.events[-1]["object"]["message"]["peer_id"] = 2_000_000_007
    await vk.deliver()
    assert vk.fake.sent == []
    async with vk.db.uow() as uow:
        drafts = await uow.session.scalar(select(func.count()).select_from(Draft))
        appeals = await uow.session.scalar(select(func.count()).select_from(Appeal))
        photos = await uow.session.scalar(select(func.count()).select_from(AppealPhoto))
    assert (drafts, appeals, photos) == (0, 0, 0)


async def test_a_press_too_old_to_answer_still_counts(vk: VkHarness) -> None:
    """After a restart, VK no longer takes an answer to an old press; the press is kept."""
    await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    event_id = vk.fake.press(RESIDENT, vk.last_with(RESIDENT, "i:category:"), "i:category:roads")
    vk.fake.pending_event_ids.discard(event_id)  # expired: sendMessageEventAnswer fails
    await vk.deliver()
    assert [c.error for c in vk.fake.find("messages.sendMessageEventAnswer")] == [100]
    assert texts.ASK_DESCRIPTION.split(":")[0] in vk.fake.texts_to(RESIDENT)[-1]
    async with vk.db.uow() as uow:
        draft = await uow.drafts.get("vk", str(RESIDENT))
    assert draft is not None and draft.step == "description"


async def test_malformed_updates_neither_crash_nor_stop_the_others(vk: VkHarness) -> None:
    bad: list[dict[str, Any]] = [
        {"type": "message_new", "event_id": "bad1", "object": "not an object"},
        {"type": "message_new", "event_id": "bad2", "object": {"message": {"from_id": "abc"}}},
        {"event_id": "bad3", "object": {}},  # no type at all
        {"type": "wall_post_new", "event_id": "bad4", "object": {"id": 1}},
        {"type": "a_type_vk_adds_later", "event_id": "bad5", "object": {}},
        {"type": "message_event", "event_id": "bad6", "object": {"user_id": [1], "payload": 7}},
    ]
    await vk.poller.handle_batch(bad)
    assert vk.fake.sent == []
    # A real resident's malformed attachments: a map point without longitude, odd sizes.
    vk.fake.write(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    await vk.deliver()
    await vk.presses(RESIDENT, vk.last_with(RESIDENT, "i:category:"), "i:category:roads")
    await vk.says(RESIDENT, "Не работает светофор на перекрёстке с утра")
    vk.fake.write(RESIDENT, geo=(55.75, 37.61))
    del vk.fake.events[-1]["object"]["message"]["geo"]["coordinates"]["longitude"]
    await vk.deliver()
    assert vk.fake.texts_to(RESIDENT)[-1].startswith(texts.UNSUPPORTED_DEFAULT)
    odd = vk.fake.photo_attachment()
    odd["photo"]["sizes"][1]["width"] = "w"
    said = await vk.says(RESIDENT, attachments=[odd])
    assert said  # answered, not dropped
    said = await vk.says(RESIDENT, "ул. Ленина, 10")
    assert any(texts.ASK_PHOTOS.split(" —")[0] in s.text for s in said)


async def test_a_reply_vk_refuses_once_is_delivered_later(vk: VkHarness) -> None:
    await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    await vk.presses(RESIDENT, vk.last_with(RESIDENT, "i:category:"), "i:category:roads")
    vk.fake.inject("messages.send", 10)  # VK's internal error on the next send
    said = await vk.says(RESIDENT, "Открыт люк на тротуаре возле школы")
    assert said == []
    await make_due(vk.db)
    await drain(vk.worker)
    attempts = [
        c for c in vk.fake.find("messages.send") if "Где это?" in c.params.get("message", "")
    ]
    assert [c.error for c in attempts] == [10, None]
    assert attempts[0].params["random_id"] == attempts[1].params["random_id"]
    assert vk.fake.texts_to(RESIDENT)[-1].startswith("Где это?")


async def test_clients_without_inline_buttons_get_keyboard_buttons(vk: VkHarness) -> None:
    vk.fake.write(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    vk.fake.events[-1]["object"]["client_info"] = {
        "button_actions": ["text"],
        "keyboard": True,
        "inline_keyboard": False,
    }
    await vk.deliver()
    categories = vk.last_with(RESIDENT, "i:category:")
    assert categories.keyboard is not None and not categories.keyboard.get("inline")
    kinds = {b["action"]["type"] for row in categories.keyboard["buttons"] for b in row}
    assert kinds == {"text"}
    # Pressing such a button sends its label with the payload.
    said = await vk.says(
        RESIDENT, "🛣 Дороги", payload=json.dumps({"a": "i:category:roads"}, ensure_ascii=False)
    )
    assert said[0].text.startswith(texts.ASK_DESCRIPTION.split(":")[0])


async def test_pressed_buttons_are_taken_away(vk: VkHarness) -> None:
    """As in Telegram: an old summary's «Отправить» cannot submit a draft changed since."""
    await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    categories = vk.last_with(RESIDENT, "i:category:")
    await vk.presses(RESIDENT, categories, "i:category:roads")
    assert categories.keyboard is None  # edited away
    await vk.says(RESIDENT, "Разбит фонарь у подъезда, темно вечером")
    await vk.says(RESIDENT, "ул. Мира, 3")
    await vk.says(RESIDENT, texts.SKIP)
    await vk.says(RESIDENT, texts.SKIP)
    summary = vk.last_with(RESIDENT, "i:confirm:")
    await vk.presses(RESIDENT, summary, "i:confirm:edit")
    assert summary.keyboard is None and summary.text.startswith("Категория:")
    # A client that still shows the old buttons: the press is refused, nothing is filed, also
    # once a new summary stands (the old one showed another description).
    before = len(vk.fake.sent)
    vk.fake.press_forged(RESIDENT, summary, "i:confirm:submit")
    await vk.deliver()
    assert vk.fake.sent[before].text.startswith(texts.STALE_BUTTON)
    await vk.presses(RESIDENT, vk.last_with(RESIDENT, "i:edit:"), "i:edit:description")
    await vk.says(RESIDENT, "Разбит фонарь у подъезда, темно вечером, скользко")
    assert vk.last_with(RESIDENT, "i:confirm:") is not summary
    said = await vk.presses_forged(RESIDENT, summary, "i:confirm:submit")
    assert said[0].text == texts.STALE_BUTTON
    assert "Разбит фонарь у подъезда, темно вечером, скользко" in said[-1].text  # where it stands
    async with vk.db.uow() as uow:
        appeals = await uow.session.scalar(select(func.count()).select_from(Appeal))
    assert appeals == 0


async def test_send_pressed_again_repeats_the_number(vk: VkHarness) -> None:
    """The «принято» may have been missed: the old summary's «Отправить» says the number."""
    number = await file_appeal(vk, photos=0)
    summary = [s for s in vk.fake.sent_to(RESIDENT) if s.text.startswith("Категория:")][-1]
    assert summary.keyboard is None  # taken away; a client may still show it
    said = await vk.presses_forged(RESIDENT, summary, "i:confirm:submit")
    assert [s.text for s in said] == [texts.already_sent(number)]
    async with vk.db.uow() as uow:
        appeals = await uow.session.scalar(select(func.count()).select_from(Appeal))
    assert appeals == 1


async def test_a_vk_follow_up_typed_without_reply_reaches_the_department(
    vk: VkHarness,
) -> None:
    number = await file_appeal(vk, photos=0)
    said = await vk.says(RESIDENT, "Завтра это во сколько? Я весь день на работе")
    question = said[-1]
    assert f"№ {number}" in question.text
    to_appeal = [p for p in question.payloads if p.startswith("i:followup:")]
    assert len(to_appeal) == 2 and to_appeal[-1] == "i:followup:new"
    said = await vk.presses(RESIDENT, question, to_appeal[0])
    assert said[-1].text == texts.comment_sent(number)
    # Staff see it where the card is (the coordinators: no group is bound here).
    passed = [s for s in vk.sender.sent if "Завтра это во сколько?" in s.text]
    assert passed and f"№ {number}" in passed[0].text


async def test_a_client_without_callback_buttons_can_answer_the_verdict(vk: VkHarness) -> None:
    """Its «Решено» question comes as text buttons (one press, then gone), and a press works."""
    text_only = {"button_actions": ["text", "location"], "keyboard": True, "inline_keyboard": False}

    async def says(text: str = "", **kwargs: Any) -> list[Sent]:
        before = len(vk.fake.sent)
        vk.fake.write(RESIDENT, text, **kwargs)
        vk.fake.events[-1]["object"]["client_info"] = text_only
        await vk.deliver()
        return [s for s in vk.fake.sent[before:] if s.peer_id == RESIDENT]

    def pressed(action: str) -> str:
        return json.dumps({"a": action}, ensure_ascii=False)

    await says("Начать", payload=json.dumps({"command": "start"}))
    await says("🛣 Дороги", payload=pressed("i:category:roads"))
    await says("Открыт люк на тротуаре возле школы")
    await says(geo=(55.7512, 37.6184))
    await says(texts.SKIP)
    await says(texts.SKIP)
    said = await says("✅ Отправить", payload=pressed("i:confirm:submit"))
    number = next(s for s in said if "принято" in s.text).text.split("№ ")[1].split()[0]
    async with vk.db.uow() as uow:
        appeal = await uow.appeals.by_number(number)
    assert appeal is not None
    coordinator = StaffActor(COORDINATOR, "Координатор", COORDINATOR, is_coordinator=True)
    assert (await vk.staff.resolve(coordinator, appeal.id)).ok
    await drain(vk.worker)

    question = vk.last_with(RESIDENT, "f:")
    assert question.keyboard is not None and not question.keyboard.get("inline")
    assert question.keyboard["one_time"] is True
    kinds = {b["action"]["type"] for row in question.keyboard["buttons"] for b in row}
    assert kinds == {"text"}
    said = await says("👎 Не решена", payload=pressed(f"f:{appeal.id}:no"))
    answer = next(s for s in said if "возвращено в работу" in s.text)
    # The one-time keyboard took the menu's place: the answer brings the menu back.
    assert answer.keyboard is not None and not answer.keyboard.get("inline")
    labels = {b["action"]["label"] for row in answer.keyboard["buttons"] for b in row}
    assert labels == {texts.MENU_NEW, texts.MENU_MY}
    async with vk.db.uow() as uow:
        reopened = await uow.appeals.get(appeal.id)
    assert reopened is not None and reopened.status == Status.REOPENED.value
