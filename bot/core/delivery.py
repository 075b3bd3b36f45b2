"""The outbox worker: delivers queued messages in order per chat, within platform limits.

A message is marked sent only after the platform accepted it, so a crash between the two
repeats at most that one message and never loses it. No database transaction is held open
while talking to the platform.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bot.core import notify, texts
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
from bot.core.routing import migrate_chat, rehome_open_appeals
from storage.models import OutboxMessage
from storage.outage import is_outage
from storage.uow import CANCELLED_MARK, REFUSED_BY_CHAT, Database, UnitOfWork, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=10)
KEEP_DELIVERED = timedelta(days=30)
KEEP_DRAFTS = timedelta(days=30)
# VK's long poll keeps events for hours, not days: older claims can never be replayed.
KEEP_EVENT_CLAIMS = timedelta(days=7)
REFUSED_KEPT = timedelta(days=14)  # what a coordinator's chat refused, sent once they open it
HOUSEKEEPING_EVERY = 3600.0  # seconds
BATCH = 1000  # chats looked at per read
ALBUM_LOOKAHEAD = 20  # messages read after an album's first photo: its parts, the card's edits
REFRESH = 0.25  # seconds a read of the chats' next messages is used before reading again
# A held message the platform has not taken within this is left to the queue (a retry, as
# after any network error); a claim needs this much of the hold left, and more.
DELIVER_NOW_WITHIN = 10.0
CLAIM_SPARE = timedelta(seconds=20)
# A message sent while the database went away is recorded once it is back, for this long at
# most (a shutdown waits for it); past it, the queue sends it again.
RECORD_PATIENCE = 300.0
MAX_RECORD_DELAY = 15.0


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
        # card refresh → the pending refreshes its render already includes
        self._covered: dict[int, list[int]] = {}
        # The chats' next messages as last read, refreshed every REFRESH seconds or on wake().
        self._heads: list[OutboxMessage] = []
        self._albums: dict[int, list[OutboxMessage]] = {}
        self._read_at = -REFRESH
        # Messages finished (sent, failed, put off) since the last read began: a read that
        # started before they were recorded may still show them pending.
        self._finished: dict[int, float] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        # Whether this process still holds the sending duty (``run``'s ``holding``); once it
        # says no, nothing more is sent until the duty is taken again.
        self._holding: Callable[[], Awaitable[bool]] | None = None
        self._lost = False

    async def chat_opened(self, platform: str, chat_id: str) -> int:
        """A coordinator pressed Start: what their chat refused until now (cards of departments
        without a group, notices) is queued again; how many."""
        async with self.db.uow() as uow:
            queued = await uow.outbox.retry_refused(platform, chat_id, utcnow() - REFUSED_KEPT)
            await uow.commit()
        if queued:
            self.wake()
        return queued

    def wake(self) -> None:
        """Called after a commit that queued messages, so they go out at once."""
        self._wake.set()

    async def deliver_now(self, item: OutboxMessage) -> None:
        """Send a message its handler held back from the queue (``notify.to_resident``'s
        ``hold``) as that handler's own answer: now, not after other chats' notifications
        waiting for the platform's overall limit.

        The handler first claims it: the hold is renewed in the database only if it is still
        held, with time to spare, so the queue of this or another process can have neither
        sent it nor be about to. Then it is sent and recorded as the queue records its own; a
        failure leaves it to the queue (a retry after a 429, a network error or no answer
        within ``DELIVER_NOW_WITHIN``; the resident marked unreachable after a 403). A
        message that cannot be claimed, or whose chat is busy here, goes to the queue in
        turn, at once. Should this process stop before it is recorded, the queue sends it
        once the hold runs out: at most once more."""
        chat = (item.platform, item.chat_id)
        if chat in self._busy_chats or item.platform not in self.senders:
            await self._release(item)
            return
        self._busy_chats.add(chat)  # the worker here leaves the chat alone from now on
        try:
            async with self.db.uow() as uow:
                claimed = await uow.outbox.claim_held(item.id, notify.HELD_FOR_SENDER, CLAIM_SPARE)
                await uow.commit()
        except Exception as exc:
            self._busy_chats.discard(chat)
            log.warning("outbox %s: not claimed (%s); left to the queue", item.id, exc)
            self.wake()
            return
        if not claimed:  # too late: the queue has it, or will have it in a moment
            self._busy_chats.discard(chat)
            await self._release(item)
            return
        self.wake()  # what was queued with it (the card) goes as usual
        # The chat's next message (from the queue) keeps its distance from this one.
        self.limiters[item.platform].record_chat(item.chat_id, _weight(item))
        await self._deliver_guarded(item, [], send_within=DELIVER_NOW_WITHIN)

    async def _still_holding(self) -> bool:
        if self._lost:
            return False
        if self._holding is None or await self._holding():
            return True
        if not self._lost:
            log.warning("outbox: the sending duty was lost; nothing more is sent from here")
        self._lost = True
        return False

    async def _release(self, item: OutboxMessage) -> None:
        async with self.db.uow() as uow:
            await uow.outbox.release(item.id)
            await uow.commit()
        self.wake()

    async def run(
        self, stop: asyncio.Event, holding: Callable[[], Awaitable[bool]] | None = None
    ) -> None:
        """Deliver until ``stop``: up to ``concurrency`` messages on their way at any moment,
        a new one started as soon as one is done and the limits allow.

        ``holding`` says whether this process still has the sending duty (its lock); it is
        asked before each send. A lock lost with its database connection lets another process
        take the duty within seconds, and from then on what this one sent as well would
        arrive twice: only the messages already on their way when it was lost may.
        """
        self._holding, self._lost = holding, False
        log.info("outbox worker started")
        next_housekeeping = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() >= next_housekeeping:
                    next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY
                    try:
                        await self.housekeeping()
                    except Exception:
                        log.exception("housekeeping failed; will try again later")
                if self._lost:  # until the duty's watch stops this run
                    await _sleep_until(stop, self.idle_interval)
                    continue
                try:
                    if self._wake.is_set() or time.monotonic() - self._read_at >= REFRESH:
                        await self._read_heads()
                    _, wait = self._start_due()
                except Exception as exc:
                    if is_outage(exc):  # said once a pass, not with the whole trace each time
                        log.warning("outbox: the database is away (%s)", type(exc).__name__)
                    else:
                        log.exception("outbox pass failed; retrying")
                    wait = self.idle_interval
                await self._pause(wait)
        except asyncio.CancelledError:
            for task in self._in_flight:
                task.cancel()
            raise
        finally:
            # Shutdown: the messages on their way are finished and recorded.
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def housekeeping(self) -> None:
        """Keep the tables small: old delivered messages and long-abandoned drafts go."""
        async with self.db.uow() as uow:
            messages = await uow.outbox.purge(utcnow() - KEEP_DELIVERED)
            drafts = await uow.drafts.purge(utcnow() - KEEP_DRAFTS)
            await uow.state.purge_events(utcnow() - KEEP_EVENT_CLAIMS)
            await uow.state.purge_marks(CANCELLED_MARK, utcnow() - KEEP_DRAFTS)
            await uow.commit()
        if messages or drafts:
            log.info("housekeeping: %d old messages, %d abandoned drafts removed", messages, drafts)

    async def run_once(self) -> tuple[int, float]:
        """One pass (tests): start what is due now and wait until it is done.

        Returns how many were attempted and how long until something may be due.
        """
        await self._read_heads()
        started, wait = self._start_due()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        return started, wait

    async def _read_heads(self) -> None:
        """The first pending message of each chat (and the album it starts), from the database."""
        self._wake.clear()
        began = time.monotonic()
        async with self.db.uow() as uow:
            heads = await uow.outbox.heads(BATCH)
            albums = {
                head.id: _album_after(head, await uow.outbox.following(head, ALBUM_LOOKAHEAD))
                for head in heads
                if _starts_album(head)
            }
        self._heads, self._albums, self._read_at = heads, albums, began
        # What finished before this read began is in it; what finished since may not be yet.
        self._finished = {key: at for key, at in self._finished.items() if at >= began}

    def _start_due(self) -> tuple[int, float]:
        """Start the deliveries that may go now; returns how many, and the seconds until the
        next one may be due."""
        now = utcnow()
        wait = self.idle_interval
        started = 0
        for item in self._heads:  # keep order within a chat: only its oldest pending message
            if len(self._in_flight) >= self.concurrency:
                break
            chat = (item.platform, item.chat_id)
            if item.id in self._finished:
                # Its chat's next message is not read yet: read again at REFRESH, not after
                # idling (a reply of two messages would arrive a second apart).
                wait = min(wait, self._read_at + REFRESH - time.monotonic())
                continue
            if chat in self._busy_chats:
                continue
            if item.platform not in self.senders:
                continue
            overall = self.limiters[item.platform].global_wait()
            if overall > 0:  # nothing of this platform may go yet, whichever the chat
                wait = min(wait, overall)
                if len(self.senders) == 1:
                    break
                continue
            if item.next_attempt_at > now:
                wait = min(wait, (item.next_attempt_at - now).total_seconds())
                continue
            limiter_wait = self.limiters[item.platform].wait_time(item.chat_id, _weight(item))
            if limiter_wait > 0:
                wait = min(wait, limiter_wait)
                continue
            self.limiters[item.platform].record(item.chat_id, _weight(item))
            self._busy_chats.add(chat)
            task = asyncio.create_task(self._deliver_guarded(item, self._albums.get(item.id, [])))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            started += 1
        return started, max(wait, 0.005)

    async def _pause(self, seconds: float) -> None:
        """Until a delivery ends, a commit queues messages, or ``seconds`` pass."""
        if self._wake.is_set():
            return
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {woken, *self._in_flight},
                timeout=min(seconds, self.idle_interval),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            woken.cancel()

    async def _deliver_guarded(
        self,
        item: OutboxMessage,
        album: list[OutboxMessage],
        send_within: float | None = None,
    ) -> None:
        chat = (item.platform, item.chat_id)
        try:
            await self._deliver(item, album, send_within)
        except Exception as exc:
            # The bookkeeping around a send failed: back off instead of resending every pass.
            log.exception("outbox %s: bookkeeping failed", item.id)
            try:
                await self._reschedule(item, backoff(item.attempts), f"bookkeeping: {exc!r}")
            except Exception:
                log.exception("outbox %s: could not reschedule", item.id)
        finally:
            finished = time.monotonic()
            for done in [item, *album]:
                self._finished[done.id] = finished
            self._busy_chats.discard(chat)
            self._covered.pop(item.id, None)

    async def _deliver(
        self, item: OutboxMessage, album: list[OutboxMessage], send_within: float | None = None
    ) -> None:
        """Send ``item`` (with the rest of its album, when it starts one) and record the result;
        a send not done within ``send_within`` seconds counts as a network error."""
        if _expired(item):
            async with self.db.uow() as uow:
                await uow.outbox.cancel_one(item.id)
                await uow.commit()
            return
        # A handler's own message (``deliver_now``) was claimed in the database instead.
        if send_within is None and not await self._still_holding():
            return  # left pending, for the process that holds the duty now
        sender = self.senders[item.platform]
        limiter = self.limiters[item.platform]
        try:
            async with asyncio.timeout(send_within):
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
                row = await uow.outbox.get(item.id)
                if row is not None and row.status == "pending" and row.chat_id == item.chat_id:
                    await uow.outbox.mark_failed(item.id, str(exc))  # never retry the old id
                await uow.commit()
        except PermanentError as exc:
            log.error("outbox %s (%s) refused: %s", item.id, item.kind, exc)
            async with self.db.uow() as uow:
                for failed in [item, *album]:
                    await uow.outbox.mark_failed(failed.id, str(exc))
                undelivered = {
                    "card_post": "Карточку обращения",
                    "card_media": "Фото жителя к карточке обращения",
                    "card_location": "Геометку к карточке обращения",
                    "comment_text": "Дополнение жителя к обращению",
                    "comment_photo": "Фото жителя к обращению",
                }
                if item.kind in undelivered and item.appeal_id is not None:
                    appeal = await uow.appeals.get(item.appeal_id)
                    number = appeal.number if appeal else "?"
                    await notify.to_coordinators(
                        uow,
                        self.config,
                        f"⚠️ {undelivered[item.kind]} № {number} не удалось доставить "
                        f"в чат {item.chat_id}: {exc}",
                        appeal,
                    )
                await uow.commit()
        except Exception as exc:  # network trouble, 5xx: try again later
            delay = backoff(item.attempts)
            log.warning("outbox %s: %s; retry in %ss", item.id, exc.__class__.__name__, delay)
            await self._reschedule(item, delay, f"{exc.__class__.__name__}: {exc}")
        else:
            # A handler waiting on its own message (``deliver_now``) waits no longer than it
            # waited for the send; the queue's sending keeps trying.
            patience = send_within if send_within is not None else RECORD_PATIENCE
            await self._record_sent(item, album, recorded, patience)

    async def _record_sent(
        self,
        item: OutboxMessage,
        album: list[OutboxMessage],
        recorded: list[tuple[int, int, str]],
        patience: float,
    ) -> None:
        """Mark what went out as sent and remember its messages (a card's id: staff reply to
        it). The platform has it already: while the database is away this is tried again
        rather than the send, which would post a second card and lose the first one's id."""
        delay, given_up_at = 0.5, time.monotonic() + patience
        covered = self._covered.pop(item.id, [])  # the refreshes this one's render satisfied
        while True:
            try:
                await self._record_once(item, album, recorded, covered)
                return
            except Exception as exc:
                if not is_outage(exc) or time.monotonic() > given_up_at:
                    raise
                log.warning(
                    "outbox %s: sent, not recorded yet (%s); again in %.0fs",
                    item.id,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RECORD_DELAY)

    async def _record_once(
        self,
        item: OutboxMessage,
        album: list[OutboxMessage],
        recorded: list[tuple[int, int, str]],
        covered: list[int],
    ) -> None:
        async with self.db.uow() as uow:
            # Cancelled while it was on its way (the appeal moved on): keep it frozen.
            cancelled = await uow.outbox.status_of(item.id) == "cancelled"
            for chat_id, message_id, purpose in recorded:
                if item.appeal_id is None:
                    continue
                await uow.cards.add(item.appeal_id, chat_id, message_id, purpose, item.platform)
                if cancelled:
                    card = await uow.cards.find(chat_id, message_id, item.platform)
                    assert card is not None
                    card.active = False
                if cancelled and purpose == "card":
                    await uow.outbox.add(
                        item.platform,
                        chat_id,
                        "card_close",
                        {"message_id": message_id, "note": "↪️ Карточка устарела"},
                        item.appeal_id,
                    )
            for sent in [item, *album]:
                await uow.outbox.mark_sent(sent.id)
            await uow.outbox.mark_sent_ids(covered)
            if item.kind in ("text", "photo"):
                await self._reachable_again(uow, item)
            await uow.commit()

    async def _reachable_again(self, uow: UnitOfWork, item: OutboxMessage) -> None:
        """A resident once marked unreachable took a message: clear the mark on the card."""
        resident = await uow.residents.by_chat(item.platform, item.chat_id)
        if resident is None or not resident.unreachable:
            return
        resident.unreachable = False
        await notify.refresh_resident_cards(uow, resident.id)

    async def _reschedule(self, item: OutboxMessage, delay: timedelta, error: str) -> None:
        async with self.db.uow() as uow:
            await uow.outbox.reschedule(item.id, delay, error)
            await uow.commit()

    async def _recipient_gone(self, item: OutboxMessage, error: str) -> None:
        async with self.db.uow() as uow:
            await self._handle_gone(uow, item, error)
            await uow.commit()
        self.wake()

    async def _handle_gone(self, uow: UnitOfWork, item: OutboxMessage, error: str) -> None:
        """The chat refuses the bot: a department group, a coordinator, or a resident."""
        staff_chat = item.platform == notify.STAFF_PLATFORM and _is_int(item.chat_id)
        if staff_chat:
            department = await uow.catalog.department_by_chat(int(item.chat_id))
            if department is not None:
                await self._group_gone(uow, item, department.id, department.name, error)
                return
            if int(item.chat_id) in self.config.coordinator_ids:
                log.error(
                    "coordinator %s cannot be written to (%s): they must open the bot and "
                    "press Start",
                    item.chat_id,
                    error,
                )
                # Kept as refused: they go out once the coordinator opens the bot.
                refused = f"{REFUSED_BY_CHAT}: {error}"
                await uow.outbox.fail_pending_for_chat(item.platform, item.chat_id, refused)
                return
        await uow.outbox.fail_pending_for_chat(item.platform, item.chat_id, error)
        resident = await uow.residents.by_chat(item.platform, item.chat_id)
        if resident is None:
            # A chat no department, coordinator or resident owns any more: nobody to tell.
            log.warning("outbox %s: chat refused delivery: %s", item.id, error)
            return
        if not resident.unreachable:
            resident.unreachable = True
            if item.appeal_id is not None:
                await uow.appeals.add_event(item.appeal_id, "unreachable")
            await notify.refresh_resident_cards(uow, resident.id)
            log.info("outbox %s: the resident blocked the bot; marked unreachable", item.id)

    async def _group_gone(
        self, uow: UnitOfWork, item: OutboxMessage, department_id: int, name: str, error: str
    ) -> None:
        """The bot was removed from a department's group: fall back to the coordinators."""
        log.error("department %s group refused delivery: %s", department_id, error)
        department = await uow.catalog.department(department_id)
        assert department is not None
        department.chat_id = None
        await uow.session.flush()
        await notify.to_coordinators(
            uow,
            self.config,
            f"⚠️ Бот не может писать в группу отдела «{name}» ({error}). Отдел отвязан, "
            "его открытые обращения переданы вам. Добавьте бота в группу (с правом писать) "
            "и отправьте там /bind.",
        )
        await rehome_open_appeals(uow, self.config, department_id)
        # Whatever is still queued for the dead chat (including the freezes just queued).
        await uow.outbox.fail_pending_for_chat(item.platform, item.chat_id, error)

    async def _send_album(
        self, sender: Sender, items: list[OutboxMessage]
    ) -> list[tuple[int, int, str]]:
        """Photos that came as one album go out as one album, captioned once."""
        photos = await self._portable(
            items[0].platform, [PhotoRef(**item.payload["photo"]) for item in items]
        )
        caption = str(items[0].payload.get("text") or "")
        ids = await sender.send_photos(items[0].chat_id, photos, caption, key=_key(items[0]))
        remember = str(items[0].payload.get("remember") or "")
        if not remember or not _is_int(items[0].chat_id):
            return []
        return [(int(items[0].chat_id), message_id, remember) for message_id in ids]

    async def _send(self, sender: Sender, item: OutboxMessage) -> list[tuple[int, int, str]]:
        """Send one outbox message; returns the staff-chat messages to remember."""
        payload: dict[str, Any] = item.payload or {}
        chat = item.chat_id
        # "remember": replies to this message should find their way back to the appeal.
        remember = str(payload.get("remember") or "")
        if item.kind in ("text", "comment_text"):
            keyboard = _keyboard(payload.get("keyboard"))
            message_id = await sender.send_text(
                chat, str(payload["text"]), keyboard, key=_key(item)
            )
            return [(int(chat), message_id, remember)] if remember and _is_int(chat) else []
        if item.kind in ("photo", "comment_photo"):
            photos = await self._portable(item.platform, [PhotoRef(**payload["photo"])])
            caption = str(payload.get("text") or "")
            if not photos:  # the photo is gone from where it came: its words still go
                message_id = await sender.send_text(chat, caption, None, key=_key(item))
                return [(int(chat), message_id, remember)] if remember and _is_int(chat) else []
            ids = await sender.send_photos(chat, photos, caption, key=_key(item))
            if not remember or not _is_int(chat):
                return []
            return [(int(chat), message_id, remember) for message_id in ids]
        if item.kind == "card_close" and "text" in payload:  # drawn when the appeal left
            await sender.edit_text(chat, int(payload["message_id"]), str(payload["text"]), None)
            return []
        async with self.db.uow() as uow:
            if item.kind == "card_refresh" and item.appeal_id is not None:
                # Read first: every refresh queued up to here is satisfied by the render below.
                self._covered[item.id] = await uow.outbox.pending_ids(
                    item.platform, chat, "card_refresh", item.appeal_id
                )
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
            portable = await self._portable(item.platform, photos)
            if len(portable) < len(photos):  # staff should know there was more to see
                caption += "\n" + texts.photos_gone(len(photos) - len(portable), len(photos))
            if not portable:
                message_id = await sender.send_text(chat, caption, None)
                return [(int(chat), message_id, "media")]
            ids = await sender.send_photos(chat, portable, caption)
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
        if item.kind == "card_close":  # queued before the text came with it
            note = str(payload.get("note") or "")
            async with self.db.uow() as uow:
                appeal = await uow.appeals.get(item.appeal_id) if item.appeal_id else None
                assert appeal is not None
                frozen = await render_card(uow, appeal, self.config, note, frozen=True)
            await sender.edit_text(chat, int(payload["message_id"]), frozen.text, None)
            return []
        raise PermanentError(f"unknown outbox kind {item.kind!r}")

    async def _portable(self, platform: str, photos: list[PhotoRef]) -> list[PhotoRef]:
        """Photos from another platform (a VK resident's, a Telegram solution photo for VK),
        fetched from where they live so the target platform can take them as uploads.

        A photo its platform no longer gives out is left out rather than blocking the rest.
        """
        ready: list[PhotoRef] = []
        for photo in photos:
            if photo.platform == platform or photo.content is not None:
                ready.append(photo)
                continue
            source = self.senders.get(photo.platform)
            if source is None:
                log.warning("a %s photo cannot be fetched: that platform is off", photo.platform)
                continue
            try:
                content = await source.fetch_photo(photo.ref)
            except PermanentError as exc:
                log.warning("a %s photo is gone: %s", photo.platform, exc)
                continue
            ready.append(PhotoRef(photo.platform, photo.ref, content))
        return ready


def _starts_album(item: OutboxMessage) -> bool:
    return item.kind in ("photo", "comment_photo") and bool((item.payload or {}).get("album"))


def _album_after(head: OutboxMessage, following: list[OutboxMessage]) -> list[OutboxMessage]:
    """The photos queued right after ``head`` from the same album (at most 10 in all)."""
    album = (head.payload or {}).get("album")
    rest: list[OutboxMessage] = []
    for later in following:
        if later.kind == "card_refresh":
            # Each part of a resident's album queues an edit of the card: an edit renders the
            # card as it is when sent, so it may wait until the album has gone.
            continue
        if later.kind != head.kind or (later.payload or {}).get("album") != album:
            break
        rest.append(later)
    return rest[:9]


def _is_int(value: str) -> bool:
    return value.lstrip("-").isdigit()


def _keyboard(raw: Any) -> Keyboard | None:
    return Keyboard.from_dict(raw) if isinstance(raw, dict) else None


def _expired(item: OutboxMessage) -> bool:
    """A message that only made sense until a moment (a reminder before a deadline)."""
    expires = (item.payload or {}).get("expires_at")
    return isinstance(expires, str) and datetime.fromisoformat(expires) < utcnow()


def _key(item: OutboxMessage) -> int:
    return int((item.payload or {}).get("random_id") or 0)


def _weight(item: OutboxMessage) -> int:
    if item.kind == "card_media":
        return 2  # an album counts as several messages toward the group limit
    return 1


async def _sleep_until(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
