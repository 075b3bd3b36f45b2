"""No personal data in the logs at INFO and above: whole conversations in Telegram (through
aiogram's dispatcher) and VK (through vkbottle's router and the fake VK), the appeals delivered,
answered, commented on, and the resident banned — every log record of every logger captured.

Every third-party logger is left at INFO here (``python -m bot`` quiets aiogram.event and
vkbottle further): none of them leaks either — aiogram's «Update id=… is handled» carries no
personal data, vkbottle logs payloads at DEBUG only. A failed statement's error carries no
parameters (the engines are made with ``hide_parameters``).
"""

from __future__ import annotations

import json
import logging

import pytest
from aiogram.types import Contact, User
from sqlalchemy import select

from bot.core import texts
from bot.core.model import StaffActor
from storage.models import Appeal
from tests.conftest import COORDINATOR
from tests.core.recording import drain
from tests.telegram.test_handlers import BOSS, GROUP, STAFF, Harness, harness, message
from tests.vk import test_vk_handlers as vk_base
from tests.vk.test_vk_handlers import VkHarness

vk = vk_base.vk
__all__ = ["harness", "vk"]  # fixtures used by name

FIRST_NAME = "Евлампия"
LAST_NAME = "Зурабова"
USERNAME = "evlampia_zu77"
PHONE = "+7 913 555-01-77"
PHONE_DIGITS = ("9135550177", "913 555", "555-01-77")
DESCRIPTION = "Провалился канализационный люк у кондитерской Фиалка, машины бьют колёса"
ADDRESS = "проспект Космонавтов, 77к3, подъезд Шестой"
LATITUDE, LONGITUDE = 56.123456, 38.654321
COMMENT = "Дополняю: рядом играют дети Тимофеевы"
ANSWER = "Бригада Кузьмича выедет завтра"
REASON = "Оскорбления Семирамиды"
SECRETS = (
    FIRST_NAME,
    LAST_NAME,
    USERNAME,
    *PHONE_DIGITS,
    "Фиалка",
    "канализационный",
    "Космонавтов",
    "Шестой",
    "56.1234",
    "38.6543",
    "56.12",
    "38.65",
    "Тимофеевы",
    "Кузьмича",
    "Семирамиды",
)
RESIDENT = User(id=503, is_bot=False, first_name=FIRST_NAME, last_name=LAST_NAME, username=USERNAME)
VK_RESIDENT = 5551777


def leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    found = []
    for record in caplog.records:
        if record.levelno < logging.INFO:
            continue
        shown = record.getMessage()
        if record.exc_info:
            shown += logging.Formatter().formatException(record.exc_info)
        found += [f"{record.name}: {shown!r} has {s!r}" for s in SECRETS if s in shown]
    return found


async def telegram_conversation(harness: Harness) -> None:
    async with harness.db.uow() as uow:
        roads = next(d for d in await uow.catalog.departments() if d.code == "roads")
        await uow.catalog.bind(roads, GROUP)
        await uow.commit()
    await harness.send(RESIDENT, text="/start")
    await harness.press(RESIDENT, "i:category:roads")
    await harness.send(RESIDENT, text=DESCRIPTION)
    await harness.send(RESIDENT, text=ADDRESS)
    await harness.send(RESIDENT, text=texts.SKIP)
    await harness.send(
        RESIDENT,
        contact=Contact(phone_number=PHONE, first_name=FIRST_NAME, user_id=RESIDENT.id),
    )
    await harness.press(RESIDENT, "i:confirm:submit")
    async with harness.db.uow() as uow:
        appeal = await uow.session.scalar(select(Appeal))
        assert appeal is not None and appeal.phone == "+79135550177"
        assert appeal.address == ADDRESS  # the map point is VK's part below
        await uow.cards.add(appeal.id, GROUP, 3333, "card")
        await uow.cards.add(appeal.id, RESIDENT.id, 4444, "notice")
        await uow.commit()
    bot_user = User(id=42, is_bot=True, first_name="Приёмная")
    card = message(bot_user, GROUP, text="card").model_copy(update={"message_id": 3333})
    notice = message(bot_user, RESIDENT.id, text="notice").model_copy(update={"message_id": 4444})
    await harness.send(STAFF, chat_id=GROUP, text=ANSWER, reply_to_message=card)
    await harness.send(RESIDENT, text=COMMENT, reply_to_message=notice)
    await harness.send(RESIDENT, text="/my")
    await harness.send(BOSS, text=f"/ban {appeal.number} {REASON}")
    await harness.send(RESIDENT, text=DESCRIPTION)
    await harness.send(RESIDENT, text=DESCRIPTION)
    await harness.send(BOSS, text="/banned")
    sent = harness.said_to(RESIDENT.id)
    assert sent[-1] == texts.banned(REASON)  # the conversation really went all the way


async def test_telegram_conversation_logs_no_personal_data(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the root logger: every logger's records
    await telegram_conversation(harness)
    worker = harness.dp["worker"]
    await drain(worker)
    assert any(r.name == "bot.core.appeals" for r in caplog.records)  # logging was on
    assert leaks(caplog) == []


async def test_vk_conversation_logs_no_personal_data(
    vk: VkHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    vk.fake.user(VK_RESIDENT, FIRST_NAME)
    await vk.says(VK_RESIDENT, "Начать", payload=json.dumps({"command": "start"}))
    await vk.presses(VK_RESIDENT, vk.last_with(VK_RESIDENT, "i:category:"), "i:category:roads")
    await vk.says(VK_RESIDENT, DESCRIPTION)
    await vk.says(VK_RESIDENT, geo=(LATITUDE, LONGITUDE))
    await vk.says(VK_RESIDENT, attachments=[vk.fake.photo_attachment()])
    await vk.says(VK_RESIDENT, texts.DONE)
    await vk.says(VK_RESIDENT, PHONE)
    said = await vk.presses(
        VK_RESIDENT, vk.last_with(VK_RESIDENT, "i:confirm:"), "i:confirm:submit"
    )
    number = next(s for s in said if "принято" in s.text).text.split("№ ")[1].split()[0]
    await drain(vk.worker)
    async with vk.db.uow() as uow:
        appeal = await uow.appeals.by_number(number)
        assert appeal is not None and appeal.phone == "+79135550177"
    boss = StaffActor(COORDINATOR, "Ольга", COORDINATOR, is_coordinator=True)
    assert (await vk.staff.answer(boss, appeal.id, ANSWER)).ok
    await drain(vk.worker)
    answer = next(s for s in vk.fake.sent_to(VK_RESIDENT) if ANSWER in s.text)
    await vk.says(VK_RESIDENT, COMMENT, reply_to=answer)
    await vk.says(VK_RESIDENT, ADDRESS)
    await vk.says(VK_RESIDENT, "/my")
    from bot.core.intake import IntakeService

    bans = IntakeService(vk.db, vk.staff.config).bans
    assert (await bans.ban(boss, f"{number} {REASON}")).ok
    told = await vk.says(VK_RESIDENT, DESCRIPTION)
    assert [s.text for s in told] == [texts.banned(REASON)]
    await vk.says(VK_RESIDENT, PHONE)
    await drain(vk.worker)
    assert any(r.name == "bot.core.appeals" for r in caplog.records)
    assert leaks(caplog) == []


async def test_a_failed_statement_does_not_carry_its_parameters(harness: Harness) -> None:
    """What an exception logged with its traceback would show of a database error."""
    from sqlalchemy.exc import IntegrityError

    from storage.models import Resident
    from storage.uow import utcnow

    async with harness.db.uow() as uow:
        for _ in range(2):
            uow.session.add(
                Resident(
                    platform="telegram",
                    external_id=USERNAME,
                    chat_id="1",
                    first_name=FIRST_NAME,
                    unreachable=False,
                    created_at=utcnow(),
                )
            )
        with pytest.raises(IntegrityError) as failed:
            await uow.session.flush()
    shown = str(failed.value)
    assert "residents" in shown and not [s for s in SECRETS if s in shown]


async def _fails_quoting_the_resident(*args: object, **kwargs: object) -> None:
    raise ValueError(f"cannot take {DESCRIPTION!r} from {FIRST_NAME} {PHONE}")


async def test_a_failing_update_is_logged_without_what_the_resident_wrote(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.intake import IntakeService
    from handlers.telegram.errors import SORRY

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(IntakeService, "handle", _fails_quoting_the_resident)
    await harness.send(RESIDENT, text=DESCRIPTION)
    assert harness.said_to(RESIDENT.id) == [SORRY]
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failed and "ValueError" in failed[0].getMessage()
    assert "_fails_quoting_the_resident" in failed[0].getMessage()  # where, for the operator
    assert leaks(caplog) == []


async def test_a_failing_vk_event_is_logged_without_what_the_resident_wrote(
    vk: VkHarness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.intake import IntakeService
    from handlers.vk import polling

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(polling.asyncio, "sleep", _no_pause)
    monkeypatch.setattr(IntakeService, "handle", _fails_quoting_the_resident)
    vk.fake.user(VK_RESIDENT, FIRST_NAME)
    await vk.says(VK_RESIDENT, DESCRIPTION)
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failed and "ValueError" in failed[0].getMessage()
    assert leaks(caplog) == []


async def _no_pause(_seconds: float) -> None:
    return None
