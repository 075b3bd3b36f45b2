"""Migrate the schema from the bot without alembic in the bot's memory.

The bot runs ``python -m storage.migrate`` as a child at start (the URL in the environment,
never on a command line that ``ps`` shows): alembic and its templates, some 11 MB, are loaded
by the child and go with it.
"""

from __future__ import annotations

import asyncio
import os
import sys

URL_VARIABLE = "PRIEMNAYA_MIGRATE_URL"
CANNOT_OPEN = 3  # the child's exit status when the database cannot be opened


class MigrationFailed(Exception):
    """The schema could not be brought up to date; the message is the child's last line."""

    def __init__(self, reason: str, cannot_open: bool) -> None:
        super().__init__(reason)
        self.cannot_open = cannot_open


async def upgrade_in_child(url: str) -> None:
    """Migrate ``url`` to head in a child process; :class:`MigrationFailed` if it could not."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "storage.migrate",
        env={**os.environ, URL_VARIABLE: url},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await child.communicate()
    if child.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {child.returncode}"
        raise MigrationFailed(reason, cannot_open=child.returncode == CANNOT_OPEN)
