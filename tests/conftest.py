"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when reachable) and services."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.catalog import load_catalog
from bot.core.config import CoreConfig
from bot.settings import DEFAULT_CATEGORIES_FILE
from storage.db import create_engine, session_factory
from storage.migrate import upgrade_to_head
from storage.uow import Database

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
COORDINATOR = 900


async def _postgres_engine() -> tuple[AsyncEngine, str] | None:
    """An engine on a schema of its own, so runs that overlap on one server never collide."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception:
        return None
    finally:
        await admin.dispose()
    engine = create_engine(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
    return engine, schema


async def _drop_schema(schema: str) -> None:
    admin = create_engine(POSTGRES_URL)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    schema = None
    if request.param == "sqlite":
        made = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    else:
        maybe = await _postgres_engine()
        if maybe is None:
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: PostgreSQL tests skipped")
        made, schema = maybe
    try:
        await upgrade_to_head(made)
        yield made
    finally:
        await made.dispose()
        if schema is not None:
            await _drop_schema(schema)


@pytest.fixture
async def db(engine: AsyncEngine) -> Database:
    database = Database(session_factory(engine))
    async with database.uow() as uow:
        await uow.catalog.sync(load_catalog(DEFAULT_CATEGORIES_FILE))
        await uow.commit()
    return database


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """SQLite only, for tests about behaviour rather than the database."""
    made = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'only.db'}")
    await upgrade_to_head(made)
    database = Database(session_factory(made))
    async with database.uow() as uow:
        await uow.catalog.sync(load_catalog(DEFAULT_CATEGORIES_FILE))
        await uow.commit()
    yield database
    await made.dispose()


@pytest.fixture
def config() -> CoreConfig:
    return CoreConfig(tz=ZoneInfo("Europe/Moscow"), coordinator_ids=(COORDINATOR,))
