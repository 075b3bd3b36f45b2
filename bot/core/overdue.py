"""/overdue: open appeals past a deadline, by department, longest overdue first, in pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.config import CoreConfig
from bot.core.deadlines import (
    ANSWER,
    KIND_TITLES,
    escalation_levels,
    format_span,
    missed_deadline,
)
from bot.core.model import Button, Keyboard, Outcome, StaffActor, inline
from storage.uow import Database, utcnow

PAGE_SIZE = 10
NOT_ALLOWED = (
    "Список просроченных обращений доступен координаторам, а сотрудникам отдела — "
    "в группе своего отдела."
)
UNBOUND_GROUP = "Эта группа не привязана к отделу — просроченных обращений здесь нет."
NONE_OVERDUE = "Просроченных обращений нет 👍"


@dataclass(frozen=True)
class OverdueItem:
    appeal_id: int
    number: str
    department: str
    kind: str  # the deadline missed first: ANSWER or SOLUTION (bot.core.deadlines)
    missed_at: datetime
    late: timedelta
    taken_by: str | None
    level: int  # the escalation level reached (0: none yet)


@dataclass(frozen=True)
class OverduePage:
    items: list[OverdueItem]
    page: int  # from 0
    pages: int
    total: int


async def overdue(
    db: Database,
    config: CoreConfig,
    now: datetime,
    department_id: int | None,
    page: int,
    page_size: int = PAGE_SIZE,
) -> OverduePage:
    """One page of overdue appeals (all departments when ``department_id`` is None).

    Counting, ordering and paging happen in SQL; a page out of range shows the nearest one.
    """
    async with db.uow() as uow:
        total = await uow.escalations.count_overdue(now, department_id)
        pages = max(1, -(-total // page_size))
        page = min(max(page, 0), pages - 1)
        rows = await uow.escalations.overdue(now, department_id, page_size, page * page_size)
        done = {appeal.id: await uow.escalations.done(appeal.id) for appeal, _, _ in rows}
    items = []
    for appeal, department, missed_at in rows:
        missed = missed_deadline(appeal, now)
        levels = escalation_levels(appeal, done[appeal.id])
        items.append(
            OverdueItem(
                appeal_id=appeal.id,
                number=appeal.number,
                department=department,
                kind=missed[0] if missed else ANSWER,
                missed_at=missed_at,
                late=now - missed_at,
                taken_by=appeal.taken_by_name,
                level=max(levels.values(), default=0),
            )
        )
    return OverduePage(items=items, page=page, pages=pages, total=total)


def render(result: OverduePage) -> tuple[str, Keyboard | None]:
    if not result.items:
        return NONE_OVERDUE, None
    lines = [f"⏰ Просроченные обращения: {result.total}"]
    if result.pages > 1:
        lines[0] += f" (стр. {result.page + 1} из {result.pages})"
    rows: list[list[Button]] = []
    department = None
    for item in result.items:
        if item.department != department:
            department = item.department
            lines.append(f"\n{department}")
        executor = f"взял: {item.taken_by}" if item.taken_by else "исполнитель не назначен"
        level = f"; 🔺 уровень {item.level}" if item.level else ""
        lines.append(
            f"• № {item.number} — срок {KIND_TITLES[item.kind]} истёк "
            f"{format_span(item.late)} назад; {executor}{level}"
        )
        rows.append(
            [
                Button(f"📌 {item.number}", f"ov:c:{item.appeal_id}"),
                Button("↪️ Передать", f"ov:t:{item.appeal_id}"),
            ]
        )
    if result.pages > 1:
        nav = []
        if result.page > 0:
            nav.append(Button("◀", f"ov:p:{result.page - 1}"))
        nav.append(Button(f"{result.page + 1}/{result.pages}", f"ov:p:{result.page}"))
        if result.page < result.pages - 1:
            nav.append(Button("▶", f"ov:p:{result.page + 1}"))
        rows.append(nav)
    return "\n".join(lines), inline(*rows)


class OverdueService:
    """Who may see which overdue appeals, and the page they see."""

    def __init__(
        self, db: Database, config: CoreConfig, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock  # tests put time under their control

    async def view(self, actor: StaffActor, page: int) -> Outcome:
        """A coordinator's private chat sees every department; a bound group its own."""
        if actor.chat_id > 0:
            if not actor.is_coordinator:
                return Outcome(ok=False, notice=NOT_ALLOWED)
            department_id = None
        else:
            async with self.db.uow() as uow:
                department = await uow.catalog.department_by_chat(actor.chat_id)
            if department is None:
                return Outcome(ok=False, notice=UNBOUND_GROUP)
            department_id = department.id
        result = await overdue(self.db, self.config, self.clock(), department_id, page)
        text, keyboard = render(result)
        return Outcome(ok=True, notice=text, keyboard=keyboard)
