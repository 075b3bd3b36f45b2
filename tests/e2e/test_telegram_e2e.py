"""The whole bot over real HTTP: ``python -m bot`` in a subprocess, a fake Bot API server, and
the test playing the coordinator, a department's staff, an outsider and three residents.

What is asserted is what people would see (the requests the bot made to the Bot API) and, where
it says more, the database the bot keeps (opened read-only).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import failed
from tests.e2e.helpers import (
    COORDINATOR_ID,
    ROADS_DEPARTMENT,
    ROADS_GROUP,
    STAFF_ID,
    TOKEN,
    BotProcess,
    answer_to,
    appeal_id_from,
    appeal_row,
    bind_group,
    button_data,
    card_in,
    db_rows,
    number,
    outbox_idle,
    say,
    start_appeal,
    submit,
    text_to,
    until,
    with_button,
)
from tests.fakes.fake_telegram import FakeTelegram, answers_to

INTRUDER_ID = 702
HOUSING_GROUP = -100222
HOUSING_DEPARTMENT = "Управление ЖКХ"
DENIED = "Это действие здесь недоступно."


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(
    fake: FakeTelegram, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BotProcess]:
    workdir = tmp_path / "cwd"  # no .env there
    workdir.mkdir()
    process = BotProcess(fake.base_url, tmp_path / "db.sqlite", workdir, tmp_path / "bot.log")
    try:
        await process.start(fake)
        yield process
    finally:
        await process.stop()
        if failed(request.node):
            print("===== bot log =====")
            print(process.log())
            print("===== Bot API requests =====")
            print(fake.dump())


# The test ---------------------------------------------------------------------------------------


async def test_appeal_lifecycle_over_http(
    fake: FakeTelegram, bot: BotProcess, tmp_path: Path
) -> None:
    db = tmp_path / "db.sqlite"
    coordinator = fake.user(COORDINATOR_ID, "Ольга", "Координаторова")
    staff = fake.user(STAFF_ID, "Пётр", "Сидоров", username="petr_roads")
    intruder = fake.user(INTRUDER_ID, "Иван", "Посторонний")
    anna = fake.user(501, "Анна")
    boris = fake.user(502, "Борис")
    vera = fake.user(503, "Вера")
    fake.group(ROADS_GROUP, "Дороги — сотрудники")
    fake.group(HOUSING_GROUP, "ЖКХ — сотрудники")

    # The command menu is set at start.
    menu = await fake.wait_for(lambda r: r.name == "setmycommands", what="setMyCommands")
    assert menu.ok and [c["command"] for c in menu.params["commands"]] == [
        "start",
        "my",
        "cancel",
        "help",
    ]
    assert menu.params["scope"] == {"type": "all_private_chats"}
    # Coordinators see their own tools in their menu; groups see the department's commands.
    own = await fake.wait_for(
        lambda r: r.name == "setmycommands" and r.params["scope"].get("chat_id") == COORDINATOR_ID,
        what="the coordinator's menu",
    )
    assert {"overdue", "stats", "map", "export"} <= {c["command"] for c in own.params["commands"]}
    groups = fake.find(
        lambda r: r.name == "setmycommands" and r.params["scope"]["type"] == "all_group_chats"
    )
    assert groups and "overdue" in {c["command"] for c in groups[0].params["commands"]}

    # The coordinator has talked to the bot privately (else it could not write to them).
    await say(fake, coordinator, "/start", "Вы координатор", "the coordinator's /start")

    # --- Binding the departments' groups ---------------------------------------------------
    # Both forms a group gets: typed, and picked from the command menu (addressed to the bot).
    await bind_group(fake, coordinator, ROADS_GROUP, ROADS_DEPARTMENT, "/bind")
    await bind_group(
        fake, coordinator, HOUSING_GROUP, HOUSING_DEPARTMENT, f"/bind@{fake.bot_user['username']}"
    )
    bound = {
        row["name"]: row["chat_id"]
        for row in db_rows(db, "SELECT name, chat_id FROM departments WHERE chat_id IS NOT NULL")
    }
    assert bound == {ROADS_DEPARTMENT: ROADS_GROUP, HOUSING_DEPARTMENT: HOUSING_GROUP}

    # --- Anna files an appeal about a road -------------------------------------------------
    await start_appeal(fake, anna, "roads")
    await say(
        fake, anna, "Огромная яма на дороге у дома 5, машины объезжают по встречке", "Где это?"
    )
    since = fake.mark()
    fake.send_location(anna, 55.751244, 37.618423)
    await fake.wait_for(text_to(anna["id"], "Пришлите фото"), since=since, what="photos asked")
    # An album, and «Готово» right after it, as a hurried user does (one getUpdates batch).
    since = fake.mark()
    album = fake.send_album(anna, 3)
    fake.send_text(anna, "Готово")
    await fake.wait_for(
        text_to(anna["id"], "номер телефона для связи"), since=since, what="phone asked"
    )
    # The album is answered once, not once per photo.
    assert len(fake.find(text_to(anna["id"], "Фото получено"), since)) == 1
    assert not fake.find(text_to(anna["id"], "Сейчас"), since)  # no «not expected here»
    since = fake.mark()
    fake.send_text(anna, "Пропустить")
    accepted = await submit(fake, anna, ("Дороги", "геометка 55.75124, 37.61842", "Фото: 3"))
    first = number(1)
    assert f"Обращение № {first} принято" in accepted
    assert ROADS_DEPARTMENT in accepted

    # The department's group gets the album, the pin, and the card — in that order.
    media = await fake.wait_for(
        lambda r: r.ok and r.name == "sendmediagroup" and r.chat_id == ROADS_GROUP,
        since=since,
        what="the resident's photos in the roads group",
    )
    sent_photos = [m["media"] for m in media.params["media"]]
    assert sent_photos == [p["photo"][-1]["file_id"] for p in album]  # the largest sizes
    assert first in media.text
    pin = await fake.wait_for(
        lambda r: r.ok and r.name == "sendlocation" and r.chat_id == ROADS_GROUP,
        since=since,
        what="the pin in the roads group",
    )
    assert (pin.params["latitude"], pin.params["longitude"]) == (55.751244, 37.618423)
    card = await fake.wait_for(
        card_in(ROADS_GROUP, first), since=since, what="the card in the roads group"
    )
    assert media.seq < pin.seq < card.seq
    assert "Огромная яма" in card.text and "Анна" in card.text
    appeal_id = appeal_id_from(card)
    assert card.message is not None
    card_id = card.message["message_id"]
    row = appeal_row(db, first)
    assert (row["id"], row["status"]) == (appeal_id, "new")
    assert len(db_rows(db, "SELECT id FROM appeal_photos WHERE appeal_id = ?", appeal_id)) == 3
    assert not fake.sent_to(COORDINATOR_ID, since)  # a bound department: not the coordinator's

    # --- Staff take it into work -----------------------------------------------------------
    since = fake.mark()
    query = fake.press(staff, fake.message(ROADS_GROUP, card_id), f"s:take:{appeal_id}")
    taken = await fake.wait_for(text_to(anna["id"], "взято в работу"), since=since)
    assert first in taken.text
    assert [r.params.get("text") for r in answers_to(fake.requests[since:], query)] == [
        "Вы взяли обращение в работу."
    ]
    edited = await fake.wait_for(
        lambda r: (
            r.ok
            and r.name == "editmessagetext"
            and r.chat_id == ROADS_GROUP
            and r.params["message_id"] == card_id
        ),
        since=since,
        what="the card edited after «take»",
    )
    assert "В работе" in edited.text and "Пётр Сидоров" in edited.text
    assert f"s:take:{appeal_id}" not in edited.callback_data
    assert f"s:resolve:{appeal_id}" in edited.callback_data
    assert appeal_row(db, first)["status"] == "in_work"

    # --- A text reply to the card reaches Anna, without the staff member's name ------------
    since = fake.mark()
    fake.send_text(
        staff,
        "Яму засыплем до пятницы.",
        chat=ROADS_GROUP,
        reply_to=fake.message(ROADS_GROUP, card_id),
    )
    answer = await fake.wait_for(text_to(anna["id"], f"Ответ по обращению № {first}"), since=since)
    assert "Яму засыплем до пятницы." in answer.text
    for name in ("Пётр", "Сидоров", "petr_roads", str(STAFF_ID)):
        assert name not in answer.text
    await fake.wait_for(text_to(ROADS_GROUP, "отправлен жителю"), since=since, what="ack")

    # --- A photo reply to the card goes to Anna as the photo of the solution ---------------
    since = fake.mark()
    solution = fake.send_photo(
        staff, chat=ROADS_GROUP, caption="Засыпали", reply_to=fake.message(ROADS_GROUP, card_id)
    )
    photo = await fake.wait_for(
        lambda r: r.ok and r.name == "sendphoto" and r.chat_id == anna["id"], since=since
    )
    assert first in photo.text and "Засыпали" in photo.text
    assert photo.params["photo"] == solution["photo"][-1]["file_id"]
    assert "Пётр" not in photo.text

    # --- «Решено»: Anna is asked whether it is -----------------------------------------------
    since = fake.mark()
    query = fake.press(staff, fake.message(ROADS_GROUP, card_id), f"s:resolve:{appeal_id}")
    ask = await fake.wait_for(with_button(anna["id"], f"f:{appeal_id}:no"), since=since)
    assert f"f:{appeal_id}:yes" in ask.callback_data
    assert "Фотоотчёт — выше" in ask.text
    resolved = await fake.wait_for(answer_to(query), since=since, what="«Решено» answered")
    assert resolved.params.get("text") == "Отмечено как решённое."
    assert appeal_row(db, first)["status"] == "resolved"

    # --- Anna says it is not solved: reopened, a new card, the coordinator told -------------
    await until(lambda: outbox_idle(db), "the card refreshed after «resolve»")
    since = fake.mark()
    assert ask.message is not None
    fake.press(anna, ask.message, f"f:{appeal_id}:no")
    await fake.wait_for(text_to(anna["id"], "возвращено в работу"), since=since)
    new_card = await fake.wait_for(
        lambda r: with_button(ROADS_GROUP, f"s:take:{appeal_id}")(r) and "НЕ решена" in r.text,
        since=since,
        what="a new card after the reopening",
    )
    assert new_card.message is not None and new_card.message["message_id"] != card_id
    await fake.wait_for(text_to(COORDINATOR_ID, first, "не решено"), since=since)
    closed = await fake.wait_for(
        lambda r: (
            r.ok
            and r.name == "editmessagetext"
            and r.chat_id == ROADS_GROUP
            and r.params["message_id"] == card_id
            and "Возобновлено" in r.text
        ),
        since=since,
        what="the old card frozen",
    )
    assert closed.callback_data == []  # no buttons on the old card
    row = appeal_row(db, first)
    assert (row["status"], row["reopened_count"]) == ("reopened", 1)
    assert "reply_markup" not in fake.message(anna["id"], ask.message["message_id"])

    # --- Boris (housing): the bot is killed mid-conversation and continues after restart ----
    await start_appeal(fake, boris, "housing")
    await say(fake, boris, "Нет горячей воды в доме уже третий день", "Где это?")
    await fake.wait_delivered()
    await until(lambda: outbox_idle(db), "outbox drained before the kill")
    await bot.kill()
    await bot.start(fake)
    await say(fake, boris, "ул. Ленина, д. 7, подъезд 2", "Пришлите фото", "address after restart")
    await say(fake, boris, "Пропустить", "номер телефона для связи")
    since = fake.mark()
    fake.send_text(boris, "8 (900) 123-45-67")
    accepted = await submit(
        fake, boris, ("ЖКХ", "Нет горячей воды", "ул. Ленина, д. 7", "+79001234567")
    )
    second = number(2)
    assert f"Обращение № {second} принято" in accepted
    housing_card = await fake.wait_for(
        card_in(HOUSING_GROUP, second), since=since, what="the housing card"
    )
    assert f"№ {second}" in housing_card.text and "+79001234567" in housing_card.text
    assert not fake.find(
        lambda r: r.name in ("sendmediagroup", "sendlocation", "sendphoto"), since
    )  # no photos and no pin: none sent

    # --- Vera (transport, no group bound): the card goes to the coordinator --------------------
    await start_appeal(fake, vera, "transport")
    await say(fake, vera, "Автобус 12 не ходит по выходным с прошлого месяца", "Где это?")
    await say(fake, vera, "Остановка «Площадь Мира»", "Пришлите фото")
    await say(fake, vera, "Пропустить", "номер телефона для связи")
    since = fake.mark()
    fake.send_text(vera, "Пропустить")
    accepted = await submit(fake, vera, ("Транспорт", "Телефон: не указан"))
    third = number(3)
    assert f"Обращение № {third} принято" in accepted
    unrouted = await fake.wait_for(
        card_in(COORDINATOR_ID, third), since=since, what="the unrouted card to the coordinator"
    )
    assert "нет группы" in unrouted.text
    assert "Отдел транспорта" in unrouted.text
    assert not fake.find(lambda r: r.is_send() and r.chat_id in (ROADS_GROUP, HOUSING_GROUP), since)
    vera_id = appeal_id_from(unrouted)
    assert unrouted.message is not None
    unrouted_message_id = unrouted.message["message_id"]

    # The coordinator answers it from the private chat, then hands it to the housing group.
    await until(lambda: outbox_idle(db), "outbox drained before the coordinator acts")
    since = fake.mark()
    fake.send_text(
        coordinator,
        "Уточняем расписание у перевозчика.",
        reply_to=fake.message(COORDINATOR_ID, unrouted_message_id),
    )
    answer = await fake.wait_for(text_to(vera["id"], f"Ответ по обращению № {third}"), since=since)
    assert "Уточняем расписание у перевозчика." in answer.text and "Ольга" not in answer.text
    await until(lambda: outbox_idle(db), "the unrouted card refreshed")
    since = fake.mark()
    fake.press(
        coordinator, fake.message(COORDINATOR_ID, unrouted_message_id), f"s:transfer:{vera_id}"
    )
    menu_edit = await fake.wait_for(
        lambda r: r.ok and r.name == "editmessagereplymarkup" and r.chat_id == COORDINATOR_ID,
        since=since,
        what="the transfer menu on the card",
    )
    assert menu_edit.message is not None
    since = fake.mark()
    fake.press(coordinator, menu_edit.message, button_data(menu_edit.message, HOUSING_DEPARTMENT))
    await fake.wait_for(
        text_to(vera["id"], f"№ {third} передано по компетенции: {HOUSING_DEPARTMENT}"),
        since=since,
    )
    moved = await fake.wait_for(card_in(HOUSING_GROUP, third), since=since, what="moved card")
    assert "Передано из: Отдел транспорта → Управление ЖКХ" in moved.text
    assert "⚠️ У подразделения" not in moved.text
    frozen = await fake.wait_for(
        lambda r: (
            r.ok
            and r.name == "editmessagetext"
            and r.chat_id == COORDINATOR_ID
            and r.params["message_id"] == unrouted_message_id
        ),
        since=since,
        what="the coordinator's copy frozen",
    )
    assert "Передано: Управление ЖКХ" in frozen.text and frozen.callback_data == []
    assert appeal_row(db, third)["status"] == "new"

    # --- A forged button from another department's group changes nothing -------------------
    await until(lambda: outbox_idle(db), "outbox drained before the forgery")
    before = appeal_row(db, first)
    events_before = len(db_rows(db, "SELECT id FROM appeal_events WHERE appeal_id = ?", appeal_id))
    assert housing_card.message is not None
    housing_message = fake.message(HOUSING_GROUP, housing_card.message["message_id"])
    since = fake.mark()
    forged = fake.press_forged(intruder, housing_message, f"s:take:{appeal_id}")
    missing = fake.press_forged(intruder, housing_message, "s:take:999999")
    for query in (forged, missing):
        reply = await fake.wait_for(answer_to(query), since=since, what="the refusal")
        assert reply.ok and reply.params.get("text") == DENIED  # the same for both
    await asyncio.sleep(2.5)  # more than the outbox worker's idle interval
    assert outbox_idle(db)
    assert not fake.sent_to(anna["id"], since)
    assert not fake.find(lambda r: r.chat_id in (ROADS_GROUP, HOUSING_GROUP), since)
    after = appeal_row(db, first)
    assert dict(after) == dict(before)
    assert events_before == len(
        db_rows(db, "SELECT id FROM appeal_events WHERE appeal_id = ?", appeal_id)
    )

    # Nothing the bot asked of the API was refused (the only 409 is the killed bot's last poll;
    # getChat is the start-up check of whether each coordinator has opened the bot yet).
    refused = [
        r.short() for r in fake.requests if not r.ok and r.name not in ("getupdates", "getchat")
    ]
    assert refused == []

    # SIGTERM: a clean stop, and nothing went wrong along the way.
    await bot.stop()
    assert bot.returncode == 0
    log = bot.log()
    assert "Traceback" not in log and " ERROR " not in log, log


async def test_kill_during_delivery_loses_nothing(
    fake: FakeTelegram, bot: BotProcess, tmp_path: Path
) -> None:
    """kill -9 while the confirmation cannot get out: after a restart it is delivered."""
    db = tmp_path / "db.sqlite"
    gleb = fake.user(504, "Глеб")
    coordinator = fake.user(COORDINATOR_ID, "Ольга", "Координаторова")
    await say(fake, coordinator, "/start", "Вы координатор", "the coordinator's /start")
    await start_appeal(fake, gleb, "waste")
    await say(fake, gleb, "Контейнеры переполнены уже неделю, мусор на земле", "Где это?")
    await say(fake, gleb, "ул. Садовая, 3", "Пришлите фото")
    await say(fake, gleb, "Пропустить", "телефон")
    await say(fake, gleb, "Пропустить", "Проверьте")
    summary = await fake.wait_for(with_button(gleb["id"], "i:confirm:submit"), what="summary")
    assert summary.message is not None
    # Telegram is failing for this chat: the confirmation stays in the outbox.
    fake.inject_error("sendMessage", 502, "Bad Gateway", times=10_000, chat_id=gleb["id"])
    fake.press(gleb, summary.message, "i:confirm:submit")
    await until(
        lambda: bool(db_rows(db, "SELECT id FROM appeals")), "the appeal committed before the kill"
    )
    await until(
        lambda: bool(
            db_rows(
                db,
                "SELECT id FROM outbox WHERE chat_id = ? AND status = 'pending' AND attempts > 0",
                str(gleb["id"]),
            )
        ),
        "a failed delivery attempt",
    )
    await bot.kill()
    fake.clear_errors()  # Telegram is back
    since = fake.mark()
    await bot.start(fake)
    accepted = await fake.wait_for(
        text_to(gleb["id"], f"Обращение № {number(1)} принято"),
        since=since,
        timeout=30,
        what="the confirmation after the restart",
    )
    assert accepted.ok
    rows = db_rows(db, "SELECT number FROM appeals")
    assert [r["number"] for r in rows] == [number(1)]
    await until(lambda: outbox_idle(db), "the outbox drained")


async def test_the_number_comes_with_the_press_though_telegram_refuses_its_late_answer(
    fake: FakeTelegram, bot: BotProcess, tmp_path: Path
) -> None:
    """After a restart or a backlog Telegram refuses late answers to button presses («query is
    too old»): the press still has its effect, and the number comes at once from the
    resident's own handler, not after the queue's hold."""
    anna = fake.user(501, "Анна")
    await start_appeal(fake, anna, "roads")
    await say(
        fake, anna, "Огромная яма на дороге у дома 5, машины объезжают по встречке", "Где это?"
    )
    await say(fake, anna, "ул. Ленина, д. 5", "Пришлите фото")
    await say(fake, anna, "Пропустить", "номер телефона для связи")
    fake.send_text(anna, "Пропустить")
    fake.inject_error(
        "answerCallbackQuery",
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
    )
    pressed = time.monotonic()
    accepted = await submit(fake, anna, ("Дороги",))
    assert f"Обращение № {number(1)} принято" in accepted
    assert time.monotonic() - pressed < 10  # the hold that keeps it from the queue is 30 s
    assert not fake.find(text_to(anna["id"], "Не получилось"))  # no failure was reported
    # Recorded as sent by the handler (a commit just after Telegram took it), well within the
    # 30-s hold after which the queue would send it again.
    rows = db_rows(tmp_path / "db.sqlite", "SELECT status FROM outbox WHERE chat_id = '501'")
    assert len(rows) == 1
    await until(
        lambda: (
            [
                row["status"]
                for row in db_rows(
                    tmp_path / "db.sqlite", "SELECT status FROM outbox WHERE chat_id = '501'"
                )
            ]
            == ["sent"]
        ),
        "the handler recorded its «принято» as sent",
        timeout=10,
    )
    assert time.monotonic() - pressed < 30
