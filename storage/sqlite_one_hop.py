"""SQLite statements that cross to aiosqlite's thread once instead of four times.

aiosqlite runs each call of the sqlite3 module in its own thread: SQLAlchemy's adapter opens a
cursor, executes, fetches the rows and closes the cursor as four separate calls, each a trip
to that thread and back (a future, a wake-up of the event loop: ~40 µs of CPU). A resident's
step runs five statements, an appeal's submission some twenty. The cursor here does all four
in one trip; rows, description, rowcount and lastrowid come back together.

It leans on internals that SQLAlchemy's own adapter uses (aiosqlite's queue of calls, its
sqlite3 connection, the adapter classes): :func:`one_hop_dbapi` returns None when they are
not where expected, and the stock adapter is used.
"""

from __future__ import annotations

import collections
import functools
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


def _run(
    conn: sqlite3.Connection, operation: str, parameters: Any
) -> tuple[Any, list[Any], int, Any]:
    """In aiosqlite's thread: the whole life of one cursor."""
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _run_many(
    conn: sqlite3.Connection, operation: str, seq_of_parameters: Sequence[Any]
) -> tuple[int, Any]:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


@functools.cache
def one_hop_dbapi() -> Any | None:
    """The aiosqlite DBAPI adapter with one-trip cursors (``create_async_engine(module=…)``),
    or None to keep SQLAlchemy's own."""
    try:
        import aiosqlite
        from sqlalchemy.dialects.sqlite.aiosqlite import (
            AsyncAdapt_aiosqlite_connection,
            AsyncAdapt_aiosqlite_cursor,
            AsyncAdapt_aiosqlite_dbapi,
        )
    except ImportError as exc:
        log.info("SQLite: the stock aiosqlite adapter (%s)", exc)
        return None
    if not callable(getattr(aiosqlite.Connection, "_execute", None)):
        log.info("SQLite: the stock aiosqlite adapter (aiosqlite has no call queue)")
        return None

    class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
        __slots__ = ("_description", "_lastrowid", "_rowcount")

        def __init__(self, adapt_connection: Any) -> None:
            # No aiosqlite cursor is kept: each execute makes and closes its own.
            self._adapt_connection = adapt_connection
            self._connection = adapt_connection._connection
            self._cursor = None  # type: ignore[assignment]
            self._soft_closed_memoized: Any = {}
            self._rows: collections.deque[Any] = collections.deque()
            self._description: Any = None
            self._rowcount = -1
            self._lastrowid: Any = None

        @property
        def description(self) -> Any:
            return self._description

        @property
        def rowcount(self) -> int:
            return self._rowcount

        @property
        def lastrowid(self) -> int:
            return self._lastrowid  # type: ignore[no-any-return]

        @property
        def arraysize(self) -> int:
            return 1

        @arraysize.setter
        def arraysize(self, value: int) -> None:
            pass

        async def _async_soft_close(self) -> None:
            return  # nothing is open: the rows are here already

        def close(self) -> None:
            self._rows.clear()

        async def _execute_async(self, operation: Any, parameters: Any) -> None:
            connection = self._connection
            async with self._adapt_connection._execute_mutex:
                described, rows, rowcount, lastrowid = await connection._execute(
                    _run, connection._conn, operation, parameters
                )
            self._description, self._rowcount, self._lastrowid = described, rowcount, lastrowid
            self._rows = collections.deque(rows)

        async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
            connection = self._connection
            async with self._adapt_connection._execute_mutex:
                self._rowcount, self._lastrowid = await connection._execute(
                    _run_many, connection._conn, operation, seq_of_parameters
                )
            self._description = None
            self._rows = collections.deque()

        def setinputsizes(self, *inputsizes: Any) -> None:
            return None

        def nextset(self) -> None:
            return None

    class OneHopConnection(AsyncAdapt_aiosqlite_connection):
        __slots__ = ()
        _cursor_cls = OneHopCursor

    class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
        def connect(self, *arg: Any, **kw: Any) -> Any:
            stock = super().connect(*arg, **kw)
            return OneHopConnection(self, stock._connection)

    return OneHopDBAPI(aiosqlite, sqlite3)
