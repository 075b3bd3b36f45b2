"""Duty locks and run_duty: one process at a time does a duty, another takes over when it stops,
and a holder whose PostgreSQL session dies notices and stands by."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.ratelimit import Limits, RateLimiter
from bot.duties import run_duty
from storage.locks import _advisory_key, duty_lock
from storage.uow import Database
from tests.core.recording import RecordingSender


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


async def test_a_sender_whose_lock_went_with_its_session_stops_before_the_next_send(
    engine: AsyncEngine, db: Database, config: CoreConfig
) -> None:
    """A database restart or failover ends the sending duty's session; another process takes
    the duty within seconds. Sending on until the holder's watch looks again would deliver
    the same messages from both: only those already on their way may arrive twice."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a lost session is PostgreSQL's case (a flock dies with the process)")
    chats = [str(700_000 + n) for n in range(300)]
    async with db.uow() as uow:
        for chat in chats:
            await uow.outbox.add("telegram", chat, "text", {"text": f"Уведомление для {chat}"})
        await uow.commit()
    paced = Limits(per_second=100, private_interval=0.0, group_per_minute=0, spaced=True)

    def sending(sender: RecordingSender, watch: float) -> tuple[asyncio.Task[None], asyncio.Event]:
        worker = OutboxWorker(
            db, config, {"telegram": sender}, {"telegram": RateLimiter(paced, lambda c: False)}
        )
        lock, stop = duty_lock(engine, "outbox"), asyncio.Event()
        job = lambda: worker.run(stop, holding=lock.still_held)  # noqa: E731
        return asyncio.create_task(run_duty(lock, job, stop, retry=0.05, check=watch)), stop

    first, second = RecordingSender(), RecordingSender()
    # The first holder's own watch looks only every 30 s: what stops it is the check per send.
    a, stop_a = sending(first, watch=30.0)
    for _ in range(500):
        if len(first.sent) >= 50:
            break
        await asyncio.sleep(0.02)
    key = _advisory_key("outbox")
    async with engine.connect() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid::bigint = :high AND objid::bigint = :low"
            ),
            {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
        )
    b, stop_b = sending(second, watch=0.5)
    try:
        for _ in range(400):
            async with db.uow() as uow:
                if not await uow.outbox.pending(1):
                    break
            await asyncio.sleep(0.05)
    finally:
        for task, stop in ((a, stop_a), (b, stop_b)):
            stop.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    by_first = {s.chat_id for s in first.sent}
    by_second = {s.chat_id for s in second.sent}
    assert by_first | by_second == set(chats)  # nothing lost
    assert len(second.sent) > 0  # the second process did take over
    assert len(by_first & by_second) <= 16  # at most what was on its way (the concurrency)
