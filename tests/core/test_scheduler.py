"""The scheduler job that drives the scan: configured once, coalesced, and run at start."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.scheduler import start_deadline_scan
from storage.uow import Database
from tests.core.recording import RecordingSender, make_worker
from tests.core.test_deadlines import SHORT
from tests.core.test_lifecycle import ANNA, make_world


async def test_scan_job_runs_at_start_and_plans_the_next_step(sqlite_db: Database) -> None:
    world = await make_world(sqlite_db, SHORT)
    appeal_id, _number = await world.file(ANNA, "roads")
    async with sqlite_db.uow() as uow:
        filed = await uow.appeals.get(appeal_id)
    assert filed is not None and filed.next_check_at == filed.created_at

    worker = make_worker(sqlite_db, SHORT, RecordingSender())
    scheduler = start_deadline_scan(sqlite_db, SHORT, worker, timedelta(minutes=1))
    try:
        job = scheduler.get_job("deadline-scan")
        assert job.coalesce is True and job.max_instances == 1
        planned = None
        for _ in range(100):  # the first run is due at once; give the loop a moment
            await asyncio.sleep(0.02)
            async with sqlite_db.uow() as uow:
                appeal = await uow.appeals.get(appeal_id)
            assert appeal is not None
            if appeal.next_check_at != filed.created_at:
                planned = appeal.next_check_at
                break
        # The next look is the reminder, at 75 % of the one-hour answer deadline.
        assert planned == filed.created_at + timedelta(minutes=45)
    finally:
        scheduler.shutdown(wait=False)
