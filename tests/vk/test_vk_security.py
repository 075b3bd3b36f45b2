"""The hourly limit and bans in VK, through vkbottle's router and the fake VK (SQLite and
PostgreSQL); the coordinator bans from Telegram, through aiogram's dispatcher."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from datetime import UTC, datetime

import pytest
from aiogram.types import Chat, Message, Update, User
from sqlalchemy import func, select

from bot.core import texts
from bot.core.config import CoreConfig
from bot.core.intake import IntakeService
from bot.core.routing import RoutingService
from handlers.telegram.setup import build_dispatcher
from storage.models import Appeal, OutboxMessage
from tests.conftest import COORDINATOR
from tests.core.recording import drain
from tests.fakes.fake_vk import Sent
from tests.telegram.mocked import MockedBot
from tests.vk import test_vk_handlers as base
from tests.vk.test_vk_handlers import RESIDENT, VkHarness, file_appeal

vk = base.vk  # the VK harness, on this module's config
PER_HOUR = 2


@pytest.fixture
def config(config: CoreConfig) -> CoreConfig:
    return dataclasses.replace(config, appeals_per_hour=PER_HOUR)


_update_ids = itertools.count(1)


async def coordinator_says(vk: VkHarness, config: CoreConfig, text: str) -> list[str]:
    """A coordinator's command in their private chat with the Telegram bot."""
    dp = build_dispatcher(
        IntakeService(vk.db, config),
        vk.staff,
        RoutingService(vk.db, config),
        vk.worker,
        config.coordinator_ids,
    )
    bot = MockedBot()
    boss = User(id=COORDINATOR, is_bot=False, first_name="Ольга")
    message = Message(
        message_id=1,
        date=datetime.now(UTC),
        chat=Chat(id=COORDINATOR, type="private"),
        from_user=boss,
        text=text,
    )
    # Each command is a new update (a repeated update id is skipped as handled before).
    await dp.feed_update(bot, Update(update_id=next(_update_ids), message=message))
    return bot.recorder.texts_to(COORDINATOR)


async def appeals(vk: VkHarness) -> int:
    async with vk.db.uow() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(Appeal)) or 0)


async def test_a_flooding_vk_resident_is_stopped_and_keeps_the_draft(vk: VkHarness) -> None:
    await file_appeal(vk, photos=0)
    await file_appeal(vk, photos=0)
    said = await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    limit = said[-1].text
    assert "вы уже отправили 2 обращения" in limit and "можно будет отправить после" in limit
    assert not any(texts.ASK_CATEGORY in s.text for s in said)
    said = await vk.says(RESIDENT, "Во дворе дома 7 не вывезли мусор, контейнеры полные")
    assert "к одному из ваших обращений" in said[-1].text  # a new one, not a word to those
    said = await vk.presses(RESIDENT, said[-1], "i:followup:new")
    assert texts.LIMIT_TEXT_KEPT in said[-1].text
    async with vk.db.uow() as uow:
        draft = await uow.drafts.get("vk", str(RESIDENT))
    assert draft is not None and "мусор" in draft.data["description"]
    assert await appeals(vk) == PER_HOUR


async def test_a_banned_vk_resident_is_told_once_then_ignored(
    vk: VkHarness, config: CoreConfig
) -> None:
    number = await file_appeal(vk, photos=0)
    await drain(vk.worker)
    await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    categories = vk.last_with(RESIDENT, "i:category:")
    async with vk.db.uow() as uow:
        appeal = await uow.appeals.by_number(number)
        assert appeal is not None
        await uow.cards.add(appeal.id, RESIDENT, 777, "notice", "vk")
        await uow.commit()

    said = await coordinator_says(vk, config, f"/ban {number} Угрозы сотрудникам")
    assert "Мария (ВКонтакте)" in said[-1] and "заблокирован" in said[-1]

    told = await vk.says(RESIDENT, "Ну и что теперь?")
    assert [s.text for s in told] == [texts.banned("Угрозы сотрудникам")]

    outbox = await outbox_size(vk)
    answers = len(vk.fake.find("messages.sendMessageEventAnswer"))
    to_coordinator = len(vk.sender.to(COORDINATOR))
    notice = Sent(777, RESIDENT, 1, "Обращение принято", None, [])
    assert await vk.says(RESIDENT, "Яма стала больше, срочно", reply_to=notice) == []
    assert await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"})) == []
    assert await vk.says(RESIDENT, "/my") == []
    assert await vk.presses(RESIDENT, categories, "i:category:roads") == []
    assert await vk.presses_forged(RESIDENT, categories, f"f:{appeal.id}:no") == []
    await drain(vk.worker)
    assert await outbox_size(vk) == outbox
    assert len(vk.fake.find("messages.sendMessageEventAnswer")) == answers
    assert len(vk.sender.to(COORDINATOR)) == to_coordinator  # no comment passed on
    async with vk.db.uow() as uow:
        draft = await uow.drafts.get("vk", str(RESIDENT))
        still = await uow.appeals.get(appeal.id)
    assert draft is not None and draft.step == "category"  # untouched
    assert still is not None and still.status == "new"

    said = await coordinator_says(vk, config, f"/unban {number}")
    assert "Блокировка снята" in said[-1]
    assert any(number in s.text for s in await vk.says(RESIDENT, "/my"))


async def outbox_size(vk: VkHarness) -> int:
    async with vk.db.uow() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


async def test_a_forged_verdict_with_a_huge_appeal_id_is_a_stale_button(
    vk: VkHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """An id no database integer holds (found by the fuzz) is answered as an old button."""
    await file_appeal(vk, photos=0)
    await drain(vk.worker)
    await vk.says(RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    under = vk.last_with(RESIDENT, "i:category:")
    with caplog.at_level(logging.ERROR):
        said = await vk.presses_forged(RESIDENT, under, f"f:{2**63}:no")
    assert [s.text for s in said] == [texts.STALE_BUTTON]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
