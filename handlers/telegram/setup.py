"""The Telegram dispatcher with its routers and the services handlers receive."""

from __future__ import annotations

from aiogram import Dispatcher, Router
from aiogram.fsm.storage.base import BaseEventIsolation
from aiogram.types import CallbackQuery

from bot.core.appeals import StaffService
from bot.core.delivery import OutboxWorker
from bot.core.intake import IntakeService
from bot.core.overdue import OverdueService
from bot.core.reports import ReportService
from bot.core.routing import RoutingService
from handlers.telegram import bans, citizen, errors, groups, overdue, reports, staff
from handlers.telegram.isolation import ChatLocks, NoFsmStorage
from handlers.telegram.once import OncePerUpdate

STALE = "Эта кнопка устарела."


async def stale_button(callback: CallbackQuery) -> None:
    await callback.answer(STALE)


def fallback_router() -> Router:
    """Any button nobody else took (an old message, junk data) still gets an answer."""
    router = Router(name="fallback")
    router.callback_query.register(stale_button)
    return router


def build_dispatcher(
    intake: IntakeService,
    staff_service: StaffService,
    routing: RoutingService,
    worker: OutboxWorker,
    coordinator_ids: tuple[int, ...],
    overdue_service: OverdueService | None = None,
    isolation: BaseEventIsolation | None = None,
) -> Dispatcher:
    # One update at a time per chat and user: album parts and double presses are applied in
    # order to the stored draft instead of racing each other. Several processes behind a
    # webhook share the lock through Redis (``isolation``). Drafts, not aiogram's FSM, hold
    # the conversation: the FSM storage keeps nothing.
    dispatcher = Dispatcher(storage=NoFsmStorage(), events_isolation=isolation or ChatLocks())
    # Registered after the isolation lock (aiogram's own outer middleware): the check that an
    # update was handled before runs while its chat is locked.
    dispatcher.update.outer_middleware(OncePerUpdate(intake.db, on_repeat=citizen.AskAgain()))
    dispatcher["intake"] = intake
    dispatcher["staff"] = staff_service
    dispatcher["routing"] = routing
    dispatcher["worker"] = worker
    dispatcher["coordinator_ids"] = coordinator_ids
    dispatcher["overdue"] = overdue_service or OverdueService(
        staff_service.db, staff_service.config
    )
    dispatcher["reports"] = ReportService(staff_service.db, staff_service.config)
    # Order matters: group administration, then staff replies to cards (which may come from a
    # coordinator's private chat), then the residents' conversation.
    dispatcher.include_routers(
        errors.build_router(),
        bans.build_router(),  # a banned resident's update goes no further
        groups.build_router(),
        overdue.build_router(),
        reports.build_router(),
        staff.build_router(),
        citizen.build_router(),
        fallback_router(),
    )
    return dispatcher
