"""The PostgreSQL the benchmarks run on, when asked: a fresh database of their own there."""

from __future__ import annotations

import os
import sys

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

DEFAULT_POSTGRES = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


async def fresh_postgres(url: str, name: str) -> str | None:
    """A new empty database ``name`` beside the one in ``url``; its URL, or None (said on
    stderr) if PostgreSQL cannot be reached."""
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(
            f"PostgreSQL not reachable at {url} ({exc.__class__.__name__}): skipped",
            file=sys.stderr,
        )
        return None
    finally:
        await admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)
