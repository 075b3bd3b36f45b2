"""Neutral keyboards and replies rendered as Telegram markup."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from bot.core.model import Keyboard, Reply

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def markup(keyboard: Keyboard | None) -> Markup | None:
    if keyboard is None:
        return None
    if keyboard.remove:
        return ReplyKeyboardRemove()
    if keyboard.inline:
        return InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text=b.text, callback_data=b.action) for b in row]
                for row in keyboard.rows
            ]
        )
    return ReplyKeyboardMarkup(
        keyboard=[
            [
                KeyboardButton(
                    text=b.text,
                    request_location=True if b.request == "location" else None,
                    request_contact=True if b.request == "contact" else None,
                )
                for b in row
            ]
            for row in keyboard.rows
        ],
        resize_keyboard=True,
        is_persistent=True,
    )


def inline_markup(keyboard: Keyboard | None) -> InlineKeyboardMarkup | None:
    rendered = markup(keyboard)
    return rendered if isinstance(rendered, InlineKeyboardMarkup) else None


async def send_replies(bot: Bot, chat_id: int, replies: list[Reply]) -> None:
    for reply in replies:
        await bot.send_message(chat_id, reply.text, reply_markup=markup(reply.keyboard))
