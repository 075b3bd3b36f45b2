"""Magic filters (``F.…``) checked on the event loop.

aiogram calls a filter that is not a coroutine through ``asyncio.to_thread``, and a bare
``F.from_user`` is such a filter: every router's filter on every update was a trip to a worker
thread and back, the largest cost in routing an update. Wrapped in :class:`On`, the same
expression is evaluated in place.
"""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.types import TelegramObject
from magic_filter import MagicFilter


class On(Filter):
    def __init__(self, magic: MagicFilter) -> None:
        self.magic = magic

    async def __call__(self, event: TelegramObject) -> Any:
        # What the expression gives (a regexp's match, a value): aiogram tests its truth.
        return self.magic.resolve(event)

    def __str__(self) -> str:
        return f"On({self.magic!r})"
