"""Bans in Telegram: the gate in front of every private-chat update, and /ban, /unban, /banned.

The gate's router comes right after the error handler, so a banned resident's message or
button press reaches nothing else: the first one gets the core's notice, the rest silence.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import CallbackQuery, Message

from bot.core.delivery import OutboxWorker
from bot.core.intake import IntakeService
from bot.core.model import Reply
from handlers.telegram.inputs import resident_of, staff_of
from handlers.telegram.magic import On
from handlers.telegram.render import send_replies


class Banned(Filter):
    """A banned resident's update in a private chat; injects ``ban_notice`` (maybe empty)."""

    async def __call__(
        self, event: Message | CallbackQuery, intake: IntakeService
    ) -> bool | dict[str, Any]:
        chat = event.chat if isinstance(event, Message) else getattr(event.message, "chat", None)
        if event.from_user is None or chat is None or chat.type != "private":
            return False
        notice = await intake.bans.gate(resident_of(event.from_user, chat.id))
        return False if notice is None else {"ban_notice": notice}


async def banned_message(message: Message, bot: Bot, ban_notice: list[Reply]) -> None:
    await send_replies(bot, message.chat.id, ban_notice)


async def banned_button(callback: CallbackQuery, bot: Bot, ban_notice: list[Reply]) -> None:
    await callback.answer()  # stops the spinner; shows nothing, does nothing
    if ban_notice and callback.message is not None:
        await send_replies(bot, callback.message.chat.id, ban_notice)


async def ban(
    message: Message,
    command: CommandObject,
    intake: IntakeService,
    worker: OutboxWorker,
    coordinator_ids: tuple[int, ...],
) -> None:
    assert message.from_user is not None
    actor = staff_of(message.from_user, message.chat.id, coordinator_ids)
    bans = intake.bans
    if command.command == "ban":
        outcome = await bans.ban(actor, command.args or "")
    elif command.command == "unban":
        outcome = await bans.unban(actor, command.args or "")
    else:
        outcome = await bans.banned(actor)
    if outcome.wrote_outbox:
        worker.wake()
    await message.reply(outcome.notice)


def build_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name=__name__)
    router.message.register(banned_message, Banned())
    router.callback_query.register(banned_button, Banned())
    router.message.register(ban, Command("ban", "unban", "banned"), On(F.from_user))
    return router
