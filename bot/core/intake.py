"""The resident's conversation: category → description → address → photos → phone → confirm.

One flow for every platform. The draft lives in the database, so a restart mid-conversation
continues where the resident stopped, and any input at any step gets an answer that says what
is expected while the draft stays as it was.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from bot.core import notify, texts
from bot.core.appeals import pass_comment, submit, takes_comments
from bot.core.bans import BanService, is_coordinator
from bot.core.config import CoreConfig
from bot.core.model import (
    OPEN_STATUSES,
    Button,
    InputKind,
    IntakeInput,
    Keyboard,
    Reply,
    ResidentRef,
    Status,
    Step,
    inline,
)
from bot.core.ports import PhotoRef
from storage.models import Appeal, Category, OutboxMessage
from storage.uow import CANCELLED_MARK, CategoryChoice, Database, UnitOfWork, utcnow

MENU = notify.MENU
ADDRESS_KEYBOARD = Keyboard(
    rows=((Button(texts.SEND_LOCATION, request="location"),),), inline=False
)
PHOTOS_KEYBOARD = Keyboard(rows=((Button(texts.DONE), Button(texts.SKIP)),), inline=False)
PHONE_KEYBOARD = Keyboard(
    rows=((Button(texts.SEND_CONTACT, request="contact"),), (Button(texts.SKIP),)), inline=False
)
KEYBOARD_LABELS = (texts.DONE, texts.SKIP, texts.SEND_LOCATION, texts.SEND_CONTACT)
EDIT_FIELDS = (
    ("category", "Категорию"),
    ("description", "Описание"),
    ("address", "Адрес"),
    ("photos", "Добавить фото"),
    ("phone", "Телефон"),
)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
MY_LIMIT = 10
# A summary's button pressed with no draft left (VK reports a repeat press as the second).
SUMMARY_PRESSES = ("i:confirm:", "i:pressed:confirm")
PLEASANTRY_WORDS = 4  # «Спасибо вам большое!»; longer thanks usually carry news
FOLLOWUP_LOOKBACK = 5  # the resident's latest appeals looked at for open ones
FOLLOWUP_CHOICES = 3  # open appeals offered as buttons
FOLLOWUP_AFTER_REJECT = timedelta(days=7)  # a rejection may be questioned for that long
LIMIT_WINDOW = timedelta(hours=1)
CONFIRM_CHOICE = inline(
    [Button("✅ Отправить", "i:confirm:submit")],
    [Button("✏️ Изменить", "i:confirm:edit"), Button("✖️ Отмена", "i:confirm:cancel")],
)


@dataclass
class IntakeResult:
    replies: list[Reply] = field(default_factory=list)
    submitted_number: str | None = None
    # The «принято» the front sends itself, now (``OutboxWorker.deliver_now``), when its
    # platform is among ``IntakeService``'s ``confirms_directly``.
    confirmation: OutboxMessage | None = None
    queued: bool = False  # other messages for the outbox (a comment to the department)

    @property
    def wrote_outbox(self) -> bool:
        return self.submitted_number is not None or self.queued


def _letters(text: str) -> int:
    return len(_LETTER.findall(text))


def _valid_description(text: str) -> bool:
    """Words, not just emoji or a greeting: «Нет света» will do, «😡😡😡😡😡😡😡😡» will not."""
    return texts.MIN_DESCRIPTION <= len(text) <= texts.MAX_DESCRIPTION and _letters(text) >= 5


def _says_something(text: str) -> bool:
    """Words worth keeping beside the description: not a bare «вот» or an emoji."""
    return len(text) >= texts.MIN_DESCRIPTION and _letters(text) >= 5


def _is_pleasantry(text: str) -> bool:
    """«Здравствуйте!», «Большое спасибо!», «Добрый день»: courtesy, not a message to pass on."""
    words = re.findall(r"[^\W\d_]+", text.casefold())
    if not words or len(words) > PLEASANTRY_WORDS:
        return False
    if any(w.startswith(texts.THANKS_PREFIXES) for w in words):
        return True
    return all(w in texts.COURTESY_WORDS for w in words)


def _could_be_followup(given: IntakeInput) -> bool:
    """Words or a photo for the department, not a «Спасибо!» or a sticker."""
    if given.kind is InputKind.PHOTO:
        return True
    text = given.text.strip()
    return given.kind is InputKind.TEXT and _says_something(text) and not _is_pleasantry(text)


def _dropped_key(who: ResidentRef) -> str:
    return f"{CANCELLED_MARK}{who.platform.value}:{who.user_id}"


async def _drop_draft(uow: UnitOfWork, who: ResidentRef, step: str) -> None:
    """The resident cancelled their draft: it goes. A draft that had reached its summary is
    remembered as cancelled (when), so that the summary's «Отправить» is not answered with
    «уже отправлено»."""
    await uow.drafts.delete(who.platform.value, who.user_id)
    if step in (Step.CONFIRM, Step.EDIT):
        await uow.state.set(_dropped_key(who), utcnow().isoformat())


def _followup_as_new(data: dict[str, Any]) -> None:
    """A message kept for the department becomes the start of a new appeal instead."""
    kept = str(data.get("followup_text", ""))
    photos = list(data.get("photos", []))
    data.clear()
    data["photos"] = photos
    if _valid_description(kept):  # the resident chose a new appeal: «Нет света» will do
        data["description"] = kept


def _has_content(data: dict[str, Any]) -> bool:
    """Something the resident typed or sent that a fresh start would throw away."""
    keys = ("description", "address", "lat", "phone", "category")
    return bool(data.get("photos")) or any(data.get(key) for key in keys)


def _is_greeting(given: IntakeInput) -> bool:
    """Courtesy or too little to keep (not «Нет света», which is a problem, if a short one)."""
    text = given.text.strip()
    return given.kind is InputKind.TEXT and (_is_pleasantry(text) or not _says_something(text))


def _looks_like_a_problem(text: str) -> bool:
    """A description to go on with: a short start («Нет света») is kept, and the description
    step then asks for details to add to it."""
    return _valid_description(text) and len(text) >= 20 and len(text.split()) >= 3


def _described(data: dict[str, Any]) -> bool:
    return _looks_like_a_problem(str(data.get("description") or ""))


def _word(given: IntakeInput) -> str:
    """A one-word message as a command would be compared: «Отмена!» → «отмена»."""
    if given.kind is not InputKind.TEXT:
        return ""
    return given.text.strip().strip(".!?… ").casefold()


def _add_to_description(data: dict[str, Any], addition: str) -> Reply | None:
    """More words about the problem (a caption, a line typed between photos) go into the
    description; the reply when they do not fit."""
    combined = f"{data.get('description') or ''}\n{addition}".strip()
    if len(combined) > texts.MAX_DESCRIPTION:
        said = texts.DESCRIPTION_TOO_LONG.format(length=len(combined), limit=texts.MAX_DESCRIPTION)
        return Reply(said)
    data["description"] = combined
    return None


def normalize_phone(text: str) -> str | None:
    digits = re.sub(r"\D", "", text)
    if not re.fullmatch(r"[+\d\s()\-.]{10,25}", text.strip()) or not 10 <= len(digits) <= 15:
        return None
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    elif len(digits) == 10:
        digits = "7" + digits
    return "+" + digits


class IntakeService:
    def __init__(
        self, db: Database, config: CoreConfig, confirms_directly: Collection[str] = ()
    ) -> None:
        self.db = db
        self.config = config
        # Platforms whose front answers residents directly and so sends the «принято» with the
        # number itself, rather than after the queue's other chats' notifications (Telegram).
        self.confirms_directly = frozenset(confirms_directly)
        # Asked by the fronts before anything else: a banned resident's update is dropped.
        self.bans = BanService(db, config)

    async def _limit(self, uow: UnitOfWork, who: ResidentRef, kept: str) -> Reply | None:
        """The hourly limit on new appeals (APPEALS_PER_HOUR), counted in the database: None
        while the resident may file another, else what to tell them (with when they may)."""
        limit = self.config.appeals_per_hour
        if limit <= 0 or is_coordinator(self.config, who):
            return None
        resident = await uow.residents.find(who.platform.value, who.user_id)
        if resident is None:
            return None
        since = utcnow() - LIMIT_WINDOW
        oldest_counted = await uow.appeals.nth_latest_since(resident.id, since, limit)
        if oldest_counted is None:
            return None
        sent = await uow.appeals.filed_since(resident.id, since)
        next_at = self._minute_up(oldest_counted + LIMIT_WINDOW)
        return Reply(texts.appeal_limit(limit, sent, next_at, kept), MENU)

    def _minute_up(self, moment: datetime) -> str:
        """Local HH:MM no earlier than ``moment`` (14:03:20 → 14:04), with the date if not today."""
        local = self.config.local(moment)
        if local.second or local.microsecond:
            local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if local.date() != self.config.local(utcnow()).date():
            return local.strftime("%d.%m.%Y %H:%M")
        return local.strftime("%H:%M")

    # Entry points -------------------------------------------------------------------------

    async def start(self, who: ResidentRef) -> IntakeResult:
        """/start: greet, show the menu, and offer to continue or begin an appeal."""
        result = await self.new_appeal(who)
        result.replies.insert(0, Reply(texts.WELCOME, MENU))
        return result

    async def help(self) -> IntakeResult:
        return IntakeResult([Reply(texts.HELP, MENU)])

    async def new_appeal(self, who: ResidentRef) -> IntakeResult:
        async with self.db.uow() as uow:
            draft = await uow.drafts.get(who.platform.value, who.user_id)
            has_content = draft is not None and _has_content(draft.data)
            limited = await self._limit(uow, who, texts.LIMIT_DRAFT_KEPT if has_content else "")
            if limited is not None:
                return IntakeResult([limited])  # the draft, if any, stays as it is
            if draft is not None and draft.step == Step.FOLLOWUP:
                # «Новое обращение» pressed instead of answering where the message belongs.
                data = dict(draft.data)
                _followup_as_new(data)
                await uow.drafts.save(who.platform.value, who.user_id, Step.CATEGORY, data)
                await uow.commit()
                return IntakeResult(await self._prompt(uow, Step.CATEGORY, data))
            if draft is not None and draft.step != Step.RESUME and has_content:
                data = dict(draft.data)
                data["resume_to"] = draft.step
                await uow.drafts.save(who.platform.value, who.user_id, Step.RESUME, data)
                await uow.commit()
                return IntakeResult(await self._prompt(uow, Step.RESUME, data))
            if draft is not None and draft.step == Step.RESUME:
                return IntakeResult(await self._prompt(uow, Step.RESUME, draft.data))
            data = {"photos": []}
            await uow.drafts.save(who.platform.value, who.user_id, Step.CATEGORY, data)
            await uow.commit()
            return IntakeResult(await self._prompt(uow, Step.CATEGORY, data))

    async def cancel(self, who: ResidentRef) -> IntakeResult:
        async with self.db.uow() as uow:
            draft = await uow.drafts.get(who.platform.value, who.user_id)
            if draft is None:
                return IntakeResult([Reply(texts.NOTHING_TO_CANCEL, MENU)])
            await _drop_draft(uow, who, draft.step)
            await uow.commit()
            if draft.step == Step.FOLLOWUP:
                return IntakeResult([Reply(texts.FOLLOWUP_DROPPED, MENU)])
            return IntakeResult([Reply(texts.CANCELLED, MENU)])

    async def ask_again(self, who: ResidentRef) -> IntakeResult:
        """Where the draft stands, said again: for a message handled before a crash and handed
        over again, whose answer may have died with the process after the step was stored.
        Nothing without a draft (a filed appeal's «принято» is queued with it) or for a
        banned resident."""
        async with self.db.uow(read_only=True) as uow:
            draft = await uow.drafts.get(who.platform.value, who.user_id)
            if draft is None:
                return IntakeResult([])
            resident = await uow.residents.find(who.platform.value, who.user_id)
            if resident is not None and resident.banned_at is not None:
                return IntakeResult([])
            prompt = await self._prompt(uow, Step(draft.step), dict(draft.data))
        return IntakeResult([Reply(texts.ASKED_AGAIN), *prompt])

    async def my_appeals(self, who: ResidentRef) -> IntakeResult:
        async with self.db.uow() as uow:
            resident = await uow.residents.find(who.platform.value, who.user_id)
            appeals = await uow.appeals.of_resident(resident.id, MY_LIMIT) if resident else []
            draft = await uow.drafts.get(who.platform.value, who.user_id)
            # A draft in progress is not an appeal yet, but the resident may be looking for it.
            unfinished = draft is not None and _has_content(draft.data)
            if not appeals:
                said = f"{texts.MY_EMPTY}\n{texts.MY_DRAFT}" if unfinished else texts.MY_EMPTY
                return IntakeResult([Reply(said, MENU)])
            lines = [texts.MY_HEADER]
            for appeal in appeals:
                category = await uow.catalog.category(appeal.category_id)
                title = category.title if category else ""
                status = texts.STATUS_FOR_RESIDENT[Status(appeal.status)]
                created = self.config.local(appeal.created_at).strftime("%d.%m.%Y")
                lines.append(f"• № {appeal.number} от {created} — {title}: {status}")
            if len(appeals) == MY_LIMIT:
                lines.append(texts.MY_MORE.format(count=MY_LIMIT))
            if unfinished:
                lines.append(texts.MY_DRAFT)
            return IntakeResult([Reply("\n".join(lines), MENU)])

    async def handle(
        self, who: ResidentRef, given: IntakeInput, autostart: bool = True
    ) -> IntakeResult:
        """Any other message or intake button from the resident.

        ``autostart=False`` (a coordinator's private chat): a message outside a conversation
        does not begin an appeal; only «Новое обращение» does.
        """
        if given.kind is InputKind.TEXT and given.text.strip() == texts.MENU_NEW:
            return await self.new_appeal(who)
        if given.kind is InputKind.TEXT and given.text.strip() == texts.MENU_MY:
            return await self.my_appeals(who)
        word = _word(given)
        if word in texts.CANCEL_WORDS:  # VK residents do not type /cancel
            return await self.cancel(who)
        async with self.db.uow() as uow:
            draft = await uow.drafts.get(who.platform.value, who.user_id)
            if word in texts.HELP_WORDS:
                helped = await self.help()
                if draft is not None:  # and where the draft stands, with its buttons
                    step_prompt = await self._prompt(uow, Step(draft.step), dict(draft.data))
                    helped.replies += [Reply(texts.DRAFT_WAITS), *step_prompt]
                return helped
            if draft is None and autostart and _could_be_followup(given):
                open_appeals = await self._open_appeals(uow, who)
                if open_appeals:
                    return await self._ask_followup(uow, who, given, open_appeals)
            if draft is None and autostart and not _is_greeting(given):
                first = await self._first_message(uow, who, given)
                return first if first is not None else await self._idle(uow, who, given)
            if draft is not None:
                return await self._continue(uow, who, Step(draft.step), dict(draft.data), given)
            if not autostart:
                return await self._idle(uow, who, given)
            if await uow.residents.find(who.platform.value, who.user_id) is not None:
                # «Спасибо» after an appeal: no new one uninvited
                return await self._idle(uow, who, given)
        return await self.start(who)  # a newcomer's «Здравствуйте»: greet and begin

    async def _continue(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        step: Step,
        data: dict[str, Any],
        given: IntakeInput,
    ) -> IntakeResult:
        """The next input of a conversation in progress."""
        data.setdefault("photos", [])
        if given.kind is InputKind.ACTION:
            parts = given.action.split(":", 2)
            if len(parts) != 3 or parts[0] != "i" or parts[1] != step.value:
                replies = [Reply(texts.STALE_BUTTON), *await self._prompt(uow, step, data)]
                return IntakeResult(replies)
        album = given.album_id
        silent = album is not None and album == data.get("album")
        new_album = album is not None and not silent
        if album is not None:
            data["album"] = album
        outcome = await self._step(uow, who, step, data, given)
        if outcome.submitted_number is None and outcome.next_step is not None:
            await uow.drafts.save(who.platform.value, who.user_id, outcome.next_step, data)
        elif outcome.submitted_number is None and (outcome.changed or new_album):
            # Even an unchanged draft remembers the album, so its other parts stay quiet.
            await uow.drafts.save(who.platform.value, who.user_id, step, data)
        await uow.commit()
        replies = outcome.replies
        if outcome.next_step is not None:
            replies = replies + await self._prompt(uow, outcome.next_step, data)
        if silent and given.kind is InputKind.PHOTO:
            replies = []  # the rest of an album: the first photo was answered already
        return IntakeResult(
            replies, outcome.submitted_number, outcome.confirmation, queued=outcome.queued
        )

    # Steps --------------------------------------------------------------------------------

    async def _first_message(
        self, uow: UnitOfWork, who: ResidentRef, given: IntakeInput
    ) -> IntakeResult | None:
        """A resident who just writes about the problem: keep it and start the appeal with it.

        Lost first messages are what residents of support bots complain about most.
        """
        data: dict[str, Any] = {"photos": list(given.photo_refs[: texts.MAX_PHOTOS])}
        text = given.text.strip()
        if given.kind is InputKind.TEXT and not _is_greeting(given):
            if len(text) > texts.MAX_DESCRIPTION:  # said, not cut: the resident still has it
                said = texts.DESCRIPTION_TOO_LONG.format(
                    length=len(text), limit=texts.MAX_DESCRIPTION
                )
                return IntakeResult([Reply(said, MENU)])
            data["description"] = text
        elif given.kind is InputKind.PHOTO:
            if _says_something(text):  # a caption such as «Яма у дома 5», as within a draft
                data["description"] = text[: texts.MAX_DESCRIPTION]
        else:
            return None
        if given.album_id:
            data["album"] = given.album_id
        limited = await self._limit(uow, who, texts.LIMIT_TEXT_KEPT)
        if limited is not None:
            # Kept for later: «Новое обращение» then offers to continue it.
            data["resume_to"] = Step.CATEGORY.value
            await uow.drafts.save(who.platform.value, who.user_id, Step.RESUME, data)
            await uow.commit()
            return IntakeResult([limited])
        await uow.drafts.save(who.platform.value, who.user_id, Step.CATEGORY, data)
        await uow.commit()
        kept = "ваш текст сохранён" if "description" in data else "ваше фото сохранено"
        intro = Reply(f"Начнём обращение — {kept}. Осталось несколько шагов.", MENU)
        return IntakeResult([intro, *await self._prompt(uow, Step.CATEGORY, data)])

    async def _open_appeals(self, uow: UnitOfWork, who: ResidentRef) -> list[Appeal]:
        """The resident's latest appeals still in the department's hands (or awaiting their
        word), newest first."""
        resident = await uow.residents.find(who.platform.value, who.user_id)
        if resident is None:
            return []
        latest = await uow.appeals.of_resident(resident.id, FOLLOWUP_LOOKBACK)
        waiting = (*OPEN_STATUSES, Status.RESOLVED)
        recent = utcnow() - FOLLOWUP_AFTER_REJECT

        def open_to_words(appeal: Appeal) -> bool:
            if Status(appeal.status) in waiting:
                return True
            # «Почему отклонили?» a few days after a rejection (spam gets no hearing).
            return (
                Status(appeal.status) is Status.REJECTED
                and appeal.reject_reason != texts.REJECT_REASONS["spam"]
                and appeal.closed_at is not None
                and appeal.closed_at >= recent
            )

        return [a for a in latest if open_to_words(a)][:FOLLOWUP_CHOICES]

    async def _ask_followup(
        self, uow: UnitOfWork, who: ResidentRef, given: IntakeInput, appeals: list[Appeal]
    ) -> IntakeResult:
        """Written outside a conversation by a resident whose appeal is open («Когда
        приедут?», «Люк так и открыт»): kept, and the resident says where it belongs."""
        if len(given.text.strip()) > texts.MAX_DESCRIPTION:
            return IntakeResult([Reply(texts.comment_too_long(len(given.text.strip())), MENU)])
        data: dict[str, Any] = {
            "photos": list(given.photo_refs[: texts.MAX_PHOTOS]),
            "followup_text": given.text.strip(),
            "followup": [a.id for a in appeals],
        }
        if given.album_id:
            data["album"] = given.album_id
        await uow.drafts.save(who.platform.value, who.user_id, Step.FOLLOWUP, data)
        await uow.commit()
        return IntakeResult(await self._prompt(uow, Step.FOLLOWUP, data))

    async def _idle(self, uow: UnitOfWork, who: ResidentRef, given: IntakeInput) -> IntakeResult:
        if given.kind is InputKind.ACTION and given.action.startswith(SUMMARY_PRESSES):
            # «Отправить» pressed again — often because the answer with the number never came
            # (a crash, a lost connection): say the number again.
            resident = await uow.residents.find(who.platform.value, who.user_id)
            latest = await uow.appeals.of_resident(resident.id, 1) if resident else []
            dropped = await uow.state.get(_dropped_key(who))
            if not latest or (
                dropped is not None and datetime.fromisoformat(dropped) > latest[0].created_at
            ):
                # The summary of a draft cancelled since (or never sent): nothing went out.
                return IntakeResult([Reply(texts.DRAFT_WAS_CANCELLED, MENU)])
            return IntakeResult([Reply(texts.already_sent(latest[0].number), MENU)])
        if given.kind is InputKind.ACTION:
            return IntakeResult([Reply(texts.NO_DRAFT, MENU)])
        return IntakeResult([Reply(texts.IDLE, MENU)])

    async def _step(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        step: Step,
        data: dict[str, Any],
        given: IntakeInput,
    ) -> _StepOutcome:
        if given.kind is InputKind.UNSUPPORTED:
            said = texts.UNSUPPORTED.get(given.unsupported, texts.UNSUPPORTED_DEFAULT)
            if given.unsupported == "image_document":
                said = texts.PHOTO_AS_FILE
            return _StepOutcome([Reply(f"{said} {texts.EXPECTED_AT_STEP[step.value]}")])
        value = given.action.split(":", 2)[2] if given.kind is InputKind.ACTION else ""
        handler = {
            Step.CATEGORY: self._category,
            Step.DESCRIPTION: self._description,
            Step.ADDRESS: self._address,
            Step.PHOTOS: self._photos,
            Step.PHONE: self._phone,
            Step.CONFIRM: self._confirm,
            Step.EDIT: self._edit,
            Step.RESUME: self._resume,
            Step.FOLLOWUP: self._followup,
        }[step]
        return await handler(uow, who, data, given, value)

    def _after(self, data: dict[str, Any], natural_next: Step) -> Step:
        """Where a finished step leads: on, or back to the summary when editing."""
        if data.pop("editing", False):
            return Step.CONFIRM
        return natural_next

    def _keep_photo(self, data: dict[str, Any], given: IntakeInput, step: Step) -> _StepOutcome:
        """A photo sent early is kept for the photo step rather than thrown away, and so is
        its caption, when it says something about the problem."""
        room = texts.MAX_PHOTOS - len(data["photos"])
        data["photos"] = data["photos"] + list(given.photo_refs[:room])
        said = f"{texts.PHOTO_KEPT} "
        caption = self._keep_caption(data, given)
        if caption is not None:
            said += caption + " "
        return _StepOutcome([Reply(said + texts.EXPECTED_AT_STEP[step.value])], changed=True)

    def _keep_location(self, data: dict[str, Any], given: IntakeInput, step: Step) -> _StepOutcome:
        """A map point sent before its step is the address, kept for when it is asked."""
        if given.latitude is None or given.longitude is None:
            return _StepOutcome([Reply(texts.EXPECTED_AT_STEP[step.value])])
        data["lat"], data["lon"], data["address"] = given.latitude, given.longitude, None
        said = f"{texts.LOCATION_KEPT} {texts.EXPECTED_AT_STEP[step.value]}"
        return _StepOutcome([Reply(said)], changed=True)

    def _keep_caption(self, data: dict[str, Any], given: IntakeInput) -> str | None:
        """A photo's caption that says something (not a bare «вот») joins the description;
        what to tell the resident about it, or None when there is nothing to tell."""
        caption = given.text.strip()
        if not _says_something(caption):
            return None
        too_long = _add_to_description(data, caption)
        return too_long.text if too_long is not None else texts.CAPTION_ADDED

    async def _category(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        data: dict[str, Any],
        given: IntakeInput,
        value: str,
    ) -> _StepOutcome:
        categories = await uow.catalog.active_categories()
        chosen: CategoryChoice | None = None
        if given.kind is InputKind.ACTION:
            chosen = next((c for c in categories if c.code == value), None)
        elif given.kind is InputKind.TEXT:
            typed = given.text.strip().casefold()
            chosen = next(
                (
                    c
                    for c in categories
                    if typed in (c.title.casefold(), f"{c.emoji} {c.title}".casefold())
                ),
                None,
            )
        elif given.kind is InputKind.PHOTO:
            return self._keep_photo(data, given, Step.CATEGORY)
        elif given.kind is InputKind.LOCATION:
            return self._keep_location(data, given, Step.CATEGORY)
        words = given.text.strip()
        if chosen is None and given.kind is InputKind.TEXT and not _is_greeting(given):
            # The greeting asks about the problem: an answer in words is the description.
            too_long = _add_to_description(data, words)
            if too_long is not None:
                return _StepOutcome([too_long])
            return _StepOutcome([Reply(texts.KEPT_PICK_CATEGORY)], next_step=Step.CATEGORY)
        if chosen is None:
            return _StepOutcome([Reply(texts.ASK_CATEGORY_AGAIN)], next_step=Step.CATEGORY)
        data["category"] = chosen.code
        if not _described(data):  # nothing yet, or a short start to add details to
            return _StepOutcome(next_step=self._after(data, Step.DESCRIPTION))
        located = data.get("lat") is not None or bool(data.get("address"))
        return _StepOutcome(next_step=self._after(data, Step.PHOTOS if located else Step.ADDRESS))

    async def _description(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        data: dict[str, Any],
        given: IntakeInput,
        value: str,
    ) -> _StepOutcome:
        if given.kind is InputKind.PHOTO:
            if given.text.strip():
                given = IntakeInput(
                    kind=InputKind.TEXT, text=given.text, photo_refs=given.photo_refs
                )
                outcome = await self._description(uow, who, data, given, value)
                room = texts.MAX_PHOTOS - len(data["photos"])
                data["photos"] = data["photos"] + list(given.photo_refs[:room])
                outcome.replies = [Reply(texts.PHOTO_KEPT), *outcome.replies]
                outcome.changed = True
                return outcome
            return self._keep_photo(data, given, Step.DESCRIPTION)
        if given.kind is InputKind.LOCATION:
            return self._keep_location(data, given, Step.DESCRIPTION)
        if given.kind is not InputKind.TEXT:
            return _StepOutcome([Reply(texts.EXPECTED_AT_STEP["description"])])
        text = given.text.strip()
        if len(text) > texts.MAX_DESCRIPTION:
            said = texts.DESCRIPTION_TOO_LONG.format(length=len(text), limit=texts.MAX_DESCRIPTION)
            return _StepOutcome([Reply(said)])
        kept = str(data.get("description") or "")
        if kept and not data.get("editing"):  # details to a short start («Нет света»)
            text = f"{kept}\n{text}"
            if len(text) > texts.MAX_DESCRIPTION:
                said = texts.DESCRIPTION_TOO_LONG.format(
                    length=len(text), limit=texts.MAX_DESCRIPTION
                )
                return _StepOutcome([Reply(said)])
        if not _valid_description(text):
            return _StepOutcome([Reply(texts.DESCRIPTION_TOO_SHORT)])
        data["description"] = text
        located = data.get("lat") is not None or bool(data.get("address"))
        return _StepOutcome(next_step=self._after(data, Step.PHOTOS if located else Step.ADDRESS))

    async def _address(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        data: dict[str, Any],
        given: IntakeInput,
        value: str,
    ) -> _StepOutcome:
        if given.kind is InputKind.LOCATION and given.latitude is not None:
            data["lat"], data["lon"] = given.latitude, given.longitude
            data["address"] = None
            return _StepOutcome(next_step=self._after(data, Step.PHOTOS))
        if given.kind is InputKind.PHOTO and given.text.strip():
            # A photo of the place signed with where it is: the caption is the address.
            room = texts.MAX_PHOTOS - len(data["photos"])
            data["photos"] = data["photos"] + list(given.photo_refs[:room])
            typed = IntakeInput(kind=InputKind.TEXT, text=given.text)
            outcome = await self._address(uow, who, data, typed, value)
            outcome.replies = [Reply(texts.PHOTO_KEPT), *outcome.replies]
            outcome.changed = True
            return outcome
        if given.kind is InputKind.PHOTO:
            return self._keep_photo(data, given, Step.ADDRESS)
        if given.kind is not InputKind.TEXT:
            return _StepOutcome([Reply(texts.ADDRESS_BAD)])
        text = " ".join(given.text.split())
        if not texts.MIN_ADDRESS <= len(text) <= texts.MAX_ADDRESS or _letters(text) < 2:
            return _StepOutcome([Reply(texts.ADDRESS_BAD)])
        if text.casefold() == " ".join(str(data.get("description", "")).split()).casefold():
            # Not an address: the description again, so the question is asked again.
            return _StepOutcome([Reply(texts.ADDRESS_REPEATS_DESCRIPTION)], next_step=Step.ADDRESS)
        data["address"] = text
        data["lat"] = data["lon"] = None
        return _StepOutcome(next_step=self._after(data, Step.PHOTOS))

    async def _photos(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        data: dict[str, Any],
        given: IntakeInput,
        value: str,
    ) -> _StepOutcome:
        if given.kind is InputKind.PHOTO:
            room = texts.MAX_PHOTOS - len(data["photos"])
            if room <= 0:
                return _StepOutcome([Reply(texts.PHOTO_LIMIT)])
            data["photos"] = data["photos"] + list(given.photo_refs[:room])
            said = texts.PHOTO_ADDED if len(given.photo_refs) <= room else texts.PHOTO_LIMIT
            caption = self._keep_caption(data, given)
            if caption is not None:
                said = f"{said} {caption}"
            return _StepOutcome([Reply(said)], changed=True)
        if given.kind is InputKind.TEXT and (
            given.text.strip() in (texts.DONE, texts.SKIP) or _word(given) in texts.NO_PHOTO_WORDS
        ):
            return _StepOutcome(next_step=self._after(data, Step.PHONE))
        if given.kind is InputKind.TEXT and _says_something(given.text.strip()):
            # Words between the photos («а ещё там темно») are more about the problem.
            too_long = _add_to_description(data, given.text.strip())
            if too_long is not None:
                return _StepOutcome([too_long])
            said = f"{texts.ADDED_TO_DESCRIPTION} {texts.PHOTOS_EXPECTED}"
            return _StepOutcome([Reply(said, PHOTOS_KEYBOARD)], changed=True)
        return _StepOutcome([Reply(texts.PHOTOS_EXPECTED, PHOTOS_KEYBOARD)])

    async def _phone(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        data: dict[str, Any],
        given: IntakeInput,
        value: str,
    ) -> _StepOutcome:
        if given.kind is InputKind.PHOTO:
            return self._keep_photo(data, given, Step.PHONE)
        if given.kind is InputKind.CONTACT:
            phone = normalize_phone(given.phone or "")
            if not given.own_contact:
                return _StepOutcome([Reply(texts.FOREIGN_CONTACT)])
            if phone is None:
                return _StepOutcome([Reply(texts.PHONE_BAD)])
            data["phone"] = phone
            return _StepOutcome(next_step=self._after(data, Step.CONFIRM))
        if given.kind is InputKind.TEXT:
            if given.text.strip() == texts.SKIP:
                data["phone"] = None
                return _StepOutcome(next_step=self._after(data, Step.CONFIRM))
            phone = normalize_phone(given.text)
            if phone is None:
                return _StepOutcome([Reply(texts.PHONE_BAD, PHONE_KEYBOARD)])
            data["phone"] = phone
            return _StepOutcome(next_step=self._after(data, Step.CONFIRM))
        return _StepOutcome([Reply(texts.EXPECTED_AT_STEP["phone"], PHONE_KEYBOARD)])

    async def _confirm(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        data: dict[str, Any],
        given: IntakeInput,
        value: str,
    ) -> _StepOutcome:
        if given.kind is InputKind.PHOTO:
            room = texts.MAX_PHOTOS - len(data["photos"])
            data["photos"] = data["photos"] + list(given.photo_refs[:room])
            said = "Фото добавлено к обращению." if room > 0 else texts.PHOTO_LIMIT
            return _StepOutcome([Reply(said)], next_step=Step.CONFIRM)
        if given.kind is InputKind.TEXT and given.text.strip() in KEYBOARD_LABELS:
            return _StepOutcome(next_step=Step.CONFIRM)  # a stale keyboard tap: show it again
        if given.kind is InputKind.TEXT and given.text.strip():
            # Typed at the summary: most likely more about the problem, so keep it.
            too_long = _add_to_description(data, given.text.strip())
            if too_long is not None:
                return _StepOutcome([too_long])
            return _StepOutcome([Reply(texts.ADDED_TO_DESCRIPTION)], next_step=Step.CONFIRM)
        if given.kind is not InputKind.ACTION:
            return _StepOutcome([Reply(texts.EXPECTED_AT_STEP["confirm"])], next_step=Step.CONFIRM)
        if value == "submit":
            category = await uow.catalog.category_by_code(str(data.get("category")))
            if category is None or not category.active:
                data.pop("category", None)
                data["editing"] = True
                said = "Эта категория больше недоступна — выберите другую."
                return _StepOutcome([Reply(said)], next_step=Step.CATEGORY)
            limited = await self._limit(uow, who, texts.LIMIT_SUMMARY_KEPT)
            if limited is not None:  # the draft stays at the summary, with its buttons again
                summary = Reply(await self._summary(uow, data), CONFIRM_CHOICE)
                return _StepOutcome([limited, summary])
            direct = who.platform.value in self.confirms_directly
            hold = notify.HELD_FOR_SENDER if direct else None
            appeal, confirmation = await submit(uow, self.config, who, data, hold)
            await uow.drafts.delete(who.platform.value, who.user_id)
            return _StepOutcome(submitted_number=appeal.number, confirmation=confirmation)
        if value == "edit":
            return _StepOutcome(next_step=Step.EDIT)
        if value == "cancel":
            await _drop_draft(uow, who, Step.CONFIRM)
            return _StepOutcome([Reply(texts.CANCELLED, MENU)], submitted_number=None, deleted=True)
        return _StepOutcome([Reply(texts.EXPECTED_AT_STEP["confirm"])], next_step=Step.CONFIRM)

    async def _edit(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        data: dict[str, Any],
        given: IntakeInput,
        value: str,
    ) -> _StepOutcome:
        if given.kind is InputKind.PHOTO:
            return self._keep_photo(data, given, Step.EDIT)
        targets = {
            "category": Step.CATEGORY,
            "description": Step.DESCRIPTION,
            "address": Step.ADDRESS,
            "photos": Step.PHOTOS,
            "phone": Step.PHONE,
        }
        if given.kind is InputKind.ACTION and value == "back":
            return _StepOutcome(next_step=Step.CONFIRM)
        if given.kind is InputKind.ACTION and value == "clear_photos":
            data["photos"] = []
            return _StepOutcome([Reply(texts.PHOTOS_CLEARED)], next_step=Step.CONFIRM)
        if given.kind is InputKind.ACTION and value in targets:
            data["editing"] = True
            return _StepOutcome(next_step=targets[value])
        return _StepOutcome([Reply(texts.EXPECTED_AT_STEP["edit"])], next_step=Step.EDIT)

    async def _resume(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        data: dict[str, Any],
        given: IntakeInput,
        value: str,
    ) -> _StepOutcome:
        if given.kind is InputKind.PHOTO:
            return self._keep_photo(data, given, Step.RESUME)
        if given.kind is InputKind.ACTION and value == "continue":
            return _StepOutcome(next_step=Step(data.pop("resume_to", Step.CATEGORY)))
        if given.kind is InputKind.ACTION and value == "restart":
            data.clear()
            data["photos"] = []
            return _StepOutcome(next_step=Step.CATEGORY)
        return _StepOutcome([Reply(texts.EXPECTED_AT_STEP["resume"])], next_step=Step.RESUME)

    async def _followup(
        self,
        uow: UnitOfWork,
        who: ResidentRef,
        data: dict[str, Any],
        given: IntakeInput,
        value: str,
    ) -> _StepOutcome:
        if given.kind is InputKind.PHOTO:  # the rest of an album, or one more photo
            room = texts.MAX_PHOTOS - len(data["photos"])
            data["photos"] = data["photos"] + list(given.photo_refs[:room])
            joined = f"{data['followup_text']}\n{given.text.strip()}".strip()
            said = texts.EXPECTED_AT_STEP["followup"]
            if len(joined) > texts.MAX_DESCRIPTION:
                said = f"{texts.comment_too_long(len(joined))} {said}"
            else:
                data["followup_text"] = joined
            return _StepOutcome([Reply(said)], changed=True)
        if given.kind is InputKind.TEXT and _says_something(given.text.strip()):
            joined = f"{data['followup_text']}\n{given.text.strip()}".strip()
            if len(joined) > texts.MAX_DESCRIPTION:
                return _StepOutcome([Reply(texts.comment_too_long(len(joined)))])
            data["followup_text"] = joined
            said = f"{texts.ADDED_TO_FOLLOWUP} {texts.EXPECTED_AT_STEP['followup']}"
            return _StepOutcome([Reply(said)], changed=True)
        if given.kind is InputKind.ACTION and value == "new":
            _followup_as_new(data)
            kept = texts.LIMIT_TEXT_KEPT if _has_content(data) else ""
            limited = await self._limit(uow, who, kept)
            if limited is not None:  # kept: «Новое обращение» later offers to continue it
                data["resume_to"] = Step.CATEGORY.value
                await uow.drafts.save(who.platform.value, who.user_id, Step.RESUME, data)
                return _StepOutcome([limited])
            intro = [Reply(texts.NEW_WITH_YOUR_WORDS)] if _has_content(data) else []
            return _StepOutcome(intro, next_step=Step.CATEGORY)
        chosen = int(value) if given.kind is InputKind.ACTION and value.isdigit() else None
        if chosen is None or chosen not in data.get("followup", []):
            return _StepOutcome([Reply(texts.EXPECTED_AT_STEP["followup"])])
        appeal = await uow.appeals.get(chosen, lock=True)
        resident = await uow.residents.find(who.platform.value, who.user_id)
        if appeal is None or resident is None or appeal.resident_id != resident.id:
            return _StepOutcome([Reply(texts.EXPECTED_AT_STEP["followup"])])
        if not takes_comments(appeal):
            # Closed while the question waited: the message starts a new appeal instead.
            _followup_as_new(data)
            return _StepOutcome(
                [Reply(texts.followup_closed(appeal.number))], next_step=Step.CATEGORY
            )
        text, photos = str(data.get("followup_text", "")), list(data["photos"])
        album = f"followup-{uuid4().hex}" if len(photos) > 1 else None
        said = ""
        for index, ref in enumerate(photos or [""]):
            photo = PhotoRef(who.platform.value, ref) if ref else None
            said = await pass_comment(
                uow, self.config, appeal, text if index == 0 else "", photo, album
            )
        await uow.drafts.delete(who.platform.value, who.user_id)
        return _StepOutcome([Reply(said, MENU)], deleted=True, queued=True)

    # Prompts ------------------------------------------------------------------------------

    async def _prompt(self, uow: UnitOfWork, step: Step, data: dict[str, Any]) -> list[Reply]:
        if step is Step.CATEGORY:
            categories = await uow.catalog.active_categories()
            buttons = [
                Button(f"{c.emoji} {c.title}".strip(), f"i:category:{c.code}") for c in categories
            ]
            rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
            return [Reply(texts.ASK_CATEGORY, inline(*rows))]
        if step is Step.DESCRIPTION:
            kept = str(data.get("description") or "")
            if kept and not data.get("editing"):
                return [Reply(texts.ask_description_more(kept[:200]))]
            return [Reply(texts.ASK_DESCRIPTION)]
        if step is Step.ADDRESS:
            return [Reply(texts.ASK_ADDRESS, ADDRESS_KEYBOARD)]
        if step is Step.PHOTOS:
            have = len(data.get("photos", []))
            extra = f" Уже приложено: {have}." if have else ""
            return [Reply(texts.ASK_PHOTOS + extra, PHOTOS_KEYBOARD)]
        if step is Step.PHONE:
            return [Reply(texts.ASK_PHONE, PHONE_KEYBOARD)]
        if step is Step.CONFIRM:
            summary = await self._summary(uow, data)
            return [Reply(texts.CONFIRM_INTRO, MENU), Reply(summary, CONFIRM_CHOICE)]
        if step is Step.EDIT:
            rows = [[Button(title, f"i:edit:{code}")] for code, title in EDIT_FIELDS]
            if data.get("photos"):
                rows.append([Button("Убрать все фото", "i:edit:clear_photos")])
            rows.append([Button("« Назад к обращению", "i:edit:back")])
            return [Reply(texts.ASK_EDIT, inline(*rows))]
        if step is Step.FOLLOWUP:

            async def number(appeal_id: int) -> str:
                appeal = await uow.appeals.get(appeal_id)
                return appeal.number if appeal is not None else "?"

            numbers = [await number(i) for i in data.get("followup", [])]
            rows = [
                [Button(texts.followup_to(n), f"i:followup:{i}")]
                for i, n in zip(data.get("followup", []), numbers, strict=True)
            ]
            rows.append([Button(texts.FOLLOWUP_NEW, "i:followup:new")])
            return [Reply(texts.followup_question(numbers), inline(*rows))]
        return [
            Reply(
                texts.RESUME,
                inline(
                    [
                        Button("▶️ Продолжить", "i:resume:continue"),
                        Button("🔄 Начать заново", "i:resume:restart"),
                    ]
                ),
            )
        ]

    async def _summary(self, uow: UnitOfWork, data: dict[str, Any]) -> str:
        code = str(data.get("category"))
        category: CategoryChoice | Category | None = next(
            (c for c in await uow.catalog.active_categories() if c.code == code), None
        )
        if category is None:  # hidden since it was chosen: still named in the summary
            category = await uow.catalog.category_by_code(code)
        title = f"{category.emoji} {category.title}".strip() if category else "—"
        if data.get("lat") is not None:
            place = f"геометка {data['lat']:.5f}, {data['lon']:.5f}"
        else:
            place = data.get("address") or "—"
        phone = data.get("phone") or "не указан"
        return (
            f"Категория: {title}\n"
            f"Описание: {data.get('description', '—')}\n"
            f"Адрес: {place}\n"
            f"Фото: {len(data.get('photos', []))}\n"
            f"Телефон: {phone}"
        )


@dataclass
class _StepOutcome:
    replies: list[Reply] = field(default_factory=list)
    next_step: Step | None = None
    changed: bool = False
    submitted_number: str | None = None
    deleted: bool = False
    confirmation: OutboxMessage | None = None
    queued: bool = False  # messages for the outbox (a comment to the department)
