"""VK API for the bot: vkbottle's API pointed at VK_API_URL, paced to VK's 20 requests/s,
its errors in the core's terms, and photos moved in and out (download, the upload trio)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import aiohttp
from vkbottle import API, VKAPIError

from bot.core.ports import PermanentError, RecipientGone, RetryAfter

log = logging.getLogger(__name__)

REQUESTS_PER_SECOND = 20  # a community token's limit
PACE_WINDOW = 1.05  # seconds: 5 % to spare for the requests' uneven way to VK
TEXT_LIMIT = 4096
# 900 blacklisted the community, 901 has not allowed messages, 902 privacy settings.
RESIDENT_GONE = {900, 901, 902}
# 6 too many requests per second, 9 flood control; 5/27/28 a token VK does not take right now;
# 29 messages.send's quota spent (it renews): retried after a pause, never marked failed (a fixed
# token must still deliver the backlog).
PAUSES = {6: 1.0, 9: 10.0, 5: 60.0, 27: 60.0, 28: 60.0, 29: 600.0}
TRANSIENT = {1, 10}  # unknown error, internal server error


class RequestPace:
    """At most ``limit`` calls in any ``window`` seconds, shared by everything that talks to VK.

    The window is a little longer than VK's second: VK counts requests as they arrive, and two
    that leave a second apart can arrive closer (one waited longer on the way), which VK
    answers with error 6."""

    def __init__(self, limit: int = REQUESTS_PER_SECOND, window: float = PACE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                await asyncio.sleep(self._sent[0] + self.window - now)


class VkError(Exception):
    """A VK error that is worth retrying (5xx-like)."""


class VkClient:
    def __init__(self, token: str, api_url: str) -> None:
        self.api = API(token)
        self.api.API_URL = api_url if api_url.endswith("/") else api_url + "/"
        self.pace = RequestPace()
        self._session: aiohttp.ClientSession | None = None
        self._names: dict[int, str] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.api.http_client.close()

    async def call(self, method: str, **params: Any) -> Any:
        await self.pace.wait()
        try:
            response = await self.api.request(method, params)
        except VKAPIError as exc:
            raise _translate(method, exc) from exc
        return response["response"]

    async def send(
        self,
        peer_id: int,
        random_id: int,
        text: str = "",
        keyboard: str | None = None,
        attachment: str | None = None,
        **extra: Any,
    ) -> int:
        """messages.send, always with a random_id: VK drops a repeat of the same one."""
        if not random_id:
            raise ValueError("messages.send needs a random_id")
        params: dict[str, Any] = {"peer_id": peer_id, "random_id": random_id, **extra}
        if text:
            params["message"] = text[:TEXT_LIMIT]
        if keyboard is not None:
            params["keyboard"] = keyboard
        if attachment:
            params["attachment"] = attachment
        sent = await self.call("messages.send", **params)
        return int(sent) if isinstance(sent, int | str) else 0

    async def first_name(self, user_id: int) -> str:
        """The resident's first name for the card; remembered, and never worth failing for."""
        if user_id in self._names:
            return self._names[user_id]
        try:
            users = await self.call("users.get", user_ids=user_id)
            name = str(users[0].get("first_name") or "")[:100] if users else ""
        except Exception as exc:
            log.warning("users.get failed: %s", exc.__class__.__name__)
            return ""
        if len(self._names) > 50_000:
            self._names.clear()
        self._names[user_id] = name
        return name

    async def download(self, url: str) -> bytes:
        if not url.startswith(("http://", "https://")):
            raise PermanentError("not a photo address")
        async with self.session.get(url) as response:
            if 400 <= response.status < 500:
                raise PermanentError(f"photo download: HTTP {response.status}")
            if response.status >= 500:
                raise VkError(f"photo download: HTTP {response.status}")
            return await response.read()

    async def upload_photo(self, peer_id: int, content: bytes) -> str:
        """photos.getMessagesUploadServer → upload → photos.saveMessagesPhoto: an attachment."""
        server = await self.call("photos.getMessagesUploadServer", peer_id=peer_id)
        form = aiohttp.FormData()
        form.add_field("photo", content, filename="photo.jpg", content_type="image/jpeg")
        async with self.session.post(server["upload_url"], data=form) as response:
            if response.status >= 500:
                raise VkError(f"photo upload: HTTP {response.status}")
            uploaded = await response.json(content_type=None)
        if not uploaded.get("photo") or uploaded.get("photo") == "[]":
            raise PermanentError(f"VK did not take the photo: {uploaded.get('error') or 'empty'}")
        saved = await self.call(
            "photos.saveMessagesPhoto",
            photo=uploaded["photo"],
            server=uploaded["server"],
            hash=uploaded["hash"],
        )
        photo = saved[0]
        attachment = f"photo{photo['owner_id']}_{photo['id']}"
        return attachment + (f"_{photo['access_key']}" if photo.get("access_key") else "")


def _translate(method: str, exc: VKAPIError) -> Exception:
    code = int(getattr(exc, "code", 0) or 0)
    message = f"VK {method}: error {code} {getattr(exc, 'error_msg', '') or ''}".strip()
    if code in RESIDENT_GONE:
        return RecipientGone(message)
    if code == 29 and method != "messages.send":
        # A photo upload's daily quota: that photo fails, rather than the resident's later
        # messages waiting behind it until the quota renews.
        return PermanentError(message)
    if code in PAUSES:
        return RetryAfter(PAUSES[code])
    if code in TRANSIENT:
        return VkError(message)
    return PermanentError(message)
