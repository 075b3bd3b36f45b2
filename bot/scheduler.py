"""The periodic deadline scan (APScheduler 3): reminders and escalation steps.

The database holds all the state, so the job store is in memory; one instance at a time and
coalesced runs, so a slow scan or a sleeping laptop never stacks scans up.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.escalation import scan
from storage.uow import Database, utcnow

log = logging.getLogger(__name__)


async def scan_once(db: Database, config: CoreConfig, worker: OutboxWorker) -> int:
    """One scan at the current time; a failure is logged and the next run tries again."""
    try:
        taken = await scan(db, config, utcnow())
    except asyncio.CancelledError:
        # Shutdown while scanning: each step commits with its messages, so the next start
        # simply continues where this scan stopped.
        log.info("deadline scan interrupted by shutdown")
        return 0
    except Exception:
        log.exception("deadline scan failed; the next run will retry")
        return 0
    if taken:
        log.info("deadline scan: %d reminder/escalation steps", taken)
        worker.wake()
    return taken


def start_deadline_scan(
    db: Database, config: CoreConfig, worker: OutboxWorker, interval: timedelta
) -> AsyncIOScheduler:
    """Start scanning every ``interval``, the first time right away (call inside the loop)."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        scan_once,
        "interval",
        args=(db, config, worker),
        seconds=max(int(interval.total_seconds()), 1),
        id="deadline-scan",
        coalesce=True,
        max_instances=1,
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    return scheduler
