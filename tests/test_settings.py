"""Settings: what the operator is told when something is missing or malformed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot import app
from bot.core.durations import parse_duration
from bot.settings import SettingsError, load_settings
from tests.fakes.fake_vk import FakeVK

ROOT = Path(__file__).resolve().parents[1]


def run_bot(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME")}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,  # no .env here
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_token_stops_with_one_line(tmp_path: Path) -> None:
    result = run_bot(tmp_path)
    assert result.returncode == 2
    expected = "Setting BOT_TOKEN is required: expected the bot token from @BotFather"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected)


def test_malformed_values_are_named(tmp_path: Path) -> None:
    result = run_bot(
        tmp_path, BOT_TOKEN="1:x", ANSWER_DEADLINE="eight hours", COORDINATOR_IDS="12,abc"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("Setting ANSWER_DEADLINE is malformed") for line in lines)
    assert any(line.startswith("Setting COORDINATOR_IDS is malformed") for line in lines)
    assert "Traceback" not in result.stderr


def test_settings_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123:abc")
    monkeypatch.setenv("COORDINATOR_IDS", " 11, 22 ")
    monkeypatch.setenv("ANSWER_DEADLINE", "PT12H")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    settings = load_settings(_env_file=None)
    assert settings.coordinator_ids == [11, 22]
    assert settings.answer_deadline == timedelta(hours=12)
    assert settings.telegram_api_url == "http://127.0.0.1:8081"
    monkeypatch.setenv("TIMEZONE", "Mars/Olympus")
    with pytest.raises(SettingsError, match="TIMEZONE"):
        load_settings(_env_file=None)


def test_durations() -> None:
    assert parse_duration("28800") == timedelta(hours=8)
    assert parse_duration("P1DT4H30M") == timedelta(days=1, hours=4, minutes=30)
    assert parse_duration("pt8h") == timedelta(hours=8)
    for bad in ("", "PT", "P", "8h", "-5", "0", "PT0S"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_vk_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.setenv("VK_TOKEN", "vk1.a.community-token-0123456789")
    monkeypatch.setenv("VK_GROUP_ID", "club229876543")
    monkeypatch.setenv("VK_API_URL", "http://127.0.0.1:9000/method")
    settings = load_settings(_env_file=None)
    assert settings.bot_token is None
    assert settings.vk_group_id == 229876543
    assert settings.vk_api_url == "http://127.0.0.1:9000/method/"
    monkeypatch.setenv("VK_GROUP_ID", "")
    monkeypatch.setenv("VK_API_URL", "")
    settings = load_settings(_env_file=None)
    assert settings.vk_group_id is None and settings.vk_api_url == "https://api.vk.com/method/"
    monkeypatch.setenv("VK_TOKEN", "short")
    with pytest.raises(SettingsError, match="Setting VK_TOKEN is malformed"):
        load_settings(_env_file=None)


async def test_a_token_vk_rejects_stops_with_one_line(tmp_path: Path) -> None:
    fake = FakeVK("vk1.a.the-right-token-0123456789")
    await fake.start()
    try:
        clean = {k: v for k, v in os.environ.items() if not k.isupper() or k in ("PATH", "HOME")}
        clean.update(
            PYTHONPATH=str(ROOT),
            VK_TOKEN="vk1.a.a-revoked-token-0123456789",
            VK_API_URL=fake.api_url,
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=tmp_path,
            env=clean,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await fake.stop()
    assert process.returncode == 2
    last = stderr.decode().strip().splitlines()[-1]
    assert last.startswith("Setting VK_TOKEN was rejected by VK")
    assert "Traceback" not in stderr.decode()


def test_deadline_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123:abc")
    settings = load_settings(_env_file=None)
    assert settings.solution_deadline == timedelta(days=3)
    assert settings.escalation_delays == [timedelta(0), timedelta(hours=4), timedelta(hours=8)]
    assert settings.schedule is None  # calendar hours unless WORKING_HOURS is set
    monkeypatch.setenv("SOLUTION_DEADLINE", "P5D")
    monkeypatch.setenv("ESCALATION_DELAYS", "0, PT1H")
    monkeypatch.setenv("DEPUTY_CHAT_IDS", "-1001, -1002")
    monkeypatch.setenv("WORKING_HOURS", "08:30-17:30")
    monkeypatch.setenv("WORKING_DAYS", "1-6")
    monkeypatch.setenv("HOLIDAYS", "2027-01-01,2027-01-07")
    settings = load_settings(_env_file=None)
    assert settings.solution_deadline == timedelta(days=5)
    assert settings.escalation_delays == [timedelta(0), timedelta(hours=1)]
    assert settings.deputy_chat_ids == [-1001, -1002]
    schedule = settings.schedule
    assert schedule is not None and schedule.workdays == frozenset(range(6))
    assert date(2027, 1, 7) in schedule.holidays
    for name, bad in (
        ("ESCALATION_DELAYS", "PT4H,PT1H"),
        ("ESCALATION_DELAYS", "0,1,2,3"),
        ("REMINDER_AT", "1.5"),
        ("WORKING_HOURS", "18:00-09:00"),
        ("WORKING_DAYS", "0-9"),
        ("HOLIDAYS", "tomorrow"),
    ):
        monkeypatch.setenv(name, bad)
        with pytest.raises(SettingsError, match=f"Setting {name} is malformed"):
            load_settings(_env_file=None)
        monkeypatch.delenv(name)


def test_scale_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123:abc")
    settings = load_settings(_env_file=None)
    assert (settings.webhook_url, settings.redis_url) == (None, None)  # polling, one process
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/telegram")
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET is required with WEBHOOK_URL"):
        load_settings(_env_file=None)
    monkeypatch.setenv("WEBHOOK_SECRET", "has spaces!")
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET is malformed"):
        load_settings(_env_file=None)
    monkeypatch.setenv("WEBHOOK_SECRET", "Abc_123-xyz")
    monkeypatch.setenv("WEBHOOK_LISTEN", "127.0.0.1:8443")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    settings = load_settings(_env_file=None)
    assert settings.listen == ("127.0.0.1", 8443)
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    for name, value in (("WEBHOOK_LISTEN", "8443"), ("REDIS_URL", "127.0.0.1:6379")):
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError, match=f"{name} is malformed"):
            load_settings(_env_file=None)
        monkeypatch.delenv(name)


def test_a_redis_that_does_not_answer_stops_with_one_line(tmp_path: Path) -> None:
    result = run_bot(
        tmp_path,
        BOT_TOKEN="123:abc",
        TELEGRAM_API_URL="http://127.0.0.1:9",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        REDIS_URL="redis://127.0.0.1:9/0",  # nothing listens there
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Setting REDIS_URL: Redis cannot be reached (ConnectionError)"
    )
    assert "Traceback" not in result.stderr


async def test_a_redis_that_accepts_and_stays_silent_stops_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host that takes the connection and never answers (or drops the packets) is reported
    after a while, not waited for until the operating system gives up."""
    silent: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(app, "REDIS_ANSWER_WITHIN", 0.3)
    monkeypatch.setenv("BOT_TOKEN", "123:abc")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(app.RedisUnavailable, match=r"no answer within 0\.3 s"):
            await asyncio.wait_for(app.event_isolation(load_settings(_env_file=None)), 5)
    finally:
        for writer in silent:
            writer.close()
        server.close()


def test_a_database_that_cannot_be_opened_stops_with_one_line(tmp_path: Path) -> None:
    # The schema is migrated in a child process: its failure still reads as a setting's.
    result = run_bot(
        tmp_path,
        BOT_TOKEN="123:abc",
        TELEGRAM_API_URL="http://127.0.0.1:9",
        DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:9/test",  # nothing listens there
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Setting DATABASE_URL: the database cannot be opened (")
    assert "Traceback" not in result.stderr
