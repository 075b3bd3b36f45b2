"""Deadlines through the core: reminder, escalation up the chain, extension, /overdue's query.

Time is under the test's control: the scan and the overdue query take ``now``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core import texts
from bot.core.appeals import DENIED
from bot.core.config import CoreConfig
from bot.core.escalation import scan
from bot.core.model import StaffActor
from bot.core.overdue import overdue, render
from storage.models import Appeal, AppealEscalation
from storage.uow import Database
from tests.conftest import COORDINATOR
from tests.core.recording import drain
from tests.core.test_lifecycle import ANNA, HOUSING_GROUP, IVAN, ROADS_GROUP, World, make_world

DEPUTY = -100777
HEAD = -100888
SHORT = CoreConfig(
    tz=ZoneInfo("Europe/Moscow"),
    coordinator_ids=(COORDINATOR,),
    answer_deadline=timedelta(hours=1),
    solution_deadline=timedelta(hours=4),
    escalation_delays=(timedelta(0), timedelta(minutes=30), timedelta(hours=1)),
    deputy_chat_ids=(DEPUTY,),
    head_chat_ids=(HEAD,),
)


@pytest.fixture
def short() -> CoreConfig:
    return SHORT


async def appeal_row(db: Database, appeal_id: int) -> Appeal:
    async with db.uow() as uow:
        appeal = await uow.appeals.get(appeal_id)
    assert appeal is not None
    return appeal


async def steps_taken(db: Database, appeal_id: int) -> list[tuple[str, int]]:
    async with db.uow() as uow:
        rows = await uow.session.scalars(
            select(AppealEscalation)
            .where(AppealEscalation.appeal_id == appeal_id)
            .order_by(AppealEscalation.id)
        )
        return [(row.kind, row.level) for row in rows]


def count(world: World, chat: int | str, fragment: str) -> int:
    """Messages (not card edits) to ``chat`` containing ``fragment``."""
    return sum(fragment in s.text for s in world.sender.to(chat) if s.method == "text")


async def test_untouched_appeal_is_reminded_then_escalated_each_level_once(
    db: Database, short: CoreConfig
) -> None:
    world = await make_world(db, short)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    filed = await appeal_row(db, appeal_id)
    created, deadline = filed.created_at, filed.deadline_at
    assert deadline == created + timedelta(hours=1)
    assert filed.solution_deadline_at == created + timedelta(hours=4)

    assert await scan(db, short, created + timedelta(minutes=30)) == 0  # before 75 %
    assert await scan(db, short, created + timedelta(minutes=46)) == 1
    assert await scan(db, short, created + timedelta(minutes=50)) == 0  # scanned again
    await drain(world.worker)
    reminder = f"⏰ Напоминание: срок ответа по обращению № {number} истекает"
    assert count(world, ROADS_GROUP, reminder) == 1

    assert await scan(db, short, deadline + timedelta(seconds=1)) == 1
    await drain(world.worker)
    level_1 = f"🔴 Просрочен срок ответа по обращению № {number} — эскалация, уровень 1."
    assert count(world, ROADS_GROUP, level_1) == 1
    card = [s for s in world.sender.to(ROADS_GROUP) if s.method == "edit"][-1]
    assert "эскалация: уровень 1 (отдел)" in card.text and "напоминание" in card.text

    assert await scan(db, short, deadline + timedelta(minutes=31)) == 1
    # A restart: new objects on the same database, and the same moment scanned again.
    restarted = Database(db.factory)
    assert await scan(restarted, short, deadline + timedelta(minutes=31)) == 0
    assert await scan(restarted, short, deadline + timedelta(minutes=61)) == 1
    assert await scan(restarted, short, deadline + timedelta(minutes=90)) == 0
    await drain(world.worker)
    assert count(world, DEPUTY, "уровень 2") == 1
    assert count(world, HEAD, "уровень 3") == 1
    assert count(world, COORDINATOR, "уровень 3") == 1
    assert count(world, ROADS_GROUP, "уровень 2") == 0  # the group is not told twice
    assert count(world, ROADS_GROUP, "🔴") == 1
    card = [s for s in world.sender.to(ROADS_GROUP) if s.method == "edit"][-1]
    assert "эскалация: уровень 3" in card.text

    # The solution deadline (4 h) has its own reminder at 3 h.
    assert await scan(restarted, short, created + timedelta(hours=3, minutes=1)) == 1
    assert await steps_taken(db, appeal_id) == [
        ("answer", 0),
        ("answer", 1),
        ("answer", 2),
        ("answer", 3),
        ("solution", 0),
    ]
    await drain(world.worker)
    assert count(world, ROADS_GROUP, f"срок решения по обращению № {number} истекает") == 1


async def test_answered_appeal_stops_the_answer_chain_but_not_the_solution_one(
    db: Database, short: CoreConfig
) -> None:
    world = await make_world(db, short)
    appeal_id, number = await world.file(ANNA, "roads")
    filed = await appeal_row(db, appeal_id)
    created = filed.created_at
    assert await scan(db, short, created + timedelta(minutes=46)) == 1  # the reminder
    assert (await world.staff.answer(IVAN, appeal_id, "Выезжаем")).ok

    late = created + timedelta(hours=2)
    assert await scan(db, short, late) == 0
    assert (await overdue(db, short, late, None, 0)).total == 0

    after_solution = created + timedelta(hours=4, minutes=1)
    assert await scan(db, short, after_solution) == 1
    listed = await overdue(db, short, after_solution, None, 0)
    assert [(i.number, i.kind, i.taken_by) for i in listed.items] == [
        (number, "solution", "Иван Петров")
    ]
    assert (await world.staff.resolve(IVAN, appeal_id)).ok
    assert await scan(db, short, created + timedelta(hours=9)) == 0
    assert (await overdue(db, short, created + timedelta(hours=9), None, 0)).total == 0
    assert await steps_taken(db, appeal_id) == [("answer", 0), ("solution", 1)]
    await drain(world.worker)
    assert count(world, ROADS_GROUP, "Просрочен срок ответа") == 0


async def test_overdue_grouped_by_department_oldest_first_and_paged(
    db: Database, short: CoreConfig
) -> None:
    world = await make_world(db, short)
    first, first_number = await world.file(ANNA, "roads")
    _housing, housing_number = await world.file(ANNA, "housing")
    second, second_number = await world.file(ANNA, "roads")
    assert (await world.staff.take(IVAN, second)).ok
    now = (await appeal_row(db, second)).deadline_at + timedelta(minutes=5)

    everything = await overdue(db, short, now, None, 0)
    assert everything.total == 3 and everything.pages == 1
    # The department with the longest overdue appeal first (roads: the first appeal), then
    # within it the longest overdue first.
    assert [i.number for i in everything.items] == [first_number, second_number, housing_number]
    assert everything.items[1].taken_by == "Иван Петров"
    assert everything.items[0].late >= timedelta(minutes=5)
    text, keyboard = render(everything)
    assert text.index("Управление дорожного хозяйства") < text.index("Управление ЖКХ")
    assert "исполнитель не назначен" in text and "взял: Иван Петров" in text
    assert keyboard is not None
    assert [b.action for b in keyboard.rows[0]] == [f"ov:c:{first}", f"ov:t:{first}"]

    roads = await world.department_id("roads")
    own = await overdue(db, short, now, roads, 0)
    assert [i.number for i in own.items] == [first_number, second_number]

    paged = await overdue(db, short, now, None, 1, page_size=2)
    assert paged.pages == 2 and [i.number for i in paged.items] == [housing_number]
    text, keyboard = render(paged)
    assert "стр. 2 из 2" in text and keyboard is not None
    assert [b.action for b in keyboard.rows[-1]] == ["ov:p:0", "ov:p:1"]
    beyond = await overdue(db, short, now, None, 7, page_size=2)
    assert beyond.page == 1  # a stale page number shows the last page

    assert render(await overdue(db, short, now - timedelta(hours=2), None, 0))[0] == (
        "Просроченных обращений нет 👍"
    )


async def test_extension_tells_the_resident_and_restarts_the_chain(
    db: Database, short: CoreConfig
) -> None:
    world = await make_world(db, short)
    appeal_id, number = await world.file(ANNA, "roads")
    filed = await appeal_row(db, appeal_id)
    assert await scan(db, short, filed.deadline_at + timedelta(minutes=1)) == 1  # level 1

    stranger = StaffActor(user_id=702, name="Чужой", chat_id=HOUSING_GROUP)
    assert (await world.staff.extend(stranger, appeal_id, 3, "Потому что")).notice == DENIED
    assert (await world.staff.extend(IVAN, appeal_id, 2, "Не тот срок")).notice == DENIED
    asked = await world.staff.extend(IVAN, appeal_id, 3)
    assert asked.prompt is not None and asked.prompt_purpose == "extend_3"
    done = await world.staff.extend(IVAN, appeal_id, 3, "Нужна техника, ждём подрядчика")
    assert done.ok

    moved = await appeal_row(db, appeal_id)
    assert moved.deadline_at >= filed.deadline_at + timedelta(days=3)
    assert moved.solution_deadline_at is not None and filed.solution_deadline_at is not None
    # The solution deadline moves by the same span: the time to solve after the answer stays.
    assert moved.solution_deadline_at == filed.solution_deadline_at + timedelta(days=3)
    assert moved.solution_deadline_at > moved.deadline_at
    shown = short.format_moment(moved.deadline_at)
    await drain(world.worker)
    told = world.sender.texts_to(ANNA.chat_id)[-1]
    assert told == texts.deadline_extended(
        number, "ответа", shown, "Нужна техника, ждём подрядчика"
    )
    card = [s for s in world.sender.to(ROADS_GROUP) if s.method == "edit"][-1]
    assert f"срок ответа: до {shown}" in card.text
    assert "срок продлён: срок ответа до" in card.text and "ждём подрядчика" in card.text
    assert "🔺 Срок ответа просрочен" not in card.text  # the new deadline is not missed
    assert "🔺 эскалация: уровень 1" in card.text  # while history keeps the old step

    # The old deadline's steps do not come back; the new one gets its own reminder.
    assert await scan(db, short, filed.deadline_at + timedelta(hours=2)) == 0
    assert (await overdue(db, short, filed.deadline_at + timedelta(hours=2), None, 0)).total == 0
    assert await scan(db, short, moved.deadline_at - timedelta(minutes=10)) == 1
    assert (await steps_taken(db, appeal_id))[-1] == ("answer", 0)


async def test_a_closed_appeal_cannot_be_extended(db: Database, short: CoreConfig) -> None:
    world = await make_world(db, short)
    appeal_id, _number = await world.file(ANNA, "roads")
    assert (await world.staff.reject(IVAN, appeal_id, "spam")).ok
    outcome = await world.staff.extend(IVAN, appeal_id, 3, "Причина")
    assert not outcome.ok and outcome.notice == "Обращение уже закрыто."
    assert await scan(db, short, datetime.max.replace(year=9000, tzinfo=short.tz)) == 0


async def test_after_the_answer_an_extension_moves_the_solution_deadline(
    db: Database, short: CoreConfig
) -> None:
    world = await make_world(db, short)
    appeal_id, number = await world.file(ANNA, "roads")
    assert (await world.staff.answer(IVAN, appeal_id, "Приняли, выедем")).ok
    filed = await appeal_row(db, appeal_id)
    assert filed.solution_deadline_at is not None
    assert (await world.staff.extend(IVAN, appeal_id, 7, "Ремонт в плане на следующую неделю")).ok
    moved = await appeal_row(db, appeal_id)
    assert moved.deadline_at == filed.deadline_at  # the answer was given: its deadline stays
    assert moved.solution_deadline_at == filed.solution_deadline_at + timedelta(days=7)
    await drain(world.worker)
    shown = short.format_moment(moved.solution_deadline_at)
    assert world.sender.texts_to(ANNA.chat_id)[-1] == texts.deadline_extended(
        number, "решения", shown, "Ремонт в плане на следующую неделю"
    )
    # The old solution deadline passes quietly; overdue only after the new one.
    quiet = filed.solution_deadline_at + timedelta(hours=1)
    assert await scan(db, short, quiet) == 0
    assert (await overdue(db, short, quiet, None, 0)).total == 0
    assert await scan(db, short, moved.solution_deadline_at - timedelta(minutes=30)) == 1
    late = moved.solution_deadline_at + timedelta(minutes=1)
    assert await scan(db, short, late) == 1
    assert (await steps_taken(db, appeal_id))[-2:] == [("solution", 0), ("solution", 1)]
    assert (await overdue(db, short, late, None, 0)).total == 1


async def test_reopened_appeal_gets_new_deadlines_and_a_fresh_chain(
    db: Database, short: CoreConfig
) -> None:
    world = await make_world(db, short)
    appeal_id, _number = await world.file(ANNA, "roads")
    filed = await appeal_row(db, appeal_id)
    assert await scan(db, short, filed.deadline_at + timedelta(minutes=1)) == 1  # level 1
    assert (await world.staff.resolve(IVAN, appeal_id)).ok
    assert (await world.staff.resident_feedback(ANNA, appeal_id, solved=False)).ok
    reopened = await appeal_row(db, appeal_id)
    assert reopened.deadline_at > filed.deadline_at  # the resident's word restarts the clock
    assert reopened.solution_deadline_at == reopened.deadline_at + timedelta(hours=3)
    # Reopened: the department owes a new answer, though it answered («Решено») before.
    assert await scan(db, short, reopened.deadline_at + timedelta(minutes=1)) == 1
    assert [s for s in await steps_taken(db, appeal_id) if s[0] == "answer"] == [
        ("answer", 1),
        ("answer", 1),
    ]
    assert (await world.staff.take(IVAN, appeal_id)).ok
    later = reopened.deadline_at + timedelta(minutes=40)
    assert await scan(db, short, later) == 0  # taken up again: the answer chain stops


async def test_a_reminder_still_queued_at_its_deadline_is_dropped(
    db: Database, short: CoreConfig
) -> None:
    """A busy group's queue held the reminder past the deadline: it would only mislead."""
    world = await make_world(db, short)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    filed = await appeal_row(db, appeal_id)
    assert await scan(db, short, filed.created_at + timedelta(minutes=46)) == 1
    async with db.uow() as uow:
        pending = await uow.outbox.pending(100)
        queued = next(m for m in pending if "Напоминание" in str(m.payload.get("text")))
        assert "expires_at" in queued.payload
        queued.payload = {**queued.payload, "expires_at": "2020-01-01T00:00:00+00:00"}
        await uow.commit()
    await drain(world.worker)
    assert count(world, ROADS_GROUP, f"Напоминание: срок ответа по обращению № {number}") == 0
    async with db.uow() as uow:
        assert await uow.outbox.status_of(queued.id) == "cancelled"


async def test_appeals_due_together_reach_a_group_as_one_message_before_the_card_edits(
    db: Database, short: CoreConfig
) -> None:
    world = await make_world(db, short)
    numbers = [(await world.file(ANNA, "roads"))[1] for _ in range(3)]
    await drain(world.worker)
    sent_before = len(world.sender.to(ROADS_GROUP))
    async with db.uow() as uow:
        last = max(
            a.deadline_at
            for a in await uow.appeals.open_of_department(await world.department_id("roads"))
        )
    # The reminders' moment has passed unseen: only level 1 is due, for each of the three.
    assert await scan(db, short, last + timedelta(seconds=1)) == 3
    await drain(world.worker)
    new = world.sender.to(ROADS_GROUP)[sent_before:]
    news = [s for s in new if s.method == "text"]
    assert len(news) == 1  # one message for the three appeals' steps
    assert all(f"№ {number}" in news[0].text for number in numbers)
    assert news[0].text.count("эскалация, уровень 1") == 3
    assert new[0] is news[0]  # ahead of the cards' edits
    assert [s.method for s in new[1:]] == ["edit", "edit", "edit"]


async def test_a_reply_to_an_extension_prompt_extends_once(db: Database, short: CoreConfig) -> None:
    world = await make_world(db, short)
    appeal_id, _ = await world.file(ANNA, "roads")
    filed = await appeal_row(db, appeal_id)
    asked = await world.staff.extend(IVAN, appeal_id, 3)
    assert asked.prompt is not None and asked.prompt_purpose == "extend_3"
    await world.staff.register_prompt(appeal_id, ROADS_GROUP, 555, "extend_3")
    prompt = (ROADS_GROUP, 555)
    assert (await world.staff.extend(IVAN, appeal_id, 3, "Ждём подрядчика", prompt)).ok
    again = await world.staff.extend(IVAN, appeal_id, 3, "Ждём подрядчика, уточняю", prompt)
    assert not again.ok and again.notice == texts.EXTENSION_PROMPT_USED
    moved = await appeal_row(db, appeal_id)
    # The deadline had not passed: moved by exactly three days, once.
    assert moved.deadline_at == filed.deadline_at + timedelta(days=3)


async def test_a_reopening_does_not_rewrite_whether_the_first_answer_was_on_time(
    db: Database, short: CoreConfig
) -> None:
    world = await make_world(db, short)
    appeal_id, _ = await world.file(ANNA, "roads")
    filed = await appeal_row(db, appeal_id)
    assert filed.first_deadline_at == filed.deadline_at
    assert (await world.staff.answer(IVAN, appeal_id, "Приедем")).ok
    assert (await world.staff.resolve(IVAN, appeal_id)).ok
    await world.staff.resident_feedback(ANNA, appeal_id, solved=False)
    reopened = await appeal_row(db, appeal_id)
    assert reopened.status == "reopened" and reopened.deadline_at > filed.deadline_at
    assert reopened.first_deadline_at == filed.first_deadline_at  # the first round's, kept


async def test_a_reopened_appeal_passed_on_still_owes_an_answer(
    db: Database, short: CoreConfig
) -> None:
    world = await make_world(db, short)
    appeal_id, _ = await world.file(ANNA, "roads")
    assert (await world.staff.answer(IVAN, appeal_id, "Приедем")).ok
    assert (await world.staff.resolve(IVAN, appeal_id)).ok
    await world.staff.resident_feedback(ANNA, appeal_id, solved=False)
    housing = await world.department_id("housing")
    assert (await world.staff.transfer(IVAN, appeal_id, housing)).ok
    moved = await appeal_row(db, appeal_id)
    assert moved.status == "reopened" and moved.taken_by_name is None
    late = moved.deadline_at + timedelta(minutes=5)
    listed = await overdue(db, short, late, housing, 0)
    assert [item.kind for item in listed.items] == ["answer"]
    assert await scan(db, short, late) >= 1  # the new department's chain runs


async def test_a_resolved_appeal_without_the_residents_word_closes_in_time(
    db: Database, short: CoreConfig
) -> None:
    world = await make_world(db, short)
    appeal_id, number = await world.file(ANNA, "roads")
    silent_id, silent = await world.file(ANNA, "roads")
    assert (await world.staff.resolve(IVAN, appeal_id)).ok
    assert (await world.staff.resolve(IVAN, silent_id)).ok
    assert (await world.staff.resident_feedback(ANNA, appeal_id, solved=True)).ok
    resolved = await appeal_row(db, silent_id)
    assert resolved.resolved_at is not None
    closes = resolved.resolved_at + short.verdict_wait

    assert await scan(db, short, closes - timedelta(minutes=1)) == 0  # still waiting
    assert (await appeal_row(db, silent_id)).status == "resolved"
    assert await scan(db, short, closes + timedelta(seconds=1)) == 1
    assert await scan(db, short, closes + timedelta(days=1)) == 0  # once
    closed = await appeal_row(db, silent_id)
    assert closed.status == "closed" and closed.next_check_at is None
    await drain(world.worker)
    told = texts.closed_unconfirmed(silent, "15 дней")
    assert world.sender.texts_to(ANNA.chat_id).count(told) == 1
    card = [s for s in world.sender.to(ROADS_GROUP) if f"№ {silent}" in s.text][-1]
    assert (
        texts.CLOSED_UNCONFIRMED_TITLE in card.text and "житель не ответил за 15 дней" in card.text
    )
    # The one the resident confirmed stays as they said; a late «Не решена» changes nothing.
    assert (await appeal_row(db, appeal_id)).status == "closed"
    late = await world.staff.resident_feedback(ANNA, silent_id, solved=False)
    assert not late.ok and late.notice == texts.closed_already(silent)
    assert (await appeal_row(db, silent_id)).status == "closed"
    assert number != silent


def test_days_read_as_russian() -> None:
    assert [texts.days(n) for n in (1, 2, 5, 11, 15, 21, 22, 112)] == [
        "1 день",
        "2 дня",
        "5 дней",
        "11 дней",
        "15 дней",
        "21 день",
        "22 дня",
        "112 дней",
    ]
