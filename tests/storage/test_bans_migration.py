"""Migration 0005 (bans, the hourly limit's index) down and up on a database that holds
residents and appeals (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.config import CoreConfig
from bot.core.model import StaffActor
from storage.migrate import upgrade_to_head
from storage.uow import Database
from tests.conftest import COORDINATOR
from tests.core.test_lifecycle import ANNA, make_world
from tests.storage.test_deadlines_migration import _downgrade

BOSS = StaffActor(user_id=COORDINATOR, name="Ольга", chat_id=COORDINATOR, is_coordinator=True)


def _shape(sync: Connection) -> tuple[list[str], list[str]]:
    inspector = inspect(sync)
    columns = [column["name"] for column in inspector.get_columns("residents")]
    indexes = [index["name"] or "" for index in inspector.get_indexes("appeals")]
    return columns, indexes


async def test_bans_migration_down_and_up(
    engine: AsyncEngine, db: Database, config: CoreConfig
) -> None:
    world = await make_world(db, config)
    _, number = await world.file(ANNA, "roads")
    assert (await world.intake.bans.ban(BOSS, f"{number} спам")).ok

    await _downgrade(engine, "0004_report_indexes")
    async with engine.connect() as conn:
        columns, indexes = await conn.run_sync(_shape)
    assert not {"banned_at", "ban_reason", "ban_notified"} & set(columns)
    assert "ix_appeals_resident_created" not in indexes

    await upgrade_to_head(engine)
    async with engine.connect() as conn:
        columns, indexes = await conn.run_sync(_shape)
        rows = (
            await conn.execute(text("SELECT banned_at, ban_reason, ban_notified FROM residents"))
        ).all()
    assert {"banned_at", "ban_reason", "ban_notified"} <= set(columns)
    assert "ix_appeals_resident_created" in indexes
    # Residents from before: not banned, and the flag has its default.
    assert [(row[0], row[1], bool(row[2])) for row in rows] == [(None, None, False)]
    # And the bot works on the upgraded schema.
    assert await world.intake.bans.gate(ANNA) is None
    assert (await world.intake.bans.ban(BOSS, number)).ok
    assert await world.intake.bans.gate(ANNA) is not None
