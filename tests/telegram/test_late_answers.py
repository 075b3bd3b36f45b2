"""A button press answered too late (Telegram: «query is too old») does not stop what the
handler sends next; other refusals stay errors. The real aiogram Bot, as the bot makes it,
against the fake Bot API over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

from bot.app import make_bot
from bot.settings import load_settings
from tests.fakes.fake_telegram import FakeTelegram

TOKEN = "123456:LATE"
TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


@pytest.fixture
async def fake_and_bot(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeTelegram, Bot]]:
    fake = FakeTelegram(TOKEN)
    await fake.start()
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_API_URL", fake.base_url)
    bot = make_bot(load_settings(_env_file=None))
    try:
        yield fake, bot
    finally:
        await bot.session.close()
        await fake.stop()


async def test_an_expired_query_is_answered_quietly(
    fake_and_bot: tuple[FakeTelegram, Bot],
) -> None:
    fake, bot = fake_and_bot
    fake.inject_error("answerCallbackQuery", 400, TOO_OLD)
    assert await bot.answer_callback_query("4000000000000001") is True
    fake.send_text(fake.user(501, "Анна"), "/start")  # the resident opened the bot
    sent = await bot.send_message(501, "Опишите проблему")  # what the handler does next
    assert sent.text == "Опишите проблему"
    assert [r.name for r in fake.requests] == ["answercallbackquery", "sendmessage"]


async def test_other_refusals_stay_errors(fake_and_bot: tuple[FakeTelegram, Bot]) -> None:
    fake, bot = fake_and_bot
    fake.inject_error("answerCallbackQuery", 400, "Bad Request: message text is empty")
    with pytest.raises(TelegramBadRequest):
        await bot.answer_callback_query("4000000000000002", text="")
    fake.inject_error("sendMessage", 400, TOO_OLD)  # the words matter only for an answer
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(501, "Опишите проблему")
