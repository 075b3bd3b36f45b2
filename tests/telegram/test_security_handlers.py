"""Security through aiogram's dispatcher: a resident flooding, a coordinator banning, the banned
resident writing again; who may do what, and forged buttons (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from aiogram.methods import SendMessage
from aiogram.types import User
from sqlalchemy import select

from bot.core import texts
from bot.core.appeals import DENIED, StaffService
from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.intake import IntakeService
from bot.core.routing import ONLY_COORDINATORS, RoutingService
from handlers.telegram.setup import build_dispatcher
from storage.models import Appeal, AppealEvent, OutboxMessage, Resident
from storage.uow import Database, SavedDraft
from tests.conftest import COORDINATOR
from tests.core.recording import RecordingSender, drain, make_worker
from tests.telegram.mocked import MockedBot
from tests.telegram.test_handlers import BOSS, GROUP, RESIDENT, STAFF, Harness, message

BORIS = User(id=502, is_bot=False, first_name="Борис")
PER_HOUR = 2


@dataclasses.dataclass
class Guarded(Harness):
    sender: RecordingSender = dataclasses.field(default_factory=RecordingSender)
    worker: OutboxWorker | None = None

    async def deliver(self) -> None:
        assert self.worker is not None
        await drain(self.worker)

    async def file(self, user: User = RESIDENT, description: str = "") -> str:
        await self.send(user, text=texts.MENU_NEW)
        await self.press(user, "i:category:roads")
        steps = (description or "Яма на дороге возле остановки", "ул. Ленина, 1")
        for step in (*steps, texts.SKIP, texts.SKIP):
            await self.send(user, text=step)
        before = len(self.said_to(user.id))
        await self.press(user, "i:confirm:submit")
        said = self.said_to(user.id)[before:]
        assert not said, said  # the confirmation comes through the outbox
        async with self.db.uow() as uow:
            appeal = await uow.session.scalar(select(Appeal).order_by(Appeal.id.desc()))
        assert appeal is not None
        return appeal.number

    async def outbox(self) -> list[OutboxMessage]:
        async with self.db.uow() as uow:
            return list(await uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))

    async def appeals(self) -> list[Appeal]:
        async with self.db.uow() as uow:
            return list(await uow.session.scalars(select(Appeal).order_by(Appeal.id)))

    async def draft(self, user: User = RESIDENT) -> SavedDraft | None:
        async with self.db.uow() as uow:
            return await uow.drafts.get("telegram", str(user.id))


@pytest.fixture
async def guarded(db: Database, config: CoreConfig) -> AsyncIterator[Guarded]:
    config = dataclasses.replace(config, appeals_per_hour=PER_HOUR)
    sender = RecordingSender()
    worker = make_worker(db, config, sender)
    dp = build_dispatcher(
        IntakeService(db, config),
        StaffService(db, config),
        RoutingService(db, config),
        worker,
        config.coordinator_ids,
    )
    harness = Guarded(dp, MockedBot(), db, sender, worker)
    async with db.uow() as uow:
        roads = next(d for d in await uow.catalog.departments() if d.code == "roads")
        await uow.catalog.bind(roads, GROUP)
        await uow.commit()
    yield harness


async def test_a_flooding_resident_is_stopped_politely_and_loses_nothing(
    guarded: Guarded,
) -> None:
    await guarded.file()
    await guarded.file()
    await guarded.send(RESIDENT, text=texts.MENU_NEW)
    said = guarded.said_to(RESIDENT.id)[-1]
    assert "вы уже отправили 2 обращения" in said and "можно будет отправить после" in said
    assert await guarded.draft() is None

    # The problem typed anyway is kept for later (a new appeal, not a word to the open ones).
    await guarded.send(RESIDENT, text="Снова не горит фонарь во дворе дома 5, темно")
    assert "к одному из ваших обращений" in guarded.said_to(RESIDENT.id)[-1]
    await guarded.press(RESIDENT, "i:followup:new")
    assert texts.LIMIT_TEXT_KEPT in guarded.said_to(RESIDENT.id)[-1]
    draft = await guarded.draft()
    assert draft is not None and "фонарь" in draft.data["description"]
    assert len(await guarded.appeals()) == PER_HOUR

    # Another resident is not affected, and neither is a coordinator.
    await guarded.file(BORIS)
    for _ in range(3):
        await guarded.file(BOSS)
    assert len(await guarded.appeals()) == PER_HOUR + 4


async def test_a_banned_resident_is_told_once_then_ignored(guarded: Guarded) -> None:
    number = await guarded.file()
    appeal = (await guarded.appeals())[0]
    async with guarded.db.uow() as uow:
        await uow.cards.add(appeal.id, RESIDENT.id, 4444, "notice")  # as the worker records it
        await uow.commit()
    await guarded.send(RESIDENT, text=texts.MENU_NEW)  # a draft in progress
    await guarded.press(RESIDENT, "i:category:roads")

    await guarded.send(BOSS, text="/ban")
    assert guarded.said_to(COORDINATOR)[-1] == texts.BAN_USAGE
    await guarded.send(BOSS, text=f"/ban {number} Спам и оскорбления")
    assert "заблокирован" in guarded.said_to(COORDINATOR)[-1]
    await guarded.deliver()
    card = guarded.sender.to(str(GROUP))[-1]
    assert "⛔ Житель заблокирован" in card.text and "автор заблокирован" in card.text

    outbox_before = len(await guarded.outbox())
    requests_before = len(guarded.bot.recorder.requests)
    await guarded.send(RESIDENT, text="Почему вы не отвечаете?!")
    told = guarded.said_to(RESIDENT.id)[-1]
    assert told == texts.banned("Спам и оскорбления")
    notice = guarded.bot.recorder.of(SendMessage)[-1]
    assert notice.reply_markup is not None and notice.reply_markup.remove_keyboard

    # From now on: silence, and nothing changes.
    requests_after_notice = len(guarded.bot.recorder.requests)
    notice_reply = message(guarded_bot_user(), RESIDENT.id, text="Ответ").model_copy(
        update={"message_id": 4444}
    )
    await guarded.send(RESIDENT, text="Яма на дороге возле остановки, глубокая")
    await guarded.send(RESIDENT, text="/start")
    await guarded.send(RESIDENT, text="/my")
    await guarded.send(RESIDENT, text=texts.MENU_NEW)
    await guarded.send(RESIDENT, text="Комментарий к обращению", reply_to_message=notice_reply)
    await guarded.send(RESIDENT, text="/appeal " + number)
    await guarded.send(RESIDENT, text="/stats")
    await guarded.press(RESIDENT, "i:category:roads")
    await guarded.press(RESIDENT, f"f:{appeal.id}:no")
    new_requests = guarded.bot.recorder.requests[requests_after_notice:]
    assert [type(r).__name__ for r in new_requests] == ["AnswerCallbackQuery"] * 2
    assert all(getattr(r, "text", None) is None for r in new_requests)  # silent toasts
    assert requests_after_notice == requests_before + 1
    assert len(await guarded.outbox()) == outbox_before  # no comment reached the department
    draft = await guarded.draft()
    assert draft is not None and draft.step == "description"  # untouched
    assert [a.status for a in await guarded.appeals()] == ["new"]

    # Staff may still answer the appeal already filed.
    async with guarded.db.uow() as uow:
        await uow.cards.add(appeal.id, GROUP, 3333, "card")
        await uow.commit()
    card_message = message(guarded_bot_user(), GROUP, text="card").model_copy(
        update={"message_id": 3333}
    )
    await guarded.send(STAFF, chat_id=GROUP, text="Выехали на место", reply_to_message=card_message)
    assert guarded.said_to(GROUP)[-1].startswith("✉️ Ответ по №")

    await guarded.send(BOSS, text="/banned")
    assert f"Анна (Telegram), № {number}" in guarded.said_to(COORDINATOR)[-1]
    await guarded.send(BOSS, text=f"/unban {number}")
    assert "Блокировка снята" in guarded.said_to(COORDINATOR)[-1]
    await guarded.send(RESIDENT, text="/my")
    assert f"№ {number}" in guarded.said_to(RESIDENT.id)[-1]
    async with guarded.db.uow() as uow:
        kinds = list(await uow.session.scalars(select(AppealEvent.kind)))
    assert kinds.count("banned") == 1 and kinds[-1] == "unbanned"


async def test_a_banned_resident_sees_no_second_notice_after_a_restart(
    guarded: Guarded, db: Database, config: CoreConfig
) -> None:
    number = await guarded.file()
    await guarded.send(BOSS, text=f"/ban {number}")
    await guarded.press(RESIDENT, "i:confirm:submit")  # the first contact is a press
    assert guarded.said_to(RESIDENT.id)[-1] == texts.banned(None)
    # A new dispatcher (the bot restarted): the notice is not repeated.
    again = build_dispatcher(
        IntakeService(db, config),
        StaffService(db, config),
        RoutingService(db, config),
        make_worker(db, config, RecordingSender()),
        config.coordinator_ids,
    )
    restarted = Guarded(again, MockedBot(), db)
    await restarted.send(RESIDENT, text="Здравствуйте")
    assert restarted.bot.recorder.requests == []


async def test_ban_commands_are_for_coordinators_in_private(guarded: Guarded) -> None:
    number = await guarded.file()
    for command in (f"/ban {number}", f"/unban {number}", "/banned", "/ban"):
        await guarded.send(STAFF, text=command)
        assert guarded.said_to(STAFF.id)[-1] == ONLY_COORDINATORS
        await guarded.send(STAFF, chat_id=GROUP, text=command)
        assert guarded.said_to(GROUP)[-1] == ONLY_COORDINATORS
    await guarded.send(RESIDENT, text=f"/ban {number}")  # a resident cannot ban either
    assert guarded.said_to(RESIDENT.id)[-1] == ONLY_COORDINATORS
    await guarded.send(BOSS, chat_id=GROUP, text=f"/ban {number}")
    assert guarded.said_to(GROUP)[-1] == texts.BAN_PRIVATE_ONLY
    async with guarded.db.uow() as uow:
        banned = await uow.session.scalar(select(Resident).where(Resident.banned_at.is_not(None)))
    assert banned is None


async def test_only_the_bound_group_acts_on_an_appeal(guarded: Guarded) -> None:
    await guarded.file()
    appeal = (await guarded.appeals())[0]
    async with guarded.db.uow() as uow:
        waste = next(d for d in await uow.catalog.departments() if d.code == "waste")
        await uow.catalog.bind(waste, -100555)
        await uow.commit()
    outbox_before = len(await guarded.outbox())
    toasts_before = len(guarded.toasts())
    forged = [
        f"s:take:{appeal.id}",
        f"s:transfer:{appeal.id}",
        f"s:to:{appeal.id}:{waste.id}",
        f"s:reject:{appeal.id}",
        f"s:rj:{appeal.id}:spam",
        f"s:extend:{appeal.id}",
        f"s:ext:{appeal.id}:30",
        f"s:resolve:{appeal.id}",
        f"s:unresolve:{appeal.id}",
    ]
    for data in forged:  # from another department's group, and from a resident's chat
        await guarded.press(STAFF, data, chat_id=-100555)
        await guarded.press(BORIS, data)
    assert guarded.toasts()[toasts_before:] == [DENIED] * 2 * len(forged)
    assert len(await guarded.outbox()) == outbox_before
    after = (await guarded.appeals())[0]
    assert (after.status, after.department_id, after.deadline_at, after.taken_by_id) == (
        "new",
        appeal.department_id,
        appeal.deadline_at,
        None,
    )
    # The bound group can.
    await guarded.press(STAFF, f"s:take:{appeal.id}", chat_id=GROUP)
    assert (await guarded.appeals())[0].status == "in_work"


async def test_residents_see_and_touch_only_their_own_appeals(guarded: Guarded) -> None:
    anna = await guarded.file(description="Яма на дороге у дома Анны, глубокая")
    boris = await guarded.file(BORIS, description="Яма на дороге у дома Бориса, глубокая")
    await guarded.send(RESIDENT, text="/my")
    listing = guarded.said_to(RESIDENT.id)[-1]
    assert f"№ {anna}" in listing and f"№ {boris}" not in listing
    await guarded.send(BORIS, text=texts.MENU_MY)
    listing = guarded.said_to(BORIS.id)[-1]
    assert f"№ {boris}" in listing and f"№ {anna}" not in listing

    # Anna's appeal is resolved; Boris forges her «не решена» / «решена» buttons.
    anna_id = (await guarded.appeals())[0].id
    await guarded.press(STAFF, f"s:resolve:{anna_id}", chat_id=GROUP)
    outbox_before = len(await guarded.outbox())
    await guarded.press(BORIS, f"f:{anna_id}:no")
    await guarded.press(BORIS, f"f:{anna_id}:yes")
    assert guarded.said_to(BORIS.id)[-2:] == ["Эта кнопка недоступна."] * 2
    assert (await guarded.appeals())[0].status == "resolved"
    assert len(await guarded.outbox()) == outbox_before


def guarded_bot_user() -> User:
    return User(id=42, is_bot=True, first_name="Приёмная")
