"""ORM models. Portable across SQLite and PostgreSQL: no dialect-specific column types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no offsets, PostgreSQL gets the same."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    chat_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(100))
    emoji: Mapped[str] = mapped_column(String(16), default="")
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    answer_deadline_seconds: Mapped[int | None] = mapped_column(Integer)
    solution_deadline_seconds: Mapped[int | None] = mapped_column(Integer)
    regional: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Resident(Base):
    __tablename__ = "residents"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        Index("ix_residents_banned_at", "banned_at"),  # who is banned: read every few seconds
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(200), default="")
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # A coordinator's /ban: the resident's messages and presses are ignored from then on,
    # after one message saying so (ban_notified records that it was sent).
    banned_at: Mapped[datetime | None]
    ban_reason: Mapped[str | None] = mapped_column(String(300))
    ban_notified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Their VK client shows no inline or callback buttons (as it said when they last filed an
    # appeal): notices' buttons are sent as text buttons.
    text_buttons: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Draft(Base):
    """A half-finished conversation: kept in the database so a restart resumes it."""

    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime]


class AppealCounter(Base):
    """One row per year; bumped inside the submitting transaction, so numbers have no gaps."""

    __tablename__ = "appeal_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Appeal(Base):
    __tablename__ = "appeals"
    __table_args__ = (
        UniqueConstraint("year", "seq"),
        Index("ix_appeals_status_deadline", "status", "deadline_at"),
        Index("ix_appeals_department_status", "department_id", "status"),
        Index("ix_appeals_resident", "resident_id", "id"),
        # The hourly limit on new appeals counts a resident's latest ones by time.
        Index("ix_appeals_resident_created", "resident_id", "created_at"),
        Index("ix_appeals_created", "created_at"),
        Index("ix_appeals_status_solution_deadline", "status", "solution_deadline_at"),
        Index("ix_appeals_next_check", "next_check_at"),
        # Reports (/stats): every column the grouped counts and answer times read, so a period
        # is one range scan of this index without touching the rows (descriptions are big).
        Index(
            "ix_appeals_report",
            "created_at",
            "category_id",
            "status",
            "department_id",
            "platform",
            "reopened_count",
            "deadline_at",
            "first_answer_at",
            "resolved_at",
            "closed_at",
            "first_deadline_at",
        ),
        # The heat map: pins of a period without reading the rows.
        Index("ix_appeals_pins", "created_at", "latitude", "longitude", "category_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    platform: Mapped[str] = mapped_column(String(16))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(400))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    phone: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    regional: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    taken_by_id: Mapped[int | None] = mapped_column(BigInteger)
    taken_by_name: Mapped[str | None] = mapped_column(String(200))
    taken_at: Mapped[datetime | None]
    first_answer_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)
    # The current deadline for the solution (deadline_at is the one for the first answer);
    # None for appeals filed before deadlines for solutions existed.
    solution_deadline_at: Mapped[datetime | None]
    # The deadline the first answer is judged by in reports: set when filed, moved only by an
    # extension before that answer (a reopening gives deadline_at a new round, not this).
    first_deadline_at: Mapped[datetime | None]
    # When the scheduler should next look at this appeal (a reminder or an escalation step
    # may be due); None when nothing is pending. Keeps the scan an index range, not a sweep.
    next_check_at: Mapped[datetime | None]


class AppealEscalation(Base):
    """A reminder (level 0) or escalation step (1…3) taken for one deadline of an appeal.

    The unique key makes each step happen once per deadline, whatever the number of scans or
    restarts; a moved deadline (extension, reopening) starts a fresh set of steps.
    """

    __tablename__ = "appeal_escalations"
    __table_args__ = (UniqueConstraint("appeal_id", "kind", "deadline_at", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"))
    kind: Mapped[str] = mapped_column(String(16))  # "answer" or "solution"
    deadline_at: Mapped[datetime]
    level: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]


class AppealPhoto(Base):
    __tablename__ = "appeal_photos"
    __table_args__ = (Index("ix_appeal_photos_appeal", "appeal_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"))
    kind: Mapped[str] = mapped_column(String(16))  # "resident" or "solution"
    platform: Mapped[str] = mapped_column(String(16))
    # A Telegram file_id, or a VK photo's URL (long: signed query parameters).
    file_ref: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime]


class AppealEvent(Base):
    """The appeal's history, shown on the card and kept for reports."""

    __tablename__ = "appeal_events"
    __table_args__ = (Index("ix_appeal_events_appeal", "appeal_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)


class CardMessage(Base):
    """A message the bot posted about an appeal: in a staff chat (the card, its media, a
    prompt, a resident's comment) or to the resident (a notice).

    Replies to any of them are matched back to the appeal.
    """

    __tablename__ = "card_messages"
    __table_args__ = (
        # A VK resident and a Telegram chat may share a number, and so may their messages.
        UniqueConstraint("platform", "chat_id", "message_id"),
        Index("ix_card_messages_appeal", "appeal_id", "purpose"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appeal_id: Mapped[int] = mapped_column(ForeignKey("appeals.id"))
    # Staff chats are Telegram's; a resident's notices are on the resident's platform.
    platform: Mapped[str] = mapped_column(String(16), default="telegram", server_default="telegram")
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class OutboxMessage(Base):
    """A message to deliver, written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_chat", "platform", "chat_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))


class ProcessedEvent(Base):
    """Platform events already handled, claimed in the transaction that handled them.

    VK's long poll may hand an event over again after a restart; its key here makes the
    second delivery change nothing.
    """

    __tablename__ = "processed_events"
    __table_args__ = (Index("ix_processed_events_at", "at"),)

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    at: Mapped[datetime]


class PollState(Base):
    """Where a long poll stopped (VK's ``ts``), so events that came while down are not skipped."""

    __tablename__ = "poll_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
