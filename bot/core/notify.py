"""Outgoing messages as outbox rows, written in the caller's transaction.

Nothing here sends: the outbox worker delivers after the commit, so a crash between the change
and the message loses neither.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

from bot.core import texts
from bot.core.cards import render_card
from bot.core.config import CoreConfig
from bot.core.model import Button, Keyboard, Platform, inline
from bot.core.ports import PhotoRef
from storage.models import Appeal, OutboxMessage
from storage.uow import UnitOfWork

# The resident's menu under the input field: «Новое обращение», «Мои обращения».
MENU = Keyboard(rows=((Button(texts.MENU_NEW), Button(texts.MENU_MY)),), inline=False)

ALBUM_GATHERING = timedelta(seconds=2)
# How long a message its sender's handler sends itself is kept from the queue (``to_resident``).
HELD_FOR_SENDER = timedelta(seconds=30)

# Staff chats (department groups, coordinators' private chats) are always in Telegram.
STAFF_PLATFORM = Platform.TELEGRAM.value


def feedback_keyboard(appeal_id: int) -> Keyboard:
    return inline(
        [
            Button("👍 Проблема решена", f"f:{appeal_id}:yes"),
            Button("👎 Не решена", f"f:{appeal_id}:no"),
        ]
    )


async def to_resident(
    uow: UnitOfWork,
    appeal: Appeal,
    text: str,
    keyboard: Keyboard | None = None,
    photo: PhotoRef | None = None,
    album: str | None = None,
    hold: timedelta | None = None,
) -> OutboxMessage | None:
    """Queue a message to the appeal's author. With ``hold``, and nothing else waiting for
    their chat, it is held back from the queue that long and returned: the caller sends it
    itself right after the commit (``OutboxWorker.deliver_now``); should that not happen, the
    queue sends it once the hold runs out."""
    resident = await uow.residents.get(appeal.resident_id)
    if resident is None:
        return None
    # Remembered, so that the resident's reply to it reaches the department as a comment.
    payload: dict[str, object] = {"text": text, "remember": "notice"}
    if keyboard is not None:
        if resident.text_buttons:  # their client would show callback buttons as nothing
            keyboard = keyboard.as_text_buttons()
        payload["keyboard"] = keyboard.to_dict()
    kind = "text"
    delay = timedelta(0)
    if photo is not None:
        kind = "photo"
        payload["photo"] = {"platform": photo.platform, "ref": photo.ref}
    if photo is not None and album:
        # Album parts arrive as separate updates; a short wait lets them leave as one album.
        payload["album"] = album
        delay = ALBUM_GATHERING
    held = hold is not None and not await uow.outbox.has_pending(
        resident.platform, resident.chat_id
    )
    if held and hold is not None:
        delay = hold
    message = await uow.outbox.add(
        resident.platform, resident.chat_id, kind, payload, appeal.id, delay
    )
    return message if held else None


async def to_staff(
    uow: UnitOfWork,
    config: CoreConfig,
    appeal: Appeal,
    text: str,
    photo: PhotoRef | None = None,
    album: str | None = None,
) -> None:
    """A resident's comment to wherever the appeal's card lives; staff may reply to it.

    Its own kinds (comment_text, comment_photo), so that it follows the card when the
    appeal moves before it was delivered.
    """
    # One id for all the copies (one per coordinator), so a move re-sends it once.
    payload: dict[str, Any] = {"text": text, "remember": "comment", "comment": uuid4().hex}
    kind = "comment_text"
    delay = timedelta(0)
    if photo is not None:
        kind = "comment_photo"
        payload["photo"] = {"platform": photo.platform, "ref": photo.ref}
        if album:
            payload["album"] = album
            delay = ALBUM_GATHERING
    for chat_id in await staff_chats(uow, config, appeal):
        await uow.outbox.add(STAFF_PLATFORM, chat_id, kind, payload, appeal.id, delay)


async def to_coordinators(
    uow: UnitOfWork, config: CoreConfig, text: str, appeal: Appeal | None = None
) -> None:
    for user_id in config.coordinator_ids:
        await uow.outbox.add(
            STAFF_PLATFORM, user_id, "text", {"text": text}, appeal.id if appeal else None
        )


async def staff_chats(uow: UnitOfWork, config: CoreConfig, appeal: Appeal) -> list[int]:
    """Where the appeal's card lives: its department's group, or else every coordinator."""
    department = await uow.catalog.department(appeal.department_id)
    if department is not None and department.chat_id is not None:
        return [department.chat_id]
    return list(config.coordinator_ids)


async def post_card(
    uow: UnitOfWork,
    config: CoreConfig,
    appeal: Appeal,
    note: str = "",
    media: bool = True,
    chats: list[int] | None = None,
) -> list[int]:
    """Queue the card (and the resident's photos and pin before it) to the staff chats
    (or to ``chats``, e.g. the coordinator who asked for it).

    ``media=False``: the chats saw the photos and pin already (a reopened appeal).
    """
    chats = chats if chats is not None else await staff_chats(uow, config, appeal)
    has_photos = media and await uow.appeals.count_photos(appeal.id, "resident") > 0
    for chat_id in chats:
        if has_photos:
            await uow.outbox.add(STAFF_PLATFORM, chat_id, "card_media", {}, appeal.id)
        if media and appeal.latitude is not None and appeal.longitude is not None:
            await uow.outbox.add(STAFF_PLATFORM, chat_id, "card_location", {}, appeal.id)
        await uow.outbox.add(STAFF_PLATFORM, chat_id, "card_post", {"note": note}, appeal.id)
    return chats


async def refresh_cards(uow: UnitOfWork, appeal: Appeal) -> None:
    """Queue an in-place edit of every live card.

    Cards still on their way (or being sent right now) are included: their refresh queues
    behind them, so a card rendered a moment before this change still ends up current. A
    burst of changes costs one edit: the worker marks every refresh its render covered.
    """
    chats = {str(card.chat_id) for card in await uow.cards.active_cards(appeal.id)}
    chats.update(await uow.outbox.pending_chats(appeal.id, "card_post"))
    for chat in sorted(chats):
        await uow.outbox.add(STAFF_PLATFORM, chat, "card_refresh", {}, appeal.id)


async def refresh_resident_cards(uow: UnitOfWork, resident_id: int) -> None:
    """Every open appeal of the resident shows whether they can be reached: keep all current."""
    for appeal in await uow.appeals.open_of_resident(resident_id):
        await refresh_cards(uow, appeal)


CARD_KINDS = ("card_media", "card_location", "card_post", "card_refresh")
COMMENT_KINDS = ("comment_text", "comment_photo")


async def move_cards(
    uow: UnitOfWork,
    config: CoreConfig,
    appeal: Appeal,
    close_note: str,
    post_note: str,
    media: bool = True,
) -> None:
    """The appeal now belongs elsewhere: freeze its cards, post a new one where it belongs,
    and send the residents' comments still on their way there too."""
    comments = await uow.outbox.pending_of(appeal.id, COMMENT_KINDS)
    await close_cards(uow, config, appeal, close_note)
    await post_card(uow, config, appeal, note=post_note, media=media)
    seen: set[str] = set()
    for comment in comments:  # copies for several chats: send each comment once, in order
        key = str(comment.payload.get("comment") or comment.id)
        if key in seen:
            continue
        seen.add(key)
        for chat_id in await staff_chats(uow, config, appeal):
            await uow.outbox.add(STAFF_PLATFORM, chat_id, comment.kind, comment.payload, appeal.id)


async def close_cards(uow: UnitOfWork, config: CoreConfig, appeal: Appeal, note: str) -> None:
    """Freeze the live cards (no buttons) with a note, e.g. after a transfer.

    Cards still queued are cancelled: the appeal no longer belongs in those chats, and a card
    delivered there later would keep showing the resident's details to the wrong people. For
    the same reason the frozen text is drawn now, as the appeal stands when it leaves: drawn
    when delivered (a group may wait minutes for its turn), it would show what the next
    department did meanwhile.
    """
    await uow.outbox.cancel(appeal.id, CARD_KINDS + COMMENT_KINDS)
    cards = await uow.cards.deactivate(appeal.id)
    if not cards:
        return
    frozen = await render_card(uow, appeal, config, note, frozen=True)
    for card in cards:
        await uow.outbox.add(
            STAFF_PLATFORM,
            card.chat_id,
            "card_close",
            {"message_id": card.message_id, "note": note, "text": frozen.text},
            appeal.id,
        )
