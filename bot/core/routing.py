"""Which staff chat serves which department: /bind, /unbind, /departments, chat migration."""

from __future__ import annotations

import logging

from bot.core import notify
from bot.core.config import CoreConfig
from bot.core.model import OPEN_STATUSES, Button, Outcome, Status, inline
from storage.uow import Database, UnitOfWork

log = logging.getLogger(__name__)

ONLY_COORDINATORS = "Это могут делать только координаторы."


class RoutingService:
    def __init__(self, db: Database, config: CoreConfig) -> None:
        self.db = db
        self.config = config

    def is_coordinator(self, user_id: int) -> bool:
        return user_id in self.config.coordinator_ids

    async def bind_menu(self, user_id: int) -> Outcome:
        if not self.is_coordinator(user_id):
            return Outcome(ok=False, notice=ONLY_COORDINATORS)
        async with self.db.uow() as uow:
            departments = await uow.catalog.departments()
        rows = [[Button(d.name, f"b:{d.id}")] for d in departments]
        return Outcome(
            ok=True,
            notice="Какой отдел работает в этой группе? Обращения отдела будут приходить сюда.",
            keyboard=inline(*rows),
        )

    async def bind(self, user_id: int, chat_id: int, department_id: int) -> Outcome:
        if not self.is_coordinator(user_id):
            return Outcome(ok=False, notice=ONLY_COORDINATORS)
        async with self.db.uow() as uow:
            department = await uow.catalog.department(department_id)
            if department is None or not department.active:
                return Outcome(ok=False, notice="Такого отдела нет.")
            previous = department.chat_id
            displaced = await uow.catalog.department_by_chat(chat_id)
            await uow.catalog.bind(department, chat_id)
            moved_here = await rehome_open_appeals(uow, self.config, department.id)
            if displaced is not None and displaced.id != department.id:
                await rehome_open_appeals(uow, self.config, displaced.id)
            await uow.commit()
            name = department.name
        log.info("department %s bound to chat %s", department_id, chat_id)
        notice = f"✅ Группа привязана: {name}."
        if previous and previous != chat_id:
            notice += " Прежняя группа отдела отвязана."
        if moved_here:
            notice += f" Открытые обращения отдела ({moved_here}) перенесены сюда."
        return Outcome(
            ok=True,
            notice=notice + " Новые обращения отдела придут сюда. Отвечайте на карточки ответом "
            "(reply) — текст уйдёт жителю, фото — как фото решения.",
            wrote_outbox=bool(moved_here),
        )

    async def unbind(self, user_id: int, chat_id: int) -> Outcome:
        if not self.is_coordinator(user_id):
            return Outcome(ok=False, notice=ONLY_COORDINATORS)
        async with self.db.uow() as uow:
            department = await uow.catalog.department_by_chat(chat_id)
            if department is None:
                return Outcome(ok=False, notice="Эта группа не привязана ни к одному отделу.")
            department.chat_id = None
            await uow.session.flush()
            moved = await rehome_open_appeals(uow, self.config, department.id)
            await uow.commit()
            name = department.name
        return Outcome(
            ok=True,
            notice=f"Группа отвязана от отдела «{name}». Его обращения пойдут координаторам.",
            wrote_outbox=bool(moved),
        )

    async def bindings(self, user_id: int) -> Outcome:
        if not self.is_coordinator(user_id):
            return Outcome(ok=False, notice=ONLY_COORDINATORS)
        async with self.db.uow() as uow:
            departments = await uow.catalog.departments()
        lines = ["Отделы и их группы:"]
        for d in departments:
            where = (
                f"группа {d.chat_id}" if d.chat_id is not None else "⚠️ без группы (координаторам)"
            )
            lines.append(f"• {d.name} — {where}")
        return Outcome(ok=True, notice="\n".join(lines))

    async def migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup: keep its binding and its cards."""
        async with self.db.uow() as uow:
            await migrate_chat(uow, self.config, old_chat_id, new_chat_id)
            await uow.commit()


async def rehome_open_appeals(uow: UnitOfWork, config: CoreConfig, department_id: int) -> int:
    """After a binding changed, put each open appeal's card where the department now works.

    Cards of its finished appeals stay where they are, as they are: a group the department
    has left must not keep seeing them change (a comment on a rejection, a ban, an answer
    given by number), since it may now serve another department.
    """
    department = await uow.catalog.department(department_id)
    works_in = [department.chat_id] if department and department.chat_id is not None else []
    await uow.cards.retire_finished(department_id, [*works_in, *config.coordinator_ids])
    moved = 0
    for appeal in await uow.appeals.open_of_department(department_id):
        targets = set(await notify.staff_chats(uow, config, appeal))
        live = {card.chat_id for card in await uow.cards.active_cards(appeal.id)}
        if live == targets:
            continue
        await notify.move_cards(
            uow,
            config,
            appeal,
            "↪️ Карточка перенесена: отдел сменил группу",
            "↪️ Перенесено при смене группы отдела",
        )
        moved += 1
    return moved


async def migrate_chat(
    uow: UnitOfWork, config: CoreConfig, old_chat_id: int, new_chat_id: int
) -> None:
    """Move the binding and re-post the live cards: old message ids mean nothing in the new chat.

    If the new chat was meanwhile bound to another department, the old binding is dropped
    instead (its department's appeals go to the coordinators until it is bound again).
    """
    taken = await uow.catalog.department_by_chat(new_chat_id)
    if taken is not None:
        old = await uow.catalog.department_by_chat(old_chat_id)
        if old is not None and old.id != taken.id:
            old.chat_id = None
            await uow.session.flush()
            await rehome_open_appeals(uow, config, old.id)
        # Nothing more goes to the old id: its cards are dead, whatever waits for it fails.
        await uow.catalog.retire_chat(old_chat_id)
        log.warning("chat %s migrated to %s, which is bound already", old_chat_id, new_chat_id)
        return
    for appeal_id in sorted(await uow.catalog.migrate_chat(old_chat_id, new_chat_id)):
        appeal = await uow.appeals.get(appeal_id, lock=True)
        if appeal is not None and Status(appeal.status) in (*OPEN_STATUSES, Status.RESOLVED):
            await notify.post_card(
                uow, config, appeal, note="Группа стала супергруппой: карточка перенесена"
            )
    log.info("chat %s migrated to %s", old_chat_id, new_chat_id)
