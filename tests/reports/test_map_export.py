"""The heat map's data and the export on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import datetime

from openpyxl import load_workbook

from bot.core import charts
from bot.core.config import CoreConfig
from bot.core.export import file_name
from bot.core.periods import parse_period
from bot.core.reports import ReportService, focus
from storage.report_queries import Box
from storage.uow import Database
from tests.reports.seed import HOUR, Seeder
from tests.reports.test_stats import MOSCOW, NOW, at


async def test_heat_map_counts_pins_and_leaves_far_ones_out(
    db: Database, config: CoreConfig
) -> None:
    seeder = Seeder(db)
    for i in range(150):  # a city centre
        await seeder.add("roads", at(18, 10), pin=(55.75 + 0.0005 * (i % 7), 37.62 + 0.0004 * i))
    await seeder.add("roads", at(18, 11), pin=(59.9, 30.3))  # one far away
    await seeder.add("housing", at(18, 12), pin=(55.76, 37.63))
    await seeder.add("housing", at(18, 13), address="пр. Мира, 5")
    await seeder.add("housing", at(18, 14), address="пр. Мира, 5")
    period = parse_period(["7"], NOW, MOSCOW, default_days=1)
    reports = ReportService(db, config)

    everything = await reports.heat_map(period, None)
    assert everything.extent.pins == 152
    assert everything.extent.unpinned_with_address == 2
    assert everything.outside == 1  # the far pin: counted, not drawn
    assert sum(count for _, _, count in everything.cells) == 151
    assert everything.box.north < 59 and everything.box.west > 31
    assert everything.unpinned_addresses == [("пр. Мира, 5", 2)]
    box = everything.box
    png = charts.heat_map(
        everything.cells, everything.size, box.south, box.north, box.west, box.east, "Карта"
    )
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000

    housing = await reports.heat_map(period, 1)  # housing is the first category
    assert (housing.extent.pins, housing.extent.unpinned_with_address) == (1, 2)
    assert sum(count for _, _, count in housing.cells) == 1


def test_focus_trims_equally_from_both_sides() -> None:
    box = Box(0.0, 99.0, 0.0, 99.0)
    cells = [(50, 50, 100), (0, 0, 1), (99, 99, 1)]
    assert focus(cells, 100, box, 0.98) == Box(50.0, 51.0, 50.0, 51.0)
    assert focus(cells, 100, box, 1.0) == Box(0.0, 100.0, 0.0, 100.0)


async def test_export_holds_the_periods_appeals(db: Database, config: CoreConfig) -> None:
    seeder = Seeder(db)
    await seeder.add(
        "roads", at(15, 10), status="closed", answer_after=10 * HOUR, solved_after=30 * HOUR,
        address="ул. Ленина, 1 <корпус 2> & двор\x0b\ufffe\uffff", pin=(55.75, 37.62), reopened=1,
        solution_after=72 * HOUR, taken_by="Иван Петров",
    )  # fmt: skip
    await seeder.add("waste", at(20, 11, 30), platform="vk")
    await seeder.add("roads", at(10, 10))  # before the period
    period = parse_period(["14.11.2026", "20.11.2026"], NOW, MOSCOW, default_days=1)

    content, count = await ReportService(db, config).export(period, NOW)

    assert count == 2
    assert file_name(period) == "appeals_2026-11-14_2026-11-20.xlsx"
    sheet = load_workbook(io.BytesIO(content)).active
    assert sheet.title == "Обращения"
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == (
        "Номер", "Создано", "Первый ответ", "Решено", "Закрыто", "Категория", "Отдел", "Статус",
        "Срок ответа", "Ответ в срок", "Срок решения", "Решено в срок", "Исполнитель", "Адрес",
        "Широта", "Долгота", "Платформа", "Возобновлений",
    )  # fmt: skip
    closed, waste = rows[1:]
    local = datetime(2026, 11, 15, 10, 0)  # Moscow wall-clock time, as Excel shows it
    assert closed[1:5] == (
        local,
        datetime(2026, 11, 15, 20),
        datetime(2026, 11, 16, 16),
        datetime(2026, 11, 16, 17),
    )
    assert closed[5:] == (
        "Дороги", "Управление дорожного хозяйства", "закрыто", datetime(2026, 11, 15, 18),
        "нет", datetime(2026, 11, 18, 10), "да", "Иван Петров",
        "ул. Ленина, 1 <корпус 2> & двор", 55.75, 37.62, "Telegram", 1,
    )  # fmt: skip
    assert sheet["B2"].number_format == "DD.MM.YYYY HH:MM"
    assert waste[5] == "Мусор / ТКО" and waste[7] == "новое"
    assert (waste[2], waste[9], waste[10], waste[11], waste[13], waste[14], waste[16]) == (
        None,
        "—",
        None,
        "—",
        None,
        None,
        "ВКонтакте",
    )
