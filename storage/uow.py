"""Unit of work: one session, the repositories on it, one commit at the end of a use case.

Repositories never commit; the use case that changed things does, once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.core.catalog import Catalog
from storage.db import READ_ONLY
from storage.models import (
    Appeal,
    AppealCounter,
    AppealEscalation,
    AppealEvent,
    AppealPhoto,
    CardMessage,
    Category,
    Department,
    Draft,
    OutboxMessage,
    PollState,
    ProcessedEvent,
    Resident,
)

OPEN_OR_RESOLVED = ("new", "in_work", "reopened", "resolved")
STAFF = "telegram"  # the platform of staff chats (department groups, coordinators)
OPEN = ("new", "in_work", "reopened")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CategoryChoice:
    """What a resident picks a category by."""

    code: str
    title: str
    emoji: str


class CatalogCache:
    """The active categories: every resident's category step shows them, and they change only
    when a process syncs the catalogue at start. Read again after a minute, so that processes
    started before a new categories file follow the one that synced it."""

    TTL = 60.0

    def __init__(self) -> None:
        self._choices: tuple[CategoryChoice, ...] | None = None
        self._read_at = 0.0

    @property
    def choices(self) -> tuple[CategoryChoice, ...] | None:
        if self._choices is not None and time.monotonic() - self._read_at > self.TTL:
            self._choices = None
        return self._choices

    @choices.setter
    def choices(self, value: tuple[CategoryChoice, ...] | None) -> None:
        self._choices, self._read_at = value, time.monotonic()


BanKey = tuple[str, str]  # (platform, external id)


class BannedCache:
    """Who is banned, as this process last read it. Every update of every resident is checked
    and hardly anyone is banned: the check costs no query. Read again after ``TTL`` seconds,
    so that a ban made in another process holds here within that time; this process's own bans
    and unbans hold at once."""

    TTL = 5.0

    def __init__(self) -> None:
        self._keys: set[BanKey] | None = None
        self._read_at = 0.0
        self._edits: list[tuple[BanKey, bool]] | None = None  # made while a read is under way
        self.reading = asyncio.Lock()

    def fresh(self) -> set[BanKey] | None:
        if self._keys is not None and time.monotonic() - self._read_at > self.TTL:
            return None
        return self._keys

    def begin_read(self) -> None:
        self._edits = []  # a read that failed left its own: they are older than this one

    def replace(self, keys: set[BanKey]) -> None:
        """The set just read; edits made since ``begin_read`` are newer and stay."""
        edits, self._edits = self._edits or [], None
        for key, banned in edits:
            (keys.add if banned else keys.discard)(key)
        self._keys, self._read_at = keys, time.monotonic()

    def mark(self, key: BanKey, banned: bool) -> None:
        if self._edits is not None:
            self._edits.append((key, banned))
        if self._keys is not None:
            (self._keys.add if banned else self._keys.discard)(key)

    def forget(self, key: BanKey) -> None:
        """Found unbanned by a read of the resident's row: out of the set as it is now. Not
        kept over a read under way, which may have begun after a new ban."""
        if self._keys is not None:
            self._keys.discard(key)


class CatalogRepo:
    def __init__(self, session: AsyncSession, cache: CatalogCache | None = None) -> None:
        self.session = session
        self.cache = cache or CatalogCache()
        # Within one unit of work a code names one row: the session's identity map would hand
        # back the same object anyway, this spares the statement (a submission asks twice).
        self._by_code: dict[str, Category] = {}

    async def sync(self, catalog: Catalog) -> None:
        """Merge the categories file by code: idempotent, never deletes."""
        self._by_code.clear()
        departments = {d.code: d for d in (await self.session.scalars(select(Department)))}
        for spec in catalog.departments:
            dept = departments.get(spec.code)
            if dept is None:
                dept = Department(code=spec.code, name=spec.name, active=True)
                self.session.add(dept)
                departments[spec.code] = dept
            else:
                dept.name, dept.active = spec.name, True
        listed = {d.code for d in catalog.departments}
        for code, dept in departments.items():
            if code not in listed:
                dept.active = False
        await self.session.flush()
        categories = {c.code: c for c in (await self.session.scalars(select(Category)))}
        for cspec in catalog.categories:
            seconds = int(cspec.answer_deadline.total_seconds()) if cspec.answer_deadline else None
            solution = cspec.solution_deadline
            values = {
                "title": cspec.title,
                "emoji": cspec.emoji,
                "department_id": departments[cspec.department].id,
                "answer_deadline_seconds": seconds,
                "solution_deadline_seconds": int(solution.total_seconds()) if solution else None,
                "regional": cspec.regional,
                "position": cspec.position,
                "active": True,
            }
            category = categories.get(cspec.code)
            if category is None:
                self.session.add(Category(code=cspec.code, **values))
            else:
                for key, value in values.items():
                    setattr(category, key, value)
        listed = {c.code for c in catalog.categories}
        for code, category in categories.items():
            if code not in listed:
                category.active = False
        await self.session.flush()
        self.cache.choices = None

    async def active_categories(self) -> tuple[CategoryChoice, ...]:
        if self.cache.choices is None:
            rows = await self.session.execute(
                select(Category.code, Category.title, Category.emoji)
                .where(Category.active.is_(True))
                .order_by(Category.position)
            )
            self.cache.choices = tuple(CategoryChoice(*row) for row in rows)
        return self.cache.choices

    async def category(self, category_id: int) -> Category | None:
        return await self.session.get(Category, category_id)

    async def category_by_code(self, code: str) -> Category | None:
        if code in self._by_code:
            return self._by_code[code]
        found = await self.session.scalar(select(Category).where(Category.code == code))
        if found is not None:
            self._by_code[code] = found
        return found

    async def department(self, department_id: int) -> Department | None:
        return await self.session.get(Department, department_id)

    async def departments(self) -> list[Department]:
        rows = await self.session.scalars(
            select(Department).where(Department.active.is_(True)).order_by(Department.id)
        )
        return list(rows)

    async def department_by_chat(self, chat_id: int) -> Department | None:
        return await self.session.scalar(select(Department).where(Department.chat_id == chat_id))

    async def bind(self, department: Department, chat_id: int) -> None:
        await self.session.execute(
            update(Department).where(Department.chat_id == chat_id).values(chat_id=None)
        )
        await self.session.flush()
        department.chat_id = chat_id
        await self.session.flush()

    async def retire_chat(self, chat_id: int) -> None:
        """A chat id that no longer exists: its cards go dead and what waits for it fails."""
        await self.session.execute(
            update(CardMessage)
            .where(CardMessage.platform == STAFF, CardMessage.chat_id == chat_id)
            .values(active=False)
        )
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.chat_id == str(chat_id), OutboxMessage.status == "pending")
            .values(status="failed", last_error="chat migrated")
        )

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> list[int]:
        """Move a binding to the chat's new id; returns appeals whose live cards stayed behind."""
        await self.session.execute(
            update(Department).where(Department.chat_id == old_chat_id).values(chat_id=new_chat_id)
        )
        orphaned = await self.session.scalars(
            select(CardMessage.appeal_id)
            .where(
                CardMessage.platform == STAFF,
                CardMessage.chat_id == old_chat_id,
                CardMessage.purpose == "card",
                CardMessage.active.is_(True),
            )
            .distinct()
        )
        appeal_ids = list(orphaned)
        await self.session.execute(
            update(CardMessage)
            .where(CardMessage.platform == STAFF, CardMessage.chat_id == old_chat_id)
            .values(active=False)
        )
        await self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.chat_id == str(old_chat_id),
                OutboxMessage.status == "pending",
                OutboxMessage.kind.in_(
                    (
                        "text",
                        "photo",
                        "comment_text",
                        "comment_photo",
                        "card_media",
                        "card_location",
                        "card_post",
                    )
                ),
            )
            .values(chat_id=str(new_chat_id))
        )
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.chat_id == str(old_chat_id), OutboxMessage.status == "pending")
            .values(status="failed", last_error="chat migrated")
        )
        return appeal_ids


# The statements of every step of every conversation, built once and on the tables (not the
# mapped classes): building a statement, its cache key and the ORM's plan for it cost more CPU
# than SQLite takes to run it.
_DRAFTS: Table = Draft.__table__  # type: ignore[assignment]
_EVENTS: Table = ProcessedEvent.__table__  # type: ignore[assignment]
_DRAFT_BY_KEY = select(_DRAFTS.c.step, _DRAFTS.c.data).where(
    _DRAFTS.c.platform == bindparam("platform"),
    _DRAFTS.c.external_id == bindparam("external_id"),
)
_DRAFT_DELETE = delete(_DRAFTS).where(
    _DRAFTS.c.platform == bindparam("platform"),
    _DRAFTS.c.external_id == bindparam("external_id"),
)
_EVENT_SEEN = select(_EVENTS.c.key).where(_EVENTS.c.key == bindparam("key"))
_RECORD_EVENT = insert(_EVENTS)


def _draft_upsert(dialect: Any) -> Any:
    stmt = dialect.insert(_DRAFTS)
    kept = ("step", "data", "updated_at")
    return stmt.on_conflict_do_update(
        index_elements=[_DRAFTS.c.platform, _DRAFTS.c.external_id],
        set_={name: stmt.excluded[name] for name in kept},
    )


_DRAFT_UPSERT = {"sqlite": _draft_upsert(sqlite), "postgresql": _draft_upsert(postgresql)}
_REMEMBER_EVENT = {
    name: dialect.insert(_EVENTS).on_conflict_do_nothing(index_elements=[_EVENTS.c.key])
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


@dataclass(frozen=True)
class SavedDraft:
    step: str
    data: dict[str, Any]


class DraftRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, platform: str, external_id: str) -> SavedDraft | None:
        found = await self.session.execute(
            _DRAFT_BY_KEY, {"platform": platform, "external_id": external_id}
        )
        row = found.first()
        return None if row is None else SavedDraft(row.step, row.data)

    async def save(self, platform: str, external_id: str, step: str, data: dict[str, Any]) -> None:
        """Insert or overwrite the conversation's draft: one statement, on every step."""
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        values = {
            "platform": platform,
            "external_id": external_id,
            "step": step,
            "data": dict(data),
            "updated_at": utcnow(),
        }
        await self.session.execute(_DRAFT_UPSERT[dialect], values)

    async def delete(self, platform: str, external_id: str) -> None:
        await self.session.execute(
            _DRAFT_DELETE, {"platform": platform, "external_id": external_id}
        )

    async def purge(self, before: datetime) -> int:
        """Drop conversations abandoned since ``before``."""
        result = await self.session.execute(delete(Draft).where(Draft.updated_at < before))
        return int(getattr(result, "rowcount", 0) or 0)


class ResidentRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # What this unit of work found (the same objects the identity map holds), or that
        # nobody is there: a submission asks three times. Only the resident's own submission
        # adds them (``upsert``, which updates this), and a chat's updates are handled one at
        # a time (across processes too, with Redis), so nobody else adds them meanwhile.
        self._found: dict[tuple[str, str], Resident | None] = {}

    async def find(self, platform: str, external_id: str) -> Resident | None:
        key = (platform, external_id)
        if key not in self._found:
            self._found[key] = await self.session.scalar(
                select(Resident).where(
                    Resident.platform == platform, Resident.external_id == external_id
                )
            )
        return self._found[key]

    async def upsert(
        self,
        platform: str,
        external_id: str,
        chat_id: str,
        first_name: str,
        text_buttons: bool = False,
    ) -> Resident:
        resident = await self.find(platform, external_id)
        if resident is None:
            resident = Resident(
                platform=platform,
                external_id=external_id,
                chat_id=chat_id,
                first_name=first_name,
                unreachable=False,
                text_buttons=text_buttons,
                created_at=utcnow(),
            )
            self.session.add(resident)
        else:
            resident.chat_id, resident.unreachable = chat_id, False
            resident.text_buttons = text_buttons
            if first_name:
                resident.first_name = first_name
        await self.session.flush()
        self._found[(platform, external_id)] = resident
        return resident

    async def get(self, resident_id: int) -> Resident | None:
        return await self.session.get(Resident, resident_id)

    async def by_chat(self, platform: str, chat_id: str) -> Resident | None:
        return await self.session.scalar(
            select(Resident).where(Resident.platform == platform, Resident.chat_id == chat_id)
        )

    async def ban_state(
        self, platform: str, external_id: str
    ) -> tuple[int, datetime | None, str | None, bool] | None:
        """(id, banned_at, ban_reason, ban_notified), read on every update: one indexed row."""
        row = (
            await self.session.execute(
                select(
                    Resident.id, Resident.banned_at, Resident.ban_reason, Resident.ban_notified
                ).where(Resident.platform == platform, Resident.external_id == external_id)
            )
        ).first()
        return None if row is None else (row[0], row[1], row[2], bool(row[3]))

    async def banned_keys(self) -> set[BanKey]:
        """Every banned resident, by platform and id (a range on ix_residents_banned_at)."""
        rows = await self.session.execute(
            select(Resident.platform, Resident.external_id).where(Resident.banned_at.is_not(None))
        )
        return {(platform, external_id) for platform, external_id in rows}

    async def claim_ban_notice(self, resident_id: int) -> bool:
        """Mark the ban as told; True for the one caller that flipped it (told exactly once)."""
        result = await self.session.execute(
            update(Resident)
            .where(
                Resident.id == resident_id,
                Resident.banned_at.is_not(None),
                Resident.ban_notified.is_(False),
            )
            .values(ban_notified=True)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def banned(self, limit: int) -> list[tuple[Resident, str | None]]:
        """Banned residents, latest first, each with the number of their latest appeal."""
        latest = (
            select(Appeal.number)
            .where(Appeal.resident_id == Resident.id)
            .order_by(Appeal.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        rows = await self.session.execute(
            select(Resident, latest)
            .where(Resident.banned_at.is_not(None))
            .order_by(Resident.banned_at.desc(), Resident.id.desc())
            .limit(limit)
        )
        return [(resident, number) for resident, number in rows]


class AppealRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next_seq(self, year: int) -> int:
        """Bump the year's counter in this transaction: gap-free and safe under concurrency."""
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(AppealCounter)
            .values(year=year, value=1)
            .on_conflict_do_update(
                index_elements=[AppealCounter.year], set_={"value": AppealCounter.value + 1}
            )
            .returning(AppealCounter.value)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def add(self, appeal: Appeal) -> Appeal:
        self.session.add(appeal)
        await self.session.flush()
        return appeal

    async def get(self, appeal_id: int, lock: bool = False) -> Appeal | None:
        """``lock``: hold the row until commit (PostgreSQL; SQLite's BEGIN IMMEDIATE already
        serialises writers), so two staff pressing at once cannot both change the appeal."""
        return await self.session.get(Appeal, appeal_id, with_for_update=lock or None)

    async def by_number(self, number: str) -> Appeal | None:
        return await self.session.scalar(select(Appeal).where(Appeal.number == number))

    async def open_of_department(self, department_id: int) -> list[Appeal]:
        """Appeals the department still works on (or awaits the resident's word on), locked in
        id order: a transfer committed meanwhile is seen, and lock order stays consistent."""
        rows = await self.session.scalars(
            select(Appeal)
            .where(
                Appeal.department_id == department_id,
                Appeal.status.in_(OPEN_OR_RESOLVED),
            )
            .order_by(Appeal.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return list(rows)

    async def open_of_resident(self, resident_id: int) -> list[Appeal]:
        rows = await self.session.scalars(
            select(Appeal)
            .where(Appeal.resident_id == resident_id, Appeal.status.in_(OPEN_OR_RESOLVED))
            .order_by(Appeal.id)
        )
        return list(rows)

    async def filed_since(self, resident_id: int, since: datetime) -> int:
        """How many appeals the resident filed after ``since`` (ix_appeals_resident_created)."""
        query = (
            select(func.count())
            .select_from(Appeal)
            .where(Appeal.resident_id == resident_id, Appeal.created_at > since)
        )
        return int(await self.session.scalar(query) or 0)

    async def nth_latest_since(
        self, resident_id: int, since: datetime, nth: int
    ) -> datetime | None:
        """When the resident filed their ``nth`` latest appeal after ``since``, if they did."""
        return await self.session.scalar(
            select(Appeal.created_at)
            .where(Appeal.resident_id == resident_id, Appeal.created_at > since)
            .order_by(Appeal.created_at.desc())
            .offset(nth - 1)
            .limit(1)
        )

    async def of_resident(self, resident_id: int, limit: int) -> list[Appeal]:
        rows = await self.session.scalars(
            select(Appeal)
            .where(Appeal.resident_id == resident_id)
            .order_by(Appeal.id.desc())
            .limit(limit)
        )
        return list(rows)

    async def add_event(
        self,
        appeal_id: int,
        kind: str,
        actor: str | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self.session.add(
            AppealEvent(
                appeal_id=appeal_id, at=at or utcnow(), kind=kind, actor=actor, detail=detail
            )
        )

    async def events(self, appeal_id: int) -> list[AppealEvent]:
        rows = await self.session.scalars(
            select(AppealEvent).where(AppealEvent.appeal_id == appeal_id).order_by(AppealEvent.id)
        )
        return list(rows)

    async def add_photo(self, appeal_id: int, kind: str, platform: str, file_ref: str) -> None:
        self.session.add(
            AppealPhoto(
                appeal_id=appeal_id,
                kind=kind,
                platform=platform,
                file_ref=file_ref,
                created_at=utcnow(),
            )
        )

    async def photos(self, appeal_id: int, kind: str) -> list[AppealPhoto]:
        rows = await self.session.scalars(
            select(AppealPhoto)
            .where(AppealPhoto.appeal_id == appeal_id, AppealPhoto.kind == kind)
            .order_by(AppealPhoto.id)
        )
        return list(rows)

    async def count_photos(self, appeal_id: int, kind: str, since: datetime | None = None) -> int:
        query = (
            select(func.count())
            .select_from(AppealPhoto)
            .where(AppealPhoto.appeal_id == appeal_id, AppealPhoto.kind == kind)
        )
        if since is not None:
            query = query.where(AppealPhoto.created_at >= since)
        return int(await self.session.scalar(query) or 0)

    async def last_event_at(self, appeal_id: int, kind: str) -> datetime | None:
        return await self.session.scalar(
            select(func.max(AppealEvent.at)).where(
                AppealEvent.appeal_id == appeal_id, AppealEvent.kind == kind
            )
        )


class CardRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, appeal_id: int, chat_id: int, message_id: int, purpose: str, platform: str = STAFF
    ) -> None:
        existing = await self.find(chat_id, message_id, platform)
        if existing is not None:
            existing.appeal_id, existing.purpose, existing.active = appeal_id, purpose, True
            return
        self.session.add(
            CardMessage(
                appeal_id=appeal_id,
                platform=platform,
                chat_id=chat_id,
                message_id=message_id,
                purpose=purpose,
                active=True,
                created_at=utcnow(),
            )
        )

    async def find(
        self, chat_id: int, message_id: int, platform: str = STAFF
    ) -> CardMessage | None:
        return await self.session.scalar(
            select(CardMessage).where(
                CardMessage.platform == platform,
                CardMessage.chat_id == chat_id,
                CardMessage.message_id == message_id,
            )
        )

    async def active_cards(self, appeal_id: int) -> list[CardMessage]:
        rows = await self.session.scalars(
            select(CardMessage).where(
                CardMessage.appeal_id == appeal_id,
                CardMessage.purpose == "card",
                CardMessage.active.is_(True),
            )
        )
        return list(rows)

    async def retire_finished(self, department_id: int, keep: list[int]) -> int:
        """Cards of the department's finished appeals (closed, rejected) outside ``keep`` stop
        following the appeal; how many."""
        finished = select(Appeal.id).where(
            Appeal.department_id == department_id, Appeal.status.not_in(OPEN_OR_RESOLVED)
        )
        result = await self.session.execute(
            update(CardMessage)
            .where(
                CardMessage.platform == STAFF,
                CardMessage.purpose != "notice",  # a Telegram resident's, not a staff chat's
                CardMessage.active.is_(True),
                CardMessage.chat_id.not_in(keep),
                CardMessage.appeal_id.in_(finished),
            )
            .values(active=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def deactivate(self, appeal_id: int) -> list[CardMessage]:
        """Retire every message of the appeal (after a transfer); returns the cards retired."""
        cards = await self.active_cards(appeal_id)
        await self.session.execute(
            update(CardMessage).where(CardMessage.appeal_id == appeal_id).values(active=False)
        )
        return cards


# The mark of messages failed because their chat would not take them (a coordinator who never
# pressed Start): such messages may be queued again once it does.
REFUSED_BY_CHAT = "refused by the chat"
# A draft cancelled at its summary: when (so its old «Отправить» says nothing went out).
CANCELLED_MARK = "cancelled:"


class OutboxRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        platform: str,
        chat_id: str | int,
        kind: str,
        payload: dict[str, Any],
        appeal_id: int | None = None,
        delay: timedelta = timedelta(0),
    ) -> OutboxMessage:
        now = utcnow()
        if platform == "vk" and "random_id" not in payload:
            # VK drops a second messages.send with the same random_id: stored with the row, it
            # makes a retry after a timeout or a crash safe. Random, not the row id, so that a
            # fresh database cannot repeat an id VK still remembers.
            payload = {**payload, "random_id": secrets.randbelow(2**31 - 1) + 1}
        message = OutboxMessage(
            platform=platform,
            chat_id=str(chat_id),
            kind=kind,
            appeal_id=appeal_id,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now + delay,
            created_at=now,
        )
        self.session.add(message)
        return message

    async def has_pending(self, platform: str, chat_id: str) -> bool:
        """Whether anything waits for this chat (a range on ix_outbox_chat)."""
        found = await self.session.scalar(
            select(OutboxMessage.id)
            .where(
                OutboxMessage.platform == platform,
                OutboxMessage.chat_id == chat_id,
                OutboxMessage.status == "pending",
            )
            .limit(1)
        )
        return found is not None

    async def claim_held(self, message_id: int, hold: timedelta, spare: timedelta) -> bool:
        """Renew the hold of a message held back from the queue, if at least ``spare`` of it
        is left and nothing older waits for the same chat: True when this caller may send it
        (no queue has, or is about to, and it overtakes nothing)."""
        now = utcnow()
        older = aliased(OutboxMessage)
        # The hold was granted on «nothing waits for this chat». On PostgreSQL another process
        # may have committed a message for the chat just after that check (an older id, unseen
        # then); it is seen here, and the queue then sends both in order.
        overtakes = exists().where(
            older.platform == OutboxMessage.platform,
            older.chat_id == OutboxMessage.chat_id,
            older.status == "pending",
            older.id < OutboxMessage.id,
        )
        result = await self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.status == "pending",
                OutboxMessage.next_attempt_at > now + spare,
                ~overtakes,
            )
            .values(next_attempt_at=now + hold)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def release(self, message_id: int) -> None:
        """A message held back for its handler goes to the queue: due now."""
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending")
            .values(next_attempt_at=utcnow())
        )

    async def pending_ids(
        self, platform: str, chat_id: str, kind: str, appeal_id: int
    ) -> list[int]:
        rows = await self.session.scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.status == "pending",
                OutboxMessage.platform == platform,
                OutboxMessage.chat_id == chat_id,
                OutboxMessage.kind == kind,
                OutboxMessage.appeal_id == appeal_id,
            )
        )
        return list(rows)

    async def mark_sent_ids(self, ids: list[int]) -> None:
        if ids:
            await self.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "pending")
                .values(status="sent", sent_at=utcnow())
            )

    async def cancel(self, appeal_id: int, kinds: tuple[str, ...]) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.appeal_id == appeal_id,
                OutboxMessage.kind.in_(kinds),
            )
            .values(status="cancelled")
        )

    async def cancel_one(self, message_id: int) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending")
            .values(status="cancelled")
        )

    async def pending_of(self, appeal_id: int, kinds: tuple[str, ...]) -> list[OutboxMessage]:
        rows = await self.session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.appeal_id == appeal_id,
                OutboxMessage.kind.in_(kinds),
            )
            .order_by(OutboxMessage.id)
        )
        return list(rows)

    async def status_of(self, message_id: int) -> str | None:
        return await self.session.scalar(
            select(OutboxMessage.status).where(OutboxMessage.id == message_id)
        )

    async def pending_chats(self, appeal_id: int, kind: str) -> list[str]:
        rows = await self.session.scalars(
            select(OutboxMessage.chat_id)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.appeal_id == appeal_id,
                OutboxMessage.kind == kind,
            )
            .distinct()
        )
        return list(rows)

    async def pending_appeals(self, platform: str, chat_id: str) -> list[int]:
        """Appeals with messages still waiting for this chat (including the one in flight)."""
        rows = await self.session.scalars(
            select(OutboxMessage.appeal_id)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.platform == platform,
                OutboxMessage.chat_id == chat_id,
                OutboxMessage.appeal_id.is_not(None),
            )
            .distinct()
        )
        return [int(r) for r in rows if r is not None]

    async def pending(self, limit: int) -> list[OutboxMessage]:
        rows = await self.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending")
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        return list(rows)

    async def heads(self, limit: int) -> list[OutboxMessage]:
        """The oldest pending message of each chat: one busy chat cannot hide the others."""
        oldest = (
            select(func.min(OutboxMessage.id))
            .where(OutboxMessage.status == "pending")
            .group_by(OutboxMessage.platform, OutboxMessage.chat_id)
        )
        rows = await self.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.id.in_(oldest))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
        return list(rows)

    async def following(self, head: OutboxMessage, limit: int) -> list[OutboxMessage]:
        """Pending messages queued after ``head`` for the same chat, in order."""
        rows = await self.session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.platform == head.platform,
                OutboxMessage.chat_id == head.chat_id,
                OutboxMessage.id > head.id,
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        return list(rows)

    async def get(self, message_id: int) -> OutboxMessage | None:
        return await self.session.get(OutboxMessage, message_id)

    async def mark_sent(self, message_id: int) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(status="sent", sent_at=utcnow(), attempts=OutboxMessage.attempts + 1)
        )

    async def mark_failed(self, message_id: int, error: str) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(status="failed", last_error=error[:500], attempts=OutboxMessage.attempts + 1)
        )

    async def reschedule(self, message_id: int, delay: timedelta, error: str) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(
                next_attempt_at=utcnow() + delay,
                last_error=error[:500],
                attempts=OutboxMessage.attempts + 1,
            )
        )

    async def purge(self, before: datetime) -> int:
        """Forget delivered and cancelled messages older than ``before`` (failures are kept)."""
        result = await self.session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status.in_(("sent", "cancelled")),
                OutboxMessage.created_at < before,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def retry_refused(self, platform: str, chat_id: str, since: datetime) -> int:
        """Queue again what this chat refused (``REFUSED_BY_CHAT``) since ``since``: it opened
        the bot at last. How many."""
        result = await self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.platform == platform,
                OutboxMessage.chat_id == chat_id,
                OutboxMessage.status == "failed",
                OutboxMessage.last_error.startswith(REFUSED_BY_CHAT),
                OutboxMessage.created_at >= since,
            )
            .values(status="pending", next_attempt_at=utcnow())
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def fail_pending_for_chat(self, platform: str, chat_id: str, error: str) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.platform == platform,
                OutboxMessage.chat_id == chat_id,
                OutboxMessage.status == "pending",
            )
            .values(status="failed", last_error=error[:500])
        )


class StateRepo:
    """Small named values the bot keeps between runs (a long poll's position)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, name: str) -> str | None:
        return await self.session.scalar(select(PollState.value).where(PollState.name == name))

    async def set(self, name: str, value: str) -> None:
        row = await self.session.get(PollState, name)
        if row is None:
            self.session.add(PollState(name=name, value=value))
        else:
            row.value = value

    async def event_seen(self, key: str) -> bool:
        found = await self.session.execute(_EVENT_SEEN, {"key": key})
        return found.first() is not None

    async def remember(self, key: str) -> None:
        """Record ``key`` (once) among the processed events: a mark that ages out with them."""
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        await self.session.execute(_REMEMBER_EVENT[dialect], {"key": key, "at": utcnow()})

    async def record(self, key: str) -> None:
        """Record ``key`` among the processed events (it must not be there yet)."""
        await self.session.execute(_RECORD_EVENT, {"key": key, "at": utcnow()})

    async def purge_events(self, before: datetime) -> int:
        result = await self.session.execute(
            delete(ProcessedEvent).where(ProcessedEvent.at < before)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge_marks(self, prefix: str, before: datetime) -> int:
        """Forget values named ``prefix…`` that hold a moment (ISO 8601, UTC) before ``before``."""
        result = await self.session.execute(
            delete(PollState).where(
                PollState.name.startswith(prefix), PollState.value < before.isoformat()
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class EventClaim:
    key: str
    claimed: bool = False


_current_event: ContextVar[EventClaim | None] = ContextVar("current_event", default=None)


@contextmanager
def handling_event(key: str) -> Iterator[EventClaim]:
    """Within this block, the first committed unit of work also records ``key`` as processed.

    The record and the event's effect commit together: an event handed over twice either
    finds its key (and is skipped) or finds nothing of its first handling.
    """
    claim = EventClaim(key)
    token = _current_event.set(claim)
    try:
        yield claim
    finally:
        _current_event.reset(token)


def current_event_key() -> str | None:
    claim = _current_event.get()
    return claim.key if claim is not None else None


class EscalationRepo:
    """Reminder and escalation steps, and the queries the scheduler and /overdue run."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def due_appeals(self, now: datetime, limit: int) -> list[int]:
        """Appeals the scheduler should look at now: a range on ix_appeals_next_check."""
        rows = await self.session.scalars(
            select(Appeal.id)
            .where(Appeal.next_check_at <= now)
            .order_by(Appeal.next_check_at, Appeal.id)
            .limit(limit)
        )
        return list(rows)

    async def done(self, appeal_id: int) -> set[tuple[str, datetime, int]]:
        rows = await self.session.execute(
            select(
                AppealEscalation.kind, AppealEscalation.deadline_at, AppealEscalation.level
            ).where(AppealEscalation.appeal_id == appeal_id)
        )
        return {(kind, deadline_at, level) for kind, deadline_at, level in rows}

    async def add(
        self, appeal_id: int, kind: str, deadline_at: datetime, level: int, at: datetime
    ) -> None:
        self.session.add(
            AppealEscalation(
                appeal_id=appeal_id, kind=kind, deadline_at=deadline_at, level=level, at=at
            )
        )
        await self.session.flush()  # the unique key speaks now, inside this transaction

    @staticmethod
    def _answer_missed(now: datetime) -> Any:
        """The answer is still owed (see bot.core.deadlines.answer_pending) and overdue."""
        return and_(
            or_(Appeal.first_answer_at.is_(None), Appeal.status == "reopened"),
            Appeal.deadline_at <= now,
        )

    @classmethod
    def _overdue_filter(cls, now: datetime, department_id: int | None) -> list[Any]:
        """Open appeals past a pending deadline."""
        solution_missed = Appeal.solution_deadline_at <= now
        where: list[Any] = [Appeal.status.in_(OPEN), or_(cls._answer_missed(now), solution_missed)]
        if department_id is not None:
            where.append(Appeal.department_id == department_id)
        return where

    @classmethod
    def _missed_at(cls, now: datetime) -> Any:
        """When the earliest missed deadline passed: the answer's if missed, else the solution's
        (an answer deadline never falls after the solution deadline it belongs with)."""
        return case(
            (cls._answer_missed(now), Appeal.deadline_at), else_=Appeal.solution_deadline_at
        )

    async def count_overdue(self, now: datetime, department_id: int | None) -> int:
        query = (
            select(func.count())
            .select_from(Appeal)
            .where(*self._overdue_filter(now, department_id))
        )
        return int(await self.session.scalar(query) or 0)

    async def overdue(
        self, now: datetime, department_id: int | None, limit: int, offset: int
    ) -> list[tuple[Appeal, str, datetime]]:
        """(appeal, department name, missed since), by department — the one with the longest
        overdue appeal first — then longest overdue."""
        missed_at = self._missed_at(now).label("missed_at")
        oldest = (
            func.min(self._missed_at(now)).over(partition_by=Appeal.department_id).label("oldest")
        )
        rows = await self.session.execute(
            select(Appeal, Department.name, missed_at, oldest)
            .join(Department, Department.id == Appeal.department_id)
            .where(*self._overdue_filter(now, department_id))
            .order_by(oldest, Department.name, missed_at, Appeal.id)
            .limit(limit)
            .offset(offset)
        )
        return [(appeal, name, when) for appeal, name, when, _ in rows]


WRITE_TURN_WAIT = 30.0  # as long as SQLite's own busy_timeout (storage.db)


class WriteTurn:
    """SQLite lets one transaction write at a time and makes the others poll for its lock with
    growing sleeps (its busy handler: 1 ms … 100 ms), leaving it idle in between. Within this
    process, writers queue here instead and each starts the moment the one before commits;
    other processes still meet SQLite's lock as before.

    A unit of work opened inside another one of the same task goes ahead without waiting (it
    would wait for itself): SQLite's own lock treats it as it always did.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None

    async def take(self) -> bool:
        """Wait for the turn; False when this task holds it already (nothing to give back)."""
        task = asyncio.current_task()
        if task is not None and task is self._owner:
            return False
        try:
            await asyncio.wait_for(self._lock.acquire(), WRITE_TURN_WAIT)
        except TimeoutError:
            raise WriteTurnTimeout from None
        self._owner = task
        return True

    def give_back(self) -> None:
        self._owner = None
        self._lock.release()


class WriteTurnTimeout(OperationalError):
    """No write turn within WRITE_TURN_WAIT: as SQLite's «database is locked» would say."""

    def __init__(self) -> None:
        super().__init__("waiting for a write turn", None, Exception("database is locked"))


class UnitOfWork:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        read_only: bool = False,
        catalog_cache: CatalogCache | None = None,
        write_turn: WriteTurn | None = None,
    ) -> None:
        self._factory = factory
        self._read_only = read_only
        self._catalog_cache = catalog_cache
        self._turn = None if read_only else write_turn
        self._holding = False

    async def __aenter__(self) -> UnitOfWork:
        if self._turn is not None:
            self._holding = await self._turn.take()
        self.session = self._factory()
        if self._read_only:
            # On SQLite a plain BEGIN: no write lock, no waiting behind writers (WAL).
            await self.session.connection(execution_options={READ_ONLY: True})
        self.catalog = CatalogRepo(self.session, self._catalog_cache)
        self.drafts = DraftRepo(self.session)
        self.residents = ResidentRepo(self.session)
        self.appeals = AppealRepo(self.session)
        self.cards = CardRepo(self.session)
        self.outbox = OutboxRepo(self.session)
        self.state = StateRepo(self.session)
        self.escalations = EscalationRepo(self.session)
        return self

    async def commit(self) -> None:
        claim = _current_event.get()
        if claim is not None and not claim.claimed:
            await self.state.record(claim.key)
            await self.session.commit()
            claim.claimed = True
        else:
            await self.session.commit()
        self._release()

    def _release(self) -> None:
        # What a unit does after its commit (replies built from what it read) is no write.
        if self._holding and self._turn is not None:
            self._holding = False
            self._turn.give_back()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                # Keep what was read usable after the unit ends (rollback would expire it);
                # anything not committed is still discarded below.
                self.session.expunge_all()
            if self.session.in_transaction():
                await self.session.rollback()
        finally:
            try:
                await self.session.close()
            finally:
                self._release()


class Database:
    """Makes units of work; what the core is handed."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self.factory = factory
        self.catalog_cache = CatalogCache()
        self.banned = BannedCache()
        self.write_turn = WriteTurn() if self.engine.dialect.name == "sqlite" else None

    def uow(self, read_only: bool = False) -> UnitOfWork:
        """A unit of work; ``read_only`` for one that never writes (it takes no write lock)."""
        return UnitOfWork(self.factory, read_only, self.catalog_cache, self.write_turn)

    @property
    def engine(self) -> AsyncEngine:
        bind = self.factory.kw["bind"]
        assert isinstance(bind, AsyncEngine)
        return bind
