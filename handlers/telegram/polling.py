"""Long polling that confirms updates only after they were handled.

aiogram's own polling confirms a batch (the next getUpdates' ``offset``) while its updates are
still being handled, so a crash in between loses them. Here a batch is handled first — each
chat's updates in order, different chats side by side — and confirmed afterwards; a crash
hands the batch over again and :class:`handlers.telegram.once.OncePerUpdate` skips what was
already done. A batch some of which met the database or Redis away is not confirmed either:
it is fetched and handled again, with growing pauses, until the storage is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.exceptions import TelegramConflictError, TelegramUnauthorizedError
from aiogram.methods import GetUpdates
from aiogram.types import Update
from sqlalchemy import text

from bot.core.logsafe import log_failure
from handlers.telegram.errors import LAST_TRY
from handlers.telegram.once import MAYBE_REPEATED, MORE_FROM_CHAT
from storage.outage import is_outage

log = logging.getLogger(__name__)

POLL_TIMEOUT = 30  # seconds Telegram holds an empty getUpdates open
# A batch still being handled after this is reported (and reported again): it is confirmed
# only once handled, since a confirmed update is gone from Telegram for good.
BATCH_PATIENCE = 120.0
MAX_DELAY = 30.0
# Chats handled at once: enough to keep the database busy, few enough that no update waits
# half a minute for a connection from the pool (SQLite writes one transaction at a time).
LANES = 10
PROBE_AFTER = 3  # failed handlings of a batch before asking whether the storage answers at all
PROBE_WITHIN = 5.0  # seconds


async def poll(bot: Bot, dispatcher: Dispatcher, allowed_updates: list[str]) -> None:
    """Poll until cancelled. A webhook left from webhook mode is removed, pending updates kept."""
    await bot.delete_webhook(drop_pending_updates=False)
    request_timeout = int(bot.session.timeout + POLL_TIMEOUT)
    method = GetUpdates(timeout=POLL_TIMEOUT, allowed_updates=allowed_updates)
    delay = 1.0
    # Only the first batch can hold updates handled before (by a process that crashed, or
    # polled until this one took over): each later one follows a confirmed offset, unless
    # getUpdates failed meanwhile (409: another poller got in and may have left some).
    first = True
    failures = 0  # handlings of the current batch that met the storage away
    while True:
        try:
            updates = await bot(method, request_timeout=request_timeout)
        except TelegramUnauthorizedError:
            raise
        except TelegramConflictError:
            log.warning("another process polls this bot (409); retrying in %.0fs", MAX_DELAY)
            first = True  # it may have handled updates without confirming them
            await asyncio.sleep(MAX_DELAY)
            continue
        except Exception as exc:
            log.warning("getUpdates failed (%s); retrying in %.0fs", exc.__class__.__name__, delay)
            first = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
            continue
        if not updates:
            delay, failures = 1.0, 0
            continue
        if not await handle_batch(bot, dispatcher, updates, maybe_repeated=first):
            # The database or Redis is away: the batch comes again, what was done is skipped.
            failures += 1
            first = True
            if failures >= PROBE_AFTER and await storage_answers(dispatcher):
                # It answers, yet the batch fails as if it were away: an update fails by itself
                # (a statement slower than its timeout). Once more, its failure is its own.
                log.error("the storage answers but the batch keeps failing; last try")
                await handle_batch(bot, dispatcher, updates, maybe_repeated=True, last_try=True)
            else:
                log.warning("storage unreachable; the batch is handled again in %.0fs", delay)
                updates = []
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
                continue
        delay, failures = 1.0, 0
        method.offset = updates[-1].update_id + 1
        first = False
        updates = []  # not held (some 4 MB for a full batch) through the next long poll


async def handle_batch(
    bot: Bot,
    dispatcher: Dispatcher,
    updates: list[Update],
    maybe_repeated: bool = True,
    last_try: bool = False,
) -> bool:
    """Handle one getUpdates batch: per chat in order, chats concurrently. ``maybe_repeated``
    False: none of them was handed over before, so none is looked up (``OncePerUpdate``).

    Returns False when the storage was away for some update: that chat's later updates were
    left too (they must not overtake it), and the batch is to be handled again. With
    ``last_try`` such a failure counts as the update's own (``handlers.telegram.errors``).
    """
    lanes: dict[tuple[int | None, int | None], list[Update]] = defaultdict(list)
    for update in updates:
        context = UserContextMiddleware.resolve_event_context(update)
        chat = context.chat.id if context.chat else None
        user = context.user.id if context.user else None
        lanes[(chat, user)].append(update)
    room = asyncio.Semaphore(LANES)
    tasks = [
        asyncio.ensure_future(_lane(bot, dispatcher, lane, room, maybe_repeated, last_try))
        for lane in lanes.values()
    ]
    pending: set[asyncio.Future[bool]] = set(tasks)
    waited = 0.0
    while pending:
        _, pending = await asyncio.wait(pending, timeout=BATCH_PATIENCE)
        if pending:
            waited += BATCH_PATIENCE
            log.warning(
                "%d chats' updates still being handled after %.0fs; not confirmed until they are",
                len(pending),
                waited,
            )
    return all(task.result() for task in tasks)


async def _lane(
    bot: Bot,
    dispatcher: Dispatcher,
    updates: list[Update],
    room: asyncio.Semaphore,
    maybe_repeated: bool,
    last_try: bool,
) -> bool:
    """One chat's updates in order; False if the storage was away (the rest left for later)."""
    async with room:
        for index, update in enumerate(updates):
            more = index < len(updates) - 1
            data = {MAYBE_REPEATED: maybe_repeated, LAST_TRY: last_try, MORE_FROM_CHAT: more}
            try:
                await dispatcher.feed_update(bot, update, **data)
            except Exception as exc:
                if is_outage(exc):
                    return False
                # The errors router answers the user; what reaches here is logged, not fatal.
                log_failure(log, exc, "update %s failed", update.update_id)
    return True


async def storage_answers(dispatcher: Dispatcher) -> bool:
    """Whether the database (and Redis, when used) answer a trivial question right now."""
    try:
        async with asyncio.timeout(PROBE_WITHIN):
            async with dispatcher["intake"].db.uow(read_only=True) as uow:
                await uow.session.execute(text("SELECT 1"))
            redis = getattr(dispatcher.fsm.events_isolation, "redis", None)
            if redis is not None:
                await redis.ping()
    except Exception:
        return False
    return True
