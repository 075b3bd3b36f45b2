"""Plain data the core takes and returns: no ORM rows, no framework types."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Platform(StrEnum):
    TELEGRAM = "telegram"
    VK = "vk"


class Status(StrEnum):
    NEW = "new"
    IN_WORK = "in_work"
    RESOLVED = "resolved"  # staff say solved; waiting for the resident's word
    CLOSED = "closed"  # the resident confirmed
    REJECTED = "rejected"
    REOPENED = "reopened"  # the resident said it is not solved


OPEN_STATUSES = (Status.NEW, Status.IN_WORK, Status.REOPENED)


class Step(StrEnum):
    CATEGORY = "category"
    DESCRIPTION = "description"
    ADDRESS = "address"
    PHOTOS = "photos"
    PHONE = "phone"
    CONFIRM = "confirm"
    EDIT = "edit"
    RESUME = "resume"
    # A resident with open appeals wrote outside a conversation: a word for the department,
    # or a new appeal? (Asked, not guessed: either guess loses the message somewhere.)
    FOLLOWUP = "followup"


@dataclass(frozen=True)
class Button:
    text: str
    action: str | None = None  # an inline (callback) button's action
    request: str | None = None  # "location" or "contact" on a reply-keyboard button


@dataclass(frozen=True)
class Keyboard:
    rows: tuple[tuple[Button, ...], ...] = ()
    inline: bool = True
    remove: bool = False  # hide a reply keyboard
    one_time: bool = False  # a keyboard under the input field that hides after a press

    def to_dict(self) -> dict[str, object]:
        return {
            "inline": self.inline,
            "remove": self.remove,
            "one_time": self.one_time,
            "rows": [[b.__dict__ for b in row] for row in self.rows],
        }

    def as_text_buttons(self) -> Keyboard:
        """For VK clients without inline or callback buttons: the same choices under the
        input field, gone after a press; a press comes back as a message carrying the action."""
        if not self.inline:
            return self
        return Keyboard(rows=self.rows, inline=False, one_time=True)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Keyboard:
        rows = data.get("rows") or []
        assert isinstance(rows, list)
        return cls(
            rows=tuple(tuple(Button(**b) for b in row) for row in rows),
            inline=bool(data.get("inline", True)),
            remove=bool(data.get("remove", False)),
            one_time=bool(data.get("one_time", False)),
        )


def inline(*rows: list[Button]) -> Keyboard:
    return Keyboard(rows=tuple(tuple(row) for row in rows), inline=True)


@dataclass(frozen=True)
class Reply:
    """One message back to whoever wrote."""

    text: str
    keyboard: Keyboard | None = None


class InputKind(StrEnum):
    TEXT = "text"
    PHOTO = "photo"
    LOCATION = "location"
    CONTACT = "contact"
    ACTION = "action"  # an inline button
    UNSUPPORTED = "unsupported"  # sticker, voice, video, document, dice…


@dataclass(frozen=True)
class ResidentRef:
    """Who wrote, as the platform knows them."""

    platform: Platform
    user_id: str
    chat_id: str
    first_name: str = ""
    # A VK client without inline or callback buttons: notices' buttons go as text buttons.
    text_buttons: bool = False


@dataclass(frozen=True)
class IntakeInput:
    kind: InputKind
    text: str = ""
    photo_refs: tuple[str, ...] = ()
    album_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    phone: str | None = None
    own_contact: bool = True
    action: str = ""
    unsupported: str = ""  # what it was: "sticker", "voice", "document"…


@dataclass(frozen=True)
class StaffActor:
    """A staff member or coordinator acting from a chat."""

    user_id: int
    name: str
    chat_id: int
    is_coordinator: bool = False


@dataclass
class Outcome:
    """What a staff action produced for the one who acted."""

    ok: bool
    notice: str = ""  # a short answer (a callback toast, or a reply in the group)
    keyboard: Keyboard | None = None  # new buttons for the message that was pressed
    prompt: str | None = None  # ask the staff member to reply to a new message
    prompt_purpose: str | None = None
    appeal_id: int | None = None
    wrote_outbox: bool = False
    extra: dict[str, object] = field(default_factory=dict)
