"""Each Telegram update has its effect once, however often Telegram hands it over.

Polling hands a batch over again after a crash (it is confirmed only once handled), and a
webhook is retried until it is answered. The update's id is recorded in the transaction that
has its effect (``storage.uow.handling_event``): a repeat finds it and is skipped.

A repeat this process did not answer itself (it was handled before a crash) may have lost its
answer: the process can die between the step's commit and the reply. ``on_repeat`` then says
where the resident stands again; a repeat of an update answered here (a batch fetched again
after an outage) stays silent.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import TelegramObject, Update

from storage.uow import Database, handling_event

log = logging.getLogger(__name__)

# Passed with an update (``feed_update``'s data) that cannot have been handed over before, to
# spare the lookup; webhook updates and tests leave it out and are always looked up.
MAYBE_REPEATED = "maybe_repeated"
# Passed by polling with an update that the same chat's later update follows in the batch:
# that one's answer says where the resident stands, so a repeat of this one need not.
MORE_FROM_CHAT = "more_from_chat"
ANSWERED_MEMORY = 10_000  # updates this process answered, remembered for a repeat of a batch

OnRepeat = Callable[[Update, dict[str, Any]], Awaitable[None]]


class OncePerUpdate(BaseMiddleware):
    def __init__(self, db: Database, on_repeat: OnRepeat | None = None) -> None:
        self.db = db
        self.on_repeat = on_repeat
        self._answered: OrderedDict[str, None] = OrderedDict()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        bot: Bot = data["bot"]
        key = f"tg:{bot.id}:{event.update_id}"
        if data.get(MAYBE_REPEATED, True) and await self._seen(key):
            log.info("update %s was handled before; skipped", event.update_id)
            answered_later = data.get(MORE_FROM_CHAT, False)
            if self.on_repeat is not None and key not in self._answered and not answered_later:
                try:
                    await self.on_repeat(event, data)
                except Exception as exc:  # a courtesy: the update itself was handled
                    failed = type(exc).__name__
                    log.warning("update %s: not asked again (%s)", event.update_id, failed)
                self._remember_answered(key)
            return UNHANDLED
        with handling_event(key) as claim:
            result = await handler(event, data)
        self._remember_answered(key)
        if not claim.claimed:
            # Nothing was written (a /help, a stale button): still record the update, so that a
            # repeat does not answer twice or press an expired callback query again.
            try:
                async with self.db.uow() as uow:
                    await uow.state.remember(key)
                    await uow.commit()
            except Exception as exc:
                log.warning(
                    "update %s: not recorded as handled (%s)", event.update_id, type(exc).__name__
                )
        return result

    def _remember_answered(self, key: str) -> None:
        self._answered[key] = None
        if len(self._answered) > ANSWERED_MEMORY:
            self._answered.popitem(last=False)

    async def _seen(self, key: str) -> bool:
        async with self.db.uow(read_only=True) as uow:
            return await uow.state.event_seen(key)
