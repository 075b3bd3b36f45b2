"""A failed update still gets an answer; the draft and data stay as they were."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.types import ErrorEvent

from bot.core.logsafe import log_failure

log = logging.getLogger(__name__)

SORRY = "Не получилось обработать сообщение. Попробуйте ещё раз — введённое ранее сохранено."


async def on_error(event: ErrorEvent) -> bool:
    log_failure(log, event.exception, "update %s failed", event.update.update_id)
    update = event.update
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(SORRY[:200], show_alert=False)
        elif update.message is not None and update.message.chat.type == "private":
            await update.message.answer(SORRY)
    except Exception:  # the platform itself may be what failed
        log.warning("could not tell the user about the failure")
    return True


def build_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name=__name__)
    router.errors.register(on_error)
    return router
