"""aiogram parses each Bot API answer into ``Response[<return type>]``; the bot keeps those
classes, so a garbage collection between two calls does not make aiogram build them again
(pydantic's cache of parametrized generics holds weak references only). The real aiogram Bot,
as the bot makes it, against the fake Bot API over HTTP."""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.methods import Response
from aiogram.types import Message

from bot.app import make_bot
from bot.settings import load_settings
from tests.fakes.fake_telegram import FakeTelegram

TOKEN = "123456:KEEP"


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


def _parsed_with() -> set[int]:
    """The live classes ``Response[…]`` parametrizations: what aiogram has built so far."""
    return {id(cls) for cls in Response.__subclasses__()}


async def test_answers_are_parsed_with_the_same_class_across_collections(
    fake_and_bot: tuple[FakeTelegram, Bot],
) -> None:
    fake, bot = fake_and_bot
    fake.send_text(fake.user(501, "Анна"), "/start")
    first = await bot.send_message(501, "Опишите проблему")
    assert first.text == "Опишите проблему"
    gc.collect()
    kept = weakref.ref(Response[Message])
    built = _parsed_with()
    for n in range(20):
        gc.collect()
        sent = await bot.send_message(501, f"Шаг {n}")
        assert isinstance(sent, Message) and sent.text == f"Шаг {n}"
    assert kept() is Response[Message]
    assert _parsed_with() == built  # nothing built anew
