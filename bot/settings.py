"""Settings from the environment and ``.env``; a bad value stops the bot with one clear line."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.core.durations import parse_duration
from bot.core.workhours import WorkSchedule, parse_days, parse_hours

VK_API_URL = "https://api.vk.com/method/"
DEFAULT_CATEGORIES_FILE = Path(__file__).with_name("categories.toml")

# What each variable expects, for the one-line error message at start.
EXPECTED = {
    "BOT_TOKEN": "the bot token from @BotFather, like 123456:ABC-DEF…",
    "VK_TOKEN": "a VK community access token (Manage community → API usage → Access tokens)",
    "VK_GROUP_ID": "the VK community's numeric id, e.g. 229876543 (or leave it empty)",
    "VK_API_URL": "an http(s) URL of the VK API, e.g. https://api.vk.com/method/",
    "TELEGRAM_API_URL": "an http(s) URL of a Bot API server, e.g. http://127.0.0.1:8081",
    "DATABASE_URL": "an SQLAlchemy async URL: sqlite+aiosqlite:///data/priemnaya.db "
    "or postgresql+asyncpg://user:pass@host/db",
    "COORDINATOR_IDS": "comma-separated Telegram user ids, e.g. 12345,67890",
    "TIMEZONE": "an IANA time zone name, e.g. Europe/Moscow",
    "ANSWER_DEADLINE": "a duration in seconds (28800) or ISO 8601 (PT8H, P1D)",
    "CATEGORIES_FILE": "a path to a readable TOML file with departments and categories",
    "APPEALS_PER_HOUR": "a whole number of appeals a resident may file per hour, 0 for no limit",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR",
    "SOLUTION_DEADLINE": "a duration in seconds (259200) or ISO 8601 (P3D, PT48H)",
    "REMINDER_AT": "a share of the deadline between 0 and 1, e.g. 0.75",
    "ESCALATION_DELAYS": "up to three durations after the deadline, non-decreasing, "
    "e.g. 0,PT4H,PT8H",
    "DEPUTY_CHAT_IDS": "comma-separated Telegram chat ids, e.g. -1001234567890",
    "HEAD_CHAT_IDS": "comma-separated Telegram chat ids, e.g. -1001234567890",
    "SCAN_INTERVAL": "a duration in seconds (60) or ISO 8601 (PT1M)",
    "WORKING_HOURS": "empty (calendar hours) or HH:MM-HH:MM, e.g. 09:00-18:00",
    "WORKING_DAYS": "days of the week, Monday is 1, e.g. 1-5",
    "HOLIDAYS": "comma-separated dates, e.g. 2027-01-01,2027-01-07",
    "WEBHOOK_URL": "the public https URL Telegram posts updates to, e.g. "
    "https://bot.example.org/telegram (or leave it empty for long polling)",
    "WEBHOOK_SECRET": "1-256 characters A-Z, a-z, 0-9, _ and -, the same in every process",
    "WEBHOOK_LISTEN": "host:port the webhook server listens on, e.g. 0.0.0.0:8080",
    "REDIS_URL": "a Redis URL, e.g. redis://127.0.0.1:6379/0 (or leave it empty)",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: str | None = None
    telegram_api_url: str | None = None
    vk_token: str | None = None
    vk_group_id: int | None = None
    vk_api_url: str = VK_API_URL
    database_url: str = "sqlite+aiosqlite:///data/priemnaya.db"
    coordinator_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    timezone: str = "Europe/Moscow"
    answer_deadline: timedelta = timedelta(hours=8)
    categories_file: Path = DEFAULT_CATEGORIES_FILE
    # New appeals one resident may file within an hour (coordinators are not limited); 0: no limit.
    appeals_per_hour: int = Field(default=5, ge=0, le=1000)
    log_level: str = "INFO"
    solution_deadline: timedelta = timedelta(days=3)
    reminder_at: float = Field(default=0.75, gt=0, lt=1)
    verdict_wait: timedelta = timedelta(days=15)
    escalation_delays: Annotated[list[timedelta], NoDecode] = Field(
        default_factory=lambda: [timedelta(0), timedelta(hours=4), timedelta(hours=8)]
    )
    deputy_chat_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    head_chat_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    scan_interval: timedelta = timedelta(minutes=1)
    working_hours: str = ""
    working_days: str = "1-5"
    holidays: Annotated[list[date], NoDecode] = Field(default_factory=list)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_listen: str = "0.0.0.0:8080"
    redis_url: str | None = None

    @field_validator("webhook_url", "webhook_secret", "redis_url", mode="before")
    @classmethod
    def _optional(cls, value: Any) -> str | None:
        return None if value is None or str(value).strip() == "" else str(value).strip()

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str | None) -> str | None:
        # Telegram's own rule for secret_token.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("bad characters or length")
        return value

    @field_validator("webhook_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, _, port = value.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("not host:port")
        return value.strip()

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("not a redis:// URL")
        return value

    @field_validator("bot_token", "vk_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value is None or str(value).strip() == "" else str(value).strip()

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: str | None) -> str | None:
        if value is not None and (":" not in value or " " in value):
            raise ValueError("malformed token")
        return value

    @field_validator("vk_token")
    @classmethod
    def _vk_token_shape(cls, value: str | None) -> str | None:
        if value is not None and (len(value) < 20 or " " in value):
            raise ValueError("malformed token")
        return value

    @field_validator("vk_group_id", mode="before")
    @classmethod
    def _group_id(cls, value: Any) -> int | None:
        text = str(value or "").strip().lower().removeprefix("club").removeprefix("public")
        if not text:
            return None
        number = abs(int(text))  # VK writes communities as negative peer ids too
        if number == 0:
            raise ValueError("zero")
        return number

    @field_validator("vk_api_url", mode="before")
    @classmethod
    def _vk_api_url(cls, value: Any) -> str:
        text = str(value or "").strip() or VK_API_URL
        if not text.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return text if text.endswith("/") else text + "/"

    @field_validator("telegram_api_url", mode="before")
    @classmethod
    def _api_url(cls, value: Any) -> str | None:
        if value is None or str(value).strip() == "":
            return None
        text = str(value).strip().rstrip("/")
        if not text.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return text

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("unsupported driver")
        return value

    @field_validator("coordinator_ids", "deputy_chat_ids", "head_chat_ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> list[int]:
        if isinstance(value, list):
            return [int(v) for v in value]
        items = [part.strip() for part in str(value or "").split(",") if part.strip()]
        return [int(item) for item in items]

    @field_validator("appeals_per_hour", mode="before")
    @classmethod
    def _per_hour(cls, value: Any) -> Any:
        return 5 if value is None or str(value).strip() == "" else value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @field_validator("answer_deadline", "solution_deadline", "scan_interval", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("escalation_delays", mode="before")
    @classmethod
    def _delays(cls, value: Any) -> list[timedelta]:
        items = value if isinstance(value, list) else str(value or "").split(",")
        delays = [_delay(item) for item in items if str(item).strip()]
        if not 1 <= len(delays) <= 3 or delays != sorted(delays):
            raise ValueError("one to three non-decreasing delays")
        return delays

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        if value.strip():
            opens, closes = parse_hours(value)
            if opens >= closes:
                raise ValueError("opens after it closes")
        return value.strip()

    @field_validator("working_days")
    @classmethod
    def _days(cls, value: str) -> str:
        parse_days(value)
        return value

    @field_validator("holidays", mode="before")
    @classmethod
    def _holidays(cls, value: Any) -> list[date]:
        if isinstance(value, list):
            return [v if isinstance(v, date) else date.fromisoformat(str(v)) for v in value]
        return [date.fromisoformat(p.strip()) for p in str(value or "").split(",") if p.strip()]

    @field_validator("categories_file")
    @classmethod
    def _categories_file(cls, value: Path) -> Path:
        if not value.is_file():
            raise ValueError("file not found")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("unknown level")
        return value.upper()

    @property
    def listen(self) -> tuple[str, int]:
        host, _, port = self.webhook_listen.rpartition(":")
        return host, int(port)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def schedule(self) -> WorkSchedule | None:
        """Working hours for deadlines, or None for calendar hours (WORKING_HOURS empty)."""
        if not self.working_hours:
            return None
        opens, closes = parse_hours(self.working_hours)
        return WorkSchedule(
            tz=self.tz,
            opens=opens,
            closes=closes,
            workdays=parse_days(self.working_days),
            holidays=frozenset(self.holidays),
        )


def _delay(value: Any) -> timedelta:
    """A duration that may be zero: level 1 usually comes the moment the deadline passes."""
    if isinstance(value, timedelta) and value == timedelta(0):
        return value
    if str(value).strip().upper() in ("0", "PT0S"):
        return timedelta(0)
    return parse_duration(value)


class SettingsError(Exception):
    """Raised with one human line per bad variable."""


def load_settings(**overrides: Any) -> Settings:
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "?"
            given = (
                "is required"
                if error["type"] in ("missing", "string_too_short")
                else "is malformed"
            )
            lines.append(f"Setting {name} {given}: expected {EXPECTED.get(name, 'a valid value')}")
        raise SettingsError("\n".join(dict.fromkeys(lines))) from None
    if settings.webhook_url is not None and settings.webhook_secret is None:
        raise SettingsError(
            f"Setting WEBHOOK_SECRET is required with WEBHOOK_URL: expected "
            f"{EXPECTED['WEBHOOK_SECRET']} (Telegram sends it with every update, so that "
            "nobody else can post updates to the bot)"
        )
    if settings.bot_token is None and settings.vk_token is None:
        raise SettingsError(
            f"Setting BOT_TOKEN is required: expected {EXPECTED['BOT_TOKEN']} "
            "(or VK_TOKEN alone, for a VK-only front)"
        )
    return settings
