"""Migration 0003_deadlines on a database that already holds appeals (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.config import CoreConfig
from storage.migrate import alembic_config, upgrade_to_head
from storage.uow import Database
from tests.core.test_lifecycle import ANNA, IVAN, make_world


async def _downgrade(engine: AsyncEngine, revision: str) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def test_open_appeals_are_scanned_after_the_upgrade(
    engine: AsyncEngine, db: Database, config: CoreConfig
) -> None:
    world = await make_world(db, config)
    open_id, _ = await world.file(ANNA, "roads")
    closed_id, _ = await world.file(ANNA, "roads")
    assert (await world.staff.reject(IVAN, closed_id, "spam")).ok

    await _downgrade(engine, "0002_vk")
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda sync: [column["name"] for column in inspect(sync).get_columns("appeals")]
        )
    assert "next_check_at" not in columns and "solution_deadline_at" not in columns

    await upgrade_to_head(engine)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT id, next_check_at = created_at AS planned, solution_deadline_at "
                    "FROM appeals ORDER BY id"
                )
            )
        ).all()
    assert [(row[0], bool(row[1]) if row[1] is not None else None, row[2]) for row in rows] == [
        (open_id, True, None),
        (closed_id, None, None),
    ]
