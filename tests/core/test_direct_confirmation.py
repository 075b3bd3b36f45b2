"""The resident's «принято» goes out from their own handler, with the queue as its safety net.

Telegram's front answers residents directly; the number comes in that answer rather than after
the other chats' notifications queued for the platform's overall limit. The message is still
written to the outbox in the appeal's transaction, held back from the queue for a while: sent
and recorded by the handler, or sent by the queue when the handler could not.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

import bot.core.delivery as delivery
from bot.core.config import CoreConfig
from bot.core.intake import IntakeResult, IntakeService
from bot.core.model import Keyboard, ResidentRef
from bot.core.ports import RetryAfter
from storage.models import CardMessage, OutboxMessage
from storage.uow import Database, utcnow
from tests.core.recording import RecordingSender, drain
from tests.core.test_delivery import make_due, queue_texts
from tests.core.test_intake import ANNA, fill_until_confirm, press
from tests.core.test_lifecycle import ROADS_GROUP, World, make_world


async def direct_world(db: Database, config: CoreConfig) -> World:
    world = await make_world(db, config)
    world.intake = IntakeService(db, config, confirms_directly=("telegram",))
    return world


async def submit(world: World, who: ResidentRef = ANNA) -> IntakeResult:
    await fill_until_confirm(world.intake, who)
    result = await world.intake.handle(who, press("i:confirm:submit"))
    assert result.submitted_number is not None
    return result


def accepted(world: World) -> list[str]:
    return [t for t in world.sender.texts_to(ANNA.chat_id) if "принято" in t]


async def confirmation_row(db: Database) -> OutboxMessage:
    async with db.uow() as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.chat_id == ANNA.chat_id)
        )
        (row,) = list(rows)
    return row


async def test_the_handler_sends_the_number_and_the_queue_holds_off(
    db: Database, config: CoreConfig
) -> None:
    world = await direct_world(db, config)
    result = await submit(world)
    assert result.confirmation is not None

    await drain(world.worker)  # the queue: the card goes, the «принято» waits for its handler
    assert world.sender.texts_to(ROADS_GROUP) and accepted(world) == []
    held = await confirmation_row(db)
    assert held.status == "pending" and held.next_attempt_at > utcnow() + timedelta(seconds=20)

    await world.worker.deliver_now(result.confirmation)
    (said,) = accepted(world)
    assert f"Обращение № {result.submitted_number} принято" in said
    assert (await confirmation_row(db)).status == "sent"
    async with db.uow() as uow:  # a reply to it reaches the department, as with the queue's
        (notice,) = await uow.session.scalars(
            select(CardMessage).where(CardMessage.chat_id == int(ANNA.chat_id))
        )
    assert notice.purpose == "notice" and notice.message_id == world.sender.to("501")[-1].message_id

    await make_due(db)
    await drain(world.worker)
    assert len(accepted(world)) == 1  # never twice


async def test_a_failed_direct_send_is_left_to_the_queue(db: Database, config: CoreConfig) -> None:
    world = await direct_world(db, config)
    result = await submit(world)
    assert result.confirmation is not None
    world.sender.fail_chat[ANNA.chat_id] = [RetryAfter(1)]

    await world.worker.deliver_now(result.confirmation)  # the 429 is no failure of the step
    assert accepted(world) == []
    row = await confirmation_row(db)
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at < utcnow() + timedelta(seconds=2)  # as the platform asked

    await asyncio.sleep(1.05)  # the pause the platform asked for
    await drain(world.worker)
    assert len(accepted(world)) == 1
    assert (await confirmation_row(db)).status == "sent"


async def test_the_queue_sends_it_when_the_handler_never_did(
    db: Database, config: CoreConfig
) -> None:
    """The process stopped after the commit, before the handler's send: once the hold runs
    out, the queue (of this process after a restart, or of another) sends the number."""
    world = await direct_world(db, config)
    await submit(world)
    await drain(world.worker)
    assert accepted(world) == []
    await make_due(db)  # the hold ran out
    await drain(world.worker)
    assert len(accepted(world)) == 1


async def test_an_earlier_message_to_the_resident_keeps_its_place(
    db: Database, config: CoreConfig
) -> None:
    """Something already waits for the resident's chat: the number queues behind it."""
    world = await direct_world(db, config)
    await queue_texts(db, ANNA.chat_id, 1)  # e.g. news about an older appeal
    result = await submit(world)
    assert result.confirmation is None
    await drain(world.worker)
    texts = world.sender.texts_to(ANNA.chat_id)
    assert texts[0] == "msg 0" and "принято" in texts[1]


async def test_a_message_committed_after_the_hold_check_is_not_overtaken(
    db: Database, config: CoreConfig
) -> None:
    """Another process queued news for the resident (an older id) and committed it just after
    the submission found nothing waiting: the handler does not send the number ahead of it."""
    world = await direct_world(db, config)
    await queue_texts(db, ANNA.chat_id, 1)
    async with db.uow() as uow:  # not yet visible to the submission's hold check
        await uow.session.execute(update(OutboxMessage).values(status="cancelled"))
        await uow.commit()
    result = await submit(world)
    assert result.confirmation is not None  # held: nothing seemed to wait
    async with db.uow() as uow:  # the other process's commit lands
        await uow.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "cancelled")
            .values(status="pending")
        )
        await uow.commit()

    await world.worker.deliver_now(result.confirmation)
    await drain(world.worker)
    texts = world.sender.texts_to(ANNA.chat_id)
    assert texts[0] == "msg 0" and "принято" in texts[1] and len(texts) == 2


async def test_other_platforms_queue_it_as_before(db: Database, config: CoreConfig) -> None:
    world = await direct_world(db, config)
    world.intake = IntakeService(db, config)  # no front sends it directly
    result = await submit(world)
    assert result.confirmation is None
    await drain(world.worker)
    assert len(accepted(world)) == 1


async def test_a_late_handler_leaves_it_to_the_queue(db: Database, config: CoreConfig) -> None:
    """The handler reaches the send when little of the hold is left (slow answers before it):
    it does not send, the queue does, at once and once."""
    world = await direct_world(db, config)
    result = await submit(world)
    assert result.confirmation is not None
    async with db.uow() as uow:
        await uow.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.chat_id == ANNA.chat_id)
            .values(next_attempt_at=utcnow() + timedelta(seconds=5))
        )
        await uow.commit()
    await world.worker.deliver_now(result.confirmation)
    assert accepted(world) == []
    assert (await confirmation_row(db)).next_attempt_at <= utcnow()  # due now, not in 5 s
    await drain(world.worker)
    assert len(accepted(world)) == 1


async def test_the_handler_never_sends_what_the_queue_sent(
    db: Database, config: CoreConfig
) -> None:
    world = await direct_world(db, config)
    result = await submit(world)
    assert result.confirmation is not None
    await make_due(db)  # the hold ran out before the handler came
    await drain(world.worker)
    assert len(accepted(world)) == 1
    await world.worker.deliver_now(result.confirmation)
    assert len(accepted(world)) == 1
    assert (await confirmation_row(db)).status == "sent"


class SilentSender(RecordingSender):
    """Takes the message and never answers."""

    async def send_text(
        self, chat_id: str, text: str, keyboard: Keyboard | None, *, key: int = 0
    ) -> int:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


async def test_a_send_without_answer_is_retried_by_the_queue(
    db: Database, config: CoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "DELIVER_NOW_WITHIN", 0.2)
    world = await direct_world(db, config)
    result = await submit(world)
    assert result.confirmation is not None
    silent = SilentSender()
    world.worker.senders = {"telegram": silent}
    await asyncio.wait_for(world.worker.deliver_now(result.confirmation), 5)
    row = await confirmation_row(db)
    assert row.status == "pending" and row.attempts == 1 and "TimeoutError" in str(row.last_error)
    assert row.next_attempt_at < utcnow() + timedelta(seconds=5)  # a retry, as after any timeout

    world.worker.senders = {"telegram": world.sender}
    await make_due(db)
    await drain(world.worker)
    assert len(accepted(world)) == 1
