"""The VK front: vkbottle's bot with our labeler, polled durably, on the shared services."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
from vkbottle import Bot, VKAPIError
from vkbottle.exception_factory import ErrorHandler

from bot.core.appeals import StaffService
from bot.core.delivery import OutboxWorker
from bot.core.intake import IntakeService
from handlers.vk.client import VkClient
from handlers.vk.conversation import VkConversation
from handlers.vk.errors import VkTokenRejected
from handlers.vk.polling import VkPoller
from storage.uow import Database

log = logging.getLogger(__name__)

__all__ = ["VkFront", "VkTokenRejected", "build_vk_front", "run_vk_front"]

TOKEN_REJECTED = {5, 27, 28}


@dataclass(frozen=True)
class VkFront:
    """vkbottle's bot on our labeler, and the conversation its poller asks about repeats."""

    bot: Bot
    conversation: VkConversation

    def poller(self, db: Database, group_id: int | None) -> VkPoller:
        return VkPoller(self.bot, db, group_id, on_repeat=self.conversation.ask_again)


def build_vk_front(
    client: VkClient,
    intake: IntakeService,
    staff: StaffService,
    worker: OutboxWorker,
    db: Database,
) -> VkFront:
    conversation = VkConversation(intake, staff, worker, client, db)
    # Handler errors reach the poller, which retries the event instead of dropping it.
    bot = Bot(
        api=client.api,
        labeler=conversation.labeler(),
        error_handler=ErrorHandler(raise_exceptions=True),
    )
    return VkFront(bot, conversation)


async def run_vk_front(front: VkFront, db: Database, group_id: int | None) -> None:
    """Long poll until cancelled; network trouble is waited out, a rejected token stops."""
    poller = front.poller(db, group_id)
    delay = 1.0
    while True:
        started = time.monotonic()
        try:
            await poller.run()
        except VKAPIError as exc:
            if int(getattr(exc, "code", 0) or 0) in TOKEN_REJECTED:
                raise VkTokenRejected(str(exc)) from exc
            log.warning("VK long poll: %s; retrying in %.0fs", exc, delay)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("VK API unreachable (%s); retrying in %.0fs", exc, delay)
        except Exception:  # the database, or anything unforeseen: the VK front must not die
            log.exception("VK front stopped; resuming from the stored position in %.0fs", delay)
        if time.monotonic() - started > 60:
            delay = 1.0  # it ran fine for a while: this is a new trouble, not the same one
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)
