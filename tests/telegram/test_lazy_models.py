"""aiogram's models with their validators built on first use parse and dump as before.

Deferring is process-wide, so each side runs in a child process: one as aiogram builds its
models, one deferred; both parse the same updates and API answers and dump the same requests.
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, sys
import aiogram
from aiogram.methods import EditMessageReplyMarkup, Response, SendMediaGroup, SendMessage
from aiogram.types import (
    InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, KeyboardButton, Message,
    ReplyKeyboardMarkup, Update,
)

out = {}
builds = []
if sys.argv[1] == "lazy":
    import pydantic.plugin._schema_validator as schema_validator
    from pydantic._internal._mock_val_ser import MockValSer
    from bot.lazy_models import AIOGRAM, defer_models

    build = schema_validator.create_schema_validator

    def counted(schema, cls, *args, **kwargs):
        builds.append(cls.__name__)
        return build(schema, cls, *args, **kwargs)

    schema_validator.create_schema_validator = counted
    out["deferred"] = defer_models(*AIOGRAM)
    out["stand_in_before_use"] = isinstance(Message.__pydantic_validator__, MockValSer)

USER = {"id": 7, "is_bot": False, "first_name": "Анна"}
CHAT = {"id": 7, "type": "private", "first_name": "Анна"}
GROUP = {"id": -100500, "type": "supergroup", "title": "Дороги"}
MESSAGE = {
    "message_id": 10, "date": 1700000000, "chat": CHAT, "from": USER,
    "caption": "Яма у дома 5", "photo": [{"file_id": "p1", "file_unique_id": "u1",
    "width": 90, "height": 90}], "caption_entities": [{"type": "bold", "offset": 0, "length": 3}],
    "reply_markup": {"inline_keyboard": [[{"text": "Да", "callback_data": "i:confirm:submit"}]]},
    "some_future_field": {"x": 1},
}
UPDATES = [
    {"update_id": 1, "message": MESSAGE},
    {"update_id": 2, "message": {"message_id": 11, "date": 1700000001, "chat": CHAT,
     "from": USER, "location": {"latitude": 55.75, "longitude": 37.61}}},
    {"update_id": 3, "callback_query": {"id": "cb", "from": USER, "chat_instance": "ci",
     "data": "s:take:12", "message": {**MESSAGE, "chat": GROUP}}},
    {"update_id": 4, "edited_message": {**MESSAGE, "edit_date": 1700000100}},
    {"update_id": 5, "my_chat_member": {"chat": GROUP, "from": USER, "date": 1700000000,
     "old_chat_member": {"status": "left", "user": USER},
     "new_chat_member": {"status": "member", "user": USER}}},
    {"update_id": 6, "unknown_kind": {"anything": True}},
]
Update.model_validate(UPDATES[0])
out["built_by_first_update"] = list(builds)
out["updates"] = [
    Update.model_validate(u).model_dump(exclude_unset=True) for u in UPDATES
]
out["response"] = Response[Message].model_validate(
    {"ok": True, "result": MESSAGE}
).model_dump(exclude_unset=True)
try:
    Update.model_validate({"update_id": "not a number"})
except Exception as exc:
    out["invalid"] = type(exc).__name__
markup = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Взять", callback_data="s:take:1")]]
)
methods = [
    SendMessage(chat_id=7, text="Опишите проблему", reply_markup=markup),
    SendMessage(chat_id=7, text="Адрес?", reply_markup=ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="📍 Геометка", request_location=True)]],
        resize_keyboard=True,
    )),
    EditMessageReplyMarkup(chat_id=-100500, message_id=3, reply_markup=markup),
    SendMediaGroup(chat_id=-100500, media=[InputMediaPhoto(media="p1", caption="№ 1")]),
]
out["methods"] = [m.model_dump(exclude_none=True, warnings=False) for m in methods]
if sys.argv[1] == "lazy":
    out["built_after_use"] = type(Update.__pydantic_validator__).__name__
print(json.dumps(out, ensure_ascii=False, sort_keys=True, default=str))
"""


def run(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_deferred_models_parse_and_dump_as_aiogram_built_them() -> None:
    eager, lazy = run("eager"), run("lazy")
    assert isinstance(lazy["deferred"], int) and lazy["deferred"] > 500
    assert lazy["stand_in_before_use"] is True
    # Only Update's own validator, once: the models it nests are not built on the side, and
    # the build does not start itself over (pydantic-core asks each class for a prebuilt one).
    assert lazy["built_by_first_update"] == ["Update"]
    assert lazy["built_after_use"] == "SchemaValidator"
    for key in ("updates", "response", "invalid", "methods"):
        assert lazy[key] == eager[key], key
    updates = eager["updates"]
    assert isinstance(updates, list) and updates[0]["message"]["caption"] == "Яма у дома 5"
    assert eager["invalid"] == "ValidationError"
