"""A Bot whose session records every request and answers like the Bot API would.

In the manner of aiogram's own tests (MockedBot), but answering each method with a plausible
result so that handlers run exactly as in production.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.types import Chat, Message, User

BOT_USER = User(id=42, is_bot=True, first_name="Приёмная", username="priemnaya_bot")


def chat_of(chat_id: int) -> Chat:
    return Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup")


class RecordingSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self._ids = itertools.count(5000)

    def _message(self, chat_id: int, **fields: Any) -> Message:
        return Message(
            message_id=next(self._ids),
            date=datetime.now(UTC),
            chat=chat_of(chat_id),
            from_user=BOT_USER,
            **fields,
        )

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        self.requests.append(method)
        if isinstance(method, SendMessage):
            return self._message(int(method.chat_id), text=method.text)
        if isinstance(method, SendPhoto):
            return self._message(int(method.chat_id), caption=method.caption)
        if isinstance(method, SendLocation):
            return self._message(int(method.chat_id))
        if isinstance(method, SendMediaGroup):
            return [self._message(int(method.chat_id)) for _ in method.media]
        return True

    async def close(self) -> None:
        return None

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""

    def of(self, kind: type[TelegramMethod[Any]]) -> list[Any]:
        return [r for r in self.requests if isinstance(r, kind)]

    def texts_to(self, chat_id: int) -> list[str]:
        return [r.text for r in self.of(SendMessage) if int(r.chat_id) == chat_id]


class MockedBot(Bot):
    def __init__(self) -> None:
        super().__init__("42:TEST", session=RecordingSession())
        self._me = BOT_USER

    @property
    def recorder(self) -> RecordingSession:
        assert isinstance(self.session, RecordingSession)
        return self.session
