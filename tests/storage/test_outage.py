"""Which failures count as the storage being away (the update is handed over again) and which
are the update's own (answered with an apology, not retried)."""

from __future__ import annotations

import sqlite3

from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import SendMessage
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.outage import is_outage


def _wrapped(exc: Exception) -> Exception:
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
    assert is_outage(ConnectionRefusedError(111, "Connect call failed"))
    assert is_outage(RedisConnectionError("Connection refused"))
    assert is_outage(TimeoutError())
    assert is_outage(_wrapped(locked))  # raised from it, further up


def test_the_update_s_own_failures_are_not() -> None:
    duplicate = IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert not is_outage(duplicate)
    schema = OperationalError("SELECT", {}, sqlite3.OperationalError("no such column: x"))
    assert not is_outage(schema)  # the code out of step with the schema: waiting won't mend it
    assert not is_outage(ValueError("bad input"))


def test_a_platform_timeout_is_the_platform_s_trouble() -> None:
    method = SendMessage(chat_id=1, text="Обращение принято")
    try:
        try:
            raise TimeoutError
        except TimeoutError:
            # As aiogram raises it: while handling the socket's timeout, not "from" it.
            raise TelegramNetworkError(method=method, message="Request timeout error") from None
    except TelegramNetworkError as exc:
        network = exc
    network.__context__ = TimeoutError()
    assert not is_outage(network)
