"""The appeal's card in a staff chat: text and buttons, rendered from the database each time."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core import texts
from bot.core.config import CoreConfig
from bot.core.deadlines import KIND_TITLES, LEVEL_TITLES, escalation_levels
from bot.core.model import Button, Keyboard, Status, inline
from storage.models import Appeal, AppealEvent
from storage.uow import UnitOfWork

TELEGRAM_TEXT_LIMIT = 4096
HISTORY_LINES = 8
# Events that may come many times in a row, shown as one line with a count.
REPEATABLE = frozenset({"comment", "solution_photo", "answer", "reminder"})

EVENT_TITLES = {
    "created": "принято",
    "unbound": "у подразделения нет группы, обращение у координаторов:",
    "taken": "взято в работу",
    "answer": "ответ жителю",
    "solution_photo": "фото решения",
    "transferred": "передано:",
    "resolved": "отмечено «Решено»",
    "unresolved": "«Решено» отменено, снова в работе",
    "rejected": "отклонено:",
    "confirmed": "житель подтвердил решение",
    "closed_unconfirmed": "закрыто: житель не ответил за",
    "reopened": "житель: не решено — возобновлено,",
    "unreachable": "житель недоступен: не принимает сообщения",
    "comment": "житель дополнил обращение",
    "reminder": "⏰ напоминание:",
    "escalated": "🔺 эскалация:",
    "extended": "⏳ срок продлён:",
    "banned": "⛔ автор заблокирован:",
    "unbanned": "блокировка автора снята",
}
PLATFORM_TITLES = {"telegram": "Telegram", "vk": "VK"}


@dataclass(frozen=True)
class Card:
    text: str
    keyboard: Keyboard | None


def map_link(latitude: float, longitude: float) -> str:
    return f"https://yandex.ru/maps/?pt={longitude:.6f},{latitude:.6f}&z=17&l=map"


def status_keyboard(appeal: Appeal) -> Keyboard | None:
    status = Status(appeal.status)
    take = Button("🛠 Взять в работу", f"s:take:{appeal.id}")
    transfer = Button("↪️ Передать", f"s:transfer:{appeal.id}")
    reject = Button("⛔ Отклонить", f"s:reject:{appeal.id}")
    resolve = Button("✅ Решено", f"s:resolve:{appeal.id}")
    extend = Button("⏳ Продлить срок", f"s:extend:{appeal.id}")
    if status in (Status.NEW, Status.REOPENED):
        return inline([take], [transfer, reject], [extend, resolve])
    if status is Status.IN_WORK:
        return inline([transfer, reject], [extend, resolve])
    if status is Status.RESOLVED:  # «Решено» pressed by mistake, or more work turned up
        return inline([Button("↩️ Вернуть в работу", f"s:unresolve:{appeal.id}")])
    return None


def event_line(event: AppealEvent, config: CoreConfig) -> str:
    when = config.local(event.at).strftime("%d.%m %H:%M")
    title = EVENT_TITLES.get(event.kind, event.kind)
    parts = [title if event.detail else title.removesuffix(",").removesuffix(":")]
    if event.detail:
        parts.append(event.detail)
    if event.actor:
        parts.append(f"({event.actor})")
    return f"{when} — " + " ".join(parts)


def history_lines(events: list[AppealEvent], config: CoreConfig) -> list[str]:
    """The card's history: repeats in a row (an album's photos, a stream of comments) on one
    line with their count; the first event (when and how it came) always kept, then the latest."""
    merged: list[tuple[AppealEvent, int]] = []
    for event in events:
        last = merged[-1][0] if merged else None
        if (
            last is not None
            and (last.kind, last.actor, last.detail) == (event.kind, event.actor, event.detail)
            and event.kind in REPEATABLE
        ):
            merged[-1] = (event, merged[-1][1] + 1)  # the line shows the latest time
            continue
        merged.append((event, 1))
    lines = [event_line(e, config) + (f" ×{n}" if n > 1 else "") for e, n in merged]
    if len(lines) <= HISTORY_LINES:
        return lines
    hidden = len(lines) - HISTORY_LINES + 1
    return [lines[0], f"… и ещё записей: {hidden}", *lines[-(HISTORY_LINES - 2) :]]


async def render_card(
    uow: UnitOfWork, appeal: Appeal, config: CoreConfig, note: str = "", frozen: bool = False
) -> Card:
    """The card's text and buttons; a frozen card (moved elsewhere) has neither buttons nor hint."""
    category = await uow.catalog.category(appeal.category_id)
    department = await uow.catalog.department(appeal.department_id)
    resident = await uow.residents.get(appeal.resident_id)
    events = await uow.appeals.events(appeal.id)
    photos = await uow.appeals.count_photos(appeal.id, "resident")
    solutions = await uow.appeals.count_photos(appeal.id, "solution")
    status = Status(appeal.status)

    header = [f"📌 Обращение № {appeal.number}"]
    if note:
        header.insert(0, note)
    cat = f"{category.emoji} {category.title}".strip() if category else "?"
    header.append(f"{cat} → {department.name if department else '?'}")
    status_title = texts.STATUS_TITLES[status]
    verdicts = [e.kind for e in events if e.kind in ("confirmed", "closed_unconfirmed")]
    if status is Status.CLOSED and verdicts and verdicts[-1] == "closed_unconfirmed":
        status_title = texts.CLOSED_UNCONFIRMED_TITLE
    status_line = f"Статус: {status_title}"
    if appeal.taken_by_name and status in (Status.IN_WORK, Status.RESOLVED, Status.CLOSED):
        status_line += f" — {appeal.taken_by_name}"
    header.append(status_line)
    if status is Status.REJECTED and appeal.reject_reason:
        header.append(f"Причина: {appeal.reject_reason}")
    header.append(
        f"Подано: {config.format_moment(appeal.created_at)} · "
        f"срок ответа: до {config.format_moment(appeal.deadline_at)}"
    )
    if appeal.solution_deadline_at is not None and status in (
        Status.NEW,
        Status.IN_WORK,
        Status.REOPENED,
    ):
        header.append(f"Срок решения: до {config.format_moment(appeal.solution_deadline_at)}")
    header.extend(await escalation_lines(uow, appeal))
    who = resident.first_name if resident and resident.first_name else "житель"
    source = PLATFORM_TITLES.get(appeal.platform, appeal.platform)
    contact = f" · 📞 {appeal.phone}" if appeal.phone else ""
    header.append(f"Источник: {source} · {who}{contact}")
    if resident and resident.unreachable:
        why = "закрыл сообщения сообщества" if appeal.platform == "vk" else "заблокировал бота"
        header.append(f"⚠️ Житель недоступен ({why}): уведомления не доставляются")
    if resident and resident.banned_at is not None:
        header.append("⛔ Житель заблокирован: его новые сообщения не принимаются")
    if department is not None and department.chat_id is None and not frozen:
        header.append(
            f"⚠️ У подразделения «{department.name}» нет группы: обращение у координаторов."
        )

    place: list[str] = []
    if appeal.address:
        place.append(f"📍 Адрес: {appeal.address}")
    if appeal.latitude is not None and appeal.longitude is not None:
        place.append(
            f"🗺 Геометка: {appeal.latitude:.5f}, {appeal.longitude:.5f} — "
            f"{map_link(appeal.latitude, appeal.longitude)}"
        )
    if photos:
        place.append(f"📷 Фото жителя: {photos}")
    if solutions:
        place.append(f"🖼 Фото решения: {solutions}")

    history = history_lines(events, config)
    footer = []
    keyboard = None if frozen else status_keyboard(appeal)
    if keyboard is not None:
        footer.append(
            "↩️ Ответьте на эту карточку текстом — ответ уйдёт жителю; фото — как фото решения."
        )
    before = "\n".join(header) + "\n\n"
    after = "\n\n" + "\n".join(place) if place else ""
    after += "\n\nИстория:\n" + "\n".join(history)
    if footer:
        after += "\n\n" + "\n".join(footer)
    room = TELEGRAM_TEXT_LIMIT - len(before) - len(after)
    description = appeal.description
    if len(description) > room:
        description = description[: max(room - 1, 0)] + "…"
    return Card(text=before + description + after, keyboard=keyboard)


async def escalation_lines(uow: UnitOfWork, appeal: Appeal) -> list[str]:
    """How far up the chain each pending deadline has gone, e.g. «уровень 2 (заместитель главы)»."""
    levels = escalation_levels(appeal, await uow.escalations.done(appeal.id))
    return [
        f"🔺 Срок {KIND_TITLES[kind]} просрочен — эскалация: уровень {level} "
        f"({LEVEL_TITLES.get(level, '')})"
        for kind, level in levels.items()
    ]
