"""aiogram's per-chat machinery without the per-chat memory it keeps forever.

A conversation's state lives in the drafts table, not in aiogram's FSM; yet aiogram's default
``MemoryStorage`` adds a record for every chat it is asked about, and ``SimpleEventIsolation``
a lock for every chat it has locked, and neither ever lets go: some 2 KB for each resident who
ever wrote. These two keep nothing once a chat's update has been handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, StateType, StorageKey


class ChatLocks(BaseEventIsolation):
    """One update at a time per chat and user; a lock lives while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[StorageKey, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            entry = self._locks.get(key)
            if entry is not None and entry[1] == 1:
                del self._locks[key]
            elif entry is not None:
                self._locks[key] = (entry[0], entry[1] - 1)

    @property
    def held(self) -> int:
        """Chats with a lock now (held or awaited)."""
        return len(self._locks)

    async def close(self) -> None:
        self._locks.clear()


class NoFsmStorage(BaseStorage):
    """aiogram's FSM storage for a bot that keeps its conversations in the database.

    Every update still asks for its chat's state (aiogram's FSM middleware): there is none.
    Setting one is a programming error, not a silent in-memory store that a restart loses.
    """

    async def get_state(self, key: StorageKey) -> str | None:
        return None

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return {}

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        raise NotImplementedError("conversation state lives in the drafts table")

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        raise NotImplementedError("conversation state lives in the drafts table")

    async def close(self) -> None:
        return None
