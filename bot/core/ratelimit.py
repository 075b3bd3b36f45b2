"""Send pacing that keeps to a platform's limits instead of discovering them through 429s."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    per_second: float  # all chats together
    private_interval: float  # seconds between two messages to one private chat
    group_per_minute: int  # messages per minute to one group (0: no separate limit)
    spaced: bool = True  # evenly spaced sends rather than bursts up to per_second


CATCH_UP = 0.1  # seconds of lateness evenly spaced sending may make up for

TELEGRAM_LIMITS = Limits(per_second=30, private_interval=1.0, group_per_minute=20)
# VK limits requests (20/s for a community token), not chats; the client paces every request.
VK_LIMITS = Limits(per_second=20, private_interval=0.0, group_per_minute=0, spaced=False)


class RateLimiter:
    def __init__(
        self,
        limits: Limits,
        is_group: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.is_group = is_group
        self.clock = clock
        self._global: deque[float] = deque()
        self._global_next = 0.0
        self._private_next: dict[str, float] = {}
        self._group: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._global_blocked_until = 0.0

    def wait_time(self, chat_id: str, weight: int = 1) -> float:
        """Seconds until ``weight`` messages may go to ``chat_id``; 0 when they may go now."""
        now = self.clock()
        waits = [self._blocked_until.get(chat_id, 0.0) - now, self._global_blocked_until - now]
        window = self._trim(self._global, now, 1.0)
        if len(window) + weight > self.limits.per_second and window:
            waits.append(window[0] + 1.0 - now)
        # Evenly spaced rather than 30 at once and then a pause: requests reach the platform
        # a little apart from when they left, and a burst at a window's edge counts twice.
        if self.limits.spaced:
            waits.append(self._global_next - now)
        if self.is_group(chat_id) and self.limits.group_per_minute:
            group = self._trim(self._group.setdefault(chat_id, deque()), now, 60.0)
            if len(group) + weight > self.limits.group_per_minute and group:
                over = len(group) + weight - self.limits.group_per_minute
                waits.append(group[min(over, len(group)) - 1] + 60.0 - now)
        else:
            waits.append(self._private_next.get(chat_id, 0.0) - now)
        return max(0.0, *waits)

    def global_wait(self) -> float:
        """Seconds until anything at all may go (all chats share the overall limit)."""
        now = self.clock()
        waits = [self._global_blocked_until - now]
        window = self._trim(self._global, now, 1.0)
        if len(window) >= self.limits.per_second and window:
            waits.append(window[0] + 1.0 - now)
        if self.limits.spaced:
            waits.append(self._global_next - now)
        return max(0.0, *waits)

    def record(self, chat_id: str, weight: int = 1) -> None:
        now = self.clock()
        for _ in range(weight):
            self._global.append(now)
        # A send that left late (a busy loop) lets the next ones catch up a little: the
        # sliding window above still caps any second at per_second.
        self._global_next = max(self._global_next, now - CATCH_UP) + weight / self.limits.per_second
        self.record_chat(chat_id, weight)

    def record_chat(self, chat_id: str, weight: int = 1) -> None:
        """Messages sent to ``chat_id`` outside the queue (a handler's own answer): the chat's
        next one keeps its distance. The overall budget stays the queue's, as it does for the
        handlers' other answers."""
        now = self.clock()
        if self.is_group(chat_id) and self.limits.group_per_minute:
            self._group.setdefault(chat_id, deque()).extend([now] * weight)
        else:
            self._private_next[chat_id] = now + self.limits.private_interval * weight

    def block(self, chat_id: str, seconds: float, everywhere: bool = False) -> None:
        """Honour a 429: nothing to this chat (or anywhere) for ``seconds``."""
        until = self.clock() + seconds
        self._blocked_until[chat_id] = max(self._blocked_until.get(chat_id, 0.0), until)
        if everywhere:
            self._global_blocked_until = max(self._global_blocked_until, until)

    @staticmethod
    def _trim(window: deque[float], now: float, span: float) -> deque[float]:
        while window and window[0] <= now - span:
            window.popleft()
        return window
