"""Fake Telegram and VK that enforce the platforms' send limits, counting what arrives.

Telegram (``LimitedTelegram``, a small standalone Bot API: getMe and sendMessage): at most
30 messages in any second overall, one per second to a private chat, 20 per minute to a group;
a message over a limit gets 429 with ``parameters.retry_after`` (whole seconds, as Telegram
sends it). VK (``LimitedVK``, the project's FakeVK): at most 20 API requests in any second,
error 6 «Too many requests per second» beyond that.

Windows are measured at arrival with ``SLACK`` of tolerance, because a client that paces itself
by its own clock sees its requests land a few milliseconds apart from when it sent them.
"""

from __future__ import annotations

import math
import time
from collections import Counter, deque
from typing import Any

from aiohttp import web

from tests.fakes.fake_vk import FakeVK

JSON = dict[str, Any]
SLACK = 0.05  # seconds
TELEGRAM_PER_SECOND = 30
TELEGRAM_GROUP_PER_MINUTE = 20
TELEGRAM_PRIVATE_INTERVAL = 1.0
VK_PER_SECOND = 20


def _trim(window: deque[float], now: float, span: float) -> deque[float]:
    while window and window[0] <= now - span + SLACK:
        window.popleft()
    return window


class LimitedTelegram:
    """The Bot API's sendMessage behind Telegram's limits; ``delivered`` counts texts."""

    def __init__(self, token: str, enforce: bool = True) -> None:
        self.token = token
        self.enforce = enforce
        self.base_url = ""
        self.delivered: Counter[str] = Counter()
        self.last_delivery = 0.0
        self.refused: Counter[str] = Counter()  # 429s by the limit that was hit
        self._global: deque[float] = deque()
        self._groups: dict[int, deque[float]] = {}
        self._private_last: dict[int, float] = {}
        self._message_ids: Counter[int] = Counter()
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def refusals(self) -> int:
        return sum(self.refused.values())

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"].lower()
        if method == "getme":
            me = {"id": 1, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
            return web.json_response({"ok": True, "result": me})
        if method != "sendmessage":
            return _error(404, "Not Found")
        form = await request.post()
        chat_id, text = int(str(form["chat_id"])), str(form["text"])
        wait = self._wait(chat_id, time.monotonic()) if self.enforce else 0.0
        if wait > 0:
            return _error(429, f"Too Many Requests: retry after {math.ceil(wait)}", wait)
        self.delivered[text] += 1
        self.last_delivery = time.monotonic()
        self._message_ids[chat_id] += 1
        kind = "supergroup" if chat_id < 0 else "private"
        message = {
            "message_id": self._message_ids[chat_id],
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": kind},
            "text": text,
        }
        return web.json_response({"ok": True, "result": message})

    def _wait(self, chat_id: int, now: float) -> float:
        """0 and the message counted, or the seconds until it would be allowed."""
        window = _trim(self._global, now, 1.0)
        if len(window) >= TELEGRAM_PER_SECOND:
            self.refused["30/s overall"] += 1
            return window[0] + 1.0 - now
        if chat_id < 0:
            group = _trim(self._groups.setdefault(chat_id, deque()), now, 60.0)
            if len(group) >= TELEGRAM_GROUP_PER_MINUTE:
                self.refused["20/min per group"] += 1
                return group[0] + 60.0 - now
            group.append(now)
        else:
            since = now - self._private_last.get(chat_id, -math.inf)
            if since < TELEGRAM_PRIVATE_INTERVAL - SLACK:
                self.refused["1/s per chat"] += 1
                return TELEGRAM_PRIVATE_INTERVAL - since
            self._private_last[chat_id] = now
        window.append(now)
        return 0.0


def _error(code: int, description: str, retry_after: float | None = None) -> web.Response:
    body: JSON = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": max(1, math.ceil(retry_after))}
    return web.json_response(body, status=code)


class LimitedVK(FakeVK):
    """The project's fake VK, refusing requests beyond 20 a second with error 6."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.refused = 0
        self.last_delivery = 0.0
        self._window: deque[float] = deque()
        self._sent_keys: dict[tuple[int, int], int] = {}
        self.delivered: Counter[str] = Counter()

    async def dispatch(self, name: str, params: JSON) -> JSON:
        now = time.monotonic()
        window = _trim(self._window, now, 1.0)
        if len(window) >= VK_PER_SECOND:
            self.refused += 1
            error = {"error_code": 6, "error_msg": "Too many requests per second"}
            return {"error": {**error, "request_params": []}}
        window.append(now)
        if name == "messages.send":
            return self._send_once(params)
        return await super().dispatch(name, params)

    def _send_once(self, params: JSON) -> JSON:
        """messages.send as FakeVK does it (a repeated random_id sends nothing new), with the
        repeat found through a dict: FakeVK scans every message sent so far."""
        key = (int(params["peer_id"]), int(params["random_id"]))
        if key in self._sent_keys:
            return {"response": self._sent_keys[key]}
        text = str(params.get("message") or "")
        message_id = len(self._sent_keys) + 1
        self._sent_keys[key] = message_id
        self.last_delivery = time.monotonic()
        self.delivered[text] += 1
        return {"response": message_id}
