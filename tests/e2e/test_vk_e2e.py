"""Both fronts over real HTTP: ``python -m bot`` with a Telegram token and a VK community token,
a fake Bot API and a fake VK API + long poll server. A VK resident files an appeal with a photo;
Telegram staff take it, answer and send a solution photo; the VK resident receives all of it.
Then restarts: events that came while the bot was down are handled once, none twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core import texts
from tests.e2e.conftest import failed
from tests.e2e.helpers import (
    COORDINATOR_ID,
    ROADS_DEPARTMENT,
    ROADS_GROUP,
    STAFF_ID,
    TOKEN,
    BotProcess,
    appeal_row,
    bind_group,
    card_in,
    db_rows,
    number,
    outbox_idle,
    say,
    start_appeal,
    submit,
    until,
)
from tests.fakes.fake_telegram import FAKE_JPEG as TELEGRAM_JPEG
from tests.fakes.fake_telegram import FakeTelegram
from tests.fakes.fake_vk import FAKE_JPEG as VK_JPEG
from tests.fakes.fake_vk import FakeVK, Sent

VK_TOKEN = "vk1.a.e2e-community-token-0123456789abcdef"
MARIA = 5551001


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegram, FakeVK]]:
    telegram, vk = FakeTelegram(TOKEN), FakeVK(VK_TOKEN)
    await telegram.start()
    await vk.start()
    yield telegram, vk
    await vk.stop()
    await telegram.stop()


@pytest.fixture
async def bot(
    fakes: tuple[FakeTelegram, FakeVK], tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BotProcess]:
    telegram, vk = fakes
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    process = BotProcess(
        telegram.base_url,
        tmp_path / "db.sqlite",
        workdir,
        tmp_path / "bot.log",
        # VK_GROUP_ID left out: the bot finds its community from the token.
        extra_env={"VK_TOKEN": VK_TOKEN, "VK_API_URL": vk.api_url},
    )
    try:
        await process.start(telegram, ready=lambda: vk.long_polls > 0)
        yield process
    finally:
        await process.stop()
        if failed(request.node):
            print("===== bot log =====")
            print(process.log())
            print("===== VK calls =====")
            print("\n".join(f"{c.method} {c.params} → {c.error or 'ok'}" for c in vk.calls))


async def vk_says(vk: FakeVK, expect: str, user: int = MARIA, **message: object) -> Sent:
    before = len(vk.sent)
    vk.write(user, **message)  # type: ignore[arg-type]
    return await vk.wait_for(
        lambda sent: next(
            (s for s in sent[before:] if s.peer_id == user and expect in s.text), None
        )
    )


async def vk_presses(vk: FakeVK, under: Sent, action: str, expect: str) -> Sent:
    before = len(vk.sent)
    event_id = vk.press(MARIA, under, action)
    found: Sent = await vk.wait_for(
        lambda sent: next(
            (s for s in sent[before:] if s.peer_id == MARIA and expect in s.text), None
        )
    )
    assert event_id in vk.answered_event_ids  # the button's spinner was stopped
    return found


async def with_action(vk: FakeVK, prefix: str) -> Sent:
    """The newest message to Maria with a button whose action starts with ``prefix``, once it
    has arrived (replies leave through the outbox, a moment after the text before them)."""
    found: Sent = await vk.wait_for(
        lambda sent: next(
            (
                s
                for s in reversed(sent)
                if s.peer_id == MARIA and any(p.startswith(prefix) for p in s.payloads)
            ),
            None,
        )
    )
    return found


async def test_a_vk_resident_and_telegram_staff(
    fakes: tuple[FakeTelegram, FakeVK], bot: BotProcess, tmp_path: Path
) -> None:
    telegram, vk = fakes
    db = tmp_path / "db.sqlite"
    coordinator = telegram.user(COORDINATOR_ID, "Ольга", "Координаторова")
    staff = telegram.user(STAFF_ID, "Пётр", "Сидоров")
    anna = telegram.user(501, "Анна")
    telegram.group(ROADS_GROUP, "Дороги — сотрудники")
    vk.user(MARIA, "Мария")
    await bind_group(telegram, coordinator, ROADS_GROUP, ROADS_DEPARTMENT, "/bind")

    # A Telegram resident files first: the VK appeal takes the next number of the same counter.
    await start_appeal(telegram, anna, "roads")
    await say(telegram, anna, "Провал асфальта на перекрёстке, машины объезжают", "Где это?")
    await say(telegram, anna, "ул. Ленина, 1", texts.ASK_PHOTOS.split(" —")[0])
    await say(telegram, anna, texts.SKIP, "телефон")
    await say(telegram, anna, texts.SKIP, "Проверьте")
    accepted_tg = await submit(telegram, anna, ())
    assert number(1) in accepted_tg

    # --- The VK resident's conversation ---------------------------------------------------------
    await vk_says(vk, texts.ASK_CATEGORY, text="Начать", payload=json.dumps({"command": "start"}))
    categories = await with_action(vk, "i:category:")
    await vk_presses(vk, categories, "i:category:roads", "Опишите проблему")
    await vk_says(vk, "Где это?", text="Яма у подъезда, в ней уже застряла коляска")
    await vk_says(vk, texts.ASK_PHOTOS.split(" —")[0], geo=(55.7512, 37.6184))
    await vk_says(vk, texts.PHOTO_ADDED, attachments=[vk.photo_attachment()])
    await vk_says(vk, "телефон", text=texts.DONE)
    await vk_says(vk, "Проверьте", text=texts.SKIP)
    summary = await with_action(vk, "i:confirm:")
    assert "Яма у подъезда" in summary.text
    accepted = await vk_presses(vk, summary, "i:confirm:submit", "принято")
    vk_number = number(2)
    assert f"№ {vk_number}" in accepted.text and ROADS_DEPARTMENT in accepted.text

    # --- The card in the Telegram group: the VK photo uploaded, "VK" as the source --------------
    card = await telegram.wait_for(card_in(ROADS_GROUP, vk_number), what="the VK appeal's card")
    assert "Источник: VK · Мария" in card.text
    media = telegram.find(
        lambda r: (
            r.ok and r.name == "sendphoto" and r.chat_id == ROADS_GROUP and vk_number in r.text
        )
    )
    assert media and list(media[0].uploads.values()) == [VK_JPEG]
    assert appeal_row(db, vk_number)["platform"] == "vk"

    # --- Staff act in the group -----------------------------------------------------------------
    assert card.message is not None
    appeal_id = int(next(d for d in card.callback_data if d.startswith("s:take:")).split(":")[2])
    telegram.press(
        staff, telegram.message(ROADS_GROUP, card.message["message_id"]), f"s:take:{appeal_id}"
    )
    await vk.wait_text(MARIA, f"Обращение № {vk_number} взято в работу")
    telegram.send_text(
        staff, "Бригада приедет завтра до обеда", chat=ROADS_GROUP, reply_to=card.message
    )
    await vk.wait_text(MARIA, "Бригада приедет завтра до обеда")
    telegram.send_photo(staff, chat=ROADS_GROUP, caption="Яму засыпали", reply_to=card.message)
    solution = await vk.wait_for(
        lambda sent: next((s for s in sent if s.peer_id == MARIA and s.attachments), None)
    )
    assert "Яму засыпали" in solution.text and solution.photos == [TELEGRAM_JPEG]

    # «Решено» in Telegram → the VK resident gets the verdict buttons and answers in VK.
    current = telegram.message(ROADS_GROUP, card.message["message_id"])
    telegram.press(staff, current, f"s:resolve:{appeal_id}")
    question = await vk.wait_for(
        lambda sent: next(
            (s for s in sent if s.peer_id == MARIA and f"f:{appeal_id}:yes" in s.payloads), None
        )
    )
    await vk_presses(vk, question, f"f:{appeal_id}:yes", "Спасибо")
    await until(lambda: appeal_row(db, vk_number)["status"] == "closed", "closed by the resident")

    # No messages.send went out without a random_id.
    sends = vk.find("messages.send")
    assert sends and all(int(c.params.get("random_id") or 0) > 0 for c in sends)
    await until(lambda: outbox_idle(db), "the outbox drained")


async def test_restarts_lose_no_vk_event_and_repeat_none(
    fakes: tuple[FakeTelegram, FakeVK], bot: BotProcess, tmp_path: Path
) -> None:
    telegram, vk = fakes
    db = tmp_path / "db.sqlite"
    vk.user(MARIA, "Мария")
    await vk_says(vk, texts.ASK_CATEGORY, text="Начать", payload=json.dumps({"command": "start"}))
    await vk_presses(
        vk, await with_action(vk, "i:category:"), "i:category:roads", "Опишите проблему"
    )

    # Down: the resident goes on writing.
    await bot.kill()
    vk.write(MARIA, text="Сломана скамейка во дворе дома 5, торчат гвозди")
    vk.write(MARIA, text="ул. Садовая, 5")
    await bot.start(telegram, ready=lambda: True)
    await vk.wait_text(MARIA, texts.ASK_PHOTOS.split(" —")[0], timeout=20)
    draft = db_rows(db, "SELECT step, data FROM drafts WHERE platform = 'vk'")
    assert draft[0]["step"] == "photos"
    data = json.loads(draft[0]["data"])
    assert (
        data["description"].startswith("Сломана скамейка") and data["address"] == "ул. Садовая, 5"
    )

    # The stored position lost (as if killed before it was written): VK hands everything over
    # again, and nothing is done twice.
    sent_before = len(vk.sent)
    await bot.stop()
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE poll_state SET value = '0'")
    await bot.start(telegram, ready=lambda: True)

    def caught_up() -> bool:
        rows = db_rows(db, "SELECT value FROM poll_state")
        return bool(rows) and rows[0]["value"] == str(len(vk.events))

    await until(caught_up, "the replayed events handled and the position stored")
    assert len(vk.sent) == sent_before, [s.text for s in vk.sent[sent_before:]]
    again = db_rows(db, "SELECT step, data FROM drafts WHERE platform = 'vk'")
    assert again[0]["step"] == "photos" and json.loads(again[0]["data"]) == data
    claims = db_rows(
        db, "SELECT COUNT(*) AS n FROM processed_events WHERE key NOT LIKE 'vk:pressed:%'"
    )
    assert claims[0]["n"] == len(vk.events)
