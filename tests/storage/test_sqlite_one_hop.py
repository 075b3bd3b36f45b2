"""SQLite through the one-trip cursor: what SQLAlchemy reads back is what the stock one gives,
and a statement costs one trip to aiosqlite's thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage.db import create_engine
from storage.sqlite_one_hop import one_hop_dbapi


async def test_statements_read_back_as_with_the_stock_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert one_hop_dbapi() is not None
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}")
    assert engine.dialect.dbapi is one_hop_dbapi()
    trips: list[Any] = []
    execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(fn)
        return await execute(self, fn, *args, **kwargs)

    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
            inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('а')"))
            assert inserted.lastrowid == 1 and inserted.rowcount == 1
            many = await conn.execute(
                text("INSERT INTO t (name) VALUES (:name)"), [{"name": "б"}, {"name": "в"}]
            )
            assert many.rowcount == 2
            monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
            rows = await conn.execute(text("SELECT id, name FROM t ORDER BY id"))
            assert trips and len(trips) == 1  # cursor, execute, fetch and close in one trip
            assert [tuple(r) for r in rows] == [(1, "а"), (2, "б"), (3, "в")]
            assert list(rows.keys()) == ["id", "name"]
            updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))
            assert updated.rowcount == 2
            empty = await conn.execute(text("SELECT id FROM t WHERE id > 99"))
            assert empty.first() is None
        with pytest.raises(IntegrityError):  # the driver's error, mapped as usual
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (name) VALUES ('а')"))
        async with engine.connect() as conn:
            names = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars()
            assert list(names) == ["а", "б!", "в!"]  # the failed transaction left nothing
    finally:
        await engine.dispose()
