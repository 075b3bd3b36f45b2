"""Department groups: binding a group to a department, and groups that become supergroups."""

from __future__ import annotations

from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.core.appeals import StaffService
from bot.core.delivery import OutboxWorker
from bot.core.routing import RoutingService
from handlers.telegram.citizen import UNKNOWN_COMMAND
from handlers.telegram.inputs import staff_of
from handlers.telegram.magic import On
from handlers.telegram.render import markup

GROUP_CHATS = On(F.chat.type.in_({"group", "supergroup"}))


async def migrated(message: Message, routing: RoutingService) -> None:
    assert message.migrate_to_chat_id is not None
    await routing.migrate(message.chat.id, message.migrate_to_chat_id)


async def bind(message: Message, routing: RoutingService) -> None:
    assert message.from_user is not None
    outcome = await routing.bind_menu(message.from_user.id)
    await message.reply(outcome.notice, reply_markup=markup(outcome.keyboard))


async def bind_chosen(
    callback: CallbackQuery, bot: Bot, routing: RoutingService, worker: OutboxWorker
) -> None:
    assert callback.message is not None and callback.data is not None
    chat_id = callback.message.chat.id
    outcome = await routing.bind(callback.from_user.id, chat_id, int(callback.data[2:]))
    if outcome.wrote_outbox:
        worker.wake()
    await callback.answer(outcome.notice[:200] if not outcome.ok else "Готово")
    if outcome.ok:
        with suppress(TelegramBadRequest):
            await bot.edit_message_text(
                outcome.notice, chat_id=chat_id, message_id=callback.message.message_id
            )


async def unbind(message: Message, routing: RoutingService, worker: OutboxWorker) -> None:
    assert message.from_user is not None
    outcome = await routing.unbind(message.from_user.id, message.chat.id)
    if outcome.wrote_outbox:
        worker.wake()
    await message.reply(outcome.notice)


async def find_appeal(
    message: Message,
    command: CommandObject,
    staff: StaffService,
    worker: OutboxWorker,
    coordinator_ids: tuple[int, ...],
) -> None:
    """/appeal <number> in a department group (its own appeals) or by a coordinator anywhere."""
    assert message.from_user is not None
    if message.chat.type == "private" and message.from_user.id not in coordinator_ids:
        await message.answer(UNKNOWN_COMMAND)
        return
    actor = staff_of(message.from_user, message.chat.id, coordinator_ids)
    outcome = await staff.show_card(actor, command.args or "")
    if outcome.wrote_outbox:
        worker.wake()
    if outcome.notice:
        await message.reply(outcome.notice)


async def departments(message: Message, routing: RoutingService) -> None:
    assert message.from_user is not None
    outcome = await routing.bindings(message.from_user.id)
    await message.reply(outcome.notice)


async def group_help(message: Message) -> None:
    await message.reply(
        "Я приёмная обращений жителей. Координатор привязывает группу к отделу командой /bind; "
        "после этого карточки обращений отдела приходят сюда. Ответ (reply) на карточку текстом "
        "уходит жителю, фото — как фото решения. /appeal <номер> — показать карточку заново, "
        "/overdue — просроченные обращения отдела."
    )


def build_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name=__name__)
    router.message.register(migrated, On(F.migrate_to_chat_id))
    # Everything below acts as the sender: a message without one (a channel's) is not for it.
    router.message.filter(On(F.migrate_to_chat_id | F.from_user))
    router.message.register(bind, Command("bind"), GROUP_CHATS)
    router.callback_query.register(
        bind_chosen,
        On(F.data.regexp(r"^b:\d{1,9}$")),
        On(F.message.chat.type.in_({"group", "supergroup"})),
    )
    router.message.register(unbind, Command("unbind"), GROUP_CHATS)
    router.message.register(departments, Command("departments"))
    router.message.register(find_appeal, Command("appeal"))
    router.message.register(group_help, Command("start", "help"), GROUP_CHATS)
    return router
