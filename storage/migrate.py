"""Bring the schema up to date with alembic: ``upgrade_to_head`` in tests, and as
``python -m storage.migrate`` the child the bot starts (``storage.upgrade``)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from storage.db import create_engine
from storage.upgrade import CANNOT_OPEN, URL_VARIABLE

MIGRATIONS_DIR = Path(migrations.__file__).parent


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade_to_head(engine: AsyncEngine) -> None:
    def _upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def _main(url: str) -> int:
    # A migration may rewrite a large table: no statement timeout (on PostgreSQL; SQLite has
    # none to lift).
    no_timeout = {"connect_args": {"command_timeout": None}} if url.startswith("postgres") else {}
    engine = create_engine(url, **no_timeout)
    try:
        await upgrade_to_head(engine)
    except (DBAPIError, OSError) as exc:
        # One line for the parent to quote: the driver's reason, never the statement.
        print(str(getattr(exc, "orig", None) or exc).splitlines()[0], file=sys.stderr)
        return CANNOT_OPEN
    finally:
        await engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(os.environ[URL_VARIABLE])))
