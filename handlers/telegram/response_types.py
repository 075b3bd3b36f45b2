"""Keep the parsed-answer classes aiogram asks for on every Bot API call.

aiogram parses each answer into ``Response[<the method's return type>]``, a pydantic generic it
parametrizes anew on every call. pydantic remembers a parametrized generic only while something
else refers to it (its cache holds weak references), and nothing does: each garbage collection
dropped the class and the next call built it again — a new class, its validator and all, for
some 11% of the bot's CPU under load. Holding one of each for the life of the process turns
that back into a cache lookup.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType


class KeepResponseTypes(BaseRequestMiddleware):
    def __init__(self) -> None:
        # A few dozen at most: one per return type among the methods the bot calls.
        self.kept: dict[Any, type[Response[Any]]] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self.kept:
            self.kept[returning] = Response[returning]  # type: ignore[valid-type]
        return await make_request(bot, method)
