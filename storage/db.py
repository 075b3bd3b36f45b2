"""Engine and session factory: SQLite in WAL mode with write transactions taken up front."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.sqlite_one_hop import one_hop_dbapi

READ_ONLY = "priemnaya_read_only"  # an execution option: this transaction never writes
STATEMENT_TIMEOUT = 60  # seconds (asyncpg's command_timeout); the slowest report takes ~1 s


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # Up to four connections stay with the duty locks (storage/locks.py) for as long as
        # this process holds them: the pool is sized so that work keeps its own.
        kwargs.setdefault("pool_size", 10)
        # A server that stops answering without closing the connection (a network partition,
        # a failover) would hold a statement, and the update waiting on it, for ever: past
        # this it fails as the database being away, and the update is handled again later.
        kwargs.setdefault("connect_args", {}).setdefault("command_timeout", STATEMENT_TIMEOUT)
        return create_async_engine(url, pool_pre_ping=True, hide_parameters=True, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a failed statement's log line must not carry residents' texts or phones.
    # SQLite writes one transaction at a time, but each connection is a thread of aiosqlite's
    # that costs a start and its caches: keep as many as the chats polled at once use
    # (handlers.telegram.polling.LANES), more only at peaks (the outbox's sends).
    kwargs.setdefault("pool_size", 12)
    kwargs.setdefault("max_overflow", 18)
    one_hop = one_hop_dbapi()
    if one_hop is not None:
        kwargs.setdefault("module", one_hop)
    engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (SQLAlchemy's
        # documented recipe for pysqlite/aiosqlite), so that BEGIN IMMEDIATE below is honoured.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # SQLite's page cache is per connection (2 MB each by default, a dozen connections):
        # the working set is small and the OS caches the file for all of them anyway.
        cursor.execute("PRAGMA cache_size=-512")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock at BEGIN: a deferred transaction that reads and then writes
        # fails with "database is locked" under concurrency instead of waiting its turn.
        # Sessions that only read (reports) say so and take no lock: in WAL mode they see a
        # snapshot while residents' appeals keep being written.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
