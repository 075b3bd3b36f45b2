"""Which failures count as the storage being away (the update is handed over again) and which
are the update's own (answered with an apology, not retried)."""

from __future__ import annotations

import sqlite3

from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import SendMessage
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from storage.outage import is_outage


class ServerError(Exception):
    """A driver's error carrying PostgreSQL's SQLSTATE, as asyncpg's do."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _raised_from(exc: Exception) -> Exception:
    try:
        try:
            raise exc
        except Exception as inner:
            raise RuntimeError("while handling the update") from inner
    except RuntimeError as outer:
        return outer


def test_the_storage_away_is_an_outage() -> None:
    locked = OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))
    assert is_outage(locked)
    assert is_outage(_raised_from(locked))  # raised from it, further up
    assert is_outage(ConnectionRefusedError(111, "Connect call failed"))
    assert is_outage(RedisConnectionError("Connection refused"))
    assert is_outage(TimeoutError())
    for state, says in (
        ("57P03", "the database system is starting up"),
        ("53300", "sorry, too many clients already"),
        ("55000", "database is not accepting connections"),
        ("08006", "connection failure"),
    ):
        assert is_outage(DBAPIError("SELECT 1", {}, ServerError(state, says))), state


def test_the_update_s_own_failures_are_not() -> None:
    duplicate = IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_outage(duplicate)
    for says in ("no such column: x", "no such function: y", "ambiguous column name: id"):
        # The code out of step with the schema: waiting will not mend it.
        assert not is_outage(OperationalError("SELECT", {}, sqlite3.OperationalError(says)))
    syntax = ProgrammingError("SELECT", {}, ServerError("42601", "syntax error"))
    assert not is_outage(syntax)
    unique = IntegrityError("INSERT", {}, ServerError("23505", "duplicate key value"))
    assert not is_outage(unique)
    assert not is_outage(ValueError("bad input"))


def test_a_bot_api_call_failing_is_the_platform_s_trouble() -> None:
    method = SendMessage(chat_id=1, text="Обращение принято")
    for cause in (TimeoutError(), ConnectionRefusedError(111, "Connect call failed")):
        try:
            try:
                raise cause
            except OSError as socket_error:
                # As aiogram's session raises it (aiogram/client/session/aiohttp.py).
                raise TelegramNetworkError(method=method, message="Request timeout error") from (
                    socket_error
                )
        except TelegramNetworkError as exc:
            assert exc.__cause__ is cause
            assert not is_outage(exc)
            assert not is_outage(_raised_from(exc))
