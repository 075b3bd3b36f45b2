"""The scheduler's scan: reminders before a deadline and escalation up the chain after it.

Everything it needs is in the database, so any number of scans and restarts take each step
once: a step is a row of ``appeal_escalations`` (unique per appeal, deadline and level) written
in the same transaction as the messages it sends.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.core import notify, texts
from bot.core.config import CoreConfig
from bot.core.deadlines import (
    KIND_TITLES,
    REMINDER,
    PlannedStep,
    format_span,
    outstanding,
    planned_steps,
)
from bot.core.model import Status
from storage.models import Appeal
from storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

# Appeals per transaction: short write locks (SQLite has one writer) even in a burst of steps.
SCAN_BATCH = 50
DIGEST_LIMIT = 4000  # Telegram's 4096 characters, with room to spare


async def scan(db: Database, config: CoreConfig, now: datetime, batch: int = SCAN_BATCH) -> int:
    """Take every reminder/escalation step due at ``now``; returns how many were taken.

    Only appeals whose ``next_check_at`` has come are read (an index range), a batch per
    transaction; each one leaves with its next check in the future or none.
    """
    taken = 0
    while True:
        async with db.uow() as uow:
            due = await uow.escalations.due_appeals(now, batch)
            notices = Notices()
            changed: list[Appeal] = []
            for appeal_id in due:
                appeal, steps = await _advance(uow, config, appeal_id, now, notices)
                if appeal is not None and steps:
                    changed.append(appeal)
                    taken += steps
            # The steps' messages first, then the cards' edits: in a busy group (20 messages
            # a minute) the news must not wait behind a queue of edits.
            await notices.write(uow)
            for appeal in changed:
                await notify.refresh_cards(uow, appeal)
            await uow.commit()
        if len(due) < batch:
            return taken


class Notices:
    """The scan batch's messages gathered per chat: several appeals due at once reach a chat as
    one message (a busy group would otherwise spend its 20 messages a minute on them)."""

    def __init__(self) -> None:
        self._by_chat: dict[int, list[Notice]] = {}

    def add(self, chat_id: int, appeal_id: int, text: str, expires: datetime | None) -> None:
        self._by_chat.setdefault(chat_id, []).append((appeal_id, text, expires))

    async def write(self, uow: UnitOfWork) -> None:
        for chat_id, items in self._by_chat.items():
            for chunk in _fit(items):
                payload: dict[str, object] = {"text": "\n\n".join(text for _, text, _ in chunk)}
                expiries = [expires for _, _, expires in chunk]
                if all(expires is not None for expires in expiries):
                    # Reminders only: held up past all of their deadlines, they would only
                    # mislead (escalations always go; one still ahead keeps the message).
                    payload["expires_at"] = max(e for e in expiries if e is not None).isoformat()
                appeal_id = chunk[0][0] if len(chunk) == 1 else None
                await uow.outbox.add(notify.STAFF_PLATFORM, chat_id, "text", payload, appeal_id)


Notice = tuple[int, str, datetime | None]


def _fit(items: list[Notice], limit: int = DIGEST_LIMIT) -> list[list[Notice]]:
    """Consecutive notices grouped into messages that each fit into one Telegram message."""
    messages: list[list[Notice]] = [[]]
    size = 0
    for item in items:
        length = len(item[1]) + 2
        if messages[-1] and size + length > limit:
            messages.append([])
            size = 0
        messages[-1].append(item)
        size += length
    return messages


async def _advance(
    uow: UnitOfWork, config: CoreConfig, appeal_id: int, now: datetime, notices: Notices
) -> tuple[Appeal | None, int]:
    appeal = await uow.appeals.get(appeal_id, lock=True)
    if appeal is None or appeal.next_check_at is None or appeal.next_check_at > now:
        return None, 0  # another scan got here first
    category = await uow.catalog.category(appeal.category_id)
    steps = planned_steps(appeal, category, config)
    done = await uow.escalations.done(appeal.id)
    taken = 0
    for step in steps:
        if step.at > now or not outstanding(step, done, now):
            continue
        await _take_step(uow, config, appeal, step, now, notices)
        done.add(step.key)
        taken += 1
    later = [step.at for step in steps if outstanding(step, done, now)]
    if Status(appeal.status) is Status.RESOLVED and appeal.resolved_at is not None:
        closes_at = appeal.resolved_at + config.verdict_wait
        if closes_at <= now:
            await _close_unconfirmed(uow, config, appeal, now)
            taken += 1
        else:
            later.append(closes_at)
    appeal.next_check_at = min(later) if later else None
    return appeal, taken


async def _close_unconfirmed(
    uow: UnitOfWork, config: CoreConfig, appeal: Appeal, now: datetime
) -> None:
    """«Решено» and no word from the resident in ``verdict_wait``: the appeal closes, and the
    resident is told how to go on if the problem is still there."""
    wait = config.verdict_wait
    waited = texts.days(wait.days) if wait.days and not wait.seconds else format_span(wait)
    appeal.status = Status.CLOSED.value
    appeal.closed_at = now
    await uow.appeals.add_event(appeal.id, "closed_unconfirmed", detail=waited, at=now)
    await notify.to_resident(uow, appeal, texts.closed_unconfirmed(appeal.number, waited))
    log.info("appeal %s: closed, the resident did not answer", appeal.number)


async def _take_step(
    uow: UnitOfWork,
    config: CoreConfig,
    appeal: Appeal,
    step: PlannedStep,
    now: datetime,
    notices: Notices,
) -> None:
    await uow.escalations.add(appeal.id, step.kind, step.deadline_at, step.level, now)
    department = await uow.catalog.department(appeal.department_id)
    dept_name = department.name if department else "?"
    what = KIND_TITLES[step.kind]
    deadline = config.format_moment(step.deadline_at)
    if step.level == REMINDER:
        text = texts.deadline_reminder(
            appeal.number, what, deadline, dept_name, appeal.taken_by_name
        )
        await uow.appeals.add_event(
            appeal.id, "reminder", detail=f"срок {what} до {deadline}", at=now
        )
    else:
        late = format_span(now - step.deadline_at)
        text = texts.escalation(
            appeal.number,
            what,
            step.level,
            deadline,
            late,
            dept_name,
            appeal.taken_by_name,
            card_hint=step.level == 1,
        )
        detail = f"уровень {step.level}, срок {what} был до {deadline}"
        await uow.appeals.add_event(appeal.id, "escalated", detail=detail, at=now)
    expires = step.deadline_at if step.level == REMINDER else None
    for chat_id in await escalation_chats(uow, config, appeal, step.level):
        notices.add(chat_id, appeal.id, text, expires)
    log.info("appeal %s: %s step %d", appeal.number, step.kind, step.level)


async def escalation_chats(
    uow: UnitOfWork, config: CoreConfig, appeal: Appeal, level: int
) -> list[int]:
    """Who hears of a step: the department (reminder, level 1), the deputy head (2), the head
    and the coordinators (3). An unset chat falls back to the coordinators, so no level is
    silently skipped."""
    if level <= 1:
        chats = await notify.staff_chats(uow, config, appeal)
    elif level == 2:
        chats = list(config.deputy_chat_ids or config.coordinator_ids)
    else:
        chats = [*config.head_chat_ids, *config.coordinator_ids]
    return list(dict.fromkeys(chats))
