"""A recording stand-in for a messaging platform, and a helper to drain the outbox through it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.core.config import CoreConfig
from bot.core.delivery import OutboxWorker
from bot.core.model import Keyboard
from bot.core.ports import PermanentError, PhotoRef
from bot.core.ratelimit import Limits, RateLimiter
from storage.uow import Database

NO_LIMITS = Limits(per_second=10_000, private_interval=0.0, group_per_minute=0, spaced=False)


@dataclass
class Sent:
    method: str
    chat_id: str
    text: str = ""
    keyboard: Keyboard | None = None
    photos: list[str] = field(default_factory=list)
    message_id: int = 0
    location: tuple[float, float] | None = None
    key: int = 0  # the outbox message's idempotency key (VK's random_id)
    uploaded: int = 0  # photos that came as bytes from another platform

    @property
    def actions(self) -> list[str]:
        if self.keyboard is None:
            return []
        return [b.action for row in self.keyboard.rows for b in row if b.action]


class RecordingSender:
    """Records what would be sent; ``fail_with`` queues exceptions to raise, one per call."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.fail_with: list[Exception] = []
        self.fail_chat: dict[str, list[Exception]] = {}
        self.fetched: list[str] = []
        self.gone: set[str] = set()  # photos their platform no longer gives out
        self._next_id = 1000

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _maybe_fail(self, chat_id: str) -> None:
        if self.fail_chat.get(chat_id):
            raise self.fail_chat[chat_id].pop(0)
        if self.fail_with:
            raise self.fail_with.pop(0)

    async def send_text(
        self, chat_id: str, text: str, keyboard: Keyboard | None, *, key: int = 0
    ) -> int:
        self._maybe_fail(chat_id)
        message_id = self._id()
        self.sent.append(Sent("text", chat_id, text, keyboard, message_id=message_id, key=key))
        return message_id

    async def send_photos(
        self, chat_id: str, photos: Sequence[PhotoRef], caption: str | None, *, key: int = 0
    ) -> list[int]:
        self._maybe_fail(chat_id)
        ids = [self._id() for _ in photos]
        refs = [p.ref for p in photos]
        uploaded = sum(1 for p in photos if p.content is not None)
        self.sent.append(
            Sent(
                "photos",
                chat_id,
                caption or "",
                photos=refs,
                message_id=ids[0] if ids else 0,
                key=key,
                uploaded=uploaded,
            )
        )
        return ids

    async def fetch_photo(self, ref: str) -> bytes:
        self.fetched.append(ref)
        if ref in self.gone:
            raise PermanentError("photo download: HTTP 404")
        return b"bytes of " + ref.encode()

    async def send_location(
        self, chat_id: str, latitude: float, longitude: float, *, key: int = 0
    ) -> int:
        self._maybe_fail(chat_id)
        message_id = self._id()
        self.sent.append(
            Sent("location", chat_id, location=(latitude, longitude), message_id=message_id)
        )
        return message_id

    async def edit_text(
        self, chat_id: str, message_id: int, text: str, keyboard: Keyboard | None
    ) -> None:
        self._maybe_fail(chat_id)
        self.sent.append(Sent("edit", chat_id, text, keyboard, message_id=message_id))

    def to(self, chat_id: int | str) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == str(chat_id)]

    def texts_to(self, chat_id: int | str) -> list[str]:
        return [s.text for s in self.to(chat_id)]


def make_worker(
    db: Database,
    config: CoreConfig,
    sender: RecordingSender,
    clock: Callable[[], float] = time.monotonic,
) -> OutboxWorker:
    limiter = RateLimiter(NO_LIMITS, is_group=lambda chat: chat.startswith("-"), clock=clock)
    return OutboxWorker(
        db, config, {"telegram": sender, "vk": sender}, {"telegram": limiter, "vk": limiter}
    )


async def drain(worker: OutboxWorker, rounds: int = 50) -> None:
    """Deliver everything that is due now."""
    for _ in range(rounds):
        attempted, _wait = await worker.run_once()
        if not attempted:
            return
