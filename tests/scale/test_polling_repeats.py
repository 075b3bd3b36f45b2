"""Which polling batches are looked up for updates handled before (OncePerUpdate): the first
after start, and the first after any failed getUpdates — a 409 means another poller got in and
may have handled updates it never confirmed."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiogram.exceptions import TelegramConflictError, TelegramNetworkError
from aiogram.methods import GetUpdates
from aiogram.types import Update

from handlers.telegram import polling
from handlers.telegram.once import MAYBE_REPEATED


def update(update_id: int) -> Update:
    return Update.model_validate(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 1700000000,
                "chat": {"id": 7, "type": "private"},
                "from": {"id": 7, "is_bot": False, "first_name": "Анна"},
                "text": f"сообщение {update_id}",
            },
        }
    )


class StubBot:
    """getUpdates answers from a script; when it runs out, polling waits forever."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.session = SimpleNamespace(timeout=1)

    async def delete_webhook(self, drop_pending_updates: bool = False) -> bool:
        return True

    async def __call__(self, method: GetUpdates, request_timeout: int | None = None) -> Any:
        if not self.answers:
            await asyncio.Event().wait()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class RecordingDispatcher:
    def __init__(self, expected: int) -> None:
        self.fed: list[tuple[int, bool]] = []
        self.expected = expected
        self.done = asyncio.Event()

    async def feed_update(self, bot: object, update: Update, **data: Any) -> None:
        self.fed.append((update.update_id, data[MAYBE_REPEATED]))
        if len(self.fed) >= self.expected:
            self.done.set()


async def test_only_batches_that_may_repeat_are_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polling, "MAX_DELAY", 0.0)
    monkeypatch.setattr(asyncio, "sleep", _no_wait(asyncio.sleep))
    bot = StubBot(
        [
            [update(1), update(2)],  # the first batch after start
            [update(3)],  # follows a confirmed offset
            TelegramConflictError(GetUpdates(), "Conflict: terminated by other getUpdates"),
            [update(3), update(4)],  # the other poller may have handled 3
            [update(5)],
            TelegramNetworkError(GetUpdates(), "connection reset"),
            [update(6)],
        ]
    )
    dispatcher = RecordingDispatcher(expected=7)
    task = asyncio.create_task(polling.poll(bot, dispatcher, ["message"]))  # type: ignore[arg-type]
    async with asyncio.timeout(5):
        await dispatcher.done.wait()
    task.cancel()
    assert dispatcher.fed == [
        (1, True),
        (2, True),
        (3, False),
        (3, True),
        (4, True),
        (5, False),
        (6, True),
    ]


def _no_wait(sleep: Any) -> Any:
    async def no_wait(delay: float, *args: Any) -> Any:
        return await sleep(0, *args)

    return no_wait
