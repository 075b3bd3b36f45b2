"""Telegram updates turned into the core's plain inputs."""

from __future__ import annotations

from aiogram.types import CallbackQuery, Message, User

from bot.core.model import InputKind, IntakeInput, Platform, ResidentRef, StaffActor

UNSUPPORTED_TYPES = (
    "sticker",
    "voice",
    "video_note",
    "video",
    "animation",
    "audio",
    "document",
    "dice",
    "poll",
)


def resident_of(user: User, chat_id: int) -> ResidentRef:
    return ResidentRef(
        platform=Platform.TELEGRAM,
        user_id=str(user.id),
        chat_id=str(chat_id),
        first_name=(user.first_name or "")[:100],
    )


def staff_of(user: User, chat_id: int, coordinator_ids: tuple[int, ...]) -> StaffActor:
    return StaffActor(
        user_id=user.id,
        name=user.full_name[:100],
        chat_id=chat_id,
        is_coordinator=user.id in coordinator_ids,
    )


def intake_input(message: Message) -> IntakeInput:
    if message.photo:
        return IntakeInput(
            kind=InputKind.PHOTO,
            photo_refs=(message.photo[-1].file_id,),  # the largest size
            album_id=message.media_group_id,
            text=message.caption or "",
        )
    if message.location is not None:
        return IntakeInput(
            kind=InputKind.LOCATION,
            latitude=message.location.latitude,
            longitude=message.location.longitude,
        )
    if message.contact is not None:
        own = message.from_user is not None and message.contact.user_id == message.from_user.id
        return IntakeInput(
            kind=InputKind.CONTACT, phone=message.contact.phone_number, own_contact=own
        )
    if message.text is not None:
        return IntakeInput(kind=InputKind.TEXT, text=message.text)
    document = message.document
    if document is not None and (document.mime_type or "").startswith("image/"):
        return IntakeInput(kind=InputKind.UNSUPPORTED, unsupported="image_document")
    for kind in UNSUPPORTED_TYPES:
        if getattr(message, kind, None):
            return IntakeInput(
                kind=InputKind.UNSUPPORTED, unsupported=kind, album_id=message.media_group_id
            )
    return IntakeInput(kind=InputKind.UNSUPPORTED, album_id=message.media_group_id)


def callback_chat_id(callback: CallbackQuery) -> int | None:
    return callback.message.chat.id if callback.message is not None else None
