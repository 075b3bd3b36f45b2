"""Neutral keyboards rendered as VK keyboard JSON, within VK's keyboard limits."""

from __future__ import annotations

import json
from typing import Any

from bot.core.model import Button, Keyboard

LABEL_LIMIT = 40
INLINE_BUTTONS = 10  # an inline keyboard holds at most 10 buttons in at most 6 rows
INLINE_ROWS = 6
ROW_WIDTH = 5
KEYBOARD_ROWS = 10
EMPTY = json.dumps({"buttons": [], "one_time": True})
NO_BUTTONS = json.dumps({"buttons": [], "inline": True})  # an inline keyboard taken away


def payload_of(button: Button) -> str:
    return json.dumps({"a": button.action}, ensure_ascii=False)


def _button(button: Button, kind: str) -> dict[str, Any]:
    action: dict[str, Any] = {"type": kind, "label": button.text[:LABEL_LIMIT]}
    if button.action:
        action["payload"] = payload_of(button)
    return {"action": action, "color": "secondary"} if kind != "location" else {"action": action}


def _reflow(rows: tuple[tuple[Button, ...], ...], max_rows: int) -> list[list[Button]]:
    """Too many one-button rows (a list of categories) become rows of two."""
    flat = [list(row) for row in rows if row]
    if len(flat) <= max_rows:
        return flat
    buttons = [b for row in flat for b in row]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def keyboard_json(keyboard: Keyboard | None, callbacks: bool = True) -> str | None:
    """VK keyboard JSON for ``keyboard``; ``callbacks=False`` for clients without callback
    buttons (their presses then come back as messages carrying the payload)."""
    if keyboard is None:
        return None
    if keyboard.remove:
        return EMPTY
    buttons = [b for row in keyboard.rows for b in row]
    if keyboard.inline:
        rows = _reflow(keyboard.rows, INLINE_ROWS)
        if len(buttons) <= INLINE_BUTTONS and len(rows) <= INLINE_ROWS:
            kind = "callback" if callbacks else "text"
            rendered = [[_button(b, kind) for b in row[:ROW_WIDTH]] for row in rows]
            return json.dumps({"inline": True, "buttons": rendered}, ensure_ascii=False)
        # More than an inline keyboard holds: a one-time keyboard under the input field.
        rows = _reflow(keyboard.rows, KEYBOARD_ROWS)
        rendered = [[_button(b, "text") for b in row[:ROW_WIDTH]] for row in rows]
        return json.dumps({"one_time": True, "buttons": rendered}, ensure_ascii=False)
    rendered = []
    for row in keyboard.rows:
        plain = []
        for b in row:
            if b.request == "location":
                rendered.append([_button(b, "location")])  # VK wants it alone in its row
            elif b.request == "contact":
                continue  # VK has no "share my number" button: the resident types it
            else:
                plain.append(_button(b, "text"))
        if plain:
            rendered.append(plain[:ROW_WIDTH])
    return json.dumps(
        {"one_time": keyboard.one_time, "buttons": rendered[:KEYBOARD_ROWS]}, ensure_ascii=False
    )
