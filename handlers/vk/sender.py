"""Delivers outbox messages to VK residents: texts with keyboards, photos, map points."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from bot.core.model import Keyboard
from bot.core.ports import PhotoRef
from handlers.vk.client import TEXT_LIMIT, VkClient
from handlers.vk.render import keyboard_json

ATTACHMENTS_LIMIT = 10


def derived_random_id(key: str | int, index: int = 0) -> int:
    """A stable random_id for part ``index`` of something identified by ``key``: a repeat of
    the same send (a retry, an event handled again after a restart) is dropped by VK."""
    digest = hashlib.blake2b(f"{key}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1) + 1


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Long texts in parts, cut at a line break where one is near."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", limit // 2, limit)
        cut = cut if cut > 0 else limit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [*parts, text]


class VkSender:
    def __init__(self, client: VkClient) -> None:
        self.client = client

    async def send_text(
        self, chat_id: str, text: str, keyboard: Keyboard | None, *, key: int = 0
    ) -> int:
        parts = split_text(text)
        message_id = 0
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            message_id = await self.client.send(
                int(chat_id),
                key if index == 0 and key else derived_random_id(key or text, index),
                part,
                keyboard_json(keyboard) if last else None,
            )
        return message_id

    async def send_photos(
        self, chat_id: str, photos: Sequence[PhotoRef], caption: str | None, *, key: int = 0
    ) -> list[int]:
        attachments = []
        for photo in list(photos)[:ATTACHMENTS_LIMIT]:
            content = photo.content
            if content is None:  # a VK resident's own photo, stored as its address
                content = await self.client.download(photo.ref)
            attachments.append(await self.client.upload_photo(int(chat_id), content))
        if not attachments:
            return []
        random_id = key or derived_random_id(",".join(p.ref for p in photos))
        sent = await self.client.send(
            int(chat_id), random_id, caption or "", attachment=",".join(attachments)
        )
        return [sent]

    async def send_location(
        self, chat_id: str, latitude: float, longitude: float, *, key: int = 0
    ) -> int:
        random_id = key or derived_random_id(f"{chat_id}:{latitude}:{longitude}")
        return await self.client.send(int(chat_id), random_id, "📍", lat=latitude, long=longitude)

    async def edit_text(
        self, chat_id: str, message_id: int, text: str, keyboard: Keyboard | None
    ) -> None:
        params: dict[str, object] = {
            "peer_id": int(chat_id),
            "message_id": message_id,
            "message": text[:TEXT_LIMIT],
        }
        rendered = keyboard_json(keyboard)
        if rendered is not None:
            params["keyboard"] = rendered
        await self.client.call("messages.edit", **params)

    async def fetch_photo(self, ref: str) -> bytes:
        return await self.client.download(ref)
