"""``python -m bot``: start the bot (the schema is migrated on start)."""

from __future__ import annotations

import asyncio
import logging
import sys

from bot.core.catalog import CatalogError
from bot.settings import SettingsError, load_settings


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiogram logs every update at INFO with the user's ids; keep that at WARNING.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # APScheduler announces every run of the minute's scan at INFO.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # vkbottle logs through loguru/logging at DEBUG/INFO with message texts: keep it quiet.
    logging.getLogger("vkbottle").setLevel(logging.WARNING)
    from aiogram.exceptions import TelegramUnauthorizedError
    from sqlalchemy.exc import DBAPIError

    from bot.app import RedisUnavailable, run
    from bot.memory import fewer_arenas
    from handlers.vk.errors import VkTokenRejected
    from storage.upgrade import MigrationFailed

    fewer_arenas()
    try:
        asyncio.run(run(settings))
    except CatalogError as exc:
        return _fail(f"Setting CATEGORIES_FILE is malformed: {exc}")
    except (DBAPIError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return _fail(f"Setting DATABASE_URL: the database cannot be opened ({reason})")
    except MigrationFailed as exc:
        if exc.cannot_open:
            return _fail(f"Setting DATABASE_URL: the database cannot be opened ({exc})")
        return _fail(f"The database schema could not be migrated: {exc}")
    except TelegramUnauthorizedError:
        return _fail("Setting BOT_TOKEN was rejected by the Bot API (401 Unauthorized)")
    except RedisUnavailable as exc:
        return _fail(f"Setting REDIS_URL: Redis cannot be reached ({exc})")
    except VkTokenRejected as exc:
        return _fail(f"Setting VK_TOKEN was rejected by VK ({exc})")
    except KeyboardInterrupt:
        pass
    return 0


def _fail(line: str) -> int:
    print(line, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
