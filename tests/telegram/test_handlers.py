"""Telegram handlers through aiogram's dispatcher, as updates arrive from the Bot API."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import AnswerCallbackQuery, EditMessageReplyMarkup, SendMessage, SendPhoto
from aiogram.types import (
    CallbackQuery,
    Chat,
    Contact,
    ForceReply,
    Location,
    Message,
    PhotoSize,
    Sticker,
    Update,
    User,
    Voice,
)
from sqlalchemy import select

from bot.core import texts
from bot.core.appeals import DENIED, StaffService
from bot.core.config import CoreConfig
from bot.core.intake import IntakeService
from bot.core.ports import PermanentError, RecipientGone
from bot.core.routing import ONLY_COORDINATORS, RoutingService
from handlers.telegram.citizen import UNKNOWN_COMMAND
from handlers.telegram.sender import TelegramSender
from handlers.telegram.setup import build_dispatcher
from storage.models import Appeal, CardMessage, Department, Draft, OutboxMessage
from storage.uow import REFUSED_BY_CHAT, Database
from tests.conftest import COORDINATOR
from tests.core.recording import RecordingSender, make_worker
from tests.telegram.mocked import MockedBot

RESIDENT = User(id=501, is_bot=False, first_name="Анна")
STAFF = User(id=701, is_bot=False, first_name="Иван", last_name="Петров")
BOSS = User(id=COORDINATOR, is_bot=False, first_name="Ольга")
GROUP = -100111
_ids = itertools.count(1)


def message(user: User, chat_id: int, **fields: Any) -> Message:
    chat = Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup")
    return Message(
        message_id=next(_ids), date=datetime.now(UTC), chat=chat, from_user=user, **fields
    )


@dataclass
class Harness:
    dp: Dispatcher
    bot: MockedBot
    db: Database

    async def send(self, user: User, chat_id: int = 0, **fields: Any) -> None:
        chat_id = chat_id or user.id
        update = Update(update_id=next(_ids), message=message(user, chat_id, **fields))
        await self.dp.feed_update(self.bot, update)

    async def press(self, user: User, data: str, chat_id: int = 0, message_id: int = 1) -> None:
        chat_id = chat_id or user.id
        target = message(BOT, chat_id, text="…")
        target = target.model_copy(update={"message_id": message_id})
        query = CallbackQuery(
            id=str(next(_ids)), from_user=user, chat_instance="x", message=target, data=data
        )
        await self.dp.feed_update(self.bot, Update(update_id=next(_ids), callback_query=query))

    async def file_roads_appeal(self) -> Appeal:
        """The roads department bound to GROUP, and one appeal filed through the dispatcher."""
        async with self.db.uow() as uow:
            roads = next(d for d in await uow.catalog.departments() if d.code == "roads")
            await uow.catalog.bind(roads, GROUP)
            await uow.commit()
        await self.send(RESIDENT, text="/start")
        await self.press(RESIDENT, "i:category:roads")
        for step in ("Яма на дороге возле остановки", "ул. Ленина, 1", texts.SKIP, texts.SKIP):
            await self.send(RESIDENT, text=step)
        await self.press(RESIDENT, "i:confirm:submit")
        async with self.db.uow() as uow:
            appeal = await uow.session.scalar(select(Appeal))
        assert appeal is not None
        return appeal

    def said_to(self, chat_id: int) -> list[str]:
        return self.bot.recorder.texts_to(chat_id)

    def toasts(self) -> list[str | None]:
        return [r.text for r in self.bot.recorder.of(AnswerCallbackQuery)]

    async def draft_step(self) -> str | None:
        async with self.db.uow() as uow:
            draft = await uow.session.scalar(select(Draft))
            return draft.step if draft else None


BOT = User(id=42, is_bot=True, first_name="Приёмная")


@pytest.fixture
async def harness(sqlite_db: Database, config: CoreConfig) -> AsyncIterator[Harness]:
    worker = make_worker(sqlite_db, config, RecordingSender())
    dp = build_dispatcher(
        IntakeService(sqlite_db, config),
        StaffService(sqlite_db, config),
        RoutingService(sqlite_db, config),
        worker,
        config.coordinator_ids,
    )
    yield Harness(dp, MockedBot(), sqlite_db)


async def test_start_shows_menu_and_categories(harness: Harness) -> None:
    await harness.send(RESIDENT, text="/start")
    sent = harness.bot.recorder.of(SendMessage)
    assert sent[0].text == texts.WELCOME
    assert sent[0].reply_markup.keyboard[0][0].text == texts.MENU_NEW
    buttons = [b.callback_data for row in sent[1].reply_markup.inline_keyboard for b in row]
    assert "i:category:roads" in buttons and len(buttons) == 10
    assert await harness.draft_step() == "category"


async def test_conversation_with_odd_input(harness: Harness) -> None:
    await harness.send(RESIDENT, text=texts.MENU_NEW)
    await harness.press(RESIDENT, "i:category:roads", message_id=77)
    assert harness.bot.recorder.of(EditMessageReplyMarkup)[0].message_id == 77
    assert harness.said_to(501)[-1] == texts.ASK_DESCRIPTION
    sticker = Sticker(
        file_id="s",
        file_unique_id="s",
        type="regular",
        width=1,
        height=1,
        is_animated=False,
        is_video=False,
    )
    await harness.send(RESIDENT, sticker=sticker)
    assert harness.said_to(501)[-1].startswith(texts.UNSUPPORTED["sticker"])
    await harness.send(RESIDENT, voice=Voice(file_id="v", file_unique_id="v", duration=3))
    assert texts.UNSUPPORTED["voice"] in harness.said_to(501)[-1]
    await harness.send(RESIDENT, text="x" * 5000)
    assert "5000 символов" in harness.said_to(501)[-1]
    await harness.send(RESIDENT, text="/nonsense junk args")
    assert harness.said_to(501)[-1] == UNKNOWN_COMMAND
    assert await harness.draft_step() == "description"

    await harness.send(RESIDENT, text="Яма на дороге возле остановки, глубокая")
    await harness.send(RESIDENT, location=Location(latitude=55.7, longitude=37.6))
    assert harness.said_to(501)[-1].startswith("Пришлите фото")
    photo = [
        PhotoSize(file_id="small", file_unique_id="a", width=90, height=90),
        PhotoSize(file_id="big", file_unique_id="b", width=1280, height=960),
    ]
    await harness.send(RESIDENT, photo=photo, media_group_id="g1")
    await harness.send(RESIDENT, photo=photo, media_group_id="g1")
    assert harness.said_to(501).count(texts.PHOTO_ADDED) == 1
    await harness.send(RESIDENT, text=texts.DONE)
    await harness.send(
        RESIDENT, contact=Contact(phone_number="+79001234567", first_name="Анна", user_id=501)
    )
    summary = harness.said_to(501)[-1]
    assert "Фото: 2" in summary and "+79001234567" in summary
    await harness.press(RESIDENT, "i:confirm:submit")
    async with harness.db.uow() as uow:
        appeal = await uow.session.scalar(select(Appeal))
        assert appeal is not None and appeal.phone == "+79001234567"
        photos = await uow.appeals.photos(appeal.id, "resident")
        assert [p.file_ref for p in photos] == ["big", "big"]
    # Pressing «Отправить» again on the old summary creates nothing and repeats the number
    # (the first answer may never have arrived).
    await harness.press(RESIDENT, "i:confirm:submit")
    assert harness.said_to(501)[-1] == texts.already_sent(appeal.number)
    async with harness.db.uow() as uow:
        assert len(list(await uow.session.scalars(select(Appeal)))) == 1


async def test_forged_and_junk_callbacks(harness: Harness) -> None:
    await harness.press(STAFF, "s:take:1", chat_id=GROUP)
    await harness.press(STAFF, "s:to:1:999999", chat_id=GROUP)
    await harness.press(STAFF, "zz:' or 1=1", chat_id=GROUP)
    await harness.press(RESIDENT, "f:1:yes")
    await harness.press(RESIDENT, "b:1")
    toasts = harness.toasts()
    assert toasts[:2] == [DENIED, DENIED]
    assert toasts[2] == "Эта кнопка устарела."
    assert "Эта кнопка недоступна." in harness.said_to(501)
    async with harness.db.uow() as uow:
        outbox = list(await uow.session.scalars(select(OutboxMessage)))
        bound = await uow.session.scalar(select(Department).where(Department.chat_id.is_not(None)))
    assert outbox == [] and bound is None


async def test_bind_only_by_coordinator_and_migration(harness: Harness) -> None:
    await harness.send(STAFF, chat_id=GROUP, text="/bind")
    assert harness.said_to(GROUP)[-1] == ONLY_COORDINATORS
    await harness.send(BOSS, chat_id=GROUP, text="/bind")
    menu = harness.bot.recorder.of(SendMessage)[-1].reply_markup.inline_keyboard
    async with harness.db.uow() as uow:
        roads = next(d for d in await uow.catalog.departments() if d.code == "roads")
    assert [f"b:{roads.id}"] in [[b.callback_data for b in row] for row in menu]
    await harness.press(STAFF, f"b:{roads.id}", chat_id=GROUP)
    await harness.press(BOSS, f"b:{roads.id}", chat_id=GROUP)
    await harness.send(BOSS, chat_id=GROUP, migrate_to_chat_id=-100999)
    async with harness.db.uow() as uow:
        department = await uow.catalog.department(roads.id)
        assert department is not None and department.chat_id == -100999
    await harness.send(BOSS, text="/departments")
    assert "группа -100999" in harness.said_to(COORDINATOR)[-1]


async def test_staff_reply_to_card_reaches_resident(harness: Harness) -> None:
    appeal = await harness.file_roads_appeal()
    async with harness.db.uow() as uow:
        await uow.cards.add(appeal.id, GROUP, 3333, "card")  # as the worker records it
        await uow.commit()
    card = message(BOT, GROUP, text="card").model_copy(update={"message_id": 3333})
    await harness.send(STAFF, chat_id=GROUP, text="Выехали на место", reply_to_message=card)
    assert harness.said_to(GROUP)[-1].startswith("✉️ Ответ по №")
    # The same reply from a group the appeal is not bound to is refused.
    await harness.send(STAFF, chat_id=-100555, text="Чужой ответ", reply_to_message=card)
    async with harness.db.uow() as uow:
        answers = [
            o.payload["text"]
            for o in await uow.session.scalars(select(OutboxMessage))
            if o.chat_id == "501"
        ]
        refreshed = await uow.appeals.get(appeal.id)
    assert any("Выехали на место" in a for a in answers)
    assert not any("Чужой ответ" in a for a in answers)
    assert refreshed is not None and refreshed.status == "in_work"
    assert refreshed.taken_by_name == "Иван Петров"


async def test_resident_reply_to_a_notice_becomes_a_comment(harness: Harness) -> None:
    appeal = await harness.file_roads_appeal()
    async with harness.db.uow() as uow:
        await uow.cards.add(appeal.id, 501, 4444, "notice")  # as the worker records it
        await uow.commit()
    notice = message(BOT, 501, text="Ответ по обращению").model_copy(update={"message_id": 4444})
    await harness.send(RESIDENT, text="Спасибо, но яма всё ещё там", reply_to_message=notice)
    assert harness.said_to(501)[-1] == texts.comment_sent(appeal.number)
    async with harness.db.uow() as uow:
        comments = [
            o.payload["text"]
            for o in await uow.session.scalars(select(OutboxMessage))
            if o.chat_id == str(GROUP) and o.kind == "comment_text"
        ]
    assert any("яма всё ещё там" in c for c in comments)


async def test_sender_tells_a_gone_chat_from_a_refused_message() -> None:
    sender = TelegramSender(MockedBot())
    method = SendPhoto(chat_id=-1, photo="x")

    async def fail(message: str) -> None:
        raise TelegramBadRequest(method=method, message=message)

    with pytest.raises(RecipientGone):
        await sender._call(lambda: fail("Bad Request: chat not found"))
    with pytest.raises(RecipientGone):
        await sender._call(lambda: fail("Bad Request: not enough rights to send text messages"))
    with pytest.raises(PermanentError):
        await sender._call(lambda: fail("Bad Request: not enough rights to send photos"))


async def test_coordinator_start_shows_their_tools(harness: Harness) -> None:
    await harness.send(BOSS, text="/start")
    assert harness.said_to(COORDINATOR)[0] == texts.COORDINATOR_HELP
    assert await harness.draft_step() is None  # not dropped into the appeal form


async def test_coordinator_start_brings_what_they_refused(harness: Harness) -> None:
    async with harness.db.uow() as uow:  # a card refused before they ever opened the bot
        card = await uow.outbox.add("telegram", COORDINATOR, "text", {"text": "Карточка № 1"})
        card.status, card.last_error = "failed", f"{REFUSED_BY_CHAT}: Forbidden"
        await uow.commit()
    await harness.send(BOSS, text="/start")
    assert harness.said_to(COORDINATOR)[-1] == texts.missed_while_closed(1)
    async with harness.db.uow() as uow:
        again = await uow.outbox.get(card.id)
    assert again is not None and again.status == "pending"


async def test_find_appeal_command(harness: Harness) -> None:
    appeal = await harness.file_roads_appeal()
    await harness.send(RESIDENT, text=f"/appeal {appeal.number}")
    assert harness.said_to(501)[-1] == UNKNOWN_COMMAND  # residents have no such command
    await harness.send(STAFF, chat_id=-100555, text=f"/appeal {appeal.number}")
    assert harness.said_to(-100555)[-1] == f"Обращение № {appeal.number} здесь не найдено."
    await harness.send(BOSS, text=f"/appeal {appeal.number}")
    async with harness.db.uow() as uow:
        posts = [
            o
            for o in await uow.session.scalars(select(OutboxMessage))
            if o.kind == "card_post" and o.chat_id == str(COORDINATOR)
        ]
    assert len(posts) == 1


async def test_coordinator_chatter_does_not_start_an_appeal(harness: Harness) -> None:
    await harness.send(BOSS, text="Коллеги, проверьте, пожалуйста, обращения по дорогам")
    assert harness.said_to(COORDINATOR)[-1] == texts.IDLE
    assert await harness.draft_step() is None
    await harness.send(BOSS, text=texts.MENU_NEW)  # but they may file one on purpose
    assert await harness.draft_step() == "category"


async def test_a_wrong_duplicate_number_is_asked_again_as_a_question(harness: Harness) -> None:
    """«Не нашёл…» comes as a question of its own: replying to it (the natural thing to do)
    finishes the rejection."""
    original = await harness.file_roads_appeal()
    await harness.send(RESIDENT, text=texts.MENU_NEW)
    await harness.press(RESIDENT, "i:category:roads")
    for step in ("Та же яма на дороге у остановки", "ул. Ленина, 1", texts.SKIP, texts.SKIP):
        await harness.send(RESIDENT, text=step)
    await harness.press(RESIDENT, "i:confirm:submit")
    async with harness.db.uow() as uow:
        repeat = await uow.session.scalar(select(Appeal).order_by(Appeal.id.desc()))
        assert repeat is not None and repeat.id != original.id
        await uow.cards.add(repeat.id, GROUP, 3333, "card")
        await uow.commit()

    async def latest_prompt() -> Message:
        async with harness.db.uow() as uow:
            card = await uow.session.scalar(
                select(CardMessage)
                .where(CardMessage.purpose == "reject_duplicate")
                .order_by(CardMessage.id.desc())
            )
        assert card is not None and card.appeal_id == repeat.id
        return message(BOT, GROUP, text="?").model_copy(update={"message_id": card.message_id})

    await harness.press(STAFF, f"s:rj:{repeat.id}:duplicate", chat_id=GROUP, message_id=3333)
    await harness.send(STAFF, chat_id=GROUP, text="дубль", reply_to_message=await latest_prompt())
    asked_again = harness.bot.recorder.of(SendMessage)[-1]
    assert "не нашёл обращения «дубль»" in asked_again.text
    assert isinstance(asked_again.reply_markup, ForceReply)
    await harness.send(
        STAFF, chat_id=GROUP, text=original.number, reply_to_message=await latest_prompt()
    )
    async with harness.db.uow() as uow:
        rejected = await uow.appeals.get(repeat.id)
    assert rejected is not None and rejected.status == "rejected"
    assert rejected.reject_reason is not None and original.number in rejected.reject_reason
