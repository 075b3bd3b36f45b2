"""The period's appeals as an XLSX workbook a coordinator opens in Excel or LibreOffice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.core import texts
from bot.core.periods import Period
from bot.core.xlsx import SheetWriter, Value

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
    ("Срок решения", 17),
    ("Решено в срок", 13),
    ("Исполнитель", 24),
    ("Адрес", 40),
    ("Широта", 11),
    ("Долгота", 11),
    ("Платформа", 12),
    ("Возобновлений", 14),
)


def file_name(period: Period) -> str:
    return f"appeals_{period.first_day:%Y-%m-%d}_{period.last_day:%Y-%m-%d}.xlsx"


def answered_on_time(first_answer: datetime | None, deadline: datetime, now: datetime) -> str:
    """«да», «нет», or «—» while an unanswered appeal is still within its deadline."""
    if first_answer is not None:
        return "да" if first_answer <= deadline else "нет"
    return "нет" if deadline < now else "—"


def solved_on_time(
    resolved: datetime | None, deadline: datetime | None, status: str, now: datetime
) -> str:
    """«да», «нет», or «—» (no solution deadline, rejected, or still within it)."""
    if deadline is None or status == "rejected":
        return "—"
    if resolved is not None:
        return "да" if resolved <= deadline else "нет"
    return "нет" if deadline < now else "—"


def _appeal_row(row: Sequence[Any], tz: ZoneInfo, now: datetime) -> list[Value]:
    def local(value: datetime | None) -> datetime | None:
        # Excel has no time zones: local wall-clock time, as the coordinator reads it.
        return None if value is None else value.astimezone(tz).replace(tzinfo=None)

    (number, created, first_answer, resolved, closed, category, department, status) = row[:8]
    deadline, address, latitude, longitude, platform, reopened = row[8:14]
    solution_deadline, taken_by = row[14:16]
    return [
        number,
        local(created),
        local(first_answer),
        local(resolved),
        local(closed),
        category,
        department,
        texts.REPORT_STATUS.get(status, status),
        local(deadline),
        answered_on_time(first_answer or (closed if status == "rejected" else None), deadline, now),
        local(solution_deadline),
        solved_on_time(resolved, solution_deadline, status, now),
        taken_by,
        address,
        latitude,
        longitude,
        texts.REPORT_PLATFORM.get(platform, platform),
        reopened,
    ]


async def write_xlsx(
    batches: AsyncIterator[Sequence[Sequence[Any]]], tz: ZoneInfo, now: datetime
) -> tuple[bytes, int]:
    """The batches of ``report_queries.export_batches`` as a workbook, and the row count.

    Each batch is written in a worker thread: a long period is seconds of CPU that would
    otherwise stop every other chat (one batch at a time, so the sheet is never shared)."""
    sheet = SheetWriter("Обращения", HEADERS)

    def write(batch: Sequence[Sequence[Any]]) -> None:
        for row in batch:
            sheet.row(_appeal_row(row, tz, now))

    count = 0
    async for batch in batches:
        await asyncio.to_thread(write, batch)
        count += len(batch)
    sheet.close()
    return sheet.content(), count
