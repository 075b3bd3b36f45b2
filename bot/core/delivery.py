"""The outbox worker: delivers queued messages in order per chat, within platform limits.

A message is marked sent only after the platform accepted it, so a crash between the two
repeats at most that one message and never loses it. No database transaction is held open
while talking to the platform.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from bot.core import notify
from bot.core.cards import render_card
from bot.core.config import CoreConfig
from bot.core.model import Keyboard
from bot.core.ports import (
    ChatMoved,
    PermanentError,
    PhotoRef,
    RecipientGone,
    RetryAfter,
    Sender,
)
from bot.core.ratelimit import RateLimiter
from bot.core.routing import migrate_chat
from storage.models import OutboxMessage
from storage.uow import Database, UnitOfWork, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=10)
BATCH = 500


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2 ** min(attempts, 12)), MAX_BACKOFF)


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        config: CoreConfig,
        senders: Mapping[str, Sender],
        limiters: Mapping[str, RateLimiter],
        concurrency: int = 16,
        idle_interval: float = 1.0,
    ) -> None:
        self.db = db
        self.config = config
        self.senders = senders
        self.limiters = limiters
        self.concurrency = concurrency
        self.idle_interval = idle_interval
        self._wake = asyncio.Event()
        self._busy_chats: set[tuple[str, str]] = set()

    def wake(self) -> None:
        """Called after a commit that queued messages, so they go out at once."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("outbox worker started")
        while not stop.is_set():
            try:
                sent, wait = await self.run_once()
            except Exception:
                log.exception("outbox pass failed; retrying")
                sent, wait = 0, self.idle_interval
            if sent:
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(wait, self.idle_interval))
            except TimeoutError:
                pass

    async def run_once(self) -> tuple[int, float]:
        """One pass: the first pending message of each chat that may be sent now.

        Returns how many were attempted and how long until something may be due.
        """
        async with self.db.uow() as uow:
            pending = await uow.outbox.pending(BATCH)
        now = utcnow()
        seen: set[tuple[str, str]] = set()
        due: list[OutboxMessage] = []
        wait = self.idle_interval
        by_chat: dict[tuple[str, str], list[OutboxMessage]] = {}
        for item in pending:
            by_chat.setdefault((item.platform, item.chat_id), []).append(item)
        for item in pending:
            chat = (item.platform, item.chat_id)
            if chat in seen:
                continue  # keep order within a chat: only its oldest pending message
            seen.add(chat)
            if chat in self._busy_chats or item.platform not in self.senders:
                continue
            if item.next_attempt_at > now:
                wait = min(wait, (item.next_attempt_at - now).total_seconds())
                continue
            limiter_wait = self.limiters[item.platform].wait_time(item.chat_id, _weight(item))
            if limiter_wait > 0:
                wait = min(wait, limiter_wait)
                continue
            due.append(item)
            if len(due) >= self.concurrency:
                break
        for item in due:
            self.limiters[item.platform].record(item.chat_id, _weight(item))
        await asyncio.gather(
            *(self._deliver_guarded(item, _album_of(item, by_chat)) for item in due)
        )
        return len(due), max(wait, 0.01)

    async def _deliver_guarded(self, item: OutboxMessage, album: list[OutboxMessage]) -> None:
        chat = (item.platform, item.chat_id)
        self._busy_chats.add(chat)
        try:
            await self._deliver(item, album)
        finally:
            self._busy_chats.discard(chat)

    async def _deliver(self, item: OutboxMessage, album: list[OutboxMessage]) -> None:
        """Send ``item`` (with the rest of its album, when it starts one) and record the result."""
        sender = self.senders[item.platform]
        limiter = self.limiters[item.platform]
        try:
            if album:
                recorded = await self._send_album(sender, [item, *album])
            else:
                recorded = await self._send(sender, item)
        except RetryAfter as exc:
            limiter.block(item.chat_id, exc.seconds)
            await self._reschedule(item, timedelta(seconds=exc.seconds), str(exc))
        except RecipientGone as exc:
            await self._recipient_gone(item, str(exc))
        except ChatMoved as exc:
            async with self.db.uow() as uow:
                await migrate_chat(uow, self.config, int(item.chat_id), exc.new_chat_id)
                await uow.commit()
        except PermanentError as exc:
            log.error("outbox %s (%s) refused: %s", item.id, item.kind, exc)
            async with self.db.uow() as uow:
                await uow.outbox.mark_failed(item.id, str(exc))
                await uow.commit()
        except Exception as exc:  # network trouble, 5xx: try again later
            delay = backoff(item.attempts)
            log.warning("outbox %s: %s; retry in %ss", item.id, exc.__class__.__name__, delay)
            await self._reschedule(item, delay, f"{exc.__class__.__name__}: {exc}")
        else:
            async with self.db.uow() as uow:
                for chat_id, message_id, purpose in recorded:
                    if item.appeal_id is not None:
                        await uow.cards.add(item.appeal_id, chat_id, message_id, purpose)
                for sent in [item, *album]:
                    await uow.outbox.mark_sent(sent.id)
                await uow.commit()

    async def _reschedule(self, item: OutboxMessage, delay: timedelta, error: str) -> None:
        async with self.db.uow() as uow:
            await uow.outbox.reschedule(item.id, delay, error)
            await uow.commit()

    async def _recipient_gone(self, item: OutboxMessage, error: str) -> None:
        async with self.db.uow() as uow:
            if item.platform == notify.STAFF_PLATFORM and _is_int(item.chat_id):
                department = await uow.catalog.department_by_chat(int(item.chat_id))
                if department is not None:
                    await self._group_gone(uow, item, department.id, department.name, error)
                    await uow.commit()
                    self.wake()
                    return
            resident = await uow.residents.by_chat(item.platform, item.chat_id)
            await uow.outbox.fail_pending_for_chat(item.platform, item.chat_id, error)
            if resident is not None and not resident.unreachable:
                resident.unreachable = True
                appeal = await uow.appeals.get(item.appeal_id) if item.appeal_id else None
                if appeal is not None:
                    await uow.appeals.add_event(appeal.id, "unreachable")
                    await notify.refresh_cards(uow, appeal)
                log.info("resident chat %s:%s unreachable", item.platform, item.chat_id)
            elif resident is None:
                log.error("chat %s refused delivery: %s", item.chat_id, error)
            await uow.commit()
        self.wake()

    async def _group_gone(
        self, uow: UnitOfWork, item: OutboxMessage, department_id: int, name: str, error: str
    ) -> None:
        """The bot was removed from a department's group: fall back to the coordinators."""
        log.error("department %s group %s refused delivery: %s", department_id, item.chat_id, error)
        waiting = await uow.outbox.pending_appeals(item.platform, item.chat_id)
        await uow.outbox.fail_pending_for_chat(item.platform, item.chat_id, error)
        department = await uow.catalog.department(department_id)
        assert department is not None
        department.chat_id = None
        await uow.session.flush()
        await notify.to_coordinators(
            uow,
            self.config,
            f"⚠️ Бот не может писать в группу отдела «{name}»: его удалили или лишили прав. "
            "Отдел отвязан, его обращения пока приходят вам. Добавьте бота в группу и отправьте "
            "там /bind.",
        )
        for appeal_id in waiting:
            appeal = await uow.appeals.get(appeal_id)
            if appeal is not None and appeal.department_id == department_id:
                await uow.appeals.add_event(appeal.id, "unbound", detail=name)
                await notify.post_card(uow, self.config, appeal)

    async def _send_album(
        self, sender: Sender, items: list[OutboxMessage]
    ) -> list[tuple[int, int, str]]:
        """Photos that came as one album go out as one album, captioned once."""
        photos = [PhotoRef(**item.payload["photo"]) for item in items]
        caption = str(items[0].payload.get("text") or "")
        await sender.send_photos(items[0].chat_id, photos, caption)
        return []

    async def _send(self, sender: Sender, item: OutboxMessage) -> list[tuple[int, int, str]]:
        """Send one outbox message; returns the staff-chat messages to remember."""
        payload: dict[str, Any] = item.payload or {}
        chat = item.chat_id
        if item.kind == "text":
            keyboard = _keyboard(payload.get("keyboard"))
            await sender.send_text(chat, str(payload["text"]), keyboard)
            return []
        if item.kind == "photo":
            photo = PhotoRef(**payload["photo"])
            await sender.send_photos(chat, [photo], str(payload.get("text") or ""))
            return []
        async with self.db.uow() as uow:
            appeal = await uow.appeals.get(item.appeal_id) if item.appeal_id else None
            if appeal is None:
                raise PermanentError(f"appeal {item.appeal_id} not found")
            photos = [
                PhotoRef(p.platform, p.file_ref)
                for p in await uow.appeals.photos(appeal.id, "resident")
            ]
            card = await render_card(uow, appeal, self.config, str(payload.get("note") or ""))
            live = [c for c in await uow.cards.active_cards(appeal.id) if str(c.chat_id) == chat]
            location = (appeal.latitude, appeal.longitude)
            number = appeal.number
        if item.kind == "card_media":
            caption = f"📷 Фото к обращению № {number}"
            ids = await sender.send_photos(chat, photos, caption)
            return [(int(chat), message_id, "media") for message_id in ids]
        if item.kind == "card_location":
            if location[0] is None or location[1] is None:
                return []
            message_id = await sender.send_location(chat, location[0], location[1])
            return [(int(chat), message_id, "location")]
        if item.kind == "card_post":
            message_id = await sender.send_text(chat, card.text, card.keyboard)
            return [(int(chat), message_id, "card")]
        if item.kind == "card_refresh":
            for live_card in live:
                await sender.edit_text(chat, live_card.message_id, card.text, card.keyboard)
            return []
        if item.kind == "card_close":
            note = str(payload.get("note") or "")
            async with self.db.uow() as uow:
                appeal = await uow.appeals.get(item.appeal_id) if item.appeal_id else None
                assert appeal is not None
                frozen = await render_card(uow, appeal, self.config, note, frozen=True)
            await sender.edit_text(chat, int(payload["message_id"]), frozen.text, None)
            return []
        raise PermanentError(f"unknown outbox kind {item.kind!r}")


def _album_of(
    item: OutboxMessage, by_chat: dict[tuple[str, str], list[OutboxMessage]]
) -> list[OutboxMessage]:
    """The photos queued right after ``item`` from the same album (at most 10 in all)."""
    album = (item.payload or {}).get("album")
    if item.kind != "photo" or not album:
        return []
    queue = by_chat[(item.platform, item.chat_id)]
    rest: list[OutboxMessage] = []
    for later in queue[queue.index(item) + 1 :]:
        if later.kind != "photo" or (later.payload or {}).get("album") != album:
            break
        rest.append(later)
    return rest[:9]


def _is_int(value: str) -> bool:
    return value.lstrip("-").isdigit()


def _keyboard(raw: Any) -> Keyboard | None:
    return Keyboard.from_dict(raw) if isinstance(raw, dict) else None


def _weight(item: OutboxMessage) -> int:
    if item.kind == "card_media":
        return 2  # an album counts as several messages toward the group limit
    return 1
