"""What the fuzz tests share: a snapshot of the state a sender may or may not change, the
check of a change against what the sender is entitled to, and a collector of error logs."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from sqlalchemy import func, select

from bot.core.model import Status
from storage.models import Appeal, AppealEvent, Department, Draft, Resident
from storage.uow import Database


def fuzz_settings(default_examples: int) -> settings:
    """Reproducible by default (CI); ``FUZZ_EXAMPLES=5000`` for a longer, random run."""
    wanted = os.environ.get("FUZZ_EXAMPLES")
    return settings(
        max_examples=int(wanted) if wanted else default_examples,
        deadline=None,
        derandomize=not wanted,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
        print_blob=True,
        # FUZZ_NO_SHRINK=1: report the first failure as found (a quicker look while debugging).
        phases=[p for p in Phase if p is not Phase.shrink or not os.environ.get("FUZZ_NO_SHRINK")],
    )


class ErrorLog(logging.Handler):
    """Every record at ERROR or above, from anywhere in the process."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def since(self, mark: int) -> list[str]:
        shown = []
        for record in self.records[mark:]:
            text = f"{record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({record.exc_info[0].__name__ if record.exc_info[0] else ''}: "
                text += f"{record.exc_info[1]})"
            shown.append(text)
        return shown


@dataclass
class Snapshot:
    appeals: dict[int, tuple[Any, ...]]
    events: Counter[int]
    drafts: dict[tuple[str, str], tuple[Any, ...]]
    bindings: dict[int, int | None]
    residents: dict[tuple[str, str], int] = field(default_factory=dict)


async def snapshot(db: Database) -> Snapshot:
    async with db.uow() as uow:
        session = uow.session
        appeals = {
            a.id: (
                a.status,
                a.department_id,
                a.deadline_at,
                a.solution_deadline_at,
                a.first_deadline_at,
                a.taken_by_id,
                a.resolved_at,
                a.closed_at,
                a.reject_reason,
                a.reopened_count,
                a.first_answer_at,
                a.resident_id,
                a.description,
                a.phone,
            )
            for a in await session.scalars(select(Appeal))
        }
        events: Counter[int] = Counter()
        for appeal_id, count in await session.execute(
            select(AppealEvent.appeal_id, func.count()).group_by(AppealEvent.appeal_id)
        ):
            events[appeal_id] = count
        drafts = {
            (d.platform, d.external_id): (d.step, json.dumps(d.data, sort_keys=True, default=str))
            for d in await session.scalars(select(Draft))
        }
        bindings = {d.id: d.chat_id for d in await session.scalars(select(Department))}
        residents = {
            (r.platform, r.external_id): r.id for r in await session.scalars(select(Resident))
        }
    return Snapshot(appeals, events, drafts, bindings, residents)


def department_of(before: Snapshot, appeal_id: int) -> int:
    return int(before.appeals[appeal_id][1])


def check_entitled(
    before: Snapshot,
    after: Snapshot,
    *,
    platform: str,
    user_id: str,
    group_chat: int | None,
    what: str,
) -> None:
    """The changes between two snapshots are all ones this sender may make.

    A resident (``group_chat`` None) may change their own draft, file their own appeals,
    comment on their own appeals and give the verdict on their own resolved ones. Staff in a
    group may act on the appeals of the department that group is bound to. Nobody but a
    coordinator (never checked here) binds groups.
    """
    assert after.bindings == before.bindings, f"bindings changed by {what}"
    for key in set(before.drafts) | set(after.drafts):
        if key != (platform, user_id):
            assert before.drafts.get(key) == after.drafts.get(key), f"draft {key} changed: {what}"
    own = before.residents.get((platform, user_id))
    for appeal_id, state in after.appeals.items():
        if appeal_id not in before.appeals:  # filed now: only by the sender, for themselves
            assert group_chat is None and state[11] == after.residents.get((platform, user_id)), (
                f"appeal {appeal_id} created by {what}"
            )
            continue
        old = before.appeals[appeal_id]
        if group_chat is not None:
            bound = before.bindings.get(department_of(before, appeal_id))
            allowed = bound is not None and bound == group_chat
            events_allowed = allowed
        else:
            mine = own is not None and old[11] == own
            allowed = mine and old[0] == Status.RESOLVED.value  # the verdict
            events_allowed = mine  # comments
        if not allowed:
            assert state == old, f"appeal {appeal_id} changed by {what}: {old} → {state}"
        if not events_allowed:
            assert after.events[appeal_id] == before.events[appeal_id], (
                f"events added to appeal {appeal_id} by {what}"
            )
