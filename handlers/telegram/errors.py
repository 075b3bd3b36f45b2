"""A failed update still gets an answer; the draft and data stay as they were.

When the database or Redis is away, the update was not handled and is not counted as handled:
the error goes on to polling (which does not confirm it) or to the webhook (which answers
503), and Telegram hands the update over again. The person is told once that the bot will
answer when it can.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import ErrorEvent, Update

from bot.core.logsafe import log_failure
from storage.outage import is_outage

log = logging.getLogger(__name__)

SORRY = "Не получилось обработать сообщение. Попробуйте ещё раз — введённое ранее сохранено."
LATER = (
    "Бот сейчас не может сохранить сообщение: сервис временно недоступен. Ничего не потеряно — "
    "ответ придёт, как только он снова заработает. Повторять не нужно."
)
# Passed with an update (``feed_update``'s data) whose batch kept failing while the storage
# answered: this time a "storage away" failure is the update's own.
LAST_TRY = "last_try"
TOLD_KEPT = 10_000  # updates whose senders were told to wait (a bound, not a schedule)
_told: set[int] = set()


async def on_error(event: ErrorEvent, last_try: bool = False) -> Any:
    update = event.update
    if is_outage(event.exception) and not last_try:
        log.warning(
            "update %s: storage unreachable (%s); handed over again later",
            update.update_id,
            type(event.exception).__name__,
        )
        if update.update_id not in _told:
            if len(_told) >= TOLD_KEPT:
                _told.clear()
            _told.add(update.update_id)
            await _tell(update, LATER)
        return UNHANDLED  # not handled: the update comes again
    log_failure(log, event.exception, "update %s failed", update.update_id)
    await _tell(update, SORRY)
    return True


async def _tell(update: Update, text: str) -> None:
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text[:200], show_alert=False)
        elif update.message is not None and update.message.chat.type == "private":
            await update.message.answer(text)
    except Exception:  # the platform itself may be what failed
        log.warning("could not tell the user about the failure")


def build_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name=__name__)
    router.errors.register(on_error)
    return router
