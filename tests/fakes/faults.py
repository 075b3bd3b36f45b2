"""Random faults on top of the fake platforms, served over the same real HTTP.

:class:`FaultyTelegram` and :class:`FaultyVK` are the fakes of ``fake_telegram`` / ``fake_vk``
with a seeded :class:`FaultPlan` in front of chosen methods. Each request to such a method draws
one fault:

- ``ok``: the fake answers as usual;
- ``error``: an error answer without touching the world (Telegram: 502, as nginx gives it or as
  JSON; 429 with ``retry_after`` through ``retry``; VK: error 10, or error 6 through ``retry``);
- ``hang``: the server sleeps past the client's timeout and never handles the request;
- ``drop``: the connection is closed before the request is handled;
- ``lost``: the request IS handled (the message exists in the fake's world), then the answer is
  lost — the server sleeps past the client's timeout or drops the connection. The client cannot
  tell this from ``hang``/``drop``; a resend is a second copy unless the platform dedupes it
  (VK's ``random_id``).

Every request that went through the plan is logged as a :class:`Faulted`, so a test can tell
which resends were caused by a lost answer and which answers reached the client.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.fake_telegram import ApiError, FakeTelegram
from tests.fakes.fake_vk import FakeVK

OK, ERROR, RETRY, HANG, DROP, LOST = "ok", "error", "retry", "hang", "drop", "lost"
FAULTS = (OK, ERROR, RETRY, HANG, DROP, LOST)


@dataclass
class FaultPlan:
    """Which fault a request meets: drawn from ``weights`` by a seeded generator."""

    seed: int
    weights: Mapping[str, float]
    hang_seconds: float = 0.6  # longer than the client's timeout
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {unknown}")
        self._random = random.Random(self.seed)

    def draw(self) -> str:
        kinds = list(self.weights)
        return self._random.choices(kinds, weights=[self.weights[k] for k in kinds])[0]

    def pick(self, *options: Any) -> Any:
        return self._random.choice(options)


@dataclass
class Faulted:
    """One request that went through the plan, and what became of it."""

    method: str
    chat_id: int | None
    text: str
    fault: str
    status: int = 0  # the fake's own answer (HTTP status; VK: 0 ok, else the error code)
    # Whether the fake's answer reached the client (``ok``) or the client saw a fault instead.
    answered: bool = False
    detail: str = ""
    at: float = field(default_factory=time.monotonic)  # when the request arrived


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()


class FaultyTelegram(FakeTelegram):
    """The fake Bot API with random faults on ``methods`` (lower case)."""

    def __init__(
        self, plan: FaultPlan, methods: frozenset[str], retry_after: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.fault_methods = methods
        self.retry_after = retry_after
        self.faulted: list[Faulted] = []

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        if method not in self.fault_methods:
            return await super()._handle(request)
        params, _ = await self._read_params(request)  # cached: the fake reads them again
        chat = params.get("chat_id")
        text = str(params.get("text") or params.get("caption") or "")
        entry = Faulted(method, chat if isinstance(chat, int) else None, text, self.plan.draw())
        self.faulted.append(entry)
        if entry.fault == OK:
            response = await super()._handle(request)
            entry.status, entry.answered = response.status, True
            return response
        if entry.fault == ERROR:
            if self.plan.pick(True, False):
                entry.detail = "502 html"
                return web.Response(
                    status=502,
                    text="<html><body>502 Bad Gateway</body></html>",
                    content_type="text/html",
                )
            entry.detail = "502 json"
            return web.json_response(ApiError(502, "Bad Gateway").body(), status=502)
        if entry.fault == RETRY:
            error = ApiError(
                429,
                f"Too Many Requests: retry after {self.retry_after}",
                retry_after=self.retry_after,
            )
            return web.json_response(error.body(), status=429)
        if entry.fault == HANG:
            await asyncio.sleep(self.plan.hang_seconds)
            return web.json_response(ApiError(504, "Gateway Timeout").body(), status=504)
        if entry.fault == DROP:
            _drop(request)
            return web.Response(status=500)
        # LOST: handled, then the answer never arrives.
        response = await super()._handle(request)
        entry.status = response.status
        if self.plan.pick(True, False):
            entry.detail = "timeout"
            await asyncio.sleep(self.plan.hang_seconds)
        else:
            entry.detail = "connection dropped"
            _drop(request)
        return response

    def accepted(self, chat_id: int, text: str) -> list[Faulted]:
        """Requests for ``text`` to ``chat_id`` that the fake handled successfully."""
        return [
            f for f in self.faulted if f.chat_id == chat_id and f.text == text and f.status == 200
        ]


class FaultyVK(FakeVK):
    """The fake VK API with random faults on ``methods`` (as VK names them)."""

    def __init__(self, token: str, plan: FaultPlan, methods: frozenset[str]) -> None:
        super().__init__(token)
        self.plan = plan
        self.fault_methods = methods
        self.faulted: list[Faulted] = []

    async def _method(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.fault_methods:
            return await super()._method(request)
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            form = await request.post()  # read once: the fake's own _method is bypassed below
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        peer = str(params.get("peer_id") or "")
        entry = Faulted(
            name,
            int(peer) if peer.lstrip("-").isdigit() else None,
            str(params.get("message") or ""),
            self.plan.draw(),
            detail=str(params.get("random_id") or ""),
        )
        self.faulted.append(entry)
        if entry.fault == OK:
            response = await self._answer(name, params)
            entry.status, entry.answered = _vk_status(response), True
            return response
        if entry.fault in (ERROR, RETRY):
            code = 10 if entry.fault == ERROR else 6
            message = "Internal server error" if code == 10 else "Too many requests per second"
            return web.json_response(
                {"error": {"error_code": code, "error_msg": message, "request_params": []}}
            )
        if entry.fault == HANG:
            await asyncio.sleep(self.plan.hang_seconds)
            return web.Response(status=504)
        if entry.fault == DROP:
            _drop(request)
            return web.Response(status=500)
        response = await self._answer(name, params)
        entry.status = _vk_status(response)
        if self.plan.pick(True, False):
            await asyncio.sleep(self.plan.hang_seconds)
        else:
            _drop(request)
        return response

    async def _answer(self, name: str, params: dict[str, Any]) -> web.Response:
        """What FakeVK._method does once the parameters are read."""
        return web.json_response(await self.dispatch(name, params))


def _vk_status(response: web.Response) -> int:
    body = json.loads(response.text or "{}")
    error = body.get("error") if isinstance(body, dict) else None
    return int(error.get("error_code") or -1) if isinstance(error, dict) else 0
