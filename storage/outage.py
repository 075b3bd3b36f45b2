"""Failures that are the storage being away, not the update's own fault.

An update that meets one was not handled, and handling it again later will work: it is handed
over again (polling does not confirm it, a webhook answers 503) instead of being answered
with an apology and forgotten. An update that fails by itself (a bug, a value the database
refuses, a statement SQLite cannot run) would fail again and is not retried.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

try:  # redis-py is there with aiogram's Redis support; only multi-process installs use it
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout

    _REDIS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeout)
except ImportError:  # pragma: no cover
    _REDIS = ()

# A connection refused, dropped or silent past its timeout (asyncpg, redis-py), a pool with
# no connection to give.
_AWAY: tuple[type[BaseException], ...] = (
    DisconnectionError,
    PoolTimeout,
    ConnectionError,
    TimeoutError,
    *_REDIS,
)
# PostgreSQL's SQLSTATEs of a server that is away or refusing for now: connection exceptions
# (08…), shutting down or starting up (57P01–57P03), too many clients (53300), not accepting
# connections (55000), a statement cancelled (57014: a timeout), and transactions the server
# gave up to let others through (serialization failure, deadlock).
_PG_AWAY_CLASSES = ("08",)
_PG_AWAY = {"57P01", "57P02", "57P03", "53300", "55000", "57014", "40001", "40P01"}
# SQLite: only what waiting mends. Anything else it calls "operational" (no such table or
# function, a syntax error) is the code's fault.
_SQLITE_AWAY = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "disk i/o error",
)
# The messaging platforms' clients: their errors, whatever they were raised from, are the
# platform's trouble (a Bot API call timing out), not the storage's.
_PLATFORMS = ("aiogram", "aiohttp", "vkbottle")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is the database or Redis being away."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.split(".")[0] in _PLATFORMS:
            return False
        if isinstance(current, DBAPIError):
            return _database_away(current)
        if isinstance(current, _AWAY):
            return True
        current = current.__cause__
    return False


def _database_away(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str):
        return state.startswith(_PG_AWAY_CLASSES) or state in _PG_AWAY
    if isinstance(orig, sqlite3.Error) or "database is locked" in str(orig):
        message = str(orig).lower()
        return any(sign in message for sign in _SQLITE_AWAY)
    # A driver error with no code: only a connection that failed under it counts.
    return isinstance(orig, _AWAY) or isinstance(exc.__cause__, _AWAY)
