"""A local fake of the Telegram Bot API, served over real HTTP with aiohttp.

The bot under test talks to it exactly as to api.telegram.org (``TELEGRAM_API_URL``): methods
are POSTed to ``{base}/bot{token}/{method}`` and answered with ``{"ok": true, "result": ...}``
holding realistic objects. The fake keeps a small world — users, chats, every message in them,
files — so that what the bot gets back (message ids, the message a button hangs under, the
message a reply points to) is what Telegram would give.

The test plays the users: helpers queue incoming updates (texts, photos and albums, locations,
contacts, button presses, replies to a message the bot sent) for the bot's long poll of
``getUpdates``. Every request the bot makes is recorded as a :class:`Request`, and
:meth:`FakeTelegram.wait_for` waits until one matches.

Telegram's rules that matter to a bot are kept: privacy mode (in groups the bot gets commands,
mentions and replies to its own messages only), updates stay queued until confirmed through
``offset`` (so a bot killed mid-poll loses nothing), a second poller ends the first one with
409, a user must have written to the bot before it can write to them (403), a group must exist
(400), editing a missing message or with nothing changed fails (400), a callback query can be
answered once (400), and callback data is at most 64 bytes.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSON = dict[str, Any]

# Parameters that are plain strings even when they look like JSON ("123", "true").
STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "photo",
        "file_id",
        "parse_mode",
        "inline_message_id",
        "url",
        "business_connection_id",
        "message_effect_id",
        "description",
        "short_description",
        "name",
        "title",
        "phone_number",
        "first_name",
        "last_name",
        "vcard",
        "address",
        "emoji",
        "language_code",
    }
)
SEND_METHODS = frozenset(
    {"sendmessage", "sendphoto", "sendmediagroup", "sendlocation", "sendcontact", "senddocument"}
)
EDIT_METHODS = frozenset(
    {"editmessagetext", "editmessagereplymarkup", "editmessagecaption", "editmessagemedia"}
)
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64
CALLBACK_ANSWER_LIMIT = 200
FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"


NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


class ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(
        self,
        code: int,
        description: str,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters: JSON = {}
        if retry_after is not None:
            self.parameters["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            self.parameters["migrate_to_chat_id"] = migrate_to_chat_id

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class _Injected:
    method: str
    chat_id: int | None
    error: ApiError
    times: int


@dataclass
class Request:
    """One Bot API call the bot made, with its parameters decoded and the fake's answer."""

    seq: int
    method: str
    params: JSON
    ok: bool
    result: Any = None
    error: str | None = None
    uploads: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.time)  # when the fake answered

    @property
    def name(self) -> str:
        """The method in lower case (Telegram method names are case-insensitive)."""
        return self.method.lower()

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None

    @property
    def text(self) -> str:
        """The text, or the caption (of an album: the captions joined)."""
        if isinstance(self.params.get("text"), str):
            return str(self.params["text"])
        if isinstance(self.params.get("caption"), str):
            return str(self.params["caption"])
        media = self.params.get("media")
        if isinstance(media, list):
            return "\n".join(str(m.get("caption") or "") for m in media if isinstance(m, dict))
        return ""

    @property
    def reply_markup(self) -> JSON | None:
        markup = self.params.get("reply_markup")
        return markup if isinstance(markup, dict) else None

    @property
    def callback_data(self) -> list[str]:
        """Every inline button's callback data, row by row."""
        return inline_callback_data(self.reply_markup)

    @property
    def message(self) -> JSON | None:
        """The message the fake answered with (the first of an album)."""
        if isinstance(self.result, dict) and "message_id" in self.result:
            return self.result
        if isinstance(self.result, list) and self.result and isinstance(self.result[0], dict):
            return self.result[0]
        return None

    @property
    def messages(self) -> list[JSON]:
        if isinstance(self.result, list):
            return [m for m in self.result if isinstance(m, dict)]
        return [self.result] if isinstance(self.result, dict) else []

    def is_send(self, chat_id: int | None = None) -> bool:
        """A successful send* call (to ``chat_id``, when given)."""
        return (
            self.ok and self.name in SEND_METHODS and (chat_id is None or self.chat_id == chat_id)
        )

    def short(self) -> str:
        shown = {k: v for k, v in self.params.items() if k not in ("text", "caption")}
        status = "ok" if self.ok else f"ERROR {self.error}"
        text = self.text.replace("\n", " ⏎ ")
        if len(text) > 160:
            text = text[:160] + "…"
        clock = time.strftime("%H:%M:%S", time.localtime(self.at)) + f".{self.at % 1:.3f}"[2:]
        params = json.dumps(shown, ensure_ascii=False)
        return f"#{self.seq} {clock} {self.method} [{status}] {params} {text}"


def inline_callback_data(markup: JSON | None) -> list[str]:
    if not markup:
        return []
    rows = markup.get("inline_keyboard") or []
    return [str(b["callback_data"]) for row in rows for b in row if "callback_data" in b]


def _decode_param(key: str, value: str) -> Any:
    if key in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _strip_reply(message: JSON) -> JSON:
    """A message as it appears inside another one: without a nested reply_to_message."""
    quoted = copy.deepcopy(message)
    quoted.pop("reply_to_message", None)
    return quoted


class FakeTelegram:
    """A fake Bot API server with helpers to play users and to observe what the bot did."""

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "priemnaya_test_bot",
        bot_name: str = "Приёмная",
        privacy_mode: bool = True,
    ) -> None:
        self.token = token
        # As set by @BotFather (on by default): in groups the bot gets only commands, mentions
        # and replies to its own messages.
        self.privacy_mode = privacy_mode
        self.bot_user: JSON = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.requests: list[Request] = []
        self.base_url = ""
        self.commands: list[JSON] = []
        # The world: users, chats, messages (by chat and id), files, callback queries.
        self.users: dict[int, JSON] = {}
        self.chats: dict[int, JSON] = {}
        self.messages: dict[tuple[int, int], JSON] = {}
        self.files: dict[str, JSON] = {}
        self.file_contents: dict[str, bytes] = {}
        self._open_private: set[int] = set()  # users who wrote to the bot
        self._blocked: set[int] = set()  # users who blocked the bot
        self._migrated: dict[int, int] = {}  # basic group → the supergroup it became
        self._callbacks: dict[str, bool] = {}  # callback query id → answered
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._ids = itertools.count(1)
        # Updates waiting for the bot, kept until a getUpdates offset confirms them.
        self.updates: list[JSON] = []
        self.confirmed_offset = 0
        self._update_ids = itertools.count(1)
        self._poll_generation = 0
        self._changed: asyncio.Event | None = None
        self._closing = False
        self._errors: list[_Injected] = []
        self._runner: web.AppRunner | None = None

    # Server ---------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port); returns the base URL for TELEGRAM_API_URL."""
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def _changed_or_timeout(self, timeout: float) -> None:
        event = self._changed
        if event is None or timeout <= 0:
            return
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    # Fault injection ------------------------------------------------------------------------

    def inject_error(
        self,
        method: str,
        code: int,
        description: str,
        times: int = 1,
        retry_after: int | None = None,
        chat_id: int | None = None,
    ) -> None:
        """Fail the next ``times`` calls of ``method`` (to ``chat_id``, when given) with this
        error, e.g. 429 with ``retry_after``, or 502."""
        error = ApiError(code, description, retry_after)
        self._errors.append(_Injected(method.lower(), chat_id, error, times))

    def clear_errors(self) -> None:
        """Telegram is healthy again: drop every injected error still pending."""
        self._errors.clear()

    def _injected(self, method: str, params: JSON) -> ApiError | None:
        for injected in self._errors:
            if injected.method == method and injected.chat_id in (None, params.get("chat_id")):
                injected.times -= 1
                if injected.times <= 0:
                    self._errors.remove(injected)
                return injected.error
        return None

    # The world ------------------------------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
    ) -> JSON:
        """A Telegram user (a person, not a bot)."""
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        user["language_code"] = "ru"
        self.users[user_id] = user
        return user

    def group(self, chat_id: int, title: str) -> JSON:
        """A group the bot is a member of; ``-100…`` ids are supergroups."""
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        chat: JSON = {"id": chat_id, "type": kind, "title": title}
        self.chats[chat_id] = chat
        return chat

    def private_chat(self, user: JSON) -> JSON:
        chat: JSON = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        self.chats[user["id"]] = chat
        return chat

    def migrate_group(self, old_chat_id: int, new_chat_id: int) -> JSON:
        """A basic group becomes a supergroup with a new id, as Telegram does it: the old chat
        refuses sends (400 with migrate_to_chat_id), and both chats get a service message.
        Returns the new chat."""
        old = self.chats[old_chat_id]
        new = {"id": new_chat_id, "type": "supergroup", "title": old.get("title", "")}
        self.chats[new_chat_id] = new
        self._migrated[old_chat_id] = new_chat_id
        someone = next(iter(self.users.values()), self.bot_user)
        for chat, field_, value in (
            (old, "migrate_to_chat_id", new_chat_id),
            (new, "migrate_from_chat_id", old_chat_id),
        ):
            message: JSON = {
                "message_id": self._next_message_id(chat["id"]),
                "from": copy.deepcopy(someone),
                "chat": copy.deepcopy(chat),
                "date": int(time.time()),
                field_: value,
            }
            self._queue("message", self._store(message))
        return new

    def block(self, user_id: int) -> None:
        """The user blocked the bot: sends to them fail with 403 from now on."""
        self._blocked.add(user_id)

    def message(self, chat_id: int, message_id: int) -> JSON:
        """A message as it is now (after edits), by chat and id."""
        return self.messages[(chat_id, message_id)]

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def _store(self, message: JSON) -> JSON:
        self.messages[(message["chat"]["id"], message["message_id"])] = message
        return message

    def _new_photo(self, content: bytes | None = None) -> list[JSON]:
        """A photo as Telegram stores it: two sizes, each with its own file id."""
        n = next(self._ids)
        sizes = []
        for suffix, (width, height) in (("s", (90, 68)), ("x", (1280, 960))):
            file_id = f"AgACAgIAAxkBAAI{n:05d}{suffix}FakePhoto"
            unique = f"AQAD{n:05d}{suffix}"
            size: JSON = {
                "file_id": file_id,
                "file_unique_id": unique,
                "width": width,
                "height": height,
                "file_size": len(content or FAKE_JPEG),
            }
            self.files[file_id] = {
                "file_id": file_id,
                "file_unique_id": unique,
                "file_size": size["file_size"],
                "file_path": f"photos/file_{n}_{suffix}.jpg",
                "sizes": None,
            }
            self.file_contents[self.files[file_id]["file_path"]] = content or FAKE_JPEG
            sizes.append(size)
        for size in sizes:
            self.files[size["file_id"]]["sizes"] = sizes
        return sizes

    # Incoming updates -----------------------------------------------------------------------

    def _queue(self, kind: str, payload: JSON) -> JSON:
        update = {"update_id": next(self._update_ids), kind: payload}
        self.updates.append(update)
        self._notify()
        return update

    def _incoming(
        self, user: JSON, chat: JSON | int | None, reply_to: JSON | None, content: JSON
    ) -> JSON:
        if chat is None:
            chat = self.private_chat(user)
            self._open_private.add(user["id"])
        elif isinstance(chat, int):
            chat = self.chats[chat]
        message: JSON = {
            "message_id": self._next_message_id(chat["id"]),
            "from": copy.deepcopy(user),
            "chat": copy.deepcopy(chat),
            "date": int(time.time()),
            **content,
        }
        if reply_to is not None:
            stored = self.messages.get((reply_to["chat"]["id"], reply_to["message_id"]), reply_to)
            message["reply_to_message"] = _strip_reply(stored)
        self._store(message)
        if self._reaches_bot(message):
            self._queue("message", message)
        return message

    def _reaches_bot(self, message: JSON) -> bool:
        """Whether Telegram hands a message to the bot (privacy mode, for groups)."""
        if message["chat"]["type"] == "private" or not self.privacy_mode:
            return True
        text = str(message.get("text") or message.get("caption") or "")
        if text.startswith("/") or f"@{self.bot_user['username']}" in text:
            return True
        replied = message.get("reply_to_message") or {}
        return bool(replied.get("from", {}).get("id") == self.bot_user["id"])

    def send_text(
        self,
        user: JSON,
        text: str,
        chat: JSON | int | None = None,
        reply_to: JSON | None = None,
    ) -> JSON:
        """The user writes ``text`` (in their private chat with the bot unless ``chat``).

        ``reply_to``: a message (e.g. one the bot sent) this one answers; it is quoted whole, as
        the fake stored it. A leading ``/command`` gets its bot_command entity.
        """
        content: JSON = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._incoming(user, chat, reply_to, content)

    def send_photo(
        self,
        user: JSON,
        chat: JSON | int | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to: JSON | None = None,
    ) -> JSON:
        """The user sends a photo (one item of an album when ``media_group_id`` is given)."""
        content: JSON = {"photo": self._new_photo()}
        if caption:
            content["caption"] = caption
        if media_group_id:
            content["media_group_id"] = media_group_id
        return self._incoming(user, chat, reply_to, content)

    def send_album(
        self,
        user: JSON,
        count: int,
        chat: JSON | int | None = None,
        caption: str | None = None,
        reply_to: JSON | None = None,
    ) -> list[JSON]:
        """An album: ``count`` photo messages sharing one media_group_id, as Telegram sends it
        (the caption on the first; a reply, when the album is one, on every item)."""
        group_id = f"1{next(self._ids):017d}"
        return [
            self.send_photo(
                user,
                chat,
                caption=caption if index == 0 else None,
                media_group_id=group_id,
                reply_to=reply_to,
            )
            for index in range(count)
        ]

    def send_location(
        self, user: JSON, latitude: float, longitude: float, chat: JSON | int | None = None
    ) -> JSON:
        """A map pin (the attachment menu's «Location», or a request_location button)."""
        location = {"latitude": latitude, "longitude": longitude}
        return self._incoming(user, chat, None, {"location": location})

    def send_contact(
        self,
        user: JSON,
        phone_number: str,
        contact_user_id: int | None = None,
        chat: JSON | int | None = None,
    ) -> JSON:
        """A contact; by default the user's own (as a request_contact button shares it)."""
        contact: JSON = {
            "phone_number": phone_number,
            "first_name": user["first_name"],
            "user_id": user["id"] if contact_user_id is None else contact_user_id,
        }
        return self._incoming(user, chat, None, {"contact": contact})

    def send_sticker(self, user: JSON, chat: JSON | int | None = None) -> JSON:
        n = next(self._ids)
        sticker = {
            "file_id": f"CAACAgIAAxkBAAI{n:05d}Sticker",
            "file_unique_id": f"AgAD{n:05d}",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return self._incoming(user, chat, None, {"sticker": sticker})

    def press(self, user: JSON, message: JSON, data: str) -> str:
        """The user presses the inline button with ``data`` under ``message``.

        The button must be on the message as it is now; anything else is a forgery, which this
        helper refuses to make — use :meth:`press_forged` for that. Returns the query id.
        """
        stored = self.messages[(message["chat"]["id"], message["message_id"])]
        available = inline_callback_data(stored.get("reply_markup"))
        if data not in available:
            raise AssertionError(
                f"no button {data!r} on message {stored['message_id']} in chat "
                f"{stored['chat']['id']}; it has {available}"
            )
        return self.press_forged(user, stored, data)

    def press_forged(self, user: JSON, message: JSON, data: str) -> str:
        """A callback query with any data (a modified client can send that), under ``message``."""
        stored = self.messages.get((message["chat"]["id"], message["message_id"]), message)
        query_id = str(4_000_000_000_000_000 + next(self._ids))
        self._callbacks[query_id] = False
        self._queue(
            "callback_query",
            {
                "id": query_id,
                "from": copy.deepcopy(user),
                "message": copy.deepcopy(stored),
                "chat_instance": str(-7_000_000_000 - stored["chat"]["id"]),
                "data": data,
            },
        )
        return query_id

    @property
    def polls_started(self) -> int:
        """How many getUpdates calls arrived (a call is recorded only once it is answered)."""
        return self._poll_generation

    async def wait_delivered(self, timeout: float = 15.0) -> None:
        """Until the bot has fetched and confirmed (by offset) every queued update."""
        deadline = time.monotonic() + timeout
        while self.updates:
            if time.monotonic() > deadline:
                ids = [u["update_id"] for u in self.updates]
                raise AssertionError(f"updates {ids} not confirmed within {timeout}s")
            await asyncio.sleep(0.02)

    # Observation ----------------------------------------------------------------------------

    def mark(self) -> int:
        """A position in the request log, for "what happened after this point"."""
        return len(self.requests)

    def find(self, predicate: Callable[[Request], bool], since: int = 0) -> list[Request]:
        return [r for r in self.requests[since:] if _holds(predicate, r)]

    def sent_to(self, chat_id: int, since: int = 0) -> list[Request]:
        """Successful sends to a chat (messages, photos, albums, locations)."""
        return [r for r in self.requests[since:] if r.is_send(chat_id)]

    async def wait_for(
        self,
        predicate: Callable[[Request], bool],
        timeout: float = 15.0,
        since: int = 0,
        what: str = "",
    ) -> Request:
        """The first request after ``since`` that satisfies ``predicate``, waiting for it."""
        return (await self.wait_for_all(predicate, 1, timeout, since, what))[0]

    async def wait_for_all(
        self,
        predicate: Callable[[Request], bool],
        count: int,
        timeout: float = 15.0,
        since: int = 0,
        what: str = "",
    ) -> list[Request]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(predicate, since)
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} × {what or predicate}; "
                    f"found {len(found)}. Requests since #{since}:\n" + self.dump(since)
                )
            await asyncio.sleep(0.02)

    def dump(self, since: int = 0) -> str:
        return "\n".join(r.short() for r in self.requests[since:])

    # HTTP -----------------------------------------------------------------------------------

    async def _read_params(self, request: web.Request) -> tuple[JSON, dict[str, bytes]]:
        params: JSON = {k: _decode_param(k, v) for k, v in request.query.items()}
        uploads: dict[str, bytes] = {}
        if request.method != "POST" or not request.body_exists:
            return params, uploads
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
            return params, uploads
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                uploads[key] = value.file.read()
            elif isinstance(value, bytes | bytearray):
                params[key] = _decode_param(key, bytes(value).decode())
            else:
                params[key] = _decode_param(key, value)
        return params, uploads

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, uploads = await self._read_params(request)
        entry = Request(seq=len(self.requests), method=method, params=params, ok=False)
        entry.uploads = uploads
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            handler = getattr(self, f"_api_{method.lower()}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            injected = self._injected(method.lower(), params)
            if injected is not None:
                raise injected
            entry.result = await handler(params, uploads)
            entry.ok = True
        except ApiError as exc:
            entry.error = f"{exc.code} {exc.description}"
            self._record(entry)
            return web.json_response(exc.body(), status=exc.code)
        self._record(entry)
        return web.json_response({"ok": True, "result": entry.result})

    def _record(self, entry: Request) -> None:
        entry.seq = len(self.requests)
        entry.at = time.time()
        self.requests.append(entry)

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        content = self.file_contents.get(request.match_info["file_path"])
        if content is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        return web.Response(body=content, content_type="image/jpeg")

    # Validation shared by the methods ---------------------------------------------------------

    def _chat(self, params: JSON) -> JSON:
        """The chat a method addresses, as Telegram would refuse it."""
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id > 0:
            if chat_id in self._blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if chat_id not in self._open_private:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if chat_id in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=self._migrated[chat_id],
            )
        if chat_id not in self.chats:
            raise ApiError(400, "Bad Request: chat not found")
        return self.chats[chat_id]

    @staticmethod
    def _check_markup(markup: Any) -> JSON | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            keys = ("keyboard", "remove_keyboard", "force_reply")
            if not any(key in markup for key in keys):
                raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
            return markup
        for row in rows:
            for button in row:
                if not str(button.get("text") or "").strip():
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _outgoing(self, chat: JSON, params: JSON, content: JSON) -> JSON:
        """A message from the bot, stored; an inline keyboard shows on it, others do not."""
        markup = self._check_markup(params.get("reply_markup"))
        message: JSON = {
            "message_id": self._next_message_id(chat["id"]),
            "from": copy.deepcopy(self.bot_user),
            "chat": copy.deepcopy(chat),
            "date": int(time.time()),
            **content,
        }
        reply = params.get("reply_parameters")
        target_id = reply.get("message_id") if isinstance(reply, dict) else None
        target_id = target_id or params.get("reply_to_message_id")
        if target_id is not None:
            target = self.messages.get((chat["id"], int(target_id)))
            if target is not None:
                message["reply_to_message"] = _strip_reply(target)
            elif not (isinstance(reply, dict) and reply.get("allow_sending_without_reply")):
                raise ApiError(400, "Bad Request: message to be replied not found")
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = copy.deepcopy(markup)
        return self._store(message)

    @staticmethod
    def _caption(params: JSON) -> JSON:
        caption = params.get("caption")
        if not caption:
            return {}
        if len(str(caption)) > CAPTION_LIMIT:
            raise ApiError(400, "Bad Request: message caption is too long")
        return {"caption": str(caption)}

    def _photo(self, ref: Any, uploads: dict[str, bytes]) -> list[JSON]:
        """The sizes of a photo given by file_id, or a new photo for an upload."""
        if isinstance(ref, str) and ref.startswith("attach://") and ref[9:] in uploads:
            return self._new_photo(uploads[ref[9:]])
        if isinstance(ref, str) and ref in self.files and self.files[ref]["sizes"]:
            return copy.deepcopy(self.files[ref]["sizes"])
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _editable(self, params: JSON) -> JSON:
        if params.get("inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat = self._chat(params)
        message = self.messages.get((chat["id"], int(params.get("message_id") or 0)))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message["from"]["id"] != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return message

    # Methods ---------------------------------------------------------------------------------

    async def _api_getme(self, params: JSON, uploads: dict[str, bytes]) -> JSON:
        return copy.deepcopy(self.bot_user)

    async def _api_deletewebhook(self, params: JSON, uploads: dict[str, bytes]) -> bool:
        if params.get("drop_pending_updates"):
            self.updates.clear()
        return True

    async def _api_setmycommands(self, params: JSON, uploads: dict[str, bytes]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or not all(
            isinstance(c, dict) and c.get("command") and c.get("description") for c in commands
        ):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        self.commands = commands
        return True

    async def _api_getupdates(self, params: JSON, uploads: dict[str, bytes]) -> list[JSON]:
        """Long poll: updates from ``offset`` on, waiting up to ``timeout`` seconds for one."""
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()  # a poll still waiting from before ends with 409, as in Telegram
        offset = params.get("offset")
        if isinstance(offset, int) and offset > 0:
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list) and allowed:
            self.updates = [u for u in self.updates if set(u) - {"update_id"} <= set(allowed)]
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
            if self.updates:
                return copy.deepcopy(self.updates[:limit])
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing:
                return []
            await self._changed_or_timeout(remaining)

    async def _api_sendmessage(self, params: JSON, uploads: dict[str, bytes]) -> JSON:
        chat = self._chat(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: message is too long")
        return self._outgoing(chat, params, {"text": text})

    async def _api_sendphoto(self, params: JSON, uploads: dict[str, bytes]) -> JSON:
        chat = self._chat(params)
        ref = params.get("photo")
        if ref is None and "photo" in uploads:
            ref = "attach://photo"
            uploads = {"photo": uploads["photo"]}
        photo = self._photo(ref, uploads)
        return self._outgoing(chat, params, {"photo": photo, **self._caption(params)})

    async def _api_senddocument(self, params: JSON, uploads: dict[str, bytes]) -> JSON:
        """A file upload (multipart) kept whole: tests open what the bot sent."""
        chat = self._chat(params)
        ref = params.get("document")
        key = ref[9:] if isinstance(ref, str) and ref.startswith("attach://") else "document"
        if key not in uploads:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        n = next(self._ids)
        document: JSON = {
            "file_id": f"BQACAgIAAxkBAAI{n:05d}FakeDocument",
            "file_unique_id": f"AgAD{n:05d}",
            "file_size": len(uploads[key]),
        }
        return self._outgoing(chat, params, {"document": document, **self._caption(params)})

    async def _api_editmessagemedia(self, params: JSON, uploads: dict[str, bytes]) -> JSON:
        """Replace a photo (with an upload or a known file id), as a chart is refreshed."""
        message = self._editable(params)
        media = params.get("media")
        if not isinstance(media, dict) or media.get("type") != "photo":
            raise ApiError(400, "Bad Request: can't parse InputMedia")
        if "photo" not in message:
            raise ApiError(400, "Bad Request: there is no media in the message to edit")
        message["photo"] = self._photo(media.get("media"), uploads)
        message.pop("caption", None)
        message.update(self._caption(media))
        return _edited(message, self._check_markup(params.get("reply_markup")))

    async def _api_sendmediagroup(self, params: JSON, uploads: dict[str, bytes]) -> list[JSON]:
        chat = self._chat(params)
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media in the group")
        items = []
        for item in media:
            if not isinstance(item, dict) or item.get("type") != "photo":
                raise ApiError(400, "Bad Request: media type is not supported here")
            items.append((self._photo(item.get("media"), uploads), self._caption(item)))
        group_id = f"1{next(self._ids):017d}"
        album = []
        for photo, caption in items:
            content = {"photo": photo, "media_group_id": group_id, **caption}
            album.append(
                self._outgoing(chat, {"reply_parameters": params.get("reply_parameters")}, content)
            )
        return album

    async def _api_sendlocation(self, params: JSON, uploads: dict[str, bytes]) -> JSON:
        chat = self._chat(params)
        latitude, longitude = params.get("latitude"), params.get("longitude")
        if not isinstance(latitude, int | float) or not -90 <= latitude <= 90:
            raise ApiError(400, "Bad Request: wrong latitude")
        if not isinstance(longitude, int | float) or not -180 <= longitude <= 180:
            raise ApiError(400, "Bad Request: wrong longitude")
        location = {"latitude": float(latitude), "longitude": float(longitude)}
        return self._outgoing(chat, params, {"location": location})

    async def _api_editmessagetext(self, params: JSON, uploads: dict[str, bytes]) -> JSON:
        message = self._editable(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        markup = self._check_markup(params.get("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if message["text"] == text and message.get("reply_markup") == markup:
            raise ApiError(400, NOT_MODIFIED)
        message["text"] = text
        return _edited(message, markup)

    async def _api_editmessagereplymarkup(self, params: JSON, uploads: dict[str, bytes]) -> JSON:
        message = self._editable(params)
        markup = self._check_markup(params.get("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if message.get("reply_markup") == markup:
            raise ApiError(400, NOT_MODIFIED)
        return _edited(message, markup)

    async def _api_answercallbackquery(self, params: JSON, uploads: dict[str, bytes]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if self._callbacks.get(query_id, True):
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        if len(str(params.get("text") or "")) > CALLBACK_ANSWER_LIMIT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._callbacks[query_id] = True
        return True

    async def _api_getchat(self, params: JSON, uploads: dict[str, bytes]) -> JSON:
        chat_id = params.get("chat_id")
        if isinstance(chat_id, int) and chat_id > 0 and chat_id not in self._open_private:
            raise ApiError(400, "Bad Request: chat not found")
        full = dict(self._chat(params))
        full.update(  # ChatFullInfo's required fields
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
            },
        )
        return full

    async def _api_getfile(self, params: JSON, uploads: dict[str, bytes]) -> JSON:
        known = self.files.get(str(params.get("file_id") or ""))
        if known is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {k: v for k, v in known.items() if k != "sizes"}


def _edited(message: JSON, markup: JSON | None) -> JSON:
    """Apply a new inline keyboard (or none) to a stored message, as an edit."""
    message["edit_date"] = int(time.time())
    if markup is None:
        message.pop("reply_markup", None)
    else:
        message["reply_markup"] = copy.deepcopy(markup)
    return copy.deepcopy(message)


def answers_to(requests: Iterable[Request], query_id: str) -> list[Request]:
    """The answerCallbackQuery calls for one callback query."""
    return [
        r
        for r in requests
        if r.name == "answercallbackquery" and str(r.params.get("callback_query_id")) == query_id
    ]


def _holds(predicate: Callable[[Request], bool], request: Request) -> bool:
    """A predicate over a request; one that trips over a missing field just does not hold."""
    try:
        return bool(predicate(request))
    except (KeyError, IndexError, TypeError, AttributeError):
        return False
