"""The outbox worker against a platform that throttles, fails and gets blocked."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.core import texts
from bot.core.config import CoreConfig
from bot.core.model import InputKind, IntakeInput, Platform, ResidentRef, StaffActor
from bot.core.ports import ChatMoved, PhotoRef, RecipientGone, RetryAfter
from bot.core.ratelimit import TELEGRAM_LIMITS, RateLimiter
from storage.models import Department, Draft, OutboxMessage, PollState, Resident
from storage.uow import CANCELLED_MARK, Database, utcnow
from tests.core.recording import RecordingSender, drain, make_worker
from tests.core.test_lifecycle import ANNA, ROADS_GROUP, make_world


async def make_due(db: Database) -> None:
    """Skip the wait of rescheduled messages, as if their time had come."""
    async with db.uow() as uow:
        await uow.session.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        await uow.commit()


async def queue_texts(db: Database, chat: str, count: int) -> None:
    async with db.uow() as uow:
        for index in range(count):
            await uow.outbox.add("telegram", chat, "text", {"text": f"msg {index}"})
        await uow.commit()


async def test_order_is_kept_through_failures(sqlite_db: Database, config: CoreConfig) -> None:
    sender = RecordingSender()
    now = [0.0]
    worker = make_worker(sqlite_db, config, sender, clock=lambda: now[0])
    await queue_texts(sqlite_db, "501", 5)
    sender.fail_with = [ConnectionError("reset"), RetryAfter(3), TimeoutError()]
    for _ in range(10):
        await drain(worker)
        await make_due(sqlite_db)
        now[0] += 5  # past any retry_after
    assert sender.texts_to("501") == [f"msg {i}" for i in range(5)]
    async with sqlite_db.uow() as uow:
        rows = list(await uow.session.scalars(select(OutboxMessage)))
    assert {r.status for r in rows} == {"sent"}
    assert rows[0].attempts == 4  # three failures, then success


async def test_retry_after_waits(sqlite_db: Database, config: CoreConfig) -> None:
    sender = RecordingSender()
    worker = make_worker(sqlite_db, config, sender)
    await queue_texts(sqlite_db, "501", 1)
    sender.fail_with = [RetryAfter(30)]
    await drain(worker)
    await drain(worker)
    assert sender.sent == []  # still waiting for retry_after
    async with sqlite_db.uow() as uow:
        row = (await uow.outbox.pending(10))[0]
    assert row.next_attempt_at > utcnow() + timedelta(seconds=25)


async def test_blocked_resident_is_marked_on_the_card(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, _ = await world.file(ANNA, "roads")
    world.sender.fail_with = []
    # Deliver the card first, then make the resident's chat refuse.
    original = world.sender.send_text

    async def refuse_resident(chat_id: str, text: str, keyboard: object, *, key: int = 0) -> int:
        if chat_id == ANNA.chat_id:
            raise RecipientGone("Forbidden: bot was blocked by the user")
        return await original(chat_id, text, keyboard)  # type: ignore[arg-type]

    world.sender.send_text = refuse_resident  # type: ignore[method-assign]
    await drain(world.worker)
    async with db.uow() as uow:
        resident = await uow.session.scalar(select(Resident))
        assert resident is not None and resident.unreachable
        statuses = {
            r.status
            for r in await uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.chat_id == ANNA.chat_id)
            )
        }
    assert statuses == {"failed"}
    edits = [s for s in world.sender.to(ROADS_GROUP) if s.method == "edit"]
    assert edits and "Житель недоступен" in edits[-1].text
    assert appeal_id


async def test_group_migration_keeps_binding(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    world.sender.fail_chat[str(ROADS_GROUP)] = [ChatMoved(-100999)]
    await world.file(ANNA, "roads")
    for _ in range(3):
        await drain(world.worker)
    async with db.uow() as uow:
        department = await uow.session.scalar(select(Department).where(Department.code == "roads"))
        assert department is not None and department.chat_id == -100999
    assert [s.method for s in world.sender.to(-100999)] == ["photos", "location", "text"]


def test_rate_limiter_keeps_telegram_limits() -> None:
    now = [0.0]
    limiter = RateLimiter(
        TELEGRAM_LIMITS, is_group=lambda c: c.startswith("-"), clock=lambda: now[0]
    )
    # One message a second to a private chat.
    assert limiter.wait_time("501") == 0
    limiter.record("501")
    assert 0.99 <= limiter.wait_time("501") <= 1.0
    # Thirty a second overall, evenly spaced: the next chat waits a thirtieth of a second.
    assert limiter.wait_time("502") == pytest.approx(1 / 30)
    now[0] += 0.1
    # Twenty a minute to a group.
    for _ in range(20):
        assert limiter.wait_time("-1") == 0 or now[0] > 0
        limiter.record("-1")
        now[0] += 0.1
    assert limiter.wait_time("-1") > 55
    # Thirty a second overall, one every thirtieth of a second, never more in a window.
    now[0] = 100.0
    for index in range(30):
        assert limiter.wait_time(str(index)) == pytest.approx(0, abs=1e-9)
        limiter.record(str(index))
        now[0] += 1 / 30
    assert limiter.wait_time("31") == pytest.approx(0, abs=1e-9)
    now[0] = 200.0
    for index in range(30):  # recorded at once (a client that ignores the spacing)
        limiter.record(str(index))
    assert limiter.wait_time("31") > 0.9
    now[0] = 300.0
    limiter.block("77", 10)
    now[0] = 305.0
    assert 4.9 <= limiter.wait_time("77") <= 5.0
    # A handler's own answer spaces that chat only: the overall budget stays the queue's.
    now[0] = 400.0
    limiter.record_chat("88")
    assert 0.99 <= limiter.wait_time("88") <= 1.0
    assert limiter.global_wait() == 0 and limiter.wait_time("89") == 0


async def test_worker_paces_one_chat(sqlite_db: Database, config: CoreConfig) -> None:
    sender = RecordingSender()
    worker = make_worker(sqlite_db, config, sender)
    worker.limiters["telegram"].limits = TELEGRAM_LIMITS  # type: ignore[misc]
    await queue_texts(sqlite_db, "501", 3)
    attempted, wait = await worker.run_once()
    assert attempted == 1 and 0.5 < wait <= 1.0  # the next one only after a second
    attempted, _ = await worker.run_once()
    assert attempted == 0 and len(sender.sent) == 1


async def test_bot_removed_from_group_falls_back_to_coordinators(
    db: Database, config: CoreConfig
) -> None:
    world = await make_world(db, config)
    _, earlier = await world.file(ANNA, "roads")  # its card reaches the group
    await drain(world.worker)
    world.sender.fail_chat[str(ROADS_GROUP)] = [RecipientGone("Forbidden: bot was kicked")] * 9
    _, number = await world.file(ANNA, "roads")
    for _ in range(3):
        await drain(world.worker)
    async with db.uow() as uow:
        department = await uow.session.scalar(select(Department).where(Department.code == "roads"))
        assert department is not None and department.chat_id is None
    to_coordinator = world.sender.texts_to(900)
    assert any("не может писать в группу" in t for t in to_coordinator)
    assert any(f"№ {number}" in t and "нет группы" in t for t in to_coordinator)
    assert any(f"№ {earlier}" in t and "нет группы" in t for t in to_coordinator)


async def test_what_a_coordinator_refused_goes_out_once_they_press_start(
    db: Database, config: CoreConfig
) -> None:
    """A department without a group, and a coordinator who never opened the bot: the card is
    not lost, it waits for them."""
    world = await make_world(db, config)
    world.sender.fail_chat["900"] = [RecipientGone("Forbidden: bot can't initiate conversation")]
    _, number = await world.file(ANNA, "transport")  # no group: the card is the coordinator's
    await drain(world.worker)
    assert not any(f"№ {number}" in t for t in world.sender.texts_to(900))
    async with db.uow() as uow:
        refused = list(
            await uow.session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == "900"))
        )
    assert refused and {m.status for m in refused} == {"failed"}

    assert await world.worker.chat_opened("telegram", "900") == len(refused)
    await drain(world.worker)
    cards = [t for t in world.sender.texts_to(900) if f"№ {number}" in t]
    assert cards and "нет группы" in cards[-1]
    assert await world.worker.chat_opened("telegram", "900") == 0  # sent: never again
    # What failed for another reason is not queued again by a Start.
    assert await world.worker.chat_opened("telegram", ANNA.chat_id) == 0


async def test_a_vk_photo_gone_before_the_card_is_said_on_the_card(
    db: Database, config: CoreConfig
) -> None:
    world = await make_world(db, config)
    masha = ResidentRef(Platform.VK, user_id="5551001", chat_id="5551001", first_name="Мария")
    world.sender.gone = {"https://sun9.userapi.com/gone.jpg"}
    await world.intake.start(masha)
    await world.intake.handle(masha, IntakeInput(InputKind.ACTION, action="i:category:roads"))
    await world.intake.handle(masha, IntakeInput(InputKind.TEXT, text="Яма у остановки, глубокая"))
    await world.intake.handle(masha, IntakeInput(InputKind.TEXT, text="ул. Ленина, 5"))
    refs = ("https://sun9.userapi.com/kept.jpg", "https://sun9.userapi.com/gone.jpg")
    await world.intake.handle(masha, IntakeInput(InputKind.PHOTO, photo_refs=refs))
    await world.intake.handle(masha, IntakeInput(InputKind.TEXT, text=texts.DONE))
    await world.intake.handle(masha, IntakeInput(InputKind.TEXT, text=texts.SKIP))
    submitted = await world.intake.handle(
        masha, IntakeInput(InputKind.ACTION, action="i:confirm:submit")
    )
    assert submitted.submitted_number is not None
    await drain(world.worker)
    (media,) = [s for s in world.sender.to(ROADS_GROUP) if s.method == "photos"]
    assert media.photos == ["https://sun9.userapi.com/kept.jpg"]
    assert texts.photos_gone(1, 2) in media.text

    # Every photo gone: the card still says there were some.
    world.sender.gone.add("https://sun9.userapi.com/kept.jpg")
    async with db.uow() as uow:
        appeal = await uow.appeals.by_number(submitted.submitted_number)
        assert appeal is not None
        await uow.outbox.add("telegram", ROADS_GROUP, "card_media", {}, appeal.id)
        await uow.commit()
    await drain(world.worker)
    said = world.sender.to(ROADS_GROUP)[-1]
    assert said.method == "text" and texts.photos_gone(2, 2) in said.text


async def test_a_residents_album_comment_reaches_the_group_as_one_album(
    db: Database, config: CoreConfig
) -> None:
    """Each part arrives on its own and queues an edit of the card; the group still gets one
    album, and the card its edit after it."""
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    for index in range(3):
        photo = PhotoRef("telegram", f"still-there-{index}")
        words = "Яма всё ещё там" if index == 0 else ""
        said = await world.staff.resident_comment(ANNA, appeal_id, words, photo, album="B1")
        assert said == texts.comment_sent(number)
    await make_due(db)
    await drain(world.worker)
    sent = world.sender.to(ROADS_GROUP)
    albums = [s for s in sent if s.method == "photos" and "still-there-0" in s.photos]
    assert len(albums) == 1
    assert albums[0].photos == ["still-there-0", "still-there-1", "still-there-2"]
    assert "Яма всё ещё там" in albums[0].text
    assert sent[-1].method == "edit" and "житель дополнил обращение ×3" in sent[-1].text


async def test_solution_album_reaches_the_resident_as_one_album(
    db: Database, config: CoreConfig
) -> None:
    world = await make_world(db, config)
    appeal_id, number = await world.file(ANNA, "roads")
    await drain(world.worker)
    ivan = StaffActor(user_id=701, name="Иван", chat_id=ROADS_GROUP)
    for index in range(3):
        photo = PhotoRef("telegram", f"fixed-{index}")
        caption = "Яму заделали" if index == 0 else ""
        assert (await world.staff.solution_photo(ivan, appeal_id, photo, caption, "A1")).ok
    await drain(world.worker)
    assert not [s for s in world.sender.to(ANNA.chat_id) if s.method == "photos"]  # gathering
    await make_due(db)
    await drain(world.worker)
    albums = [s for s in world.sender.to(ANNA.chat_id) if s.method == "photos"]
    assert len(albums) == 1
    assert albums[0].photos == ["fixed-0", "fixed-1", "fixed-2"]
    assert f"№ {number}" in albums[0].text and "Яму заделали" in albums[0].text


async def test_unbind_cancels_cards_still_on_their_way(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    _, number = await world.file(ANNA, "roads")  # queued for the roads group, not yet sent
    assert (await world.routing.unbind(900, ROADS_GROUP)).ok
    await drain(world.worker)
    assert world.sender.to(ROADS_GROUP) == []  # nothing with the resident's details there
    card = [s for s in world.sender.to(900) if s.method == "text"][-1]
    assert f"№ {number}" in card.text


async def test_unblocking_clears_the_mark(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    appeal_id, _ = await world.file(ANNA, "roads")
    world.sender.fail_chat[ANNA.chat_id] = [RecipientGone("Forbidden: bot was blocked")]
    for _ in range(3):
        await drain(world.worker)
    ivan = StaffActor(user_id=701, name="Иван", chat_id=ROADS_GROUP)
    assert (await world.staff.answer(ivan, appeal_id, "Работы начнутся завтра")).ok
    for _ in range(3):
        await drain(world.worker)
    async with db.uow() as uow:
        resident = await uow.session.scalar(select(Resident))
        assert resident is not None and not resident.unreachable
    last_card = [s for s in world.sender.to(ROADS_GROUP) if s.method == "edit"][-1]
    assert "Житель недоступен" not in last_card.text


async def test_housekeeping_forgets_only_old_delivered(
    sqlite_db: Database, config: CoreConfig
) -> None:
    sender = RecordingSender()
    worker = make_worker(sqlite_db, config, sender)
    await queue_texts(sqlite_db, "501", 2)
    await drain(worker)
    await queue_texts(sqlite_db, "502", 1)  # still pending
    old = utcnow() - timedelta(days=40)
    async with sqlite_db.uow() as uow:
        await uow.session.execute(update(OutboxMessage).values(created_at=old))
        await uow.drafts.save("telegram", "777", "description", {"photos": []})
        await uow.session.execute(update(Draft).values(updated_at=old))
        await uow.drafts.save("telegram", "778", "description", {"photos": []})
        await uow.state.set(f"{CANCELLED_MARK}telegram:777", old.isoformat())
        await uow.state.set(f"{CANCELLED_MARK}telegram:778", utcnow().isoformat())
        await uow.state.set("vk_ts", "12345")  # not a mark: kept
        await uow.commit()
    await worker.housekeeping()
    async with sqlite_db.uow() as uow:
        left = list(await uow.session.scalars(select(OutboxMessage)))
        drafts = list(await uow.session.scalars(select(Draft)))
        marks = sorted(await uow.session.scalars(select(PollState.name)))
    assert [m.status for m in left] == ["pending"]
    assert [d.external_id for d in drafts] == ["778"]
    assert marks == [f"{CANCELLED_MARK}telegram:778", "vk_ts"]


async def test_migration_into_a_bound_chat_does_not_loop(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    # The roads group became a supergroup that a coordinator already bound to housing.
    world.sender.fail_chat[str(ROADS_GROUP)] = [ChatMoved(-100222)] * 5
    await world.file(ANNA, "roads")
    for _ in range(5):
        await drain(world.worker)
    async with db.uow() as uow:
        roads = await uow.session.scalar(select(Department).where(Department.code == "roads"))
        assert roads is not None and roads.chat_id is None  # unbound: its appeals to coordinators
        stuck = await uow.outbox.pending(100)
    assert all(m.chat_id != str(ROADS_GROUP) for m in stuck)
    assert any("нет группы" in t for t in world.sender.texts_to(900))


async def test_unreachable_mark_on_every_open_card(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    first_id, _ = await world.file(ANNA, "roads")
    await world.file(ANNA, "housing")
    await drain(world.worker)
    ivan = StaffActor(user_id=701, name="Иван", chat_id=ROADS_GROUP)
    world.sender.fail_chat[ANNA.chat_id] = [RecipientGone("Forbidden: bot was blocked")]
    assert (await world.staff.answer(ivan, first_id, "Выезжаем")).ok
    for _ in range(3):
        await drain(world.worker)
    housing_card = [s for s in world.sender.to(-100222) if s.method == "edit"][-1]
    assert "Житель недоступен" in housing_card.text


async def test_rebound_before_migration_does_not_loop(db: Database, config: CoreConfig) -> None:
    world = await make_world(db, config)
    await world.file(ANNA, "roads")
    await drain(world.worker)
    # The roads group became -100999; a coordinator bound roads there before the bot noticed.
    roads = await world.department_id("roads")
    assert (await world.routing.bind(900, -100999, roads)).ok
    world.sender.fail_chat[str(ROADS_GROUP)] = [ChatMoved(-100999)] * 20
    for _ in range(6):
        await drain(world.worker)
    async with db.uow() as uow:
        stuck = [m for m in await uow.outbox.pending(100) if m.chat_id == str(ROADS_GROUP)]
    assert stuck == []
    assert len(world.sender.fail_chat[str(ROADS_GROUP)]) >= 18  # tried once or twice, not forever


async def test_a_worker_that_lost_its_duty_sends_nothing_more(
    db: Database, config: CoreConfig
) -> None:
    """Another process takes the sending duty once this one's lock is gone: from then on this
    one must not send what the other will."""
    sender = RecordingSender()
    worker = make_worker(db, config, sender)
    for chat in ("501", "502", "503", "504", "505"):
        await queue_texts(db, chat, 1)
    asked = 0

    async def holding() -> bool:
        nonlocal asked
        asked += 1
        return asked <= 2  # the lock's connection dies after two sends

    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop, holding=holding))
    await asyncio.sleep(0.5)
    assert not run.done()  # it waits for the duty's watch to stop it, sending nothing
    stop.set()
    worker.wake()
    await asyncio.wait_for(run, 5)
    assert len(sender.sent) == 2
    async with db.uow() as uow:
        assert len(await uow.outbox.pending(10)) == 3  # left for the process with the duty

    # The duty taken again (a new run): the rest goes.
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop, holding=_true))
    for _ in range(50):
        await asyncio.sleep(0.05)
        if len(sender.sent) == 5:
            break
    stop.set()
    worker.wake()
    await asyncio.wait_for(run, 5)
    assert sorted(s.chat_id for s in sender.sent) == ["501", "502", "503", "504", "505"]


async def _true() -> bool:
    return True
