"""An appeal's life through the core: routing, staff actions, the resident's verdict, delivery."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core import texts
from bot.core.appeals import DENIED, StaffService
from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.intake import IntakeService
from bot.core.model import InputKind, IntakeInput, Platform, ResidentRef, StaffActor
from bot.core.ports import PhotoRef
from bot.core.routing import RoutingService
from storage.uow import Database
from tests.conftest import COORDINATOR
from tests.core.recording import RecordingSender, drain, make_worker
from tests.core.test_intake import press, text

ROADS_GROUP = -100111
HOUSING_GROUP = -100222
ANNA = ResidentRef(Platform.TELEGRAM, user_id="501", chat_id="501", first_name="Анна")
IVAN = StaffActor(user_id=701, name="Иван Петров", chat_id=ROADS_GROUP)


@dataclass
class World:
    db: Database
    intake: IntakeService
    staff: StaffService
    routing: RoutingService
    sender: RecordingSender
    worker: OutboxWorker

    async def department_id(self, code: str) -> int:
        async with self.db.uow() as uow:
            departments = await uow.catalog.departments()
        return next(d.id for d in departments if d.code == code)

    async def file(self, who: ResidentRef, category: str) -> tuple[int, str]:
        await self.intake.start(who)
        await self.intake.handle(
            who, IntakeInput(InputKind.ACTION, action=f"i:category:{category}")
        )
        await self.intake.handle(
            who, IntakeInput(InputKind.TEXT, text="Во дворе прорвало трубу, течёт вода")
        )
        await self.intake.handle(
            who, IntakeInput(InputKind.LOCATION, latitude=43.11, longitude=131.88)
        )
        await self.intake.handle(who, IntakeInput(InputKind.PHOTO, photo_refs=("resident-photo",)))
        await self.intake.handle(who, IntakeInput(InputKind.TEXT, text=texts.DONE))
        await self.intake.handle(who, IntakeInput(InputKind.TEXT, text=texts.SKIP))
        result = await self.intake.handle(
            who, IntakeInput(InputKind.ACTION, action="i:confirm:submit")
        )
        assert result.submitted_number is not None
        async with self.db.uow() as uow:
            appeal = await uow.appeals.by_number(result.submitted_number)
            assert appeal is not None
            return appeal.id, appeal.number

    async def status(self, appeal_id: int) -> str:
        async with self.db.uow() as uow:
            appeal = await uow.appeals.get(appeal_id)
            assert appeal is not None
            return appeal.status


async def make_world(db: Database, config: CoreConfig) -> World:
    sender = RecordingSender()
    world = World(
        db=db,
        intake=IntakeService(db, config),
        staff=StaffService(db, config),
        routing=RoutingService(db, config),
        sender=sender,
        worker=make_worker(db, config, sender),
    )
    roads = await world.department_id("roads")
    housing = await world.department_id("housing")
    assert (await world.routing.bind(COORDINATOR, ROADS_GROUP, roads)).ok
    assert (await world.routing.bind(COORDINATOR, HOUSING_GROUP, housing)).ok
    return world


async def test_full_life_of_an_appeal(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)

    to_group = world.sender.to(ROADS_GROUP)
    assert [s.method for s in to_group] == ["photos", "location", "text"]
    card = to_group[-1]
    assert f"№ {number}" in card.text and "Анна" in card.text
    assert f"s:take:{appeal_id}" in card.actions
    assert f"Обращение № {number} принято" in world.sender.texts_to("501")[0]

    assert (await world.staff.take(IVAN, appeal_id)).ok
    outcome = await world.staff.answer(IVAN, appeal_id, "Яму засыплем до пятницы")
    assert outcome.ok
    solution = PhotoRef("telegram", "solution-photo")
    assert (await world.staff.solution_photo(IVAN, appeal_id, solution, "Готово")).ok
    assert (await world.staff.resolve(IVAN, appeal_id)).ok
    await drain(world.worker)

    resident = world.sender.to("501")
    said = [s.text for s in resident]
    assert any(texts.taken(number) == t for t in said)
    assert any(t.startswith(f"Ответ по обращению № {number}") and "до пятницы" in t for t in said)
    assert not any("Иван" in t for t in said)  # staff names stay inside the group
    photo = next(s for s in resident if s.method == "photos")
    assert photo.photos == ["solution-photo"] and number in photo.text
    verdict = resident[-1]
    assert verdict.actions == [f"f:{appeal_id}:yes", f"f:{appeal_id}:no"]
    edits = [s for s in world.sender.to(ROADS_GROUP) if s.method == "edit"]
    assert edits and edits[-1].message_id == card.message_id
    assert "Решено" in edits[-1].text and "Иван Петров" in edits[-1].text

    outcome = await world.staff.resident_feedback(ANNA, appeal_id, solved=False)
    reply = outcome.notice
    assert outcome.ok and reply.startswith(f"Обращение № {number} возвращено в работу")
    async with db.uow() as uow:
        reopened = await uow.appeals.get(appeal_id)
        assert reopened is not None and reopened.reopened_count == 1
        assert config.format_moment(reopened.deadline_at) in reply  # a fresh deadline
    await drain(world.worker)
    assert await world.status(appeal_id) == "reopened"
    new_cards = [s for s in world.sender.to(ROADS_GROUP) if s.method == "text"]
    assert len(new_cards) == 2 and "НЕ решена" in new_cards[-1].text
    assert any("не решено" in t for t in world.sender.texts_to(COORDINATOR))
    assert reply in world.sender.texts_to(ANNA.chat_id)  # queued, so the resident can reply to it

    assert (await world.staff.resolve(IVAN, appeal_id)).ok
    thanks = await world.staff.resident_feedback(ANNA, appeal_id, solved=True)
    assert thanks.notice == texts.thanks_confirmed(number)
    assert await world.status(appeal_id) == "closed"


async def test_other_chats_cannot_act(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, _ = await world.file(ANNA, "roads")
    await drain(world.worker)
    before = len(world.sender.sent)
    stranger = StaffActor(user_id=666, name="Чужой", chat_id=HOUSING_GROUP)
    for outcome in (
        await world.staff.take(stranger, appeal_id),
        await world.staff.resolve(stranger, appeal_id),
        await world.staff.answer(stranger, appeal_id, "ха"),
        await world.staff.reject(stranger, appeal_id, "spam"),
        await world.staff.transfer(stranger, appeal_id, await world.department_id("waste")),
        await world.staff.menu(stranger, appeal_id, "transfer"),
        await world.staff.take(stranger, 999_999),  # a missing appeal answers the same
    ):
        assert not outcome.ok and outcome.notice == DENIED
    await drain(world.worker)
    assert len(world.sender.sent) == before
    assert await world.status(appeal_id) == "new"
    boris = ResidentRef(Platform.TELEGRAM, user_id="502", chat_id="502")
    refused = await world.staff.resident_feedback(boris, appeal_id, solved=True)
    assert not refused.ok and refused.notice == "Эта кнопка недоступна."
    # A coordinator may act from anywhere.
    coordinator = StaffActor(
        user_id=COORDINATOR, name="Коорд", chat_id=COORDINATOR, is_coordinator=True
    )
    assert (await world.staff.take(coordinator, appeal_id)).ok


async def test_transfer_moves_the_card(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    old_card = [s for s in world.sender.to(ROADS_GROUP) if s.method == "text"][-1]
    housing = await world.department_id("housing")
    menu = await world.staff.menu(IVAN, appeal_id, "transfer")
    assert menu.keyboard is not None
    assert f"s:to:{appeal_id}:{housing}" in [b.action for r in menu.keyboard.rows for b in r]
    assert (await world.staff.transfer(IVAN, appeal_id, housing)).ok
    await drain(world.worker)
    frozen = [s for s in world.sender.to(ROADS_GROUP) if s.method == "edit"][-1]
    assert frozen.message_id == old_card.message_id and frozen.keyboard is None
    assert "Передано" in frozen.text
    new_card = [s for s in world.sender.to(HOUSING_GROUP) if s.method == "text"][-1]
    assert f"№ {number}" in new_card.text and f"s:take:{appeal_id}" in new_card.actions
    assert any("передано по компетенции" in t for t in world.sender.texts_to("501"))
    # The old group lost its say over the appeal.
    assert not (await world.staff.take(IVAN, appeal_id)).ok


async def test_the_old_group_s_frozen_card_shows_the_appeal_as_it_left(
    db: Database, config: CoreConfig
) -> None:
    world = await make_world(db, config)
    appeal_id, _ = await world.file(ANNA, "roads")
    await drain(world.worker)
    housing = await world.department_id("housing")
    assert (await world.staff.transfer(IVAN, appeal_id, housing)).ok
    # The new department acts before the old group's card is frozen (a group waits its turn).
    nina = StaffActor(user_id=703, name="Нина Жилкина", chat_id=HOUSING_GROUP)
    assert (await world.staff.take(nina, appeal_id)).ok
    await drain(world.worker)
    frozen = [s for s in world.sender.to(ROADS_GROUP) if s.method == "edit"][-1]
    assert "Передано" in frozen.text and frozen.keyboard is None
    assert "Нина" not in frozen.text and "В работе" not in frozen.text
    current = [s for s in world.sender.to(HOUSING_GROUP) if s.method == "edit"][-1]
    assert "Нина Жилкина" in current.text


async def test_a_group_given_to_another_department_stops_following_the_old_one_s_cards(
    db: Database, config: CoreConfig
) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    assert (await world.staff.reject(IVAN, appeal_id, "other", "Работы запланированы на лето")).ok
    await drain(world.worker)
    assert (
        await world.routing.bind(COORDINATOR, ROADS_GROUP, await world.department_id("waste"))
    ).ok
    await drain(world.worker)
    before = len(world.sender.to(ROADS_GROUP))
    # The resident questions the rejection (roads now works through the coordinators).
    said = await world.staff.resident_comment(ANNA, appeal_id, "Почему отклонили? Там дети ходят")
    assert said == texts.comment_sent(number)
    await drain(world.worker)
    assert any("дети ходят" in t for t in world.sender.texts_to(COORDINATOR))
    # The group that now serves waste sees nothing more of it: no comment, no card edit.
    assert world.sender.to(ROADS_GROUP)[before:] == []
    async with db.uow() as uow:
        assert await uow.cards.active_cards(appeal_id) == []


async def test_reject_with_duplicate_reason(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    _first_id, first_number = await world.file(ANNA, "roads")
    second_id, second_number = await world.file(ANNA, "roads")
    prompt = await world.staff.reject(IVAN, second_id, "duplicate")
    assert prompt.prompt and prompt.prompt_purpose == "reject_duplicate"
    wrong = await world.staff.reject(IVAN, second_id, "duplicate", "2020-999999")
    assert not wrong.ok and await world.status(second_id) == "new"
    # Asked again as a question (replying to it works), saying what was wrong.
    assert wrong.prompt_purpose == "reject_duplicate" and wrong.appeal_id == second_id
    assert wrong.prompt is not None and "не нашёл обращения «2020-999999»" in wrong.prompt
    itself = await world.staff.reject(IVAN, second_id, "duplicate", second_number)
    assert itself.prompt is not None and "номер самого отклоняемого обращения" in itself.prompt
    assert (await world.staff.reject(IVAN, second_id, "duplicate", f"№ {first_number}")).ok
    await drain(world.worker)
    assert await world.status(second_id) == "rejected"
    expected = texts.rejected(second_number, f"повторяет обращение № {first_number}")
    assert expected in world.sender.texts_to("501")
    # The resident may ask why; staff may still answer. The status stays «rejected».
    assert (await world.staff.answer(IVAN, second_id, "Это та же яма, что в первом")).ok
    assert await world.status(second_id) == "rejected"


async def test_a_rejection_reason_is_never_cut(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    long_reason = "Участок находится на федеральной трассе. " * 20
    too_long = await world.staff.reject(IVAN, appeal_id, "other", long_reason)
    assert not too_long.ok and too_long.prompt_purpose == "reject_other"
    assert too_long.prompt is not None and f"({len(long_reason.strip())})" in too_long.prompt
    assert await world.status(appeal_id) == "new"
    reason = "Участок находится на федеральной трассе, обратитесь в Росавтодор"
    assert (await world.staff.reject(IVAN, appeal_id, "other", reason)).ok
    await drain(world.worker)
    assert texts.rejected(number, reason) in world.sender.texts_to("501")


async def test_unbound_department_goes_to_coordinators(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "transport")
    await drain(world.worker)
    card = [s for s in world.sender.to(COORDINATOR) if s.method == "text"][-1]
    assert f"№ {number}" in card.text and "нет группы" in card.text
    coordinator = StaffActor(
        user_id=COORDINATOR, name="Коорд", chat_id=COORDINATOR, is_coordinator=True
    )
    assert (await world.staff.answer(coordinator, appeal_id, "Маршрут изменят с понедельника")).ok


async def test_regional_category_tells_the_resident(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    _, number = await world.file(ANNA, "health")
    await drain(world.worker)
    accepted = world.sender.texts_to("501")[0]
    assert f"№ {number}" in accepted and "региональному уровню" in accepted


async def test_binding_later_moves_open_cards_to_the_group(
    db: Database, config: CoreConfig
) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "transport")  # no group yet: coordinators
    await drain(world.worker)
    coordinator_card = [s for s in world.sender.to(COORDINATOR) if s.method == "text"][-1]
    transport = await world.department_id("transport")
    outcome = await world.routing.bind(COORDINATOR, -100333, transport)
    assert outcome.ok and "(1)" in outcome.notice
    await drain(world.worker)
    frozen = [s for s in world.sender.to(COORDINATOR) if s.method == "edit"][-1]
    assert frozen.message_id == coordinator_card.message_id and frozen.keyboard is None
    card = [s for s in world.sender.to(-100333) if s.method == "text"][-1]
    assert f"№ {number}" in card.text and f"s:take:{appeal_id}" in card.actions
    group_staff = StaffActor(user_id=702, name="Пётр", chat_id=-100333)
    assert (await world.staff.take(group_staff, appeal_id)).ok
    # Unbinding sends it back to the coordinators.
    assert (await world.routing.unbind(COORDINATOR, -100333)).ok
    await drain(world.worker)
    back = [s for s in world.sender.to(COORDINATOR) if s.method == "text"][-1]
    assert f"№ {number}" in back.text and "нет группы" in back.text
    assert not (await world.staff.resolve(group_staff, appeal_id)).ok


async def test_resident_follow_up_reaches_staff_and_back(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    accepted = world.sender.to(ANNA.chat_id)[0]
    async with db.uow() as uow:
        notice = await uow.cards.find(int(ANNA.chat_id), accepted.message_id)
        assert notice is not None and (notice.appeal_id, notice.purpose) == (appeal_id, "notice")
    said = await world.staff.resident_comment(ANNA, appeal_id, "Яма стала ещё глубже")
    assert said == texts.comment_sent(number)
    await drain(world.worker)
    comment = [s for s in world.sender.to(ROADS_GROUP) if s.method == "text"][-1]
    assert f"№ {number}" in comment.text and "ещё глубже" in comment.text
    async with db.uow() as uow:
        found = await uow.cards.find(ROADS_GROUP, comment.message_id)
        assert found is not None and found.purpose == "comment"
    # Another resident cannot write into this appeal.
    boris = ResidentRef(Platform.TELEGRAM, user_id="502", chat_id="502")
    assert await world.staff.resident_comment(boris, appeal_id, "чужое") == texts.IDLE
    # A rejected resident may still ask why: it reaches the department (not after «спам»).
    assert (await world.staff.reject(IVAN, appeal_id, "not_ours")).ok
    why = await world.staff.resident_comment(ANNA, appeal_id, "Почему отклонили?")
    assert why == texts.comment_sent(number)
    spam_id, spam_number = await world.file(ANNA, "roads")
    assert (await world.staff.reject(IVAN, spam_id, "spam")).ok
    refused = await world.staff.resident_comment(ANNA, spam_id, "ха-ха")
    assert refused == texts.comment_on_closed(spam_number)
    # A confirmed-closed one is closed for good: a new problem is a new appeal.
    second_id, second = await world.file(ANNA, "roads")
    assert (await world.staff.resolve(IVAN, second_id)).ok
    assert (await world.staff.resident_feedback(ANNA, second_id, solved=True)).ok
    closed = await world.staff.resident_comment(ANNA, second_id, "ещё")
    assert closed == texts.comment_on_closed(second)


async def test_a_long_comment_arrives_whole_or_is_refused(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    long_text = "Яма стала глубже, " * 100 + "конец."  # 1806 characters
    assert await world.staff.resident_comment(ANNA, appeal_id, long_text) == texts.comment_sent(
        number
    )
    too_long = "я" * (texts.MAX_DESCRIPTION + 1)
    refused = await world.staff.resident_comment(ANNA, appeal_id, too_long)
    assert refused == texts.comment_too_long(texts.MAX_DESCRIPTION + 1)
    # A photo whose caption is longer than Telegram allows: the words go first, on their own.
    caption = "Вот как это выглядит вечером, " * 35 + "конец."
    photo = PhotoRef("telegram", "evening")
    assert (await world.staff.resident_comment(ANNA, appeal_id, caption, photo)).startswith(
        "Передали"
    )
    await drain(world.worker)
    to_group = [s for s in world.sender.to(ROADS_GROUP) if s.method != "edit"]
    whole = [s for s in to_group if "конец." in s.text]
    assert long_text.strip() in whole[0].text and caption.strip() in whole[1].text
    assert whole[1].photos == []
    assert to_group[-1].photos == ["evening"] and len(to_group[-1].text) < 1024
    assert not any("я" * 100 in s.text for s in to_group)


async def test_words_outside_a_conversation_go_where_the_resident_says(
    db: Database, config: CoreConfig
) -> None:
    """«Когда приедут?» typed without «Ответить»: the open appeal is offered, not a new one
    begun; nothing is lost whichever the resident picks."""
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    for courtesy in ("Спасибо большое!", "Большое спасибо!", "Здравствуйте!", "Добрый день"):
        said = await world.intake.handle(ANNA, text(courtesy))
        assert said.replies[0].text == texts.IDLE, courtesy

    asked = await world.intake.handle(ANNA, text("Когда приедут? Яма всё глубже"))
    question = asked.replies[-1]
    assert question.text == texts.followup_question([number]) and question.keyboard is not None
    actions = [b.action for row in question.keyboard.rows for b in row]
    assert actions == [f"i:followup:{appeal_id}", "i:followup:new"]
    await world.intake.handle(ANNA, IntakeInput(InputKind.PHOTO, photo_refs=("pothole",)))
    forged = await world.intake.handle(ANNA, press("i:followup:99999"))
    assert forged.replies[0].text == texts.EXPECTED_AT_STEP["followup"]

    passed = await world.intake.handle(ANNA, press(f"i:followup:{appeal_id}"))
    assert passed.replies[0].text == texts.comment_sent(number) and passed.wrote_outbox
    await drain(world.worker)
    (comment,) = [s for s in world.sender.to(ROADS_GROUP) if "Когда приедут?" in s.text]
    assert comment.photos == ["pothole"] and f"№ {number}" in comment.text
    async with db.uow() as uow:
        assert await uow.drafts.get("telegram", ANNA.user_id) is None

    # «Новое обращение» instead: the words start it.
    await world.intake.handle(ANNA, text("Ещё во дворе дома 7 не горит фонарь уже неделю"))
    fresh = await world.intake.handle(ANNA, press("i:followup:new"))
    assert fresh.replies[-1].text == texts.ASK_CATEGORY
    async with db.uow() as uow:
        draft = await uow.drafts.get("telegram", ANNA.user_id)
    assert draft is not None and draft.data["description"].startswith("Ещё во дворе дома 7")
    await world.intake.cancel(ANNA)

    # Awaiting the resident's word: told how to reopen.
    assert (await world.staff.resolve(IVAN, appeal_id)).ok
    await world.intake.handle(ANNA, text("Нет, ничего не сделано, яма на месте"))
    said = await world.intake.handle(ANNA, press(f"i:followup:{appeal_id}"))
    assert texts.VERDICT_HINT in said.replies[0].text

    # Someone without open appeals begins one, as before.
    boris = ResidentRef(Platform.TELEGRAM, user_id="502", chat_id="502")
    begun = await world.intake.handle(boris, text("Во дворе прорвало трубу, течёт вода"))
    assert begun.replies[-1].text == texts.ASK_CATEGORY


async def test_the_followup_question_loses_nothing_whatever_happens(
    db: Database, config: CoreConfig
) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    # Dropped with «отмена»: said plainly, and the sent appeal's summary still knows its number.
    await world.intake.handle(ANNA, text("Когда приедут? Яма всё глубже"))
    dropped = await world.intake.handle(ANNA, text("отмена"))
    assert dropped.replies[0].text == texts.FOLLOWUP_DROPPED
    again = await world.intake.handle(ANNA, press("i:confirm:submit"))
    assert again.replies[0].text == texts.already_sent(number)
    # A short text chosen as a new appeal is its description.
    await world.intake.handle(ANNA, text("Нет света в подъезде"))
    await world.intake.handle(ANNA, press("i:followup:new"))
    async with db.uow() as uow:
        draft = await uow.drafts.get("telegram", ANNA.user_id)
    assert draft is not None and draft.data["description"] == "Нет света в подъезде"
    await world.intake.cancel(ANNA)
    # The appeal closed while the question waited: the words start a new appeal.
    await world.intake.handle(ANNA, text("Яма снова появилась у остановки"))
    assert (await world.staff.resolve(IVAN, appeal_id)).ok
    assert (await world.staff.resident_feedback(ANNA, appeal_id, solved=True)).ok
    late = await world.intake.handle(ANNA, press(f"i:followup:{appeal_id}"))
    assert late.replies[0].text == texts.followup_closed(number)
    assert late.replies[-1].text == texts.ASK_CATEGORY
    async with db.uow() as uow:
        draft = await uow.drafts.get("telegram", ANNA.user_id)
    assert draft is not None and draft.data["description"] == "Яма снова появилась у остановки"


async def test_comment_on_its_way_follows_a_transfer(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    await world.staff.resident_comment(ANNA, appeal_id, "Там ещё и люк открыт")
    housing = await world.department_id("housing")
    assert (await world.staff.transfer(IVAN, appeal_id, housing)).ok  # before delivery
    await drain(world.worker)
    assert not any("люк" in t for t in world.sender.texts_to(ROADS_GROUP))
    housing_texts = world.sender.texts_to(HOUSING_GROUP)
    assert sum("люк" in t for t in housing_texts) == 1
    # The new card comes first, the comment after it.
    card_at = next(i for i, t in enumerate(housing_texts) if f"№ {number}" in t and "📌" in t)
    assert card_at < next(i for i, t in enumerate(housing_texts) if "люк" in t)


async def test_pending_comment_to_coordinators_moves_once(db: Database, config: CoreConfig) -> None:
    two = CoreConfig(tz=config.tz, coordinator_ids=(COORDINATOR, 901))
    world = await make_world(db, two)
    appeal_id, _ = await world.file(ANNA, "transport")  # no group: two coordinators
    await drain(world.worker)
    await world.staff.resident_comment(ANNA, appeal_id, "Автобус 12 опять не пришёл")
    transport = await world.department_id("transport")
    assert (await world.routing.bind(COORDINATOR, -100333, transport)).ok
    await drain(world.worker)
    assert sum("Автобус 12" in t for t in world.sender.texts_to(-100333)) == 1


async def test_resolved_by_mistake_goes_back_to_work(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    assert (await world.staff.resolve(IVAN, appeal_id)).ok
    await drain(world.worker)
    card = [s for s in world.sender.to(ROADS_GROUP) if s.method == "edit"][-1]
    assert card.actions == [f"s:unresolve:{appeal_id}"]
    assert (await world.staff.unresolve(IVAN, appeal_id)).ok
    await drain(world.worker)
    assert await world.status(appeal_id) == "in_work"
    assert texts.unresolved(number) in world.sender.texts_to(ANNA.chat_id)
    # The old «решено?» buttons no longer close it.
    late = await world.staff.resident_feedback(ANNA, appeal_id, solved=True)
    assert not late.ok and await world.status(appeal_id) == "in_work"


async def test_show_card_by_number(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    coordinator = StaffActor(
        user_id=COORDINATOR, name="Коорд", chat_id=COORDINATOR, is_coordinator=True
    )
    assert (await world.staff.show_card(coordinator, number.split("-")[1].lstrip("0"))).ok
    await drain(world.worker)
    card = [s for s in world.sender.to(COORDINATOR) if s.method == "text"][-1]
    assert f"№ {number}" in card.text and f"s:take:{appeal_id}" in card.actions
    housing_staff = StaffActor(user_id=703, name="Нина", chat_id=HOUSING_GROUP)
    refused = await world.staff.show_card(housing_staff, number)
    assert not refused.ok and refused.notice == f"Обращение № {number} здесь не найдено."
    missing = await world.staff.show_card(housing_staff, "2020-000001")
    assert missing.notice == "Обращение № 2020-000001 здесь не найдено."
    assert not (await world.staff.show_card(IVAN, "abc")).ok
    assert (await world.staff.show_card(IVAN, number)).ok
    # A coordinator in another department's group does not get the card there.
    in_housing = StaffActor(
        user_id=COORDINATOR, name="Коорд", chat_id=HOUSING_GROUP, is_coordinator=True
    )
    assert not (await world.staff.show_card(in_housing, number)).ok
