"""Coordinators' reports in the private chat: /stats (text and chart), /map, /export.

A command's reply is not a notification, so it goes straight back from the handler rather than
through the outbox. Images and workbooks are built in a worker thread: matplotlib and openpyxl
are CPU-bound and would otherwise stall every other chat for a few hundred milliseconds.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from datetime import UTC, datetime

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
)

from bot.core import texts
from bot.core.export import file_name
from bot.core.periods import (
    Period,
    PeriodError,
    clip,
    describe,
    is_period_word,
    parse_period,
    period_from_key,
)
from bot.core.report_render import stats_text
from bot.core.reports import ReportService
from handlers.telegram.magic import On

STATS_BUTTONS = (("today", texts.STATS_TODAY), ("7", texts.STATS_WEEK), ("30", texts.STATS_MONTH))
STATS_DEFAULT_DAYS = 1  # today
MAP_DEFAULT_DAYS = 7
EXPORT_DEFAULT_DAYS = 7
UPLOAD_LIMIT = 50 * 2**20  # what a bot may upload through the public Bot API


def now() -> datetime:
    return datetime.now(UTC)


async def allowed(message: Message, coordinator_ids: tuple[int, ...]) -> bool:
    """Coordinators only, and only in the private chat: reports name residents' addresses."""
    assert message.from_user is not None
    if message.from_user.id not in coordinator_ids:
        await message.reply(texts.REPORTS_ONLY_COORDINATORS)
        return False
    if message.chat.type != "private":
        await message.reply(texts.REPORTS_PRIVATE_ONLY)
        return False
    return True


def period_buttons(current: Period, chart_message_id: int) -> InlineKeyboardMarkup:
    row = [
        InlineKeyboardButton(
            text=f"• {label}" if key == current.key else label,
            callback_data=f"st:{key}:{chart_message_id}",
        )
        for key, label in STATS_BUTTONS
    ]
    return InlineKeyboardMarkup(inline_keyboard=[row])


async def _chart(reports: ReportService, period: Period) -> tuple[str, BufferedInputFile]:
    report = await reports.stats(period, now())
    caption = texts.CHART_CAPTION.format(period=describe(period))
    from bot.core import charts  # matplotlib (~50 MB) loads at the first chart, not at start

    png = await asyncio.to_thread(charts.daily_flow, period.days, report.daily, caption)
    return stats_text(report), BufferedInputFile(png, filename="stats.png")


async def stats(
    message: Message,
    command: CommandObject,
    bot: Bot,
    reports: ReportService,
    coordinator_ids: tuple[int, ...],
) -> None:
    if not await allowed(message, coordinator_ids):
        return
    try:
        period = parse_period(
            (command.args or "").split(), now(), reports.config.tz, STATS_DEFAULT_DAYS
        )
    except PeriodError as exc:
        await message.answer(f"{exc}\n{texts.PERIOD_HINT}")
        return
    text, chart = await _chart(reports, period)
    sent = await message.answer(text)
    photo = await message.answer_photo(chart)
    # The buttons go on the text once the chart exists: they carry its id to replace it.
    with suppress(TelegramBadRequest):
        await bot.edit_message_reply_markup(
            chat_id=message.chat.id,
            message_id=sent.message_id,
            reply_markup=period_buttons(period, photo.message_id),
        )


async def stats_switch(
    callback: CallbackQuery, bot: Bot, reports: ReportService, coordinator_ids: tuple[int, ...]
) -> None:
    """A period button: the text and the chart are replaced in place."""
    assert callback.data is not None and callback.message is not None
    if callback.from_user.id not in coordinator_ids:
        await callback.answer(texts.REPORTS_ONLY_COORDINATORS[:200], show_alert=True)
        return
    _, key, chart_id = callback.data.split(":")
    period = period_from_key(key, now(), reports.config.tz)
    text, chart = await _chart(reports, period)
    chat_id = callback.message.chat.id
    await callback.answer()
    with suppress(TelegramBadRequest):  # the same figures as shown: "message is not modified"
        await bot.edit_message_text(
            text,
            chat_id=chat_id,
            message_id=callback.message.message_id,
            reply_markup=period_buttons(period, int(chart_id)),
        )
    try:
        await bot.edit_message_media(
            InputMediaPhoto(media=chart), chat_id=chat_id, message_id=int(chart_id)
        )
    except TelegramBadRequest:
        # The chart was deleted meanwhile: a new one, and the buttons point to it.
        photo = await bot.send_photo(chat_id, chart)
        with suppress(TelegramBadRequest):
            await bot.edit_message_reply_markup(
                chat_id=chat_id,
                message_id=callback.message.message_id,
                reply_markup=period_buttons(period, photo.message_id),
            )


def split_map_args(args: str) -> tuple[list[str], str]:
    """Leading period words, then the category: «7 roads», «01.11.2026 15.11.2026 Дороги»."""
    words = args.split()
    taken = 0
    while taken < len(words) and is_period_word(words[taken]):
        taken += 1
    return words[:taken], " ".join(words[taken:])


async def heat_map(
    message: Message,
    command: CommandObject,
    reports: ReportService,
    coordinator_ids: tuple[int, ...],
) -> None:
    if not await allowed(message, coordinator_ids):
        return
    period_words, category_word = split_map_args(command.args or "")
    try:
        period = parse_period(period_words, now(), reports.config.tz, MAP_DEFAULT_DAYS)
    except PeriodError as exc:
        await message.answer(f"{exc}\n{texts.PERIOD_HINT}")
        return
    category_id, category_note = None, ""
    if category_word:
        found = await reports.category_by_word(category_word)
        if isinstance(found, list):
            await message.answer(
                texts.MAP_UNKNOWN_CATEGORY.format(word=clip(category_word), codes=", ".join(found))
            )
            return
        category_id, category_note = found[0], f", {found[1]}"
    data = await reports.heat_map(period, category_id)
    extent = data.extent
    where = {"period": describe(period), "category": category_note}
    if extent.pins == 0:
        await message.answer(texts.MAP_NO_PINS.format(**where))
    else:
        caption = texts.MAP_CAPTION.format(**where, pins=extent.pins)
        if data.outside:
            caption += " " + texts.MAP_OUTSIDE.format(count=data.outside)
        box = data.box
        from bot.core import charts  # matplotlib loads at the first chart, not at start

        png = await asyncio.to_thread(
            charts.heat_map,
            data.cells,
            data.size,
            box.south,
            box.north,
            box.west,
            box.east,
            texts.MAP_TITLE.format(**where),
        )
        await message.answer_photo(BufferedInputFile(png, filename="map.png"), caption=caption)
    if extent.unpinned_with_address:
        lines = [texts.MAP_UNPINNED.format(count=extent.unpinned_with_address)]
        lines += [f"• {address[:60]}: {count}" for address, count in data.unpinned_addresses]
        await message.answer("\n".join(lines))


async def export(
    message: Message,
    command: CommandObject,
    reports: ReportService,
    coordinator_ids: tuple[int, ...],
) -> None:
    if not await allowed(message, coordinator_ids):
        return
    try:
        period = parse_period(
            (command.args or "").split(), now(), reports.config.tz, EXPORT_DEFAULT_DAYS
        )
    except PeriodError as exc:
        await message.answer(f"{exc}\n{texts.PERIOD_HINT}")
        return
    content, count = await reports.export(period, now())
    if count == 0:
        await message.answer(texts.EXPORT_EMPTY.format(period=describe(period)))
        return
    if len(content) > UPLOAD_LIMIT:
        size = f"{len(content) / 2**20:.0f}"
        await message.answer(texts.EXPORT_TOO_BIG.format(period=describe(period), size=size))
        return
    await message.answer_document(
        BufferedInputFile(content, filename=file_name(period)),
        caption=texts.EXPORT_CAPTION.format(period=describe(period), count=count),
    )


def build_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name=__name__)
    router.message.filter(On(F.from_user))  # handlers act as the sender: none, nothing to do
    router.message.register(stats, Command("stats"))
    router.message.register(heat_map, Command("map"))
    router.message.register(export, Command("export"))
    router.callback_query.register(
        stats_switch,
        On(F.data.regexp(r"^st:(today|7|30):\d{1,12}$")),
        On(F.message.chat.type == "private"),
    )
    return router
