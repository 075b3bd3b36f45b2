"""Messages the bot sent about appeals are told apart by platform (migration 0008): a Telegram
resident and a VK resident with the same number, told of their appeals in messages with the
same number, each reply into their own appeal."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import texts
from bot.core.appeals import StaffService
from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.intake import IntakeService
from bot.core.model import Keyboard, Platform, ResidentRef
from bot.core.ports import PhotoRef
from bot.core.ratelimit import RateLimiter
from bot.core.routing import RoutingService
from storage.migrate import upgrade_to_head
from storage.models import CardMessage
from storage.uow import Database
from tests.core.recording import NO_LIMITS, RecordingSender, drain
from tests.core.test_lifecycle import ANNA, World, make_world
from tests.storage.test_deadlines_migration import _downgrade

VERA = ResidentRef(Platform.VK, user_id=ANNA.user_id, chat_id=ANNA.chat_id, first_name="Вера")


class PerChatSender(RecordingSender):
    """Numbers messages per chat, from 1, as Telegram's private chats and VK's peers do."""

    def __init__(self) -> None:
        super().__init__()
        self.counters: defaultdict[str, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )

    async def send_text(
        self, chat_id: str, text: str, keyboard: Keyboard | None, *, key: int = 0
    ) -> int:
        self._next_id = next(self.counters[chat_id]) - 1
        return await super().send_text(chat_id, text, keyboard, key=key)

    async def send_photos(
        self, chat_id: str, photos: Sequence[PhotoRef], caption: str | None, *, key: int = 0
    ) -> list[int]:
        self._next_id = next(self.counters[chat_id]) - 1
        return await super().send_photos(chat_id, photos, caption, key=key)


async def test_the_same_numbers_on_both_platforms_reach_their_own_appeals(
    db: Database, config: CoreConfig
) -> None:
    telegram, vk = PerChatSender(), PerChatSender()
    limiter = RateLimiter(NO_LIMITS, is_group=lambda chat: chat.startswith("-"))
    worker = OutboxWorker(
        db, config, {"telegram": telegram, "vk": vk}, {"telegram": limiter, "vk": limiter}
    )
    staff = StaffService(db, config)
    world = World(
        db, IntakeService(db, config), staff, RoutingService(db, config), telegram, worker
    )
    anna_appeal, anna_number = await world.file(ANNA, "roads")
    await drain(worker)
    vera_appeal, vera_number = await world.file(VERA, "roads")
    await drain(worker)
    anna_told = telegram.to(ANNA.chat_id)[0]
    vera_told = vk.to(VERA.chat_id)[0]
    assert anna_number in anna_told.text and vera_number in vera_told.text
    assert anna_told.message_id == vera_told.message_id == 1  # the same numbers

    chat = int(ANNA.chat_id)
    telegram_card = await staff.find_card(chat, 1, Platform.TELEGRAM.value)
    vk_card = await staff.find_card(chat, 1, Platform.VK.value)
    assert telegram_card is not None and telegram_card[:2] == (anna_appeal, "notice")
    assert vk_card is not None and vk_card[:2] == (vera_appeal, "notice")
    # Anna's reply to her «принято» is a comment to her appeal, not taken for a stranger's.
    said = await staff.resident_comment(ANNA, telegram_card[0], "Яма стала глубже")
    assert said == texts.comment_sent(anna_number)


async def test_the_upgrade_marks_vk_residents_notices(
    engine: AsyncEngine, db: Database, config: CoreConfig
) -> None:
    world: World = await make_world(db, config)
    anna_appeal, _ = await world.file(ANNA, "roads")
    vera = ResidentRef(Platform.VK, user_id="601", chat_id="601", first_name="Вера")
    vera_appeal, _ = await world.file(vera, "roads")
    await drain(world.worker)

    await _downgrade(engine, "0007_text_buttons_verdict_wait")
    await upgrade_to_head(engine)

    async with db.uow() as uow:
        rows = list(await uow.session.scalars(select(CardMessage)))
    notices = {row.appeal_id: row.platform for row in rows if row.purpose == "notice"}
    assert notices == {anna_appeal: "telegram", vera_appeal: "vk"}
    assert {row.platform for row in rows if row.purpose != "notice"} == {"telegram"}
