"""Delivers outbox messages through the Bot API, translating its errors for the worker."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
)
from aiogram.types import BufferedInputFile, InputMediaPhoto

from bot.core.model import Keyboard
from bot.core.ports import ChatMoved, PermanentError, PhotoRef, RecipientGone, RetryAfter
from handlers.telegram.render import inline_markup, markup

CAPTION_LIMIT = 1024
# 400s that mean "this chat will not take messages from the bot", not "this request is wrong".
# (A group that only forbids photos is not "gone": that one message fails, the card still goes.)
CHAT_GONE = (
    "chat not found",
    "not enough rights to send text messages",
    "have no rights to send a message",
    "chat_write_forbidden",
    "bot was kicked",
    "bot is not a member",
    "group chat was deactivated",
    "user is deactivated",
)
T = TypeVar("T")


def is_group_chat(chat_id: str) -> bool:
    return chat_id.startswith("-")


class TelegramSender:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        try:
            return await request()
        except TelegramRetryAfter as exc:
            raise RetryAfter(float(exc.retry_after)) from exc
        except TelegramEntityTooLarge as exc:
            # aiogram counts a 413 as a network error; the same request will never fit.
            raise PermanentError(exc.message) from exc
        except TelegramForbiddenError as exc:
            raise RecipientGone(exc.message) from exc
        except TelegramMigrateToChat as exc:
            raise ChatMoved(exc.migrate_to_chat_id) from exc
        except (TelegramBadRequest, TelegramNotFound) as exc:
            if any(sign in exc.message.lower() for sign in CHAT_GONE):
                raise RecipientGone(exc.message) from exc
            raise PermanentError(exc.message) from exc

    async def send_text(
        self, chat_id: str, text: str, keyboard: Keyboard | None, *, key: int = 0
    ) -> int:
        message = await self._call(
            lambda: self.bot.send_message(int(chat_id), text, reply_markup=markup(keyboard))
        )
        return message.message_id

    async def send_photos(
        self, chat_id: str, photos: Sequence[PhotoRef], caption: str | None, *, key: int = 0
    ) -> list[int]:
        refs = [self._ref(p) for p in photos][:10]
        caption = (caption or "")[:CAPTION_LIMIT] or None
        if not refs:
            return []
        if len(refs) == 1:
            sent = await self._call(
                lambda: self.bot.send_photo(int(chat_id), refs[0], caption=caption)
            )
            return [sent.message_id]
        media: list[Any] = [  # the accepted media union differs across aiogram 3 releases
            InputMediaPhoto(media=ref, caption=caption if index == 0 else None)
            for index, ref in enumerate(refs)
        ]
        album = await self._call(lambda: self.bot.send_media_group(int(chat_id), media=media))
        return [m.message_id for m in album]

    async def send_location(
        self, chat_id: str, latitude: float, longitude: float, *, key: int = 0
    ) -> int:
        sent = await self._call(lambda: self.bot.send_location(int(chat_id), latitude, longitude))
        return sent.message_id

    async def edit_text(
        self, chat_id: str, message_id: int, text: str, keyboard: Keyboard | None
    ) -> None:
        try:
            await self._call(
                lambda: self.bot.edit_message_text(
                    text,
                    chat_id=int(chat_id),
                    message_id=message_id,
                    reply_markup=inline_markup(keyboard),
                )
            )
        except PermanentError as exc:
            # Nothing to change, or the card was deleted by staff: the edit has nothing to do.
            if "not modified" in str(exc) or "not found" in str(exc):
                return
            raise

    async def fetch_photo(self, ref: str) -> bytes:
        async def download() -> bytes:
            buffer = io.BytesIO()
            await self.bot.download(ref, destination=buffer)
            return buffer.getvalue()

        return await self._call(download)

    @staticmethod
    def _ref(photo: PhotoRef) -> str | BufferedInputFile:
        if photo.content is not None:  # from another platform: uploaded as a file
            return BufferedInputFile(photo.content, filename="photo.jpg")
        if photo.platform != "telegram":
            raise PermanentError(f"cannot send a {photo.platform} photo to Telegram")
        return photo.ref
