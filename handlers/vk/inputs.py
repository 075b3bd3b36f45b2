"""VK messages turned into the core's plain inputs."""

from __future__ import annotations

import json
from typing import Any

from bot.core.model import InputKind, IntakeInput, Platform, ResidentRef

# VK attachment types, named as the core names them for its answers.
UNSUPPORTED_TYPES = {
    "sticker": "sticker",
    "graffiti": "sticker",
    "audio_message": "voice",
    "video": "video",
    "audio": "audio",
    "doc": "document",
    "poll": "poll",
}
IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "heic", "webp", "bmp", "gif"}


def resident_of(
    user_id: int, peer_id: int, first_name: str = "", text_buttons: bool = False
) -> ResidentRef:
    return ResidentRef(
        platform=Platform.VK,
        user_id=str(user_id),
        chat_id=str(peer_id),
        first_name=first_name,
        text_buttons=text_buttons,
    )


def button_action(payload: Any) -> str | None:
    """The core action a button carried (``{"a": "i:category:roads"}``), if any."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    if isinstance(payload, dict):
        action = payload.get("a")
        if isinstance(action, str) and action:
            return action[:64]
        if payload.get("command") == "start":  # VK's own «Начать» button
            return "/start"
    return None


def as_int(value: Any) -> int:
    """A VK id or size as an int; anything malformed counts as 0 (no such thing), as does a
    number no database column could hold (VK's ids fit in 64 bits)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return number if -(2**63) <= number < 2**63 else 0


def largest_photo_url(photo: Any) -> str | None:
    if not isinstance(photo, dict):
        return None
    sizes = [s for s in photo.get("sizes") or [] if isinstance(s, dict) and s.get("url")]
    if not sizes:
        return None
    best = max(sizes, key=lambda s: as_int(s.get("width")) * as_int(s.get("height")))
    return str(best["url"])


def intake_input(message: dict[str, Any]) -> IntakeInput:
    """One VK message (its raw ``object.message``): several photos in one message count.

    Whatever VK (or a forger) puts in the fields, the answer is an input, never an exception.
    """
    try:
        return _intake_input(message)
    except (TypeError, ValueError, KeyError, AttributeError):
        return IntakeInput(kind=InputKind.UNSUPPORTED)


def _intake_input(message: dict[str, Any]) -> IntakeInput:
    text = str(message.get("text") or "")
    attachments = [a for a in message.get("attachments") or [] if isinstance(a, dict)]
    photos = [
        url
        for a in attachments
        if a.get("type") == "photo"
        for url in [largest_photo_url(a.get("photo") or {})]
        if url
    ]
    if photos:
        return IntakeInput(kind=InputKind.PHOTO, photo_refs=tuple(photos), text=text)
    geo = message.get("geo") or {}
    coordinates = geo.get("coordinates") if isinstance(geo, dict) else None
    if isinstance(coordinates, dict) and "latitude" in coordinates:
        return IntakeInput(
            kind=InputKind.LOCATION,
            latitude=float(coordinates["latitude"]),
            longitude=float(coordinates["longitude"]),
        )
    for attachment in attachments:
        kind = str(attachment.get("type") or "")
        if kind == "doc":
            extension = str((attachment.get("doc") or {}).get("ext") or "").lower()
            if extension in IMAGE_EXTENSIONS:
                return IntakeInput(kind=InputKind.UNSUPPORTED, unsupported="image_document")
        if kind:
            return IntakeInput(
                kind=InputKind.UNSUPPORTED, unsupported=UNSUPPORTED_TYPES.get(kind, "")
            )
    if text:
        return IntakeInput(kind=InputKind.TEXT, text=text)
    if message.get("fwd_messages"):
        return IntakeInput(kind=InputKind.UNSUPPORTED, unsupported="forward")
    return IntakeInput(kind=InputKind.UNSUPPORTED)
