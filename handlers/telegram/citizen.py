"""Residents in private chats: the intake conversation, /my, and the «решено?» answer."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import CallbackQuery, Chat, Message, Update

from bot.core import texts
from bot.core.appeals import StaffService
from bot.core.delivery import OutboxWorker
from bot.core.intake import IntakeResult, IntakeService
from bot.core.model import InputKind, IntakeInput, Platform
from bot.core.ports import PhotoRef
from handlers.telegram.inputs import intake_input, resident_of
from handlers.telegram.magic import On
from handlers.telegram.render import send_replies

UNKNOWN_COMMAND = texts.UNKNOWN_COMMAND
GROUP_ONLY = "Эта команда работает в группе отдела: добавьте бота в группу и отправьте её там."


async def _answer(bot: Bot, chat_id: int, result: IntakeResult, worker: OutboxWorker) -> None:
    if result.confirmation is not None:
        await worker.deliver_now(result.confirmation)
    elif result.wrote_outbox:
        worker.wake()
    await send_replies(bot, chat_id, result.replies)


async def command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    intake: IntakeService,
    worker: OutboxWorker,
    coordinator_ids: tuple[int, ...],
) -> None:
    """/start, /new, /cancel, /my, /help: each maps to one intake entry point."""
    assert message.from_user is not None
    who = resident_of(message.from_user, message.chat.id)
    if message.from_user.id in coordinator_ids and command.command in ("start", "help"):
        # A coordinator opening the bot wants their tools, not the appeal form.
        await bot.send_message(message.chat.id, texts.COORDINATOR_HELP)
        await _answer(bot, message.chat.id, await intake.help(), worker)
        missed = await worker.chat_opened(Platform.TELEGRAM.value, str(message.chat.id))
        if missed:
            await bot.send_message(message.chat.id, texts.missed_while_closed(missed))
        return
    actions = {
        "start": intake.start,
        "new": intake.new_appeal,
        "cancel": intake.cancel,
        "my": intake.my_appeals,
    }
    action = actions.get(command.command)
    result = await action(who) if action is not None else await intake.help()
    await _answer(bot, message.chat.id, result, worker)


async def any_message(
    message: Message,
    bot: Bot,
    intake: IntakeService,
    worker: OutboxWorker,
    coordinator_ids: tuple[int, ...],
) -> None:
    assert message.from_user is not None
    if message.text is not None and message.text.startswith("/"):
        command = message.text.split(maxsplit=1)[0].split("@")[0]
        if command in ("/bind", "/unbind"):
            await message.answer(GROUP_ONLY)
        else:
            await message.answer(UNKNOWN_COMMAND)
        return
    result = await intake.handle(
        resident_of(message.from_user, message.chat.id),
        intake_input(message),
        autostart=message.from_user.id not in coordinator_ids,
    )
    await _answer(bot, message.chat.id, result, worker)


class NoticeReply(Filter):
    """A resident's reply to a message the bot sent them about an appeal; injects ``appeal_id``."""

    async def __call__(self, message: Message, staff: StaffService) -> bool | dict[str, Any]:
        album = (message.chat.id, message.media_group_id or "")
        target = message.reply_to_message
        if target is None:
            # The rest of an album whose first photo was a reply belongs to the same appeal.
            remembered = _comment_albums.get(album)
            return {"appeal_id": remembered[0]} if remembered else False
        card = await staff.find_card(message.chat.id, target.message_id)
        if card is None or card[1] != "notice":
            return False
        if message.media_group_id:
            now = time.monotonic()
            for key in [k for k, (_, until) in _comment_albums.items() if until < now]:
                del _comment_albums[key]
            _comment_albums[album] = (card[0], now + ALBUM_MEMORY_SECONDS)
        return {"appeal_id": card[0]}


ALBUM_MEMORY_SECONDS = 120
_comment_albums: dict[tuple[int, str], tuple[int, float]] = {}
_answered_albums: set[tuple[int, str]] = set()


async def comment(
    message: Message, appeal_id: int, bot: Bot, staff: StaffService, worker: OutboxWorker
) -> None:
    assert message.from_user is not None
    given = intake_input(message)
    if given.kind not in (InputKind.TEXT, InputKind.PHOTO):
        await message.answer(texts.COMMENT_KINDS)
        return
    photo = PhotoRef(Platform.TELEGRAM.value, given.photo_refs[0]) if given.photo_refs else None
    said = await staff.resident_comment(
        resident_of(message.from_user, message.chat.id),
        appeal_id,
        given.text,
        photo,
        album=message.media_group_id,
    )
    worker.wake()
    if message.media_group_id:  # one answer per album
        key = (message.chat.id, message.media_group_id)
        if key in _answered_albums:
            return
        if len(_answered_albums) > 10_000:
            _answered_albums.clear()
        _answered_albums.add(key)
    await message.answer(said)


async def intake_button(
    callback: CallbackQuery, bot: Bot, intake: IntakeService, worker: OutboxWorker
) -> None:
    assert callback.message is not None and callback.data is not None
    chat_id = callback.message.chat.id
    given = IntakeInput(kind=InputKind.ACTION, action=callback.data[:64])
    result = await intake.handle(resident_of(callback.from_user, chat_id), given)
    await callback.answer()
    # The pressed buttons have done their job; removing them prevents stale presses.
    with suppress(TelegramBadRequest):  # already edited, or too old to edit
        await bot.edit_message_reply_markup(
            chat_id=chat_id, message_id=callback.message.message_id, reply_markup=None
        )
    await _answer(bot, chat_id, result, worker)


async def feedback(
    callback: CallbackQuery, bot: Bot, staff: StaffService, worker: OutboxWorker
) -> None:
    assert callback.message is not None and callback.data is not None
    _, appeal_id, verdict = callback.data.split(":")
    chat_id = callback.message.chat.id
    outcome = await staff.resident_feedback(
        resident_of(callback.from_user, chat_id), int(appeal_id), verdict == "yes"
    )
    worker.wake()
    await callback.answer()
    with suppress(TelegramBadRequest):  # already edited, or too old to edit
        await bot.edit_message_reply_markup(
            chat_id=chat_id, message_id=callback.message.message_id, reply_markup=None
        )
    if not outcome.ok:  # a verdict's answer comes through the outbox, repliable
        await bot.send_message(chat_id, outcome.notice)


async def unknown_button(callback: CallbackQuery) -> None:
    await callback.answer("Эта кнопка устарела.")


class AskAgain:
    """For a resident's message or intake button handled before a crash and handed over
    again: the answer may have died with the process, so where the draft stands is said
    again, once per chat for a batch (an album comes as several updates)."""

    QUIET_SECONDS = 60

    def __init__(self) -> None:
        self._quiet_until: dict[int, float] = {}

    async def __call__(self, update: Update, data: dict[str, Any]) -> None:
        chat: Chat | None
        if update.message is not None:
            chat, user = update.message.chat, update.message.from_user
        elif update.callback_query is not None and str(update.callback_query.data).startswith("i:"):
            chat = getattr(update.callback_query.message, "chat", None)
            user = update.callback_query.from_user
        else:
            return
        if chat is None or chat.type != "private" or user is None:
            return
        now = time.monotonic()
        if self._quiet_until.get(chat.id, 0.0) > now:
            return
        for stale in [c for c, until in self._quiet_until.items() if until <= now]:
            del self._quiet_until[stale]
        self._quiet_until[chat.id] = now + self.QUIET_SECONDS
        intake: IntakeService = data["intake"]
        result = await intake.ask_again(resident_of(user, chat.id))
        await send_replies(data["bot"], chat.id, result.replies)


def build_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name=__name__)
    # A message always has a sender in private chats; one without (a channel's) is not ours.
    router.message.filter(On(F.chat.type == "private"), On(F.from_user))
    router.callback_query.filter(On(F.message.chat.type == "private"))
    router.message.register(command, Command("start", "new", "cancel", "my", "help"))
    router.message.register(comment, NoticeReply())
    router.message.register(any_message, On(F.from_user))
    router.callback_query.register(intake_button, On(F.data.startswith("i:")))
    router.callback_query.register(feedback, On(F.data.regexp(r"^f:\d{1,12}:(yes|no)$")))
    router.callback_query.register(unknown_button)
    return router
