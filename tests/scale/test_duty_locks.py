"""Duty locks and run_duty: one process at a time does a duty, another takes over when it stops,
and a holder whose PostgreSQL session dies notices and stands by."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.duties import run_duty
from storage.locks import _advisory_key, duty_lock


async def test_one_holder_at_a_time(engine: AsyncEngine) -> None:
    first, second = duty_lock(engine, "outbox"), duty_lock(engine, "outbox")
    other = duty_lock(engine, "deadline-scan")
    assert await first.acquire()
    assert await first.acquire()  # asking again keeps it
    assert not await second.acquire()
    assert await other.acquire()  # another duty is independent
    await first.release()
    assert await second.acquire()
    assert not await first.acquire()
    assert await second.still_held()
    for lock in (second, other):
        await lock.release()


async def test_a_stand_by_takes_over_when_the_holder_stops(engine: AsyncEngine) -> None:
    running: list[str] = []

    def job(name: str) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            running.append(name)
            await asyncio.Event().wait()

        return work

    a = asyncio.create_task(run_duty(duty_lock(engine, "outbox"), job("a"), retry=0.05, check=0.05))
    await asyncio.sleep(0.3)
    b = asyncio.create_task(run_duty(duty_lock(engine, "outbox"), job("b"), retry=0.05, check=0.05))
    await asyncio.sleep(0.5)
    assert running == ["a"]  # b stands by
    a.cancel()
    await asyncio.gather(a, return_exceptions=True)
    for _ in range(100):
        if running == ["a", "b"]:
            break
        await asyncio.sleep(0.05)
    assert running == ["a", "b"]
    b.cancel()
    await asyncio.gather(b, return_exceptions=True)


async def test_stop_ends_standing_by(engine: AsyncEngine) -> None:
    holder = duty_lock(engine, "outbox")
    assert await holder.acquire()
    stop = asyncio.Event()

    async def never() -> None:
        raise AssertionError("a stand-by must not run the job")

    waiting = asyncio.create_task(run_duty(duty_lock(engine, "outbox"), never, stop, retry=0.05))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(waiting, 2)
    await holder.release()


async def test_a_holder_whose_session_dies_stands_by(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a lost session is PostgreSQL's case (a flock dies with the process)")
    lock = duty_lock(engine, "outbox")
    assert await lock.acquire()
    key = _advisory_key("outbox")
    async with engine.connect() as conn:
        # The key is split in two 32-bit halves in pg_locks.
        terminated = await conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                "WHERE locktype = 'advisory' AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND classid::bigint = :high AND objid::bigint = :low"
            ),
            {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
        )
    assert terminated == 1
    await asyncio.sleep(0.2)
    assert not await lock.still_held()
    other = duty_lock(engine, "outbox")
    assert await other.acquire()  # the lock went with the session
    await other.release()
