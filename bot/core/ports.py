"""Ports: what the core needs from a messaging platform, and the failures it understands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.model import Keyboard


@dataclass(frozen=True)
class PhotoRef:
    """A photo as stored: which platform's reference it is and the reference itself.

    ``content`` carries the bytes when the photo goes to another platform than it came from.
    """

    platform: str
    ref: str
    content: bytes | None = field(default=None, repr=False)


class Sender(Protocol):
    """Sends to one platform. Raises the errors below; anything else counts as transient.

    ``key`` identifies one outbox message across retries; a platform that can drop a repeated
    request by such a key (VK's random_id) uses it.
    """

    async def send_text(
        self, chat_id: str, text: str, keyboard: Keyboard | None, *, key: int = 0
    ) -> int: ...

    async def send_photos(
        self, chat_id: str, photos: Sequence[PhotoRef], caption: str | None, *, key: int = 0
    ) -> list[int]: ...

    async def send_location(
        self, chat_id: str, latitude: float, longitude: float, *, key: int = 0
    ) -> int: ...

    async def fetch_photo(self, ref: str) -> bytes:
        """The bytes of a photo this platform stored, to hand it to another platform."""
        ...

    async def edit_text(
        self, chat_id: str, message_id: int, text: str, keyboard: Keyboard | None
    ) -> None: ...


class DeliveryError(Exception):
    """Base for failures the outbox worker treats specially."""


class RetryAfter(DeliveryError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds


class RecipientGone(DeliveryError):
    """The user blocked the bot, or the bot is no longer in the chat."""


class ChatMoved(DeliveryError):
    def __init__(self, new_chat_id: int) -> None:
        super().__init__(f"chat moved to {new_chat_id}")
        self.new_chat_id = new_chat_id


class PermanentError(DeliveryError):
    """The platform refused the request itself: retrying will not help."""
