"""Migration 0007 down and up (SQLite and PostgreSQL): residents.text_buttons, and appeals
resolved before the verdict wait existed are put on the scan."""

from __future__ import annotations

from sqlalchemy import inspect, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.config import CoreConfig
from storage.migrate import upgrade_to_head
from storage.models import Appeal
from storage.uow import Database
from tests.core.test_lifecycle import ANNA, IVAN, make_world
from tests.storage.test_deadlines_migration import _downgrade


def _resident_columns(sync: Connection) -> list[str]:
    return [column["name"] for column in inspect(sync).get_columns("residents")]


async def test_resolved_appeals_from_before_are_scanned_after_the_upgrade(
    engine: AsyncEngine, db: Database, config: CoreConfig
) -> None:
    world = await make_world(db, config)
    resolved_id, _ = await world.file(ANNA, "roads")
    open_id, _ = await world.file(ANNA, "roads")
    assert (await world.staff.resolve(IVAN, resolved_id)).ok
    async with db.uow() as uow:  # as the scan left it before: nothing pending, no next check
        await uow.session.execute(
            update(Appeal).where(Appeal.id == resolved_id).values(next_check_at=None)
        )
        await uow.commit()

    await _downgrade(engine, "0006_residents_banned_index")
    async with engine.connect() as conn:
        assert "text_buttons" not in await conn.run_sync(_resident_columns)
    await upgrade_to_head(engine)
    async with engine.connect() as conn:
        assert "text_buttons" in await conn.run_sync(_resident_columns)

    async with db.uow() as uow:
        resolved = await uow.appeals.get(resolved_id)
        untouched = await uow.appeals.get(open_id)
        resident = await uow.residents.find("telegram", ANNA.user_id)
    assert resolved is not None and resolved.next_check_at == resolved.resolved_at
    assert untouched is not None and untouched.next_check_at is not None
    assert untouched.status == "new"
    assert resident is not None and resident.text_buttons is False
