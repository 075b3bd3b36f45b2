"""The appeal's life after submission: staff actions in the group and the resident's verdict."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, NamedTuple

from bot.core import notify, texts
from bot.core.cards import status_keyboard
from bot.core.config import CoreConfig
from bot.core.deadlines import (
    ANSWER,
    KIND_TITLES,
    SOLUTION,
    answer_pending,
    deadline_for,
    set_deadlines,
)
from bot.core.model import Button, Outcome, ResidentRef, StaffActor, Status, inline
from bot.core.numbering import appeal_number, normalize_number
from bot.core.ports import PhotoRef
from storage.models import Appeal, OutboxMessage
from storage.uow import Database, UnitOfWork, utcnow

log = logging.getLogger(__name__)

DENIED = "Это действие здесь недоступно."
ACTIONABLE = (Status.NEW, Status.IN_WORK, Status.REOPENED)
# «Продлить срок» offers these many days; the reason is asked for in a reply.
EXTENSION_DAYS = (1, 3, 7, 14, 30)
MAX_EXTENSION_REASON = 400
# Telegram's caption holds 1024 characters; the label and the reply hint take the rest.
COMMENT_CAPTION = 900
MAX_REJECT_REASON = 400  # the resident reads it in a notice with the appeal's number

# deadline_for lived here first; it stays importable from here.
__all__ = [
    "ACTIONABLE",
    "DENIED",
    "EXTENSION_DAYS",
    "StaffService",
    "deadline_for",
    "submit",
]


class Submitted(NamedTuple):
    appeal: Appeal
    # The resident's «принято», held back for the caller to send (see ``submit``), or None.
    confirmation: OutboxMessage | None


async def submit(
    uow: UnitOfWork,
    config: CoreConfig,
    who: ResidentRef,
    data: dict[str, Any],
    hold_confirmation: timedelta | None = None,
) -> Submitted:
    """Number, store and route a finished draft, queueing the resident's confirmation (held
    back ``hold_confirmation`` for the caller to send at once, when given: see
    ``notify.to_resident``)."""
    category = await uow.catalog.category_by_code(str(data["category"]))
    if category is None:
        raise LookupError("category vanished from the catalogue")
    known = await uow.residents.find(who.platform.value, who.user_id)
    was_unreachable = known is not None and known.unreachable
    resident = await uow.residents.upsert(
        who.platform.value, who.user_id, who.chat_id, who.first_name, who.text_buttons
    )
    if was_unreachable:  # they are back: the cards of their other appeals say so
        await notify.refresh_resident_cards(uow, resident.id)
    now = utcnow()
    year = config.local(now).year
    seq = await uow.appeals.next_seq(year)
    appeal = Appeal(
        number=appeal_number(year, seq),
        year=year,
        seq=seq,
        resident_id=resident.id,
        platform=who.platform.value,
        category_id=category.id,
        department_id=category.department_id,
        description=str(data["description"]),
        address=data.get("address"),
        latitude=data.get("lat"),
        longitude=data.get("lon"),
        phone=data.get("phone"),
        status=Status.NEW.value,
        regional=category.regional,
        created_at=now,
        reopened_count=0,
    )
    set_deadlines(appeal, category, config, now)
    appeal.first_deadline_at = appeal.deadline_at
    appeal = await uow.appeals.add(appeal)
    for ref in data.get("photos", []):
        await uow.appeals.add_photo(appeal.id, "resident", who.platform.value, str(ref))
    await uow.appeals.add_event(appeal.id, "created")
    department = await uow.catalog.department(appeal.department_id)
    dept_name = department.name if department else "ответственный отдел"
    if department is not None and department.chat_id is None:
        await uow.appeals.add_event(appeal.id, "unbound", detail=department.name)
    await notify.post_card(uow, config, appeal)
    accepted = texts.accepted(
        appeal.number, dept_name, config.format_moment(appeal.deadline_at), category.regional
    )
    confirmation = await notify.to_resident(uow, appeal, accepted, hold=hold_confirmation)
    log.info("appeal %s submitted (category %s)", appeal.number, category.code)
    return Submitted(appeal, confirmation)


class StaffService:
    """What staff do from the card, and what the resident answers after «Решено»."""

    def __init__(self, db: Database, config: CoreConfig) -> None:
        self.db = db
        self.config = config

    async def _authorized(
        self, uow: UnitOfWork, actor: StaffActor, appeal_id: int
    ) -> Appeal | None:
        """The appeal, if the actor may act on it from this chat; else None (and say nothing)."""
        appeal = await uow.appeals.get(appeal_id, lock=True)
        if appeal is None:
            return None
        if actor.is_coordinator:
            return appeal
        department = await uow.catalog.department(appeal.department_id)
        if department is None or department.chat_id is None or department.chat_id != actor.chat_id:
            return None
        return appeal

    async def menu(self, actor: StaffActor, appeal_id: int, which: str) -> Outcome:
        """Buttons for a sub-choice on the card: transfer targets, reject reasons, or back."""
        async with self.db.uow() as uow:
            appeal = await self._authorized(uow, actor, appeal_id)
            if appeal is None:
                return Outcome(ok=False, notice=DENIED)
            if Status(appeal.status) not in ACTIONABLE:
                return Outcome(ok=False, notice="Обращение уже закрыто.")
            if which == "transfer":
                rows = [
                    [Button(d.name, f"s:to:{appeal.id}:{d.id}")]
                    for d in await uow.catalog.departments()
                    if d.id != appeal.department_id
                ]
                rows.append([Button("« Назад", f"s:back:{appeal.id}")])
                return Outcome(
                    ok=True, notice=f"Кому передать № {appeal.number}?", keyboard=inline(*rows)
                )
            if which == "reject":
                reasons = [
                    # The administration's, not the department's: another department is
                    # «Передать», and the resident reads «не относится к компетенции
                    # администрации».
                    [Button("Вне ведения администрации", f"s:rj:{appeal.id}:not_ours")],
                    [Button("Спам / не обращение", f"s:rj:{appeal.id}:spam")],
                    [Button("Дубликат…", f"s:rj:{appeal.id}:duplicate")],
                    [Button("Другая причина…", f"s:rj:{appeal.id}:other")],
                    [Button("« Назад", f"s:back:{appeal.id}")],
                ]
                return Outcome(
                    ok=True,
                    notice="Причина отклонения? Если это другой отдел — «Передать».",
                    keyboard=inline(*reasons),
                )
            if which == "extend":
                spans = [
                    Button(texts.days_label(days), f"s:ext:{appeal.id}:{days}")
                    for days in EXTENSION_DAYS
                ]
                rows = [spans[:3], spans[3:], [Button("« Назад", f"s:back:{appeal.id}")]]
                what = KIND_TITLES[ANSWER if answer_pending(appeal) else SOLUTION]
                return Outcome(
                    ok=True, notice=f"На сколько продлить срок {what}?", keyboard=inline(*rows)
                )
            return Outcome(ok=True, keyboard=status_keyboard(appeal))

    async def extend(
        self,
        actor: StaffActor,
        appeal_id: int,
        days: int,
        reason: str = "",
        prompt: tuple[int, int] | None = None,
    ) -> Outcome:
        """Move the running deadline (the answer's until answered, then the solution's) by
        ``days`` calendar days; the resident is told the new date and the reason.

        ``prompt`` (chat, message) is the prompt the reason replies to: it is used once, so a
        second reply to it (a correction, a colleague) does not extend the deadline again."""
        async with self.db.uow() as uow:
            appeal = await self._authorized(uow, actor, appeal_id)
            if appeal is None or days not in EXTENSION_DAYS:
                return Outcome(ok=False, notice=DENIED)
            if Status(appeal.status) not in ACTIONABLE:
                return Outcome(ok=False, notice="Обращение уже закрыто.")
            reason = " ".join(reason.split())
            if not reason:
                return Outcome(
                    ok=True,
                    appeal_id=appeal.id,
                    prompt=f"№ {appeal.number}: ответьте на это сообщение причиной продления "
                    f"срока ({texts.days_label(days)}) — её увидит житель.",
                    prompt_purpose=f"extend_{days}",
                    keyboard=status_keyboard(appeal),  # the card gets its buttons back
                )
            if prompt is not None:
                asked = await uow.cards.find(*prompt)
                if asked is None or asked.appeal_id != appeal.id or not asked.active:
                    return Outcome(ok=False, notice=texts.EXTENSION_PROMPT_USED)
                asked.active = False
            if len(reason) > MAX_EXTENSION_REASON:
                return Outcome(
                    ok=False,
                    notice=f"Причина длиннее {MAX_EXTENSION_REASON} символов — сократите и "
                    "ответьте снова.",
                )
            now = utcnow()
            span = timedelta(days=days)
            kind = ANSWER if answer_pending(appeal) else SOLUTION
            if kind == ANSWER:
                appeal.deadline_at = max(appeal.deadline_at, now) + span
                new_deadline = appeal.deadline_at
                if appeal.first_answer_at is None:
                    appeal.first_deadline_at = new_deadline  # the first answer's, for reports
                if appeal.solution_deadline_at is not None:
                    # The time to solve after the answer stays what it was.
                    appeal.solution_deadline_at = max(
                        appeal.solution_deadline_at + span, new_deadline
                    )
            else:
                appeal.solution_deadline_at = max(appeal.solution_deadline_at or now, now) + span
                new_deadline = appeal.solution_deadline_at
            appeal.next_check_at = now  # plan the reminders for the new date
            what = KIND_TITLES[kind]
            shown = self.config.format_moment(new_deadline)
            await uow.appeals.add_event(
                appeal.id, "extended", actor.name, f"срок {what} до {shown}: {reason}"
            )
            await notify.to_resident(
                uow, appeal, texts.deadline_extended(appeal.number, what, shown, reason)
            )
            await notify.refresh_cards(uow, appeal)
            await uow.commit()
            return Outcome(ok=True, notice=f"Срок {what} продлён до {shown}.", wrote_outbox=True)

    async def take(self, actor: StaffActor, appeal_id: int) -> Outcome:
        async with self.db.uow() as uow:
            appeal = await self._authorized(uow, actor, appeal_id)
            if appeal is None:
                return Outcome(ok=False, notice=DENIED)
            if Status(appeal.status) not in (Status.NEW, Status.REOPENED):
                who = f": {appeal.taken_by_name}" if appeal.taken_by_name else ""
                return Outcome(ok=False, notice=f"Обращение уже взято в работу{who}.")
            self._take(appeal, actor)
            await uow.appeals.add_event(appeal.id, "taken", actor.name)
            await notify.to_resident(uow, appeal, texts.taken(appeal.number))
            await notify.refresh_cards(uow, appeal)
            await uow.commit()
            return Outcome(ok=True, notice="Вы взяли обращение в работу.", wrote_outbox=True)

    @staticmethod
    def _take(appeal: Appeal, actor: StaffActor) -> None:
        appeal.status = Status.IN_WORK.value
        appeal.taken_by_id, appeal.taken_by_name, appeal.taken_at = (
            actor.user_id,
            actor.name,
            utcnow(),
        )

    async def transfer(self, actor: StaffActor, appeal_id: int, department_id: int) -> Outcome:
        async with self.db.uow() as uow:
            appeal = await self._authorized(uow, actor, appeal_id)
            if appeal is None:
                return Outcome(ok=False, notice=DENIED)
            if Status(appeal.status) not in ACTIONABLE:
                return Outcome(ok=False, notice="Обращение уже закрыто.")
            target = await uow.catalog.department(department_id)
            if target is None or not target.active or target.id == appeal.department_id:
                return Outcome(ok=False, notice="Такого отдела нет.")
            source = await uow.catalog.department(appeal.department_id)
            appeal.department_id = target.id
            # Reopened stays reopened: the new department still owes the resident an answer.
            if Status(appeal.status) is not Status.REOPENED:
                appeal.status = Status.NEW.value
            appeal.taken_by_id = appeal.taken_by_name = appeal.taken_at = None
            detail = f"{source.name if source else '?'} → {target.name}"
            await uow.appeals.add_event(appeal.id, "transferred", actor.name, detail)
            if target.chat_id is None:
                await uow.appeals.add_event(appeal.id, "unbound", detail=target.name)
            await notify.move_cards(
                uow, self.config, appeal, f"↪️ Передано: {target.name}", f"↪️ Передано из: {detail}"
            )
            regional = "регион" in target.name.lower()
            await notify.to_resident(
                uow, appeal, texts.forwarded(appeal.number, target.name, regional)
            )
            await uow.commit()
            return Outcome(ok=True, notice=f"Передано: {target.name}", wrote_outbox=True)

    async def reject(
        self, actor: StaffActor, appeal_id: int, reason_code: str, argument: str = ""
    ) -> Outcome:
        async with self.db.uow() as uow:
            appeal = await self._authorized(uow, actor, appeal_id)
            if appeal is None:
                return Outcome(ok=False, notice=DENIED)
            if Status(appeal.status) not in ACTIONABLE:
                return Outcome(ok=False, notice="Обращение уже закрыто.")
            if reason_code not in texts.REJECT_REASONS:
                return Outcome(ok=False, notice=DENIED)
            if reason_code == "duplicate" and not argument:
                return Outcome(
                    ok=True,
                    appeal_id=appeal.id,
                    prompt=f"№ {appeal.number}: ответьте на это сообщение номером исходного "
                    "обращения (например, 2026-000012).",
                    prompt_purpose="reject_duplicate",
                )
            if reason_code == "other" and not argument:
                return Outcome(
                    ok=True,
                    appeal_id=appeal.id,
                    prompt=f"№ {appeal.number}: ответьте на это сообщение причиной отклонения — "
                    "её увидит житель.",
                    prompt_purpose="reject_other",
                )
            if reason_code == "duplicate":
                this_year = self.config.local(utcnow()).year
                original_number = normalize_number(argument, default_year=this_year)
                original = await uow.appeals.by_number(original_number) if original_number else None
                if original is None or original.id == appeal.id:
                    # Asked again as a question, so that replying to it works.
                    why = (
                        f"№ {appeal.number}: это номер самого отклоняемого обращения."
                        if original is not None
                        else f"№ {appeal.number}: не нашёл обращения «{argument.strip()[:40]}»."
                    )
                    return Outcome(
                        ok=False,
                        appeal_id=appeal.id,
                        prompt=f"{why} Ответьте на это сообщение номером исходного обращения "
                        "(например, 2026-000012).",
                        prompt_purpose="reject_duplicate",
                    )
                reason = texts.REJECT_REASONS["duplicate"].format(original=original.number)
            elif reason_code == "other":
                reason = argument.strip()
                if len(reason) > MAX_REJECT_REASON:
                    return Outcome(
                        ok=False,
                        appeal_id=appeal.id,
                        prompt=f"№ {appeal.number}: причина длиннее {MAX_REJECT_REASON} "
                        f"символов ({len(reason)}) — сократите и ответьте на это сообщение "
                        "снова.",
                        prompt_purpose="reject_other",
                    )
            else:
                reason = texts.REJECT_REASONS[reason_code]
            appeal.status = Status.REJECTED.value
            appeal.reject_reason = reason
            appeal.closed_at = utcnow()
            await uow.appeals.add_event(appeal.id, "rejected", actor.name, reason)
            await notify.to_resident(uow, appeal, texts.rejected(appeal.number, reason))
            await notify.refresh_cards(uow, appeal)
            await uow.commit()
            return Outcome(ok=True, notice="Обращение отклонено.", wrote_outbox=True)

    async def resolve(self, actor: StaffActor, appeal_id: int) -> Outcome:
        async with self.db.uow() as uow:
            appeal = await self._authorized(uow, actor, appeal_id)
            if appeal is None:
                return Outcome(ok=False, notice=DENIED)
            if Status(appeal.status) not in ACTIONABLE:
                return Outcome(ok=False, notice="Обращение уже закрыто.")
            if appeal.taken_by_id is None:
                self._take(appeal, actor)
            appeal.status = Status.RESOLVED.value
            appeal.resolved_at = utcnow()
            appeal.first_answer_at = appeal.first_answer_at or appeal.resolved_at
            # The scan closes it if the resident never answers (CoreConfig.verdict_wait).
            appeal.next_check_at = appeal.resolved_at
            await uow.appeals.add_event(appeal.id, "resolved", actor.name)
            # Only a photo sent since the last «не решена» is a report of this round's work.
            since = await uow.appeals.last_event_at(appeal.id, "reopened") or appeal.created_at
            with_photo = await uow.appeals.count_photos(appeal.id, "solution", since) > 0
            await notify.to_resident(
                uow,
                appeal,
                texts.solved(appeal.number, with_photo),
                notify.feedback_keyboard(appeal.id),
            )
            await notify.refresh_cards(uow, appeal)
            await uow.commit()
            hint = "" if with_photo else " Фото решения не приложено."
            return Outcome(ok=True, notice="Отмечено как решённое." + hint, wrote_outbox=True)

    async def unresolve(self, actor: StaffActor, appeal_id: int) -> Outcome:
        """Take back «Решено» while the resident has not confirmed it."""
        async with self.db.uow() as uow:
            appeal = await self._authorized(uow, actor, appeal_id)
            if appeal is None:
                return Outcome(ok=False, notice=DENIED)
            if Status(appeal.status) is not Status.RESOLVED:
                return Outcome(ok=False, notice="Обращение не в статусе «Решено».")
            appeal.status = Status.IN_WORK.value
            appeal.resolved_at = None
            appeal.next_check_at = utcnow()  # the solution deadline runs again
            await uow.appeals.add_event(appeal.id, "unresolved", actor.name)
            await notify.to_resident(uow, appeal, texts.unresolved(appeal.number))
            await notify.refresh_cards(uow, appeal)
            await uow.commit()
            return Outcome(ok=True, notice="Обращение снова в работе.", wrote_outbox=True)

    async def answer(self, actor: StaffActor, appeal_id: int, text: str) -> Outcome:
        """A staff member's reply to the card, sent to the resident without the staff name."""
        text = text.strip()
        if not text:
            return Outcome(ok=False, notice="Пустой ответ не отправлен.")
        if len(text) > texts.MAX_ANSWER:
            return Outcome(
                ok=False,
                notice=f"Ответ длиннее {texts.MAX_ANSWER} символов — сократите и пришлите снова.",
            )
        async with self.db.uow() as uow:
            appeal = await self._authorized(uow, actor, appeal_id)
            if appeal is None:
                return Outcome(ok=False, notice=DENIED)
            self._answered(appeal, actor)
            await uow.appeals.add_event(appeal.id, "answer", actor.name)
            await notify.to_resident(uow, appeal, texts.answer(appeal.number, text))
            await notify.refresh_cards(uow, appeal)
            await uow.commit()
            return Outcome(
                ok=True, notice=f"✉️ Ответ по № {appeal.number} отправлен жителю.", wrote_outbox=True
            )

    def _answered(self, appeal: Appeal, actor: StaffActor) -> None:
        appeal.first_answer_at = appeal.first_answer_at or utcnow()
        if Status(appeal.status) in (Status.NEW, Status.REOPENED):
            self._take(appeal, actor)

    async def solution_photo(
        self,
        actor: StaffActor,
        appeal_id: int,
        photo: PhotoRef,
        caption: str,
        album: str | None = None,
    ) -> Outcome:
        async with self.db.uow() as uow:
            appeal = await self._authorized(uow, actor, appeal_id)
            if appeal is None:
                return Outcome(ok=False, notice=DENIED)
            caption = caption.strip()[:900]
            self._answered(appeal, actor)
            await uow.appeals.add_photo(appeal.id, "solution", photo.platform, photo.ref)
            await uow.appeals.add_event(appeal.id, "solution_photo", actor.name)
            await notify.to_resident(
                uow, appeal, texts.solution_photo(appeal.number, caption), photo=photo, album=album
            )
            await notify.refresh_cards(uow, appeal)
            await uow.commit()
            return Outcome(
                ok=True,
                notice=f"🖼 Фото решения по № {appeal.number} отправлено жителю.",
                wrote_outbox=True,
                appeal_id=appeal.id,
            )

    async def show_card(self, actor: StaffActor, number_text: str) -> Outcome:
        """/appeal <number>: the appeal's card, posted here, live like any other card."""
        this_year = self.config.local(utcnow()).year
        number = normalize_number(number_text, default_year=this_year)
        if number is None:
            return Outcome(ok=False, notice="Укажите номер: /appeal 2026-000123 (или /appeal 123).")
        async with self.db.uow() as uow:
            found = await uow.appeals.by_number(number)
        return await self.open_card(actor, found.id if found else 0, number)

    async def open_card(self, actor: StaffActor, appeal_id: int, number: str = "") -> Outcome:
        """Post the appeal's card in the actor's chat (/appeal, or «открыть» under /overdue)."""
        async with self.db.uow() as uow:
            appeal = await self._authorized(uow, actor, appeal_id) if appeal_id else None
            if appeal is not None and actor.chat_id < 0:
                # In a group, even a coordinator shows only that group's own appeals:
                # a card carries the resident's details.
                department = await uow.catalog.department(appeal.department_id)
                if department is None or department.chat_id != actor.chat_id:
                    appeal = None
            if appeal is None:  # missing or another department's: the same answer
                shown = f"№ {number}" if number else ""
                return Outcome(
                    ok=False, notice=f"Обращение {shown} здесь не найдено.".replace("  ", " ")
                )
            await notify.post_card(uow, self.config, appeal, chats=[actor.chat_id])
            await uow.commit()
            return Outcome(ok=True, wrote_outbox=True)

    async def register_prompt(
        self, appeal_id: int, chat_id: int, message_id: int, purpose: str
    ) -> None:
        async with self.db.uow() as uow:
            await uow.cards.add(appeal_id, chat_id, message_id, purpose)
            await uow.commit()

    async def find_card(
        self, chat_id: int, message_id: int, platform: str = notify.STAFF_PLATFORM
    ) -> tuple[int, str, bool] | None:
        """Which appeal a message of the bot's belongs to: (appeal id, purpose, still live)."""
        async with self.db.uow() as uow:
            card = await uow.cards.find(chat_id, message_id, platform)
            if card is None:
                return None
            return card.appeal_id, card.purpose, card.active

    async def resident_comment(
        self,
        who: ResidentRef,
        appeal_id: int,
        text: str,
        photo: PhotoRef | None = None,
        album: str | None = None,
    ) -> str:
        """The resident replied to a message about their appeal: pass it to the department."""
        async with self.db.uow() as uow:
            appeal = await uow.appeals.get(appeal_id, lock=True)
            resident = await uow.residents.find(who.platform.value, who.user_id)
            if appeal is None or resident is None or appeal.resident_id != resident.id:
                return texts.IDLE
            said = await pass_comment(uow, self.config, appeal, text, photo, album)
            await uow.commit()
            return said

    async def resident_feedback(self, who: ResidentRef, appeal_id: int, solved: bool) -> Outcome:
        """«Проблема решена» / «Не решена» from the resident.

        The answer to a verdict is queued (ok=True) like every message about an appeal, so the
        resident can reply to it; a refusal (ok=False) is for the handler to say directly.
        """
        async with self.db.uow() as uow:
            appeal = await uow.appeals.get(appeal_id, lock=True)
            resident = await uow.residents.find(who.platform.value, who.user_id)
            if appeal is None or resident is None or appeal.resident_id != resident.id:
                return Outcome(ok=False, notice="Эта кнопка недоступна.")
            if Status(appeal.status) is Status.CLOSED:  # confirmed, or closed after the wait
                return Outcome(ok=False, notice=texts.closed_already(appeal.number))
            if Status(appeal.status) is not Status.RESOLVED:
                status = texts.STATUS_FOR_RESIDENT[Status(appeal.status)]
                return Outcome(ok=False, notice=f"Обращение № {appeal.number} сейчас: {status}.")
            department = await uow.catalog.department(appeal.department_id)
            if solved:
                appeal.status = Status.CLOSED.value
                appeal.closed_at = utcnow()
                await uow.appeals.add_event(appeal.id, "confirmed")
                await notify.refresh_cards(uow, appeal)
                reply = texts.thanks_confirmed(appeal.number)
            else:
                appeal.status = Status.REOPENED.value
                appeal.reopened_count += 1
                appeal.resolved_at = None
                # The resident's word restarts the clock: the department owes a new answer.
                category = await uow.catalog.category(appeal.category_id)
                set_deadlines(appeal, category, self.config, utcnow())
                new_deadline = self.config.format_moment(appeal.deadline_at)
                await uow.appeals.add_event(appeal.id, "reopened", detail=f"срок до {new_deadline}")
                await notify.move_cards(
                    uow,
                    self.config,
                    appeal,
                    "🔁 Возобновлено — см. новую карточку ниже",
                    "🔁 Житель сообщил: проблема НЕ решена",
                    # The department's group has the photos and pin already; coordinators
                    # (who may have changed) get them again.
                    media=department is None or department.chat_id is None,
                )
                dept_name = department.name if department else "отдел"
                await notify.to_coordinators(
                    uow,
                    self.config,
                    texts.reopened_for_coordinators(appeal.number, dept_name),
                    appeal,
                )
                reply = texts.reopened_for_resident(appeal.number, new_deadline)
            # A text-button client's one-time verdict keyboard replaced its menu: bring it back.
            menu = notify.MENU if resident.text_buttons else None
            await notify.to_resident(uow, appeal, reply, menu)
            await uow.commit()
            return Outcome(ok=True, notice=reply, wrote_outbox=True)


def takes_comments(appeal: Appeal) -> bool:
    """Closed is closed (a new problem is a new appeal); a rejection may be questioned, except
    as spam."""
    spam = appeal.reject_reason == texts.REJECT_REASONS["spam"]
    return Status(appeal.status) is not Status.CLOSED and not spam


async def pass_comment(
    uow: UnitOfWork,
    config: CoreConfig,
    appeal: Appeal,
    text: str,
    photo: PhotoRef | None = None,
    album: str | None = None,
) -> str:
    """The resident's words or photo about their appeal go to the department (queued in this
    unit); what to tell the resident."""
    text = text.strip()
    if not takes_comments(appeal):
        return texts.comment_on_closed(appeal.number)
    if not text and photo is None:
        return texts.comment_expected(appeal.number)
    if len(text) > texts.MAX_DESCRIPTION:  # said, not cut: the resident still has it
        return texts.comment_too_long(len(text))
    footer = "\n↩️ Ответьте на это сообщение — ответ уйдёт жителю."
    if photo is not None and text and len(text) > COMMENT_CAPTION:
        # Longer than a photo's caption may be: the words go as a message of their own.
        body = f"💬 Житель дополнил обращение № {appeal.number}:\n{text}{footer}"
        await notify.to_staff(uow, config, appeal, body)
        text = ""
    label = "Фото от жителя к обращению" if photo is not None else "Житель дополнил обращение"
    body = f"💬 {label} № {appeal.number}" + (f":\n{text}" if text else "") + footer
    await notify.to_staff(uow, config, appeal, body, photo, album)
    await uow.appeals.add_event(appeal.id, "comment")
    await notify.refresh_cards(uow, appeal)
    if Status(appeal.status) is Status.RESOLVED:
        # «Нет, ничего не сделано» written instead of pressed: say how it reopens.
        return f"{texts.comment_sent(appeal.number)} {texts.VERDICT_HINT}"
    return texts.comment_sent(appeal.number)
