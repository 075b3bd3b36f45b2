"""Telegram's webhook delivery for the fake Bot API, and a round-robin load balancer.

:class:`WebhookTelegram` does what Telegram does once ``setWebhook`` was called: getUpdates is
refused with 409, and each queued update is POSTed to the webhook URL with the secret token in
``X-Telegram-Bot-Api-Secret-Token``, several at a time but one at a time per chat, until it is
answered with 200 (an error or a dropped connection means: try again a moment later).

:class:`Balancer` stands where nginx would: it passes each request to the next bot process and,
when one does not answer (killed), to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.fake_telegram import JSON, ApiError, FakeTelegram

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _chat_of(update: JSON) -> int | None:
    for kind in ("message", "edited_message", "callback_query", "my_chat_member"):
        body = update.get(kind)
        if not isinstance(body, dict):
            continue
        if kind == "callback_query":
            body = body.get("message") or {}
        chat = body.get("chat") or {}
        return int(chat["id"]) if "id" in chat else None
    return None


class WebhookTelegram(FakeTelegram):
    def __init__(self, *args: Any, max_connections: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.webhook_url = ""
        self.webhook_secret = ""
        self.max_connections = max_connections
        self.webhook_posts = 0
        self.webhook_failures = 0
        self._pusher: asyncio.Task[None] | None = None
        self._in_flight: set[int] = set()  # update ids being posted
        self._busy_chats: set[int | None] = set()

    async def stop(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
        await super().stop()

    async def _api_setwebhook(self, params: JSON, uploads: dict[str, bytes]) -> bool:
        self.webhook_url = str(params.get("url") or "")
        self.webhook_secret = str(params.get("secret_token") or "")
        if self._pusher is None and self.webhook_url:
            self._pusher = asyncio.create_task(self._push())
        return True

    async def _api_deletewebhook(self, params: JSON, uploads: dict[str, bytes]) -> bool:
        self.webhook_url = ""
        return await super()._api_deletewebhook(params, uploads)

    async def _api_getupdates(self, params: JSON, uploads: dict[str, bytes]) -> list[JSON]:
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        return await super()._api_getupdates(params, uploads)

    async def _push(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            posts: set[asyncio.Task[None]] = set()
            while True:
                for update in list(self.updates):
                    if len(posts) >= self.max_connections:
                        break
                    chat = _chat_of(update)
                    if update["update_id"] in self._in_flight or chat in self._busy_chats:
                        continue
                    self._in_flight.add(update["update_id"])
                    self._busy_chats.add(chat)
                    task = asyncio.create_task(self._post(session, update, chat))
                    posts.add(task)
                    task.add_done_callback(posts.discard)
                await asyncio.sleep(0.01)

    async def _post(self, session: aiohttp.ClientSession, update: JSON, chat: int | None) -> None:
        try:
            while self.webhook_url:
                self.webhook_posts += 1
                try:
                    async with session.post(
                        self.webhook_url,
                        json=update,
                        headers={SECRET_HEADER: self.webhook_secret},
                    ) as response:
                        if response.status == 200:
                            self.updates = [
                                u for u in self.updates if u["update_id"] != update["update_id"]
                            ]
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                self.webhook_failures += 1
                await asyncio.sleep(0.2)  # Telegram retries after a while
        finally:
            self._in_flight.discard(update["update_id"])
            self._busy_chats.discard(chat)


class Balancer:
    """Round robin over bot processes; a process that does not answer is skipped."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets
        self.forwarded = dict.fromkeys(targets, 0)
        self._next = itertools.cycle(range(len(targets)))
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> str:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        for _ in range(len(self.targets)):
            target = self.targets[next(self._next)]
            try:
                async with self._session.request(
                    request.method, target + request.path_qs, data=body, headers=headers
                ) as response:
                    self.forwarded[target] += 1
                    return web.Response(status=response.status, body=await response.read())
            except aiohttp.ClientConnectionError:
                continue  # that process is down: the next one
        return web.Response(status=502, text="no bot process answers")
