"""Webhook mode: Telegram posts updates to an aiohttp server (one per process, any number of
processes behind a load balancer).

Only requests carrying the secret token (``X-Telegram-Bot-Api-Secret-Token``) are taken. An
update is answered after it was handled, not before: if the process dies meanwhile, Telegram
posts it again (to whichever process) and :class:`handlers.telegram.once.OncePerUpdate` makes
sure its effect happens once.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from storage.outage import is_outage

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"


class AnsweredWhenHandled(SimpleRequestHandler):
    """Answers Telegram once the update was handled, however long that takes, and with 503
    when the database or Redis was away: Telegram then posts the update again.

    aiogram's own handler answers 200 after 55 s and finishes the update in the background: a
    stalled database followed by a restart lost it, Telegram having been told it was done.
    Past Telegram's own wait (about a minute) it posts the update again by itself, and
    ``OncePerUpdate`` keeps the two from both having their effect.
    """

    async def _handle_request(self, bot: Bot, request: web.Request) -> web.Response:
        raw = await request.json(loads=bot.session.json_loads)
        update = Update.model_validate(raw, context={"bot": bot})
        try:
            await self.dispatcher.feed_update(bot, update, **self.data)
        except Exception as exc:
            if not is_outage(exc):
                raise
            return web.Response(status=503, text="storage unavailable; try again")
        return web.json_response({})


def webhook_app(bot: Bot, dispatcher: Dispatcher, path: str, secret: str) -> web.Application:
    app = web.Application()
    AnsweredWhenHandled(dispatcher, bot, secret_token=secret, handle_in_background=False).register(
        app, path=path
    )

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get(HEALTH_PATH, health)
    return app


async def serve_webhook(
    bot: Bot,
    dispatcher: Dispatcher,
    url: str,
    secret: str,
    listen: tuple[str, int],
    allowed_updates: list[str],
) -> None:
    """Listen, tell Telegram where to post, and serve until cancelled.

    Every process sets the same webhook: the call is idempotent, and a process that starts
    alone still gets its updates.
    """
    path = urlsplit(url).path or "/"
    runner = web.AppRunner(webhook_app(bot, dispatcher, path, secret), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, listen[0], listen[1])
    await site.start()
    log.info("webhook server listening on %s:%s%s", listen[0], listen[1], path)
    try:
        await bot.set_webhook(
            url, secret_token=secret, allowed_updates=allowed_updates, drop_pending_updates=False
        )
        log.info("Telegram posts updates to %s", url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
