"""Per-chat locks that serialise a chat's updates and keep nothing once it is quiet."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.fsm.storage.base import StorageKey

from handlers.telegram.isolation import ChatLocks, NoFsmStorage


def key(chat: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=chat, user_id=chat)


async def test_one_chat_in_order_others_side_by_side_and_nothing_kept() -> None:
    locks = ChatLocks()
    events: list[str] = []

    async def update(chat: int, name: str, pause: float) -> None:
        async with locks.lock(key(chat)):
            events.append(f"{name} in")
            await asyncio.sleep(pause)
            events.append(f"{name} out")

    first = asyncio.create_task(update(1, "a1", 0.05))
    await asyncio.sleep(0)
    second = asyncio.create_task(update(1, "a2", 0))
    other = asyncio.create_task(update(2, "b", 0))
    await asyncio.sleep(0.01)
    assert locks.held == 1  # chat 1 (held and awaited); chat 2 is done and forgotten
    await asyncio.gather(first, second, other)
    assert events.index("a1 out") < events.index("a2 in")
    assert events.index("b out") < events.index("a1 out")  # chat 2 did not wait for chat 1
    assert locks.held == 0


async def test_a_failing_update_releases_its_chat() -> None:
    locks = ChatLocks()
    with pytest.raises(RuntimeError):
        async with locks.lock(key(5)):
            raise RuntimeError("handler failed")
    assert locks.held == 0
    async with asyncio.timeout(1):
        async with locks.lock(key(5)):
            assert locks.held == 1


async def test_the_fsm_storage_keeps_nothing_and_refuses_state() -> None:
    storage = NoFsmStorage()
    assert await storage.get_state(key(1)) is None
    assert await storage.get_data(key(1)) == {}
    with pytest.raises(NotImplementedError):
        await storage.set_state(key(1), "step")
