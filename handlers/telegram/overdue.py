"""/overdue for coordinators (everything, in their private chat) and department groups (their
own), with buttons to open a card or re-route it, and ◀ ▶ pages edited in place."""

from __future__ import annotations

import re
from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.core.appeals import StaffService
from bot.core.delivery import OutboxWorker
from bot.core.model import Button, Keyboard, inline
from bot.core.overdue import OverdueService
from handlers.telegram.inputs import staff_of
from handlers.telegram.magic import On
from handlers.telegram.render import inline_markup, markup

OVERDUE_CALLBACK = re.compile(r"^ov:(p|c|t|to|x):(\d{1,12})(?::(\d{1,9}))?$")
CANCELLED = "Передача отменена."


async def overdue_command(
    message: Message, overdue: OverdueService, coordinator_ids: tuple[int, ...]
) -> None:
    assert message.from_user is not None
    actor = staff_of(message.from_user, message.chat.id, coordinator_ids)
    outcome = await overdue.view(actor, page=0)
    await message.answer(outcome.notice, reply_markup=markup(outcome.keyboard))


def _transfer_menu(keyboard: Keyboard | None) -> Keyboard | None:
    """The card's transfer menu as a message of its own: no card to go back to, and its
    choices come back here, so the message can say what was done instead of its buttons."""
    if keyboard is None:
        return None
    rows = [
        [Button(b.text, "ov:to:" + (b.action or "")[len("s:to:") :]) for b in row]
        for row in keyboard.rows
        if all((b.action or "").startswith("s:to:") for b in row)
    ]
    return inline(*rows, [Button("✖️ Отмена", "ov:x:0")])


async def overdue_button(
    callback: CallbackQuery,
    bot: Bot,
    overdue: OverdueService,
    staff: StaffService,
    worker: OutboxWorker,
    coordinator_ids: tuple[int, ...],
) -> None:
    match = OVERDUE_CALLBACK.match(callback.data or "")
    if match is None or callback.message is None:
        await callback.answer("Эта кнопка устарела.")
        return
    action, number, target = match.group(1), int(match.group(2)), match.group(3)
    chat_id = callback.message.chat.id
    actor = staff_of(callback.from_user, chat_id, coordinator_ids)
    if action == "p":
        # Rights are checked again for every page: the button may be old or forged.
        outcome = await overdue.view(actor, page=number)
        await callback.answer(None if outcome.ok else outcome.notice[:200])
        if outcome.ok:
            with suppress(TelegramBadRequest):  # the same page again: "message is not modified"
                await bot.edit_message_text(
                    outcome.notice,
                    chat_id=chat_id,
                    message_id=callback.message.message_id,
                    reply_markup=inline_markup(outcome.keyboard),
                )
        return
    if action == "x":  # the transfer menu closed without a choice: nothing to check or change
        await callback.answer()
        with suppress(TelegramBadRequest):
            await bot.edit_message_text(
                CANCELLED, chat_id=chat_id, message_id=callback.message.message_id
            )
        return
    if action == "c":
        outcome = await staff.open_card(actor, number)
        if outcome.wrote_outbox:
            worker.wake()
        await callback.answer(outcome.notice[:200] if outcome.notice else "Карточка ниже.")
        return
    if action == "to" and target is not None:
        outcome = await staff.transfer(actor, number, int(target))
        if outcome.wrote_outbox:
            worker.wake()
        await callback.answer(outcome.notice[:200])
        if outcome.ok:
            with suppress(TelegramBadRequest):
                await bot.edit_message_text(
                    f"↪️ {outcome.notice}", chat_id=chat_id, message_id=callback.message.message_id
                )
        return
    if action != "t":
        await callback.answer("Эта кнопка устарела.")
        return
    outcome = await staff.menu(actor, number, "transfer")
    if not outcome.ok:
        await callback.answer(outcome.notice[:200])
        return
    await callback.answer()
    await bot.send_message(
        chat_id, outcome.notice, reply_markup=inline_markup(_transfer_menu(outcome.keyboard))
    )


def build_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name=__name__)
    router.message.filter(On(F.from_user))  # handlers act as the sender: none, nothing to do
    router.message.register(overdue_command, Command("overdue"))
    router.callback_query.register(overdue_button, On(F.data.startswith("ov:")))
    return router
