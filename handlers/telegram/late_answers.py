"""A button press answered too late is not a failure of what the press did.

Telegram accepts the answer to a callback query for a short while only; after a restart or
under a backlog, answering refuses with «query is too old … or query ID is invalid». By then
the resident's client has stopped its spinner on its own, and the press has had its effect (a
step saved, an appeal submitted): what the handler sends next must still go. Every
``answerCallbackQuery`` passes here, so no handler has to remember it.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import AnswerCallbackQuery, Response, TelegramMethod
from aiogram.methods.base import TelegramType

log = logging.getLogger(__name__)

EXPIRED = ("query is too old", "query id is invalid")


class LateCallbackAnswers(BaseRequestMiddleware):
    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as exc:
            if not isinstance(method, AnswerCallbackQuery) or not any(
                sign in exc.message.lower() for sign in EXPIRED
            ):
                raise
            log.info("a button press answered too late; its effect stands")
            answered: Any = True  # what Telegram returns for an answer it took
            return answered  # type: ignore[no-any-return]
