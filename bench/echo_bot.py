"""The framework's ceiling: a bare aiogram bot that echoes every text, default long polling.

    BOT_TOKEN=… TELEGRAM_API_URL=http://127.0.0.1:PORT python -m bench.echo_bot

``bench.bench_intake`` runs it against the same fake Bot API and the same residents as the
real bot: whatever the real bot does slower than this is the bot's own work.
"""

from __future__ import annotations

import asyncio
import os

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message


async def echo(message: Message) -> None:
    if message.text:
        await message.answer(message.text)


async def run() -> None:
    api = TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"])
    bot = Bot(os.environ["BOT_TOKEN"], session=AiohttpSession(api=api))
    dispatcher = Dispatcher()
    dispatcher.message.register(echo)
    await dispatcher.start_polling(bot, handle_signals=True)


if __name__ == "__main__":
    asyncio.run(run())
