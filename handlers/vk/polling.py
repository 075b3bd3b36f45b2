"""VK's Bots Long Poll, read so that nothing is lost and nothing is done twice.

vkbottle's ``BotPolling`` talks to the long poll server; this loop hands each batch of updates
to the bot's router and only then stores the batch's ``ts`` in the database. A restart resumes
from the stored ``ts`` (events that came while the bot was down are processed), and an event
handed over again finds its claim from the first time (see ``storage.uow.handling_event``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from vkbottle import Bot
from vkbottle.exception_factory import ErrorHandler
from vkbottle.polling import BotPolling

from bot.core.logsafe import log_failure
from handlers.vk.inputs import as_int
from storage.outage import is_outage
from storage.uow import Database, handling_event

log = logging.getLogger(__name__)

ATTEMPTS = 3  # an event that fails this often is logged and left, not retried forever
# What the community's Long Poll is set up to send (README); anything else is not ours to read.
HANDLED_TYPES = frozenset({"message_new", "message_event"})


def event_key(update: dict[str, Any]) -> str | None:
    """VK's own id of the event; older API versions lack it, then the message's ids serve."""
    if update.get("event_id"):
        return f"vk:{update['event_id']}"[:128]
    body = update.get("object")
    body = body if isinstance(body, dict) else {}
    message = body.get("message")
    message = message if isinstance(message, dict) else {}
    if message.get("id"):
        return f"vk:m:{message['id']}"[:128]
    if body.get("event_id"):
        return f"vk:e:{body['event_id']}"[:128]
    return None


def sender_of(update: dict[str, Any]) -> int:
    body = update.get("object")
    body = body if isinstance(body, dict) else {}
    message = body.get("message")
    message = message if isinstance(message, dict) else {}
    return as_int(message.get("from_id") or body.get("user_id"))


class ResumingPolling(BotPolling):
    """BotPolling that starts from the ``ts`` stored in the database, when there is one."""

    def __init__(self, api: Any, group_id: int, saved_ts: str | None) -> None:
        # Errors of the long poll itself (a revoked token, VK down) reach run_vk_front, which
        # stops on a rejected token and otherwise waits and resumes from the stored position.
        super().__init__(
            api,
            group_id=group_id,
            skip_old_events=False,
            error_handler=ErrorHandler(raise_exceptions=True),
        )
        self.saved_ts = saved_ts

    def restore_server_ts(self, server: dict[str, Any]) -> dict[str, Any]:
        if self.saved_ts is not None:
            log.info("VK long poll resumes from ts %s", self.saved_ts)
            server["ts"] = self.saved_ts
        return server

    def save_server_ts(self, server: dict[str, Any]) -> None:
        """Stored by ``VkPoller`` in the database instead, after the batch was handled."""


# Told an event handled before (with its key): see ``VkConversation.ask_again``.
OnRepeat = Callable[[dict[str, Any], str], Awaitable[None]]


class VkPoller:
    def __init__(
        self, bot: Bot, db: Database, group_id: int | None, on_repeat: OnRepeat | None = None
    ) -> None:
        self.bot = bot
        self.db = db
        self.group_id = group_id
        self.on_repeat = on_repeat
        self.polling: ResumingPolling | None = None

    def _state_name(self, group_id: int | None) -> str:
        return f"vk_ts:{group_id}"

    async def resolve_group(self) -> int:
        if self.group_id is None:
            groups = (await self.bot.api.request("groups.getById", {}))["response"]
            items = groups.get("groups", groups) if isinstance(groups, dict) else groups
            self.group_id = int(items[0]["id"])
        return self.group_id

    async def run(self) -> None:
        group_id = await self.resolve_group()
        async with self.db.uow() as uow:
            saved = await uow.state.get(self._state_name(group_id))
        self.polling = ResumingPolling(self.bot.api, group_id=group_id, saved_ts=saved)
        log.info("VK long poll for community %s started", group_id)
        async for batch in self.polling.listen():
            await self.handle_batch(batch.get("updates") or [])
            async with self.db.uow() as uow:
                await uow.state.set(self._state_name(group_id), str(batch["ts"]))
                await uow.commit()

    def stop(self) -> None:
        if self.polling is not None:
            self.polling.stop()

    async def handle_batch(self, updates: list[dict[str, Any]]) -> None:
        """Each resident's events in order; different residents side by side."""
        by_sender: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for update in updates:
            if isinstance(update, dict):
                by_sender[sender_of(update)].append(update)

        async def in_order(items: list[dict[str, Any]]) -> None:
            for update in items:
                await self.handle(update)

        await asyncio.gather(*(in_order(items) for items in by_sender.values()))

    async def handle(self, update: dict[str, Any]) -> None:
        """Handle one update. A database that cannot be reached stops the batch (its position
        is not stored, so it comes again); an update that fails by itself is tried a few times
        and then left, so that one bad update cannot stop everyone else's."""
        if update.get("type") not in HANDLED_TYPES:
            return
        key = event_key(update)
        for attempt in range(1, ATTEMPTS + 1):
            if key is not None and await self._seen(key):
                log.info("VK event %s was handled before; skipped", key)
                await self._repeated(update, key)
                return
            try:
                if key is None:
                    await self.bot.process_event(update, self.bot.api)
                else:
                    with handling_event(key):
                        await self.bot.process_event(update, self.bot.api)
                return
            except Exception as exc:
                if is_outage(exc):
                    raise  # the storage is away: the batch comes again from its position
                failed = "VK event %s failed (attempt %d of %d)"
                log_failure(log, exc, failed, key, attempt, ATTEMPTS)
                await asyncio.sleep(0.5 * attempt)
        log.error("VK event %s left unhandled after %d attempts", key, ATTEMPTS)

    async def _repeated(self, update: dict[str, Any], key: str) -> None:
        if self.on_repeat is None:
            return
        try:
            await self.on_repeat(update, key)
        except Exception as exc:
            if is_outage(exc):
                raise  # the batch comes again, and with it this courtesy
            log.warning("VK event %s: not asked again (%s)", key, type(exc).__name__)

    async def _seen(self, key: str) -> bool:
        async with self.db.uow(read_only=True) as uow:
            return await uow.state.event_seen(key)
