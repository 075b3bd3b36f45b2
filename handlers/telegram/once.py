"""Each Telegram update has its effect once, however often Telegram hands it over.

Polling hands a batch over again after a crash (it is confirmed only once handled), and a
webhook is retried until it is answered. The update's id is recorded in the transaction that
has its effect (``storage.uow.handling_event``): a repeat finds it and is skipped.
"""

from __future__ import annotations

import logging
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


class OncePerUpdate(BaseMiddleware):
    def __init__(self, db: Database) -> None:
        self.db = db

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
            return UNHANDLED
        with handling_event(key) as claim:
            result = await handler(event, data)
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

    async def _seen(self, key: str) -> bool:
        async with self.db.uow(read_only=True) as uow:
            return await uow.state.event_seen(key)
