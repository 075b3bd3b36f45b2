"""/stats, /map and /export through aiogram's dispatcher: as a coordinator and others see them."""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.methods import (
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    SendDocument,
    SendMessage,
    SendPhoto,
)
from aiogram.types import CallbackQuery, Chat, Message, Update, User
from openpyxl import load_workbook

from bot.core import texts
from bot.core.appeals import StaffService
from bot.core.config import CoreConfig
from bot.core.intake import IntakeService
from bot.core.routing import RoutingService
from handlers.telegram.setup import build_dispatcher
from storage.uow import Database
from tests.conftest import COORDINATOR
from tests.core.recording import RecordingSender, make_worker
from tests.reports.seed import HOUR, Seeder
from tests.telegram.mocked import MockedBot

BOSS = User(id=COORDINATOR, is_bot=False, first_name="Ольга")
STAFF = User(id=701, is_bot=False, first_name="Иван")
GROUP = -100111
PNG = b"\x89PNG\r\n\x1a\n"
_ids = itertools.count(1)


class Coordinator:
    def __init__(self, dp: Dispatcher, bot: MockedBot) -> None:
        self.dp, self.bot = dp, bot

    async def send(self, text: str, user: User = BOSS, chat_id: int = 0) -> None:
        chat_id = chat_id or user.id
        chat = Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup")
        message = Message(
            message_id=next(_ids), date=datetime.now(UTC), chat=chat, from_user=user, text=text
        )
        await self.dp.feed_update(self.bot, Update(update_id=next(_ids), message=message))

    async def press(self, data: str, message_id: int, user: User = BOSS) -> None:
        chat = Chat(id=user.id, type="private")
        target = Message(message_id=message_id, date=datetime.now(UTC), chat=chat, text="…")
        query = CallbackQuery(
            id=str(next(_ids)), from_user=user, chat_instance="x", message=target, data=data
        )
        await self.dp.feed_update(self.bot, Update(update_id=next(_ids), callback_query=query))

    def sent(self, kind: type[Any]) -> list[Any]:
        return self.bot.recorder.of(kind)

    def texts(self) -> list[str]:
        return [m.text for m in self.sent(SendMessage)]


@pytest.fixture
async def boss(sqlite_db: Database, config: CoreConfig) -> AsyncIterator[Coordinator]:
    dp = build_dispatcher(
        IntakeService(sqlite_db, config),
        StaffService(sqlite_db, config),
        RoutingService(sqlite_db, config),
        make_worker(sqlite_db, config, RecordingSender()),
        config.coordinator_ids,
    )
    yield Coordinator(dp, MockedBot())


def earlier_today(now: datetime, ago: timedelta, share: float) -> datetime:
    """``ago`` before ``now``, unless that was yesterday (just after midnight in the city):
    then ``share`` of the time since midnight, so "today" holds it at any hour."""
    local = now.astimezone(CoreConfig().tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    return max(now - ago, midnight + (now - midnight) * share)


async def seed_recent(db: Database) -> None:
    """Three appeals of the last two days (two of them today's): two with pins, one with a
    written address only."""
    now = datetime.now(UTC)
    seeder = Seeder(db)
    await seeder.add(
        "roads", now - 30 * HOUR, answer_after=HOUR, solved_after=3 * HOUR, status="closed",
        address="ул. Ленина, 1", pin=(55.751, 37.618),
    )  # fmt: skip
    await seeder.add("roads", earlier_today(now, 2 * HOUR, 0.5), platform="vk", pin=(55.76, 37.64))
    await seeder.add("housing", earlier_today(now, 3 * HOUR, 0.25), address="пр. Мира, 5")
    await seeder.add("housing", now - timedelta(days=40), address="старое, 1")


def is_png(data: bytes) -> bool:
    return data.startswith(PNG) and len(data) > 5_000


async def test_stats_sends_text_then_chart_and_switches_in_place(
    boss: Coordinator, sqlite_db: Database
) -> None:
    await seed_recent(sqlite_db)
    await boss.send("/stats 7")

    [text] = boss.texts()
    assert text.startswith("📊 Статистика за ")
    assert "Всего обращений: 3 (Telegram: 2 · ВКонтакте: 1)" in text
    assert "• Дороги: 2" in text and "• ЖКХ: 1" in text
    [photo] = boss.sent(SendPhoto)
    assert is_png(photo.photo.data)
    [buttons] = boss.sent(EditMessageReplyMarkup)
    row = buttons.reply_markup.inline_keyboard[0]
    data = [b.callback_data for b in row]
    assert [b.text for b in row] == ["Сегодня", "• 7 дней", "30 дней"]
    assert all(d.startswith(("st:today:", "st:7:", "st:30:")) for d in data)

    await boss.press(data[0], message_id=buttons.message_id)
    [edited] = boss.sent(EditMessageText)
    assert "Статистика за сегодня" in edited.text
    assert "Всего обращений: 2" in edited.text  # the 30-hours-old one is not today's
    assert edited.reply_markup.inline_keyboard[0][0].text == "• Сегодня"
    [media] = boss.sent(EditMessageMedia)
    assert media.message_id == int(data[0].rsplit(":", 1)[1])
    assert is_png(media.media.media.data)


async def test_stats_explains_bad_periods(boss: Coordinator) -> None:
    await boss.send("/stats 99.99.2026")
    await boss.send("/stats 15.11.2026 01.11.2026")
    bad_date, reversed_range = boss.texts()
    assert bad_date.startswith("Даты 99.99.2026 не бывает")
    assert texts.PERIOD_HINT in bad_date
    assert "позже конца" in reversed_range
    assert boss.sent(SendPhoto) == []


@pytest.mark.parametrize("command", ["/stats", "/map", "/export"])
async def test_reports_are_for_coordinators_only(
    boss: Coordinator, sqlite_db: Database, command: str
) -> None:
    await seed_recent(sqlite_db)
    await boss.send(command, user=STAFF)
    await boss.send(command, user=STAFF, chat_id=GROUP)
    await boss.send(command, chat_id=GROUP)  # a coordinator, but in a group
    assert boss.texts() == [
        texts.REPORTS_ONLY_COORDINATORS,
        texts.REPORTS_ONLY_COORDINATORS,
        texts.REPORTS_PRIVATE_ONLY,
    ]
    assert boss.sent(SendPhoto) == [] and boss.sent(SendDocument) == []


async def test_map_sends_a_heat_map_and_lists_unpinned_addresses(
    boss: Coordinator, sqlite_db: Database
) -> None:
    await seed_recent(sqlite_db)
    await boss.send("/map 7")
    [photo] = boss.sent(SendPhoto)
    assert is_png(photo.photo.data)
    assert photo.caption.endswith("Геометок: 2.")
    assert boss.texts() == ["Без геометки, только с адресом: 1.\n• пр. Мира, 5: 1"]


async def test_map_by_category_and_without_pins(boss: Coordinator, sqlite_db: Database) -> None:
    await seed_recent(sqlite_db)
    await boss.send("/map 30 Дороги")
    [photo] = boss.sent(SendPhoto)
    assert ", Дороги. Геометок: 2." in photo.caption
    await boss.send("/map 7 housing")
    assert (
        boss.texts()[0].startswith("За ") and ", ЖКХ нет обращений с геометкой." in boss.texts()[0]
    )
    await boss.send("/map abc")
    assert boss.texts()[-1].startswith("Категории «abc» нет. Есть: ЖКХ, Дороги")
    assert len(boss.sent(SendPhoto)) == 1


async def test_export_sends_a_workbook_with_the_periods_appeals(
    boss: Coordinator, sqlite_db: Database
) -> None:
    await seed_recent(sqlite_db)
    await boss.send("/export 7")
    [document] = boss.sent(SendDocument)
    today = datetime.now(UTC).astimezone(CoreConfig().tz).date()
    first = today - timedelta(days=6)
    assert document.document.filename == f"appeals_{first:%Y-%m-%d}_{today:%Y-%m-%d}.xlsx"
    assert document.caption.endswith(": 3.")
    sheet = load_workbook(io.BytesIO(document.document.data), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Номер", "Создано", "Первый ответ")
    assert len(rows) == 4  # the header and three appeals, oldest first; the 40-day-old is out
    closed, housing, vk = rows[1:]
    assert closed[5:10] == (
        "Дороги", "Управление дорожного хозяйства", "закрыто", closed[8], "да",
    )  # fmt: skip
    assert closed[13] == "ул. Ленина, 1"
    assert isinstance(closed[1], datetime) and isinstance(closed[2], datetime)
    assert closed[2] - closed[1] == timedelta(hours=1)
    assert (closed[14], closed[15], closed[16], closed[17]) == (55.751, 37.618, "Telegram", 0)
    assert (housing[5], housing[7], housing[9], housing[14]) == ("ЖКХ", "новое", "—", None)
    assert (vk[16], vk[13]) == ("ВКонтакте", None)


async def test_export_of_an_empty_period_says_so(boss: Coordinator) -> None:
    await boss.send("/export 01.01.2026 31.01.2026")
    assert boss.texts() == ["За 01.01.2026 — 31.01.2026 обращений нет — выгружать нечего."]
    assert boss.sent(SendDocument) == []
