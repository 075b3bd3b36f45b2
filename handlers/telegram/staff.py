"""Staff at work on a card: buttons and replies, in a department group or a coordinator's chat.

Every action goes through the core, which checks that the chat is the one the appeal is bound
to (or that the user is a coordinator); a forged callback gets the same answer as a missing one.
"""

from __future__ import annotations

import re
import time
from contextlib import suppress
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, ForceReply, Message, ReplyParameters

from bot.core.appeals import StaffService
from bot.core.delivery import OutboxWorker
from bot.core.model import Outcome, Platform
from bot.core.ports import PhotoRef
from handlers.telegram.inputs import staff_of
from handlers.telegram.magic import On
from handlers.telegram.render import inline_markup

STAFF_CALLBACK = re.compile(
    r"^s:(take|transfer|reject|resolve|unresolve|back|to|rj|extend|ext):(\d{1,12})"
    r"(?::(\w{1,20}))?$"
)
ALBUM_MEMORY_SECONDS = 120
STALE_CARD = "Эта карточка неактуальна: обращение передано или карточка заменена."


class CardReply(Filter):
    """A reply to one of the bot's messages about an appeal; injects ``card``."""

    async def __call__(self, message: Message, staff: StaffService) -> bool | dict[str, Any]:
        target = message.reply_to_message
        if target is None:
            album = _albums.get((message.chat.id, message.media_group_id or ""))
            if album is not None and album[1] > time.monotonic():
                return {"card": album[0]}
            return False
        card = await staff.find_card(message.chat.id, target.message_id)
        if card is None or card[1] == "notice":  # a notice is the resident's, not staff's
            return False
        if message.media_group_id:
            now = time.monotonic()
            for key in [k for k, (_, until) in _albums.items() if until < now]:
                del _albums[key]
                _confirmed_albums.pop(key, None)
            _albums[(message.chat.id, message.media_group_id)] = (
                card,
                time.monotonic() + ALBUM_MEMORY_SECONDS,
            )
        return {"card": card}


# Album items after the first may arrive without the reply; they belong with the first one.
_albums: dict[tuple[int, str], tuple[tuple[int, str, bool], float]] = {}
_confirmed_albums: dict[tuple[int, str], float] = {}


async def _report(
    bot: Bot, message: Message, outcome: Outcome, worker: OutboxWorker, staff: StaffService
) -> None:
    if outcome.wrote_outbox:
        worker.wake()
    if outcome.notice:
        await _reply_once(message, outcome.notice)
    if outcome.prompt and outcome.prompt_purpose and outcome.appeal_id:
        # Asked again (a number not found, a reason too long): a reply to this one works.
        sent = await message.reply(
            outcome.prompt, reply_markup=ForceReply(input_field_placeholder="Ответьте здесь")
        )
        await staff.register_prompt(
            outcome.appeal_id, message.chat.id, sent.message_id, outcome.prompt_purpose
        )


async def _reply_once(message: Message, text: str) -> None:
    """Reply to a staff message; to an album only once, not once per photo."""
    if message.media_group_id:
        key = (message.chat.id, message.media_group_id)
        if key in _confirmed_albums:
            return
        _confirmed_albums[key] = time.monotonic() + ALBUM_MEMORY_SECONDS
    await message.reply(text)


async def solution_photo(
    message: Message,
    bot: Bot,
    card: tuple[int, str, bool],
    staff: StaffService,
    worker: OutboxWorker,
    coordinator_ids: tuple[int, ...],
) -> None:
    assert message.from_user is not None and message.photo
    appeal_id, _purpose, live = card
    if not live:
        await _reply_once(message, STALE_CARD)
        return
    actor = staff_of(message.from_user, message.chat.id, coordinator_ids)
    photo = PhotoRef(Platform.TELEGRAM.value, message.photo[-1].file_id)
    outcome = await staff.solution_photo(
        actor, appeal_id, photo, message.caption or "", album=message.media_group_id
    )
    await _report(bot, message, outcome, worker, staff)


async def text_reply(
    message: Message,
    bot: Bot,
    card: tuple[int, str, bool],
    staff: StaffService,
    worker: OutboxWorker,
    coordinator_ids: tuple[int, ...],
) -> None:
    assert message.from_user is not None and message.text is not None
    appeal_id, purpose, live = card
    actor = staff_of(message.from_user, message.chat.id, coordinator_ids)
    if message.text.startswith("/"):
        return
    if purpose == "reject_duplicate":
        outcome = await staff.reject(actor, appeal_id, "duplicate", message.text)
    elif purpose == "reject_other":
        outcome = await staff.reject(actor, appeal_id, "other", message.text)
    elif purpose.startswith("extend_") and purpose[7:].isdigit():
        assert message.reply_to_message is not None  # a CardReply: the reply to the prompt
        prompt = (message.chat.id, message.reply_to_message.message_id)
        outcome = await staff.extend(actor, appeal_id, int(purpose[7:]), message.text, prompt)
    elif not live:
        await _reply_once(message, STALE_CARD)
        return
    else:
        outcome = await staff.answer(actor, appeal_id, message.text)
    await _report(bot, message, outcome, worker, staff)


async def other_reply(message: Message) -> None:
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        await _reply_once(message, "Пришлите снимок как фото (со сжатием), а не как файл.")
        return
    await _reply_once(
        message, "Жителю можно отправить текст или фото. Ответьте на карточку текстом или фото."
    )


async def card_button(
    callback: CallbackQuery,
    bot: Bot,
    staff: StaffService,
    worker: OutboxWorker,
    coordinator_ids: tuple[int, ...],
) -> None:
    match = STAFF_CALLBACK.match(callback.data or "")
    if match is None or callback.message is None:
        await callback.answer("Эта кнопка устарела.")
        return
    action, appeal_id, argument = match.group(1), int(match.group(2)), match.group(3) or ""
    chat_id = callback.message.chat.id
    actor = staff_of(callback.from_user, chat_id, coordinator_ids)
    if action == "take":
        outcome = await staff.take(actor, appeal_id)
    elif action == "resolve":
        outcome = await staff.resolve(actor, appeal_id)
    elif action == "unresolve":
        outcome = await staff.unresolve(actor, appeal_id)
    elif action in ("transfer", "reject", "back", "extend"):
        outcome = await staff.menu(actor, appeal_id, action)
    elif action == "to" and argument.isdigit():
        outcome = await staff.transfer(actor, appeal_id, int(argument))
    elif action == "rj":
        outcome = await staff.reject(actor, appeal_id, argument)
    elif action == "ext" and argument.isdigit():
        outcome = await staff.extend(actor, appeal_id, int(argument))
    else:
        outcome = Outcome(ok=False, notice="Эта кнопка устарела.")
    await callback.answer(outcome.notice[:200])
    if outcome.wrote_outbox:
        worker.wake()
    if outcome.ok and outcome.keyboard is not None:
        with suppress(TelegramBadRequest):  # unchanged, or the message is too old to edit
            await bot.edit_message_reply_markup(
                chat_id=chat_id,
                message_id=callback.message.message_id,
                reply_markup=inline_markup(outcome.keyboard),
            )
    if outcome.prompt and outcome.prompt_purpose and outcome.appeal_id:
        sent = await bot.send_message(
            chat_id,
            outcome.prompt,
            reply_parameters=ReplyParameters(
                message_id=callback.message.message_id, allow_sending_without_reply=True
            ),
            reply_markup=ForceReply(input_field_placeholder="Ответьте здесь"),
        )
        await staff.register_prompt(
            outcome.appeal_id, chat_id, sent.message_id, outcome.prompt_purpose
        )


def build_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name=__name__)
    router.message.filter(On(F.from_user))  # handlers act as the sender: none, nothing to do
    router.message.register(solution_photo, CardReply(), On(F.photo))
    router.message.register(text_reply, CardReply(), On(F.text))
    router.message.register(other_reply, CardReply())
    router.callback_query.register(card_button, On(F.data.startswith("s:")))
    return router
