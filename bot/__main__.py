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
    from bot.app import run

    try:
        asyncio.run(run(settings))
    except CatalogError as exc:
        print(f"Setting CATEGORIES_FILE is malformed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
