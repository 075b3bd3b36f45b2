"""SQLite's writers of one process take turns (storage.uow.WriteTurn): one after another, a
unit of work opened inside another of the same task goes ahead, and a failure gives the turn
back."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from storage.models import Draft
from storage.uow import Database


async def save(db: Database, user: str, events: list[str], pause: float = 0.0) -> None:
    async with db.uow() as uow:
        events.append(f"{user} in")
        await uow.drafts.save("telegram", user, "description", {"photos": []})
        await asyncio.sleep(pause)  # other tasks run meanwhile
        events.append(f"{user} commits")
        await uow.commit()


async def test_writers_take_turns_and_readers_do_not_wait(sqlite_db: Database) -> None:
    events: list[str] = []
    first = asyncio.create_task(save(sqlite_db, "1", events, pause=0.2))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(save(sqlite_db, "2", events))
    async with asyncio.timeout(1), sqlite_db.uow(read_only=True) as uow:
        # a reader is not held up by the writer in progress
        assert await uow.session.scalar(select(func.count()).select_from(Draft)) == 0
    await asyncio.gather(first, second)
    assert events == ["1 in", "1 commits", "2 in", "2 commits"]


async def test_a_unit_inside_another_of_the_same_task_goes_ahead(sqlite_db: Database) -> None:
    async with asyncio.timeout(5), sqlite_db.uow() as outer:
        async with sqlite_db.uow() as inner:  # before the outer one wrote anything
            await inner.drafts.save("telegram", "7", "category", {"photos": []})
            await inner.commit()
        await outer.drafts.save("telegram", "8", "category", {"photos": []})
        await outer.commit()
    async with sqlite_db.uow(read_only=True) as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Draft)) == 2


async def test_a_failed_unit_gives_the_turn_back(sqlite_db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with sqlite_db.uow() as uow:
            await uow.drafts.save("telegram", "9", "category", {"photos": []})
            raise RuntimeError("the step failed")
    async with asyncio.timeout(2):
        await save(sqlite_db, "10", [])
    async with sqlite_db.uow(read_only=True) as uow:
        stored = await uow.session.scalars(select(Draft.external_id))
        assert list(stored) == ["10"]  # the failed one was rolled back
