"""The highest intake ratio this stack allows a bot that stores each step and answers like ours.

    python -m bench.bench_ceiling [--calls 3000] [--steps 3000] [--calls-per-message 1.89]

``bench_intake`` compares the bot with a bare aiogram echo bot. This measures the two parts of
a resident's message that no code of the bot's own can make cheaper, and the best ratio to the
echo that they leave:

- the echo bot's CPU per update (receive, route, one ``sendMessage``), as in ``bench_intake``;
- one more Bot API call through aiogram, as the bot makes it (its ``Bot``, its request
  middlewares, its deferred models), measured in a child process so the fake server's CPU is
  not counted: ``sendMessage`` with an inline keyboard, ``editMessageReplyMarkup``,
  ``answerCallbackQuery``;
- the least durable step: one write transaction on the bot's SQLite engine (WAL, ``BEGIN
  IMMEDIATE``, its one-hop aiosqlite adapter) that reads a row by key, upserts it and records
  an update id, on two bare tables, with no logic at all; through SQLAlchemy's asyncio ORM
  session (as the bot's units of work) and through a bare connection, the cheaper counted.

The bot's message cannot cost less than the echo's update, plus its extra Bot API calls (1.89
per message in ``bench_intake``: a press is answered, its buttons are taken away, the next
prompt is sent), plus that step. The echo's cost divided by that sum is the ceiling; the
bot's routing, its checks and the submission's sixteen statements only lower it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, bindparam, insert, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bench.bench_intake import ECHO_MESSAGES, run_echo
from bench.chat_index import IndexedTelegram
from bench.processes import ROOT, TOKEN
from storage.db import create_engine, session_factory

TARGET_RATIO = 0.5
CONCURRENCY = 10  # calls in flight at once, as many as the bot's polling lanes
CALLS_PER_MESSAGE = 1.89  # bench_intake: 13,200 Bot API calls for 7,000 resident messages
KEYBOARD = {"inline_keyboard": [[{"text": "✅ Отправить", "callback_data": "i:confirm:submit"}]]}


# The Bot API calls, in a child process ---------------------------------------------------------


async def measure_calls(api_url: str, chat_id: int, calls: int, queries: list[str]) -> None:
    """In the child: CPU ms per call of each method, as JSON on stdout."""
    from aiogram.types import InlineKeyboardMarkup

    from bot.app import make_bot
    from bot.lazy_models import AIOGRAM, defer_models
    from bot.settings import Settings

    defer_models(*AIOGRAM)  # as the bot does at start
    bot = make_bot(Settings(bot_token=TOKEN, telegram_api_url=api_url))
    markup = InlineKeyboardMarkup.model_validate(KEYBOARD)
    room = asyncio.Semaphore(CONCURRENCY)
    sent: list[int] = []

    async def send(n: int) -> None:
        async with room:
            message = await bot.send_message(chat_id, f"Шаг {n}: выберите", reply_markup=markup)
            sent.append(message.message_id)

    async def edit(message_id: int) -> None:
        async with room:
            await bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=None
            )

    async def answer(query: str) -> None:
        async with room:
            await bot.answer_callback_query(query)

    try:
        await asyncio.gather(*(send(n) for n in range(50)))  # warm: connections, validators
        sent.clear()
        result = {"sendMessage": await _timed([send(n) for n in range(calls)])}
        result["editMessageReplyMarkup"] = await _timed([edit(m) for m in list(sent)])
        result["answerCallbackQuery"] = await _timed([answer(q) for q in queries])
    finally:
        await bot.session.close()
    print(json.dumps(result))


async def _timed(work: list[Coroutine[Any, Any, None]]) -> float:
    """CPU ms per coroutine of running them all at once."""
    started = time.process_time()
    await asyncio.gather(*work)
    return 1000 * (time.process_time() - started) / max(len(work), 1)


async def calls_in_child(calls: int) -> dict[str, float]:
    fake = IndexedTelegram()
    await fake.start()
    user = fake.user(77_001, "Анна")
    fake.send_text(user, "/start")  # the resident opens the chat: the bot may write to it
    queries = [fake.press_forged(user, _message(fake, user["id"]), "i:x") for _ in range(calls)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_ceiling",
        "--child",
        fake.base_url,
        str(user["id"]),
        str(calls),
        *queries,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await child.communicate()
    finally:
        await fake.stop()
    if child.returncode != 0:
        raise RuntimeError(f"the calls' child failed:\n{err.decode()}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


def _message(fake: IndexedTelegram, chat_id: int) -> dict[str, Any]:
    """A message of the bot's in the chat, for presses to come from."""
    key = (chat_id, 1)
    if key not in fake.messages:
        fake.messages[key] = {
            "message_id": 1,
            "date": int(time.time()),
            "chat": fake.chats[chat_id],
            "from": fake.bot_user,
            "text": "Выберите",
            "reply_markup": KEYBOARD,
        }
    return fake.messages[key]


# The least durable step ---------------------------------------------------------------------

metadata = MetaData()
drafts = Table(
    "drafts",
    metadata,
    Column("chat", String(64), primary_key=True),
    Column("step", String(32), nullable=False),
    Column("data", Text, nullable=False),
)
handled = Table("handled", metadata, Column("key", String(64), primary_key=True))
READ = select(drafts.c.step, drafts.c.data).where(drafts.c.chat == bindparam("chat"))
_upsert = sqlite_insert(drafts)
WRITE = _upsert.on_conflict_do_update(
    index_elements=[drafts.c.chat],
    set_={"step": _upsert.excluded.step, "data": _upsert.excluded.data},
)
RECORD = insert(handled)


async def measure_step(steps: int) -> dict[str, float]:
    """CPU ms of one bare write transaction on the bot's SQLite engine (its thread included),
    through an ORM session (as the bot's units of work) and through a bare connection."""
    with tempfile.TemporaryDirectory(prefix="priemnaya-ceiling-") as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'ceiling.db'}")
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        sessions = session_factory(engine)

        async def in_session(n: int) -> None:
            chat = str(10_000 + n % 1000)
            async with sessions() as session:
                row = (await session.execute(READ, {"chat": chat})).first()
                data = json.dumps({"n": n, "kept": row is not None})
                await session.execute(WRITE, {"chat": chat, "step": "description", "data": data})
                await session.execute(RECORD, {"key": f"s:{n}"})
                await session.commit()

        async def in_connection(n: int) -> None:
            chat = str(10_000 + n % 1000)
            async with engine.begin() as connection:
                row = (await connection.execute(READ, {"chat": chat})).first()
                data = json.dumps({"n": n, "kept": row is not None})
                await connection.execute(WRITE, {"chat": chat, "step": "address", "data": data})
                await connection.execute(RECORD, {"key": f"c:{n}"})

        result: dict[str, float] = {}
        try:
            for label, step in (("ORM session", in_session), ("bare connection", in_connection)):
                for n in range(100):  # warm: the pool, the statement cache
                    await step(-1 - n)
                started = time.process_time()
                for n in range(steps):
                    await step(n)
                result[label] = 1000 * (time.process_time() - started) / steps
            return result
        finally:
            await engine.dispose()


# The table ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="priemnaya-ceiling-") as tmp:
        echo = await run_echo(1000, ECHO_MESSAGES, Path(tmp))
    echo_ms = 1000 * echo.cpu_seconds / max(echo.result.answered, 1)
    calls = await calls_in_child(args.calls)
    steps = await measure_step(args.steps)
    step_ms = min(steps.values())
    extra = args.calls_per_message - 1
    cheapest = min(calls.values())
    least = echo_ms + extra * cheapest + step_ms
    rows = [
        ("echo bot: one update (receive, route, one sendMessage)", echo_ms),
        *((f"one Bot API call: {method}", ms) for method, ms in calls.items()),
        *(
            (f"one write transaction (read, upsert, record), {how}", ms)
            for how, ms in steps.items()
        ),
        (
            f"least per message: echo + {extra:.2f} × cheapest call + cheapest transaction",
            least,
        ),
    ]
    width = max(len(label) for label, _ in rows) + 2
    print(f"{'part':<{width}}{'CPU ms':>8}")
    print("-" * (width + 8))
    for label, ms in rows:
        print(f"{label:<{width}}{ms:>8.3f}")
    print(f"\nhighest reachable ratio to the echo bot: {echo_ms / least:.2f}")
    print(f"target: {TARGET_RATIO}; it needs at most {echo_ms / TARGET_RATIO:.2f} ms per message")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        url, chat, calls, *queries = sys.argv[2:]
        asyncio.run(measure_calls(url, int(chat), int(calls), queries))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="Bot API calls per method")
    parser.add_argument("--steps", type=int, default=3000, help="write transactions")
    parser.add_argument("--calls-per-message", type=float, default=CALLS_PER_MESSAGE)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
