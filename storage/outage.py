"""Failures that are the storage being away, not the update's own fault.

An update that meets one was not handled, and handling it again later will work: it is handed
over again (polling does not confirm it, a webhook answers 503) instead of being answered
with an apology and forgotten. An update that fails by itself (a bug, a value the database
refuses) would fail again and is not retried.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

try:  # redis-py is there with aiogram's Redis support; only multi-process installs use it
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout

    _REDIS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeout)
except ImportError:  # pragma: no cover
    _REDIS = ()

# Lost or refused connections, a pool with no connection to give, "database is locked" past
# its wait, a statement or a socket that timed out (asyncpg, redis-py).
OUTAGES: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
    ConnectionError,
    TimeoutError,
    *_REDIS,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is the database or Redis being
    unreachable. Only explicit causes count: a platform's own timeout, raised while handling
    a socket's, is the platform's trouble, not the storage's."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OUTAGES):
            return not _schema_error(current)
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__
    return False


# SQLite reports a statement it cannot run (a schema out of step with the code) as an
# OperationalError too: that is a fault of the code, which waiting would not mend.
_SCHEMA_ERRORS = ("no such table", "no such column", "syntax error", "has no column")


def _schema_error(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    message = str(exc.orig).lower()
    return any(sign in message for sign in _SCHEMA_ERRORS)
