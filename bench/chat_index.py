"""The fake Bot API with the bot's messages indexed by chat, for thousands of simulated people.

``FakeTelegram.wait_for`` scans the whole request log every 20 ms, which is quadratic once a
thousand residents wait at once. Here each recorded request is also filed under its chat and
wakes only the waiters of that chat, so a wait costs what that one conversation costs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.fakes.fake_telegram import FakeTelegram, Request


class IndexedTelegram(FakeTelegram):
    """A :class:`FakeTelegram` that files the bot's successful sends and edits per chat."""

    def __init__(self, token: str = "123456:TEST") -> None:
        super().__init__(token)
        self.by_chat: dict[int, list[Request]] = {}
        self._chat_events: dict[int, asyncio.Event] = {}

    def _record(self, entry: Request) -> None:
        super()._record(entry)
        chat = entry.chat_id
        if not entry.ok or not isinstance(chat, int):
            return
        self.by_chat.setdefault(chat, []).append(entry)
        event = self._chat_events.pop(chat, None)
        if event is not None:
            event.set()

    def chat_mark(self, chat_id: int) -> int:
        """A position in the chat's own log: "what the bot did there after this point"."""
        return len(self.by_chat.get(chat_id, ()))

    async def wait_chat(
        self,
        chat_id: int,
        predicate: Callable[[Request], bool],
        since: int,
        timeout: float,
    ) -> tuple[Request, int] | None:
        """The first request to ``chat_id`` after ``since`` that satisfies ``predicate`` and the
        position after it; ``None`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        position = since
        while True:
            log = self.by_chat.get(chat_id, [])
            while position < len(log):
                position += 1
                if predicate(log[position - 1]):
                    return log[position - 1], position
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            event = self._chat_events.setdefault(chat_id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return None
