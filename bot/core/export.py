"""The period's appeals as an XLSX workbook a coordinator opens in Excel or LibreOffice.

openpyxl's write-only mode streams rows to disk as they come, so a year of appeals never sits
in memory as cell objects.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from bot.core import texts
from bot.core.periods import Period

HEADERS = (
    ("Номер", 14),
    ("Создано", 17),
    ("Первый ответ", 17),
    ("Решено", 17),
    ("Закрыто", 17),
    ("Категория", 22),
    ("Отдел", 34),
    ("Статус", 26),
    ("Срок ответа", 17),
    ("Ответ в срок", 12),
    ("Адрес", 40),
    ("Широта", 11),
    ("Долгота", 11),
    ("Платформа", 12),
    ("Возобновлений", 14),
)
DATE_FORMAT = "DD.MM.YYYY HH:MM"


def file_name(period: Period) -> str:
    return f"appeals_{period.first_day:%Y-%m-%d}_{period.last_day:%Y-%m-%d}.xlsx"


def answered_on_time(first_answer: datetime | None, deadline: datetime, now: datetime) -> str:
    """«да», «нет», or «—» while an unanswered appeal is still within its deadline."""
    if first_answer is not None:
        return "да" if first_answer <= deadline else "нет"
    return "нет" if deadline < now else "—"


async def write_xlsx(
    rows: AsyncIterator[Sequence[Any]], tz: ZoneInfo, now: datetime
) -> tuple[bytes, int]:
    """The rows of ``report_queries.export_rows`` as a workbook; returns it and the row count."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Обращения")
    for index, (_, width) in enumerate(HEADERS):
        sheet.column_dimensions[chr(ord("A") + index)].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    sheet.append([_styled(sheet, title, font=bold) for title, _ in HEADERS])

    def moment(value: datetime | None) -> Any:
        if value is None:
            return None
        # Excel has no time zones: local wall-clock time, as the coordinator reads it.
        return _styled(sheet, value.astimezone(tz).replace(tzinfo=None), number_format=DATE_FORMAT)

    count = 0
    async for row in rows:
        (number, created, first_answer, resolved, closed, category, department, status) = row[:8]
        deadline, address, latitude, longitude, platform, reopened = row[8:]
        sheet.append(
            [
                number,
                moment(created),
                moment(first_answer),
                moment(resolved),
                moment(closed),
                category,
                department,
                texts.REPORT_STATUS.get(status, status),
                moment(deadline),
                answered_on_time(first_answer, deadline, now),
                address,
                latitude,
                longitude,
                texts.REPORT_PLATFORM.get(platform, platform),
                reopened,
            ]
        )
        count += 1
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue(), count


def _styled(sheet: Any, value: Any, **style: Any) -> Any:
    cell = WriteOnlyCell(sheet, value=value)
    for name, setting in style.items():
        setattr(cell, name, setting)
    return cell
