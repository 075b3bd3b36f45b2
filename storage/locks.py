"""Duty locks: which of several bot processes does a job that must run in one place at a time.

Sending within a bot's platform limits, the deadline scan and the long polls (Telegram answers
a second getUpdates poller with 409, VK hands the same events to every poller) each belong to
one process; the others stand by and take over when the holder dies.

- PostgreSQL: a session-level advisory lock, held on a connection of its own. A process that
  dies (kill -9, a lost machine) drops its connection and with it the lock.
- SQLite (one machine): an exclusive ``flock`` on a file beside the database, released by the
  kernel when the process dies.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


class DutyLock:
    """One named duty. ``acquire()`` never waits: it says whether this process holds it now."""

    name: str

    async def acquire(self) -> bool:
        raise NotImplementedError

    async def still_held(self) -> bool:
        """Whether the lock is still ours (a PostgreSQL connection can be lost under us)."""
        raise NotImplementedError

    async def release(self) -> None:
        raise NotImplementedError


def duty_lock(engine: AsyncEngine, name: str) -> DutyLock:
    url = make_url(str(engine.url))
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            return _ProcessLock(name)  # an in-memory database lives in one process anyway
        return _FileLock(name, Path(f"{database}.{name}.lock"))
    return _AdvisoryLock(engine, name)


def _advisory_key(name: str) -> int:
    """A stable signed 64-bit key per duty name (the same in every process and version)."""
    digest = hashlib.blake2b(f"priemnaya:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _AdvisoryLock(DutyLock):
    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = _advisory_key(name)
        self._conn: AsyncConnection | None = None
        # The holder's job may ask before each of its steps while its watch asks too: one
        # statement at a time on the lock's connection.
        self._asking = asyncio.Lock()

    async def acquire(self) -> bool:
        if self._conn is not None:
            return await self.still_held()
        conn = await self.engine.connect()
        try:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            # Autocommit-like: end the implicit transaction, keep the session (and its lock).
            await conn.commit()
        except Exception:
            await conn.close()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def still_held(self) -> bool:
        async with self._asking:
            return await self._still_held()

    async def _still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            await self._conn.scalar(text("SELECT 1"))
            await self._conn.commit()
        except Exception as exc:
            # The session is gone, and with it the lock: another process may hold it now.
            log.warning("lost the %s lock: %s", self.name, exc.__class__.__name__)
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        async with self._asking:
            await self._release()

    async def _release(self) -> None:
        if self._conn is None:
            return
        try:
            await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            await self._conn.commit()
        except Exception:
            log.debug("unlock of %s failed; dropping the connection drops the lock", self.name)
            await self._drop()
            return
        conn, self._conn = self._conn, None
        await conn.close()

    async def _drop(self) -> None:
        """Throw the connection away rather than hand it back to the pool: a session that may
        still hold the lock must not live on in another unit of work."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception:
                log.debug("closing the %s lock's connection failed", self.name)


class _FileLock(DutyLock):
    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self._file: IO[bytes] | None = None

    async def acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._file = handle
        return True

    async def still_held(self) -> bool:
        return self._file is not None

    async def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


class _ProcessLock(DutyLock):
    def __init__(self, name: str) -> None:
        self.name = name
        self._held = False

    async def acquire(self) -> bool:
        self._held = True
        return True

    async def still_held(self) -> bool:
        return self._held

    async def release(self) -> None:
        self._held = False
