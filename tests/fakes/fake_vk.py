"""A local fake of the VK API and its Bots Long Poll server, over real HTTP with aiohttp.

The bot talks to it as to api.vk.com (``VK_API_URL``): methods are POSTed to
``{base}/method/{name}`` with ``access_token`` and ``v`` in the query and answered with
``{"response": ...}`` or ``{"error": {"error_code": ..., "error_msg": ...}}``. The long poll is
served at ``{base}/lp``; photo uploads at ``{base}/upload``; photos at ``{base}/photos/…``.

The test plays residents: helpers queue ``message_new`` (texts, photos, map points, replies,
button payloads) and ``message_event`` (callback button presses) events. Events stay in the
server's history, like VK's, so a bot that restarts with an older ``ts`` gets them again.

VK's rules that matter are kept: ``messages.send`` needs a ``random_id`` and a repeated
``random_id`` to the same peer sends nothing new; a resident who never wrote to the community
cannot be written to (901); keyboards are checked (inline ≤ 10 buttons in ≤ 6 rows, labels
≤ 40 characters, payloads ≤ 255, a location button alone in its row); an event answer needs a
known ``event_id``. Errors can be injected per method (e.g. 6, 9, 10, 901).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSON = dict[str, Any]
GROUP_ID = 229876543
CLIENT_INFO = {
    "button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback"],
    "keyboard": True,
    "inline_keyboard": True,
    "carousel": True,
    "lang_id": 0,
}
FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 64 + b"\xff\xd9"


class VkApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Call:
    seq: int
    method: str
    params: JSON
    result: Any = None
    error: int | None = None


@dataclass
class Sent:
    """A message the community sent to a resident."""

    id: int
    peer_id: int
    random_id: int
    text: str
    keyboard: JSON | None
    attachments: list[str]
    photos: list[bytes] = field(default_factory=list)
    lat: float | None = None

    @property
    def payloads(self) -> list[str]:
        if not self.keyboard:
            return []
        actions = [b["action"] for row in self.keyboard.get("buttons", []) for b in row]
        return [json.loads(a["payload"])["a"] for a in actions if "payload" in a]


class FakeVK:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.events: list[JSON] = []  # the long poll history; ts = index of the next event
        self.users: dict[int, JSON] = {}
        self.allowed: set[int] = set()  # residents who wrote to the community
        self.uploads: dict[str, bytes] = {}
        self.photos: dict[int, bytes] = {}
        self.pending_event_ids: set[str] = set()
        self.answered_event_ids: list[str] = []
        self.injected: list[tuple[str, int, int]] = []  # method, code, times
        self.long_polls = 0
        self._closing = False
        self._seq = itertools.count(1)
        self._ids = itertools.count(1001)
        self._photo_ids = itertools.count(457239001)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base = ""

    # Server ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/method/{name}", self._method)
        app.router.add_route("*", "/lp", self._long_poll)
        app.router.add_post("/upload", self._upload)
        app.router.add_get("/photos/{name}", self._photo)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._closing = True  # open long polls return now instead of after their wait
        await self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.base}/method/"

    # Residents -----------------------------------------------------------------------------

    def user(self, user_id: int, first_name: str) -> JSON:
        self.users[user_id] = {"id": user_id, "first_name": first_name, "last_name": "Тестова"}
        return self.users[user_id]

    def photo_attachment(self, content: bytes = FAKE_JPEG) -> JSON:
        """A photo as VK puts it into an incoming message: sizes with download URLs."""
        photo_id = next(self._photo_ids)
        self.photos[photo_id] = content
        url = f"{self.base}/photos/{photo_id}.jpg?size=max&quality=95&sign=abcdef0123456789"
        sizes = [
            {"type": "s", "width": 75, "height": 56, "url": url.replace("max", "s")},
            {"type": "w", "width": 1280, "height": 960, "url": url},
        ]
        return {
            "type": "photo",
            "photo": {"id": photo_id, "owner_id": 0, "access_key": "k", "sizes": sizes},
        }

    def write(
        self,
        user_id: int,
        text: str = "",
        attachments: list[JSON] | None = None,
        payload: str | None = None,
        geo: tuple[float, float] | None = None,
        reply_to: Sent | None = None,
    ) -> JSON:
        """The resident sends the community a message."""
        self.allowed.add(user_id)
        message: JSON = {
            "date": int(time.time()),
            "from_id": user_id,
            "peer_id": user_id,
            "id": next(self._ids),
            "conversation_message_id": len(self.events) + 1,
            "out": 0,
            "text": text,
            "attachments": attachments or [],
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "version": 1,
        }
        if payload is not None:
            message["payload"] = payload
        if geo is not None:
            message["geo"] = {
                "type": "point",
                "coordinates": {"latitude": geo[0], "longitude": geo[1]},
            }
        if reply_to is not None:
            message["reply_message"] = {
                "id": reply_to.id,
                "date": int(time.time()),
                "from_id": -GROUP_ID,
                "peer_id": user_id,
                "text": reply_to.text,
                "attachments": [],
                "conversation_message_id": 1,
            }
        self._push("message_new", {"message": message, "client_info": CLIENT_INFO})
        return message

    def press(self, user_id: int, sent: Sent, action: str) -> str:
        """The resident presses a callback button under ``sent``."""
        payloads = sent.payloads
        assert action in payloads, f"{action!r} is not under the message: {payloads}"
        return self.press_forged(user_id, sent, action)

    def press_forged(self, user_id: int, sent: Sent, action: str) -> str:
        """A press with any payload under ``sent`` (an old client, a modified one)."""
        event_id = f"evt{next(self._seq):08d}"
        self.pending_event_ids.add(event_id)
        self._push(
            "message_event",
            {
                "user_id": user_id,
                "peer_id": user_id,
                "event_id": event_id,
                "payload": {"a": action},
                "conversation_message_id": sent.id,
            },
        )
        return event_id

    def _push(self, kind: str, body: JSON) -> None:
        self.events.append(
            {
                "group_id": GROUP_ID,
                "type": kind,
                "event_id": f"{len(self.events):040x}",
                "v": "5.199",
                "object": body,
            }
        )
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # What the bot did ------------------------------------------------------------------------

    def inject(self, method: str, code: int, times: int = 1) -> None:
        self.injected.append((method, code, times))

    def sent_to(self, user_id: int) -> list[Sent]:
        return [s for s in self.sent if s.peer_id == user_id]

    def texts_to(self, user_id: int) -> list[str]:
        return [s.text for s in self.sent_to(user_id)]

    def find(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[list[Sent]], Any], timeout: float = 15.0) -> Any:
        """Waits until ``predicate(self.sent)`` is truthy and returns what it returned."""
        deadline = time.monotonic() + timeout
        while True:
            found = predicate(self.sent)
            if found:
                return found
            if time.monotonic() > deadline:
                dump = "\n".join(f"  → {s.peer_id}: {s.text[:100]!r}" for s in self.sent)
                raise AssertionError(f"not sent in {timeout}s; sent so far:\n{dump}")
            await asyncio.sleep(0.05)

    async def wait_text(self, user_id: int, part: str, timeout: float = 15.0) -> Sent:
        found: Sent = await self.wait_for(
            lambda sent: next((s for s in sent if s.peer_id == user_id and part in s.text), None),
            timeout,
        )
        return found

    # HTTP ------------------------------------------------------------------------------------

    async def _method(self, request: web.Request) -> web.Response:
        params: JSON = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return web.json_response(await self.dispatch(request.match_info["name"], params))

    async def dispatch(self, name: str, params: JSON) -> JSON:
        """One API method call: what VK would answer (also used without HTTP in tests)."""
        params = {k: str(v) for k, v in params.items()}
        call = Call(next(self._seq), name, params)
        self.calls.append(call)
        try:
            if params.get("access_token") != self.token:
                raise VkApiError(5, "User authorization failed: invalid access_token (4).")
            self._maybe_fail(name)
            handler = getattr(self, "_api_" + name.replace(".", "_"), None)
            if handler is None:
                raise VkApiError(3, "Unknown method passed.")
            call.result = await handler(params)
            return {"response": call.result}
        except VkApiError as exc:
            call.error = exc.code
            return {
                "error": {"error_code": exc.code, "error_msg": exc.message, "request_params": []}
            }

    def _maybe_fail(self, method: str) -> None:
        for index, (name, code, times) in enumerate(self.injected):
            if name == method and times > 0:
                self.injected[index] = (name, code, times - 1)
                raise VkApiError(code, f"injected error {code}")

    async def _long_poll(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        if params.get("key") != "lp-key":
            return web.json_response({"failed": 2})
        ts = int(params.get("ts") or 0)
        wait = min(float(params.get("wait") or 25), 25.0)
        self.long_polls += 1
        deadline = time.monotonic() + wait
        async with self._changed:
            while len(self.events) <= ts and time.monotonic() < deadline and not self._closing:
                try:
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
        updates = self.events[ts:]
        return web.json_response({"ts": str(ts + len(updates)), "updates": updates})

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        photo = form.get("photo")
        if not isinstance(photo, web.FileField):
            return web.json_response({"server": 1, "photo": "[]", "hash": ""})
        content = photo.file.read()
        upload_id = f"u{next(self._seq)}"
        self.uploads[upload_id] = content
        return web.json_response(
            {
                "server": 839201,
                "photo": json.dumps([{"upload": upload_id}]),
                "hash": "h" + upload_id,
            }
        )

    async def _photo(self, request: web.Request) -> web.Response:
        name = request.match_info["name"].split(".")[0]
        content = self.photos.get(int(name)) if name.isdigit() else None
        if content is None:
            return web.Response(status=404)
        return web.Response(body=content, content_type="image/jpeg")

    # Methods --------------------------------------------------------------------------------

    async def _api_groups_getById(self, params: JSON) -> JSON:
        return {
            "groups": [{"id": GROUP_ID, "name": "Приёмная", "screen_name": "priemnaya"}],
            "profiles": [],
        }

    async def _api_groups_getLongPollServer(self, params: JSON) -> JSON:
        if str(params.get("group_id")) != str(GROUP_ID):
            raise VkApiError(100, "One of the parameters specified was missing or invalid")
        return {"key": "lp-key", "server": f"{self.base}/lp", "ts": str(len(self.events))}

    async def _api_users_get(self, params: JSON) -> list[JSON]:
        ids = [int(i) for i in str(params.get("user_ids") or "").split(",") if i.strip()]
        return [self.users.get(i, {"id": i, "first_name": "", "last_name": ""}) for i in ids]

    async def _api_messages_send(self, params: JSON) -> int:
        if not params.get("random_id"):
            raise VkApiError(100, "One of the parameters specified was missing: random_id")
        peer_id = int(params["peer_id"])
        random_id = int(params["random_id"])
        if peer_id not in self.allowed:
            raise VkApiError(901, "Can't send messages for users without permission")
        for earlier in self.sent:  # VK sends a repeated random_id once
            if earlier.peer_id == peer_id and earlier.random_id == random_id:
                return earlier.id
        text = str(params.get("message") or "")
        attachments = [a for a in str(params.get("attachment") or "").split(",") if a]
        if not text and not attachments and "lat" not in params:
            raise VkApiError(100, "One of the parameters specified was missing: message")
        if len(text) > 4096:
            raise VkApiError(914, "Message is too long")
        keyboard = json.loads(params["keyboard"]) if params.get("keyboard") else None
        if keyboard is not None:
            _check_keyboard(keyboard)
        photos = [self._attached(a) for a in attachments]
        sent = Sent(
            next(self._ids),
            peer_id,
            random_id,
            text,
            keyboard,
            attachments,
            photos,
            float(params["lat"]) if "lat" in params else None,
        )
        self.sent.append(sent)
        return sent.id

    def _attached(self, attachment: str) -> bytes:
        owner_id, photo_id = attachment.removeprefix("photo").split("_")[:2]
        if int(owner_id) != -GROUP_ID or int(photo_id) not in self.photos:
            raise VkApiError(100, f"invalid attachment {attachment}")
        return self.photos[int(photo_id)]

    async def _api_messages_sendMessageEventAnswer(self, params: JSON) -> int:
        event_id = str(params.get("event_id") or "")
        if event_id not in self.pending_event_ids:
            raise VkApiError(100, "One of the parameters specified was missing: event_id")
        self.pending_event_ids.discard(event_id)
        self.answered_event_ids.append(event_id)
        return 1

    def _by_cmid(self, params: JSON) -> Sent:
        # The fake gives each message one number: its id is also its conversation_message_id.
        wanted = int(str(params.get("conversation_message_id") or params.get("message_id") or 0))
        peer_id = int(str(params.get("peer_id") or 0))
        for sent in self.sent:
            if sent.id == wanted and sent.peer_id == peer_id:
                return sent
        raise VkApiError(100, "One of the parameters specified was missing or invalid: message")

    async def _api_messages_getByConversationMessageId(self, params: JSON) -> JSON:
        ids = [int(i) for i in str(params.get("conversation_message_ids") or "").split(",") if i]
        peer_id = int(str(params.get("peer_id") or 0))
        items = [
            {"id": s.id, "conversation_message_id": s.id, "peer_id": s.peer_id, "text": s.text}
            for s in self.sent
            if s.id in ids and s.peer_id == peer_id
        ]
        return {"count": len(items), "items": items}

    async def _api_messages_edit(self, params: JSON) -> int:
        sent = self._by_cmid(params)
        if not params.get("message") and not sent.attachments:
            raise VkApiError(100, "One of the parameters specified was missing: message")
        sent.text = str(params.get("message") or "")
        if "keyboard" in params:
            keyboard = json.loads(params["keyboard"])
            _check_keyboard(keyboard)
            sent.keyboard = keyboard if keyboard.get("buttons") else None
        return 1

    async def _api_photos_getMessagesUploadServer(self, params: JSON) -> JSON:
        return {"upload_url": f"{self.base}/upload", "album_id": -64, "group_id": GROUP_ID}

    async def _api_photos_saveMessagesPhoto(self, params: JSON) -> list[JSON]:
        try:
            upload_id = json.loads(str(params.get("photo")))[0]["upload"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise VkApiError(100, "photo is undefined") from exc
        if params.get("hash") != "h" + upload_id or upload_id not in self.uploads:
            raise VkApiError(121, "Invalid hash")
        photo_id = next(self._photo_ids)
        self.photos[photo_id] = self.uploads.pop(upload_id)
        return [{"id": photo_id, "owner_id": -GROUP_ID, "access_key": "ak" + str(photo_id)}]


def _check_keyboard(keyboard: JSON) -> None:
    rows = keyboard.get("buttons")
    if not isinstance(rows, list):
        raise VkApiError(911, "Keyboard format is invalid: buttons")
    buttons = [b for row in rows for b in row]
    if keyboard.get("inline") and (len(buttons) > 10 or len(rows) > 6):
        raise VkApiError(911, "Keyboard format is invalid: too many buttons")
    if len(rows) > 10 or any(len(row) > 5 for row in rows):
        raise VkApiError(911, "Keyboard format is invalid: too many buttons")
    for row in rows:
        for button in row:
            action = button.get("action") or {}
            if action.get("type") == "location" and len(row) > 1:
                raise VkApiError(911, "Keyboard format is invalid: location must be alone")
            if len(str(action.get("label") or "")) > 40:
                raise VkApiError(911, "Keyboard format is invalid: label is too long")
            if len(str(action.get("payload") or "")) > 255:
                raise VkApiError(911, "Keyboard format is invalid: payload is too long")
