"""Jobs that run in one process at a time: whoever holds the duty's lock does the job; the other
processes stand by and take over within seconds when the holder stops or dies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from storage.locks import DutyLock

log = logging.getLogger(__name__)

RETRY = 2.0  # seconds between attempts of a standing-by process
CHECK = 5.0  # seconds between checks that the holder still holds its lock


async def run_duty(
    lock: DutyLock,
    job: Callable[[], Awaitable[None]],
    stop: asyncio.Event | None = None,
    retry: float = RETRY,
    check: float = CHECK,
) -> None:
    """Run ``job`` while this process holds ``lock``; stand by while another does.

    Returns when the job returns (or raises); a job whose lock is lost is cancelled and the
    process stands by again. ``stop`` ends standing by (a shutdown).
    """
    standing_by = False
    while stop is None or not stop.is_set():
        try:
            held = await lock.acquire()
        except Exception as exc:  # the database is away: try again, as a stand-by would
            log.warning("cannot take the %s duty: %s", lock.name, exc.__class__.__name__)
            held = False
        if not held:
            if not standing_by:
                log.info("standing by: another process does %s", lock.name)
                standing_by = True
            await _sleep(retry, stop)
            continue
        if standing_by:
            log.info("taking over %s", lock.name)
        standing_by = False
        task = asyncio.ensure_future(job())
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=check)
                if not task.done() and not await lock.still_held():
                    log.warning("%s: the lock was lost; stopping and standing by", lock.name)
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    break
            else:
                task.result()  # the job ended: its outcome is ours
                return
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            try:
                await lock.release()
            except Exception:
                log.debug("releasing %s failed", lock.name)


async def _sleep(seconds: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
