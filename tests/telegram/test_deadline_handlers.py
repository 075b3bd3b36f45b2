"""Deadlines as staff and coordinators meet them in Telegram: the scan's messages, /overdue
with its buttons and pages, and «Продлить срок» with a reason given in a reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from aiogram.methods import EditMessageReplyMarkup, EditMessageText, SendMessage
from aiogram.types import ForceReply
from sqlalchemy import select

from bot.core.appeals import StaffService
from bot.core.escalation import scan
from bot.core.intake import IntakeService
from bot.core.overdue import NOT_ALLOWED, UNBOUND_GROUP, OverdueService
from bot.core.routing import RoutingService
from handlers.telegram.setup import build_dispatcher
from storage.models import CardMessage, OutboxMessage
from storage.uow import Database, utcnow
from tests.conftest import COORDINATOR
from tests.core.recording import RecordingSender, drain, make_worker
from tests.core.test_deadlines import DEPUTY, HEAD, SHORT
from tests.telegram.mocked import MockedBot
from tests.telegram.test_handlers import BOSS, BOT, GROUP, RESIDENT, STAFF, Harness, message


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
async def harness(
    sqlite_db: Database, clock: Clock, sender: RecordingSender
) -> AsyncIterator[Harness]:
    dp = build_dispatcher(
        IntakeService(sqlite_db, SHORT),
        StaffService(sqlite_db, SHORT),
        RoutingService(sqlite_db, SHORT),
        make_worker(sqlite_db, SHORT, sender),
        SHORT.coordinator_ids,
        OverdueService(sqlite_db, SHORT, clock=clock),
    )
    yield Harness(dp, MockedBot(), sqlite_db)


def delivered(sender: RecordingSender, chat: int, fragment: str) -> int:
    return sum(fragment in s.text for s in sender.to(chat) if s.method == "text")


def last_markup(harness: Harness) -> list[list[str]]:
    sent = harness.bot.recorder.of(SendMessage)[-1]
    return [[b.callback_data for b in row] for row in sent.reply_markup.inline_keyboard]


async def test_untouched_appeal_escalates_shows_in_overdue_and_leaves_it_when_answered(
    harness: Harness, clock: Clock, sender: RecordingSender
) -> None:
    appeal = await harness.file_roads_appeal()
    db, worker = harness.db, harness.dp["worker"]
    created, deadline = appeal.created_at, appeal.deadline_at

    for minutes_after_filing in (46, 50, 61, 91, 121, 150):
        await scan(db, SHORT, created + timedelta(minutes=minutes_after_filing))
    await drain(worker)
    assert delivered(sender, GROUP, f"⏰ Напоминание: срок ответа по обращению № {appeal.number}")
    assert delivered(sender, GROUP, "⏰ Напоминание") == 1
    assert delivered(sender, GROUP, "эскалация, уровень 1.") == 1
    assert delivered(sender, DEPUTY, "эскалация, уровень 2.") == 1
    assert delivered(sender, HEAD, "эскалация, уровень 3.") == 1
    assert delivered(sender, COORDINATOR, "эскалация, уровень 3.") == 1
    card = [s for s in sender.to(GROUP) if s.method == "edit"][-1]
    assert "🔺 Срок ответа просрочен — эскалация: уровень 3" in card.text

    clock.now = deadline + timedelta(minutes=90)
    await harness.send(BOSS, text="/overdue")
    listing = harness.said_to(COORDINATOR)[-1]
    assert "Просроченные обращения: 1" in listing and "Управление дорожного хозяйства" in listing
    assert f"№ {appeal.number} — срок ответа истёк 1 ч 30 мин назад" in listing
    assert "исполнитель не назначен; 🔺 уровень 3" in listing
    assert last_markup(harness) == [[f"ov:c:{appeal.id}", f"ov:t:{appeal.id}"]]

    await harness.send(STAFF, chat_id=GROUP, text="/overdue")
    assert appeal.number in harness.said_to(GROUP)[-1]
    await harness.send(STAFF, text="/overdue")
    assert harness.said_to(STAFF.id)[-1] == NOT_ALLOWED
    await harness.send(STAFF, chat_id=-100555, text="/overdue")
    assert harness.said_to(-100555)[-1] == UNBOUND_GROUP

    # «📌» posts the card here; «↪️ Передать» offers the departments, with no «Назад».
    await harness.press(BOSS, f"ov:c:{appeal.id}")
    async with db.uow() as uow:
        posts = await uow.session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.kind == "card_post", OutboxMessage.chat_id == str(COORDINATOR)
            )
        )
        assert len(list(posts)) == 1
    await harness.press(BOSS, f"ov:t:{appeal.id}")
    assert harness.said_to(COORDINATOR)[-1] == f"Кому передать № {appeal.number}?"
    actions = [a for row in last_markup(harness) for a in row]
    assert actions[-1] == "ov:x:0"  # «Отмена»
    assert actions[:-1] and all(a.startswith(f"ov:to:{appeal.id}:") for a in actions[:-1])
    await harness.press(BOSS, "ov:x:0")
    assert harness.bot.recorder.of(EditMessageText)[-1].text == "Передача отменена."
    # A department group cannot open another department's appeal from a forged button.
    await harness.press(STAFF, f"ov:c:{appeal.id}", chat_id=-100555)
    assert harness.toasts()[-1] == "Обращение здесь не найдено."

    # Re-routed from the list: the menu message says so, the appeal is housing's now.
    async with db.uow() as uow:
        housing = next(d for d in await uow.catalog.departments() if d.code == "housing")
    await harness.press(STAFF, f"ov:to:{appeal.id}:{housing.id}", chat_id=-100555)
    assert harness.toasts()[-1] == "Это действие здесь недоступно."
    await harness.press(BOSS, f"ov:to:{appeal.id}:{housing.id}", message_id=4242)
    assert harness.toasts()[-1] == f"Передано: {housing.name}"
    edit = harness.bot.recorder.of(EditMessageText)[-1]
    assert edit.message_id == 4242 and edit.text == f"↪️ Передано: {housing.name}"
    assert edit.reply_markup is None
    async with db.uow() as uow:
        moved = await uow.appeals.get(appeal.id)
    assert moved is not None and moved.department_id == housing.id
    await harness.send(STAFF, chat_id=GROUP, text="/overdue")
    assert harness.said_to(GROUP)[-1] == "Просроченных обращений нет 👍"
    async with db.uow() as uow:  # back to roads, to go on with its group
        roads = next(d for d in await uow.catalog.departments() if d.code == "roads")
    await harness.press(BOSS, f"ov:to:{appeal.id}:{roads.id}")

    # Staff answer the resident (a reply to the card): the appeal leaves /overdue.
    async with db.uow() as uow:
        await uow.cards.add(appeal.id, GROUP, 3333, "card")
        await uow.commit()
    card_message = message(BOT, GROUP, text="card").model_copy(update={"message_id": 3333})
    await harness.send(STAFF, chat_id=GROUP, text="Яму засыплем", reply_to_message=card_message)
    await harness.send(BOSS, text="/overdue")
    assert harness.said_to(COORDINATOR)[-1] == "Просроченных обращений нет 👍"
    assert await scan(db, SHORT, deadline + timedelta(minutes=100)) == 0  # no answer steps left


async def test_overdue_pages_are_edited_in_place(harness: Harness, clock: Clock) -> None:
    first = await harness.file_roads_appeal()
    for _ in range(11):  # a page holds ten
        await harness.send(RESIDENT, text="/new")
        await harness.press(RESIDENT, "i:category:roads")
        for step in ("Ещё одна яма у школы", "ул. Мира, 5", "Пропустить", "Пропустить"):
            await harness.send(RESIDENT, text=step)
        await harness.press(RESIDENT, "i:confirm:submit")
    clock.now = first.deadline_at + timedelta(hours=1)
    await harness.send(BOSS, text="/overdue")
    assert "Просроченные обращения: 12 (стр. 1 из 2)" in harness.said_to(COORDINATOR)[-1]
    assert last_markup(harness)[-1] == ["ov:p:0", "ov:p:1"]
    await harness.press(BOSS, "ov:p:1", message_id=777)
    edit = harness.bot.recorder.of(EditMessageText)[-1]
    assert edit.message_id == 777 and "стр. 2 из 2" in edit.text
    nav = [b.callback_data for b in edit.reply_markup.inline_keyboard[-1]]
    assert nav == ["ov:p:0", "ov:p:1"]
    # A resident pressing a copied page button learns nothing.
    edits = len(harness.bot.recorder.of(EditMessageText))
    await harness.press(RESIDENT, "ov:p:0")
    assert harness.toasts()[-1] == NOT_ALLOWED
    assert len(harness.bot.recorder.of(EditMessageText)) == edits


async def test_extend_from_the_card_with_a_reason(
    harness: Harness, sender: RecordingSender
) -> None:
    appeal = await harness.file_roads_appeal()
    await harness.press(STAFF, f"s:extend:{appeal.id}", chat_id=GROUP, message_id=3333)
    spans = harness.bot.recorder.of(EditMessageReplyMarkup)[-1].reply_markup.inline_keyboard
    actions = [b.callback_data for row in spans for b in row]
    assert f"s:ext:{appeal.id}:3" in actions and f"s:back:{appeal.id}" in actions
    await harness.press(STAFF, f"s:ext:{appeal.id}:3", chat_id=GROUP, message_id=3333)
    prompt = harness.bot.recorder.of(SendMessage)[-1]
    assert isinstance(prompt.reply_markup, ForceReply)
    assert "причиной продления" in prompt.text
    async with harness.db.uow() as uow:
        registered = await uow.session.scalar(
            select(CardMessage).where(CardMessage.purpose == "extend_3")
        )
    assert registered is not None
    target = message(BOT, GROUP, text=prompt.text).model_copy(
        update={"message_id": registered.message_id}
    )
    await harness.send(STAFF, chat_id=GROUP, text="Ждём асфальт с завода", reply_to_message=target)
    async with harness.db.uow() as uow:
        moved = await uow.appeals.get(appeal.id)
    assert moved is not None and moved.deadline_at == appeal.deadline_at + timedelta(days=3)
    shown = SHORT.format_moment(moved.deadline_at)
    assert harness.said_to(GROUP)[-1] == f"Срок ответа продлён до {shown}."
    await drain(harness.dp["worker"])
    told = sender.texts_to(RESIDENT.id)[-1]
    assert f"продлён до {shown}" in told and "Причина: Ждём асфальт с завода." in told
    # A forged extension from another group changes nothing.
    await harness.press(STAFF, f"s:ext:{appeal.id}:30", chat_id=-100555)
    async with harness.db.uow() as uow:
        again = await uow.appeals.get(appeal.id)
    assert again is not None and again.deadline_at == moved.deadline_at
