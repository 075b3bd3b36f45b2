"""The bot as a subprocess (as the README starts it) and what the end-to-end tests share:
reading its database, waiting, and playing people against the fake Bot API."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from tests.fakes.fake_telegram import JSON, FakeTelegram, Request

TOKEN = "123456:TEST"
COORDINATOR_ID = 900
STAFF_ID = 701
ROADS_GROUP = -100111
ROADS_DEPARTMENT = "Управление дорожного хозяйства"
START_TIMEOUT = 20.0
WAIT = 15.0


class BotProcess:
    """``python -m bot`` as the README runs it, with its output in a log file."""

    def __init__(
        self,
        api_url: str,
        db_path: Path,
        workdir: Path,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.api_url = api_url
        self.extra_env = extra_env or {}
        self.db_path = db_path
        self.workdir = workdir
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    def env(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        env = {key: os.environ[key] for key in keep if key in os.environ}
        env.update(
            BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=self.api_url,
            DATABASE_URL=f"sqlite+aiosqlite:///{self.db_path}",
            COORDINATOR_IDS=str(COORDINATOR_ID),
            TIMEZONE="Europe/Moscow",
            ANSWER_DEADLINE="PT8H",
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    async def start(
        self, fake: FakeTelegram, ready: Callable[[], bool] | None = None, polls: bool = True
    ) -> None:
        """Start and wait until the bot long-polls the fake (and ``ready()`` holds); with
        ``polls=False`` (webhook mode, a process standing by) only until ``ready()`` holds."""
        self.starts += 1
        self._log = self.log_path.open("ab")
        self._log.write(f"\n===== start #{self.starts} =====\n".encode())
        self._log.flush()
        started = fake.polls_started if polls else -1
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=self.workdir,
            env=self.env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while fake.polls_started == started or (ready is not None and not ready()):
            if self.process.returncode is not None:
                raise AssertionError(
                    f"the bot exited with {self.process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not start polling:\n{self.log()}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no clean shutdown at all, as in a power cut or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self._close_log()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if the bot does not exit in time."""
        if self.process is None or self.process.returncode is not None:
            self._close_log()
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._close_log()

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


# Reading the bot's database ---------------------------------------------------------------


def db_rows(db_path: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        connection.row_factory = sqlite3.Row
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


def appeal_row(db_path: Path, number: str) -> sqlite3.Row:
    rows = db_rows(db_path, "SELECT * FROM appeals WHERE number = ?", number)
    assert len(rows) == 1, f"appeal {number} not in the database"
    return rows[0]


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {what}")
        await asyncio.sleep(0.05)


def outbox_idle(db_path: Path) -> bool:
    return not db_rows(db_path, "SELECT id FROM outbox WHERE status = 'pending'")


# Small predicates over recorded requests ----------------------------------------------------


def text_to(chat_id: int, *fragments: str) -> Callable[[Request], bool]:
    """A sendMessage to ``chat_id`` whose text contains every fragment."""

    def check(r: Request) -> bool:
        return (
            r.ok
            and r.name == "sendmessage"
            and r.chat_id == chat_id
            and all(f in r.text for f in fragments)
        )

    return check


def with_button(chat_id: int, data: str) -> Callable[[Request], bool]:
    return lambda r: r.is_send(chat_id) and data in r.callback_data


def answer_to(query_id: str) -> Callable[[Request], bool]:
    """The answerCallbackQuery for one button press."""
    return lambda r: r.name == "answercallbackquery" and r.params["callback_query_id"] == query_id


def card_in(chat_id: int, appeal_number: str) -> Callable[[Request], bool]:
    """An appeal's card: its number and a «Взять в работу» button."""
    return lambda r: (
        text_to(chat_id, f"№ {appeal_number}")(r)
        and any(d.startswith("s:take:") for d in r.callback_data)
    )


def button_data(message: JSON, text: str) -> str:
    """The callback data of the inline button titled ``text`` under ``message``."""
    for row in message.get("reply_markup", {}).get("inline_keyboard", []):
        for button in row:
            if button["text"] == text:
                return str(button["callback_data"])
    raise AssertionError(f"no button {text!r} under message: {message.get('reply_markup')}")


def appeal_id_from(card: Request) -> int:
    take = next(d for d in card.callback_data if d.startswith("s:take:"))
    return int(take.split(":")[2])


def number(seq: int) -> str:
    return f"{datetime.now(ZoneInfo('Europe/Moscow')).year}-{seq:06d}"


# Playing the people ---------------------------------------------------------------------------


async def bind_group(
    fake: FakeTelegram, coordinator: JSON, chat_id: int, department: str, command: str
) -> None:
    since = fake.mark()
    fake.send_text(coordinator, command, chat=chat_id)
    menu = await fake.wait_for(
        lambda r: r.is_send(chat_id) and any(d.startswith("b:") for d in r.callback_data),
        since=since,
        what=f"/bind menu in {chat_id}",
    )
    assert menu.message is not None
    # A reply to the command, so the coordinator sees which /bind it answers.
    assert menu.message["reply_to_message"]["text"] == command
    data = button_data(menu.message, department)
    query = fake.press(coordinator, menu.message, data)
    answered = await fake.wait_for(answer_to(query), since=since, what="the bind button answered")
    assert answered.ok
    await fake.wait_for(
        lambda r: (
            r.ok
            and r.name == "editmessagetext"
            and r.chat_id == chat_id
            and "Группа привязана" in r.text
            and department in r.text
        ),
        since=since,
        what=f"binding of {chat_id} confirmed",
    )


async def start_appeal(fake: FakeTelegram, resident: JSON, category: str) -> None:
    """/start, then the category button; ends when the bot asks for the description."""
    chat = resident["id"]
    since = fake.mark()
    fake.send_text(resident, "/start")
    menu = await fake.wait_for(
        with_button(chat, f"i:category:{category}"), since=since, what="category buttons"
    )
    assert menu.message is not None
    since = fake.mark()
    fake.press(resident, menu.message, f"i:category:{category}")
    await fake.wait_for(text_to(chat, "Опишите проблему"), since=since, what="description asked")


async def say(
    fake: FakeTelegram, resident: JSON, text: str, expect: str, what: str = ""
) -> Request:
    since = fake.mark()
    fake.send_text(resident, text)
    return await fake.wait_for(
        text_to(resident["id"], expect), since=since, what=what or f"«{expect}» after «{text}»"
    )


async def submit(fake: FakeTelegram, resident: JSON, summary_has: tuple[str, ...]) -> str:
    """At the summary: check it, press «Отправить»; returns the «принято» text."""
    chat = resident["id"]
    summary = await fake.wait_for(
        with_button(chat, "i:confirm:submit"), what="the summary with «Отправить»"
    )
    for fragment in summary_has:
        assert fragment in summary.text, summary.text
    assert summary.message is not None
    since = fake.mark()
    fake.press(resident, summary.message, "i:confirm:submit")
    accepted = await fake.wait_for(
        text_to(chat, "принято"), since=since, what="«Обращение № … принято»"
    )
    # The pressed summary loses its buttons, so it cannot be sent twice.
    assert "reply_markup" not in fake.message(chat, summary.message["message_id"])
    return accepted.text
