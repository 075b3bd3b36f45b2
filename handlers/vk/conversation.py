"""VK residents in the community's private messages: the same conversation as in Telegram.

Thin: a VK event becomes the core's plain input, one core call, the replies rendered back.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from vkbottle.bot import BotLabeler
from vkbottle_types.events import GroupEventType

from bot.core import texts
from bot.core.appeals import StaffService
from bot.core.delivery import OutboxWorker
from bot.core.intake import IntakeResult, IntakeService
from bot.core.model import InputKind, IntakeInput, Platform, Reply, ResidentRef
from bot.core.ports import DeliveryError, PhotoRef
from handlers.vk.client import VkClient
from handlers.vk.inputs import as_int, button_action, intake_input, resident_of
from handlers.vk.render import NO_BUTTONS
from handlers.vk.sender import derived_random_id
from storage.uow import Database, current_event_key

log = logging.getLogger(__name__)

CHAT_PEER_START = 2_000_000_000  # peer ids of group conversations start here
START_WORDS = {"начать", "start", "старт"}


class VkConversation:
    def __init__(
        self,
        intake: IntakeService,
        staff: StaffService,
        worker: OutboxWorker,
        client: VkClient,
        db: Database,
    ) -> None:
        self.db = db
        self.intake = intake
        self.staff = staff
        self.worker = worker
        self.client = client

    def labeler(self) -> BotLabeler:
        labeler = BotLabeler()
        labeler.raw_event(GroupEventType.MESSAGE_NEW, dataclass=dict)(self.on_message)
        labeler.raw_event(GroupEventType.MESSAGE_EVENT, dataclass=dict)(self.on_button)
        return labeler

    async def on_message(self, event: dict[str, Any]) -> None:
        body = _mapping(event.get("object"))
        message = _mapping(body.get("message"))
        from_id, peer_id = as_int(message.get("from_id")), as_int(message.get("peer_id"))
        if from_id <= 0 or peer_id != from_id or peer_id >= CHAT_PEER_START:
            return  # communities, group conversations: the bot talks to residents one to one
        if await self._banned(resident_of(from_id, peer_id)):
            return
        callbacks = _takes_callbacks(body)
        first_name = await self.client.first_name(from_id)
        who = resident_of(from_id, peer_id, first_name, text_buttons=not callbacks)
        text = str(message.get("text") or "").strip()
        action = button_action(message.get("payload"))
        if action is not None and action != "/start":
            await self._action(who, action, callbacks)
            return
        if action == "/start" or text.lower() in START_WORDS:
            await self._answer(who, await self.intake.start(who), callbacks)
            return
        if text.startswith("/"):
            await self._command(who, text, callbacks)
            return
        reply = _mapping(message.get("reply_message"))
        if as_int(reply.get("id")) > 0:
            card = await self.staff.find_card(peer_id, as_int(reply["id"]), Platform.VK.value)
            if card is not None and card[1] == "notice":
                await self._comment(who, card[0], message)
                return
        result = await self.intake.handle(who, intake_input(message))
        await self._answer(who, result, callbacks)

    async def ask_again(self, event: dict[str, Any], key: str) -> None:
        """An event handled before a crash and handed over again (``VkPoller``): its answer may
        have died with the process, between the step's commit and the reply's queueing. Where
        the draft stands is said again, as one message whose random_id is that of the event's
        first reply: VK drops it when the first answer did go out."""
        body = _mapping(event.get("object"))
        if event.get("type") == "message_new":
            message = _mapping(body.get("message"))
            user_id, peer_id = as_int(message.get("from_id")), as_int(message.get("peer_id"))
            callbacks = _takes_callbacks(body)
        elif str(button_action(body.get("payload"))).startswith("i:"):
            user_id, peer_id = as_int(body.get("user_id")), as_int(body.get("peer_id"))
            callbacks = True
        else:
            return
        if user_id <= 0 or peer_id != user_id or peer_id >= CHAT_PEER_START:
            return
        who = resident_of(user_id, peer_id, text_buttons=not callbacks)
        replies = (await self.intake.ask_again(who)).replies
        if replies:
            keyboard = next((r.keyboard for r in reversed(replies) if r.keyboard), None)
            said = Reply("\n\n".join(r.text for r in replies), keyboard)
            await self._send(who, [said], callbacks, key=key)

    async def on_button(self, event: dict[str, Any]) -> None:
        body = _mapping(event.get("object"))
        user_id, peer_id = as_int(body.get("user_id")), as_int(body.get("peer_id"))
        if user_id <= 0 or peer_id != user_id or peer_id >= CHAT_PEER_START:
            return  # as for messages: residents one to one, never a group conversation
        if await self._banned(resident_of(user_id, peer_id)):
            return  # not even the spinner is answered: a banned resident's press does nothing
        # Stops the button's spinner; what the press did comes as messages. A press handled
        # after a restart may be too old to answer: the press itself still counts.
        try:
            await self.client.call(
                "messages.sendMessageEventAnswer",
                event_id=str(body.get("event_id") or ""),
                user_id=user_id,
                peer_id=peer_id,
            )
        except DeliveryError as exc:
            log.info("button press not answered: %s", exc)
        action = button_action(body.get("payload"))
        who = resident_of(user_id, peer_id, await self.client.first_name(user_id))
        message = as_int(body.get("conversation_message_id"))
        # A message's buttons work once (then they are taken away): a second press on the same
        # message — a double tap, a client still showing the old buttons — is stale.
        pressed = f"vk:pressed:{peer_id}:{message}" if message > 0 else None
        if pressed is not None and await self._was_pressed(pressed):
            if action is not None and action.startswith("i:"):
                # The conversation says so and shows where it stands now; a summary's button
                # again, with no draft left, is answered with the number (the answer with it
                # may have been missed). Never the press itself: it must not act twice.
                again = (
                    "i:pressed:confirm" if action.startswith("i:confirm:") else "i:pressed:again"
                )
                stale = IntakeInput(kind=InputKind.ACTION, action=again)
                await self._answer(who, await self.intake.handle(who, stale), True)
            else:
                await self._send(who, [Reply(texts.BUTTON_USED)], True)
            return
        if action is None:
            await self._send(who, [Reply(texts.STALE_BUTTON)], True)
        elif action == "/start":
            await self._answer(who, await self.intake.start(who), True)
        else:
            await self._action(who, action, True)
        if pressed is not None:
            async with self.db.uow() as uow:
                await uow.state.remember(pressed)
                await uow.commit()
        await self._retire_buttons(peer_id, message)

    async def _banned(self, who: ResidentRef) -> bool:
        """A banned resident is told once (through the outbox), then ignored."""
        notice = await self.intake.bans.gate(who)
        if notice is None:
            return False
        await self._send(who, notice, True)
        return True

    async def _was_pressed(self, key: str) -> bool:
        async with self.db.uow(read_only=True) as uow:
            return await uow.state.event_seen(key)

    async def _retire_buttons(self, peer_id: int, message: int) -> None:
        """The pressed buttons have done their job: removing them, as in Telegram, keeps an
        old summary's «Отправить» from being pressed after the draft has changed."""
        if message <= 0:
            return
        try:
            found = await self.client.call(
                "messages.getByConversationMessageId",
                peer_id=peer_id,
                conversation_message_ids=message,
            )
            items = found.get("items") if isinstance(found, dict) else None
            if not items or not items[0].get("text"):
                return
            await self.client.call(
                "messages.edit",
                peer_id=peer_id,
                conversation_message_id=message,
                message=items[0]["text"],
                keyboard=NO_BUTTONS,
            )
        except Exception as exc:  # only tidying: the press itself has been handled
            log.info("buttons not removed: %s", exc.__class__.__name__)

    async def _action(self, who: ResidentRef, action: str, callbacks: bool) -> None:
        if action.startswith("f:"):
            await self._feedback(who, action)
            return
        given = IntakeInput(kind=InputKind.ACTION, action=action)
        await self._answer(who, await self.intake.handle(who, given), callbacks)

    async def _command(self, who: ResidentRef, text: str, callbacks: bool) -> None:
        commands = {
            "/start": self.intake.start,
            "/new": self.intake.new_appeal,
            "/cancel": self.intake.cancel,
            "/my": self.intake.my_appeals,
        }
        name = text.split(maxsplit=1)[0].lower()
        if name == "/help":
            result = await self.intake.help()
        elif name in commands:
            result = await commands[name](who)
        else:
            result = IntakeResult([Reply(texts.UNKNOWN_COMMAND)])
        await self._answer(who, result, callbacks)

    async def _feedback(self, who: ResidentRef, action: str) -> None:
        parts = action.split(":")
        # As in Telegram: an appeal id of at most 12 digits (a longer one is no appeal's, and
        # would not even fit a database integer).
        if not re.fullmatch(r"f:\d{1,12}:(yes|no)", action):
            await self._send(who, [Reply(texts.STALE_BUTTON)], True)
            return
        outcome = await self.staff.resident_feedback(who, int(parts[1]), parts[2] == "yes")
        self.worker.wake()
        if not outcome.ok:  # a verdict's answer comes through the outbox, repliable
            await self._send(who, [Reply(outcome.notice)], True)

    async def _comment(self, who: ResidentRef, appeal_id: int, message: dict[str, Any]) -> None:
        given = intake_input(message)
        if given.kind not in (InputKind.TEXT, InputKind.PHOTO):
            await self._send(who, [Reply(texts.COMMENT_KINDS)], True)
            return
        if len(given.text.strip()) > texts.MAX_DESCRIPTION:  # refused whole, photos and all
            await self._send(who, [Reply(texts.comment_too_long(len(given.text.strip())))], True)
            return
        album = f"vk{message.get('id')}" if len(given.photo_refs) > 1 else None
        said = ""
        for index, ref in enumerate(given.photo_refs or ("",)):
            photo = PhotoRef("vk", ref) if ref else None
            said = await self.staff.resident_comment(
                who, appeal_id, given.text if index == 0 else "", photo, album=album
            )
        self.worker.wake()
        await self._send(who, [Reply(said)], True)

    async def _answer(self, who: ResidentRef, result: IntakeResult, callbacks: bool) -> None:
        if result.wrote_outbox:
            self.worker.wake()
        await self._send(who, result.replies, callbacks)

    async def _send(
        self, who: ResidentRef, replies: list[Reply], callbacks: bool, key: str | None = None
    ) -> None:
        """Replies leave through the outbox, like notifications: in order with them, kept when
        VK fails or the bot stops, paced to VK's limit. Their random_ids come from the event,
        so an event handled again repeats the same ones and VK drops the repeats."""
        if not replies:
            return
        key = key or current_event_key() or uuid.uuid4().hex
        async with self.db.uow() as uow:
            for index, reply in enumerate(replies):
                keyboard = reply.keyboard
                if keyboard is not None and not callbacks:
                    keyboard = keyboard.as_text_buttons()
                payload: dict[str, object] = {
                    "text": reply.text,
                    "random_id": derived_random_id(key, index),
                }
                if keyboard is not None:
                    payload["keyboard"] = keyboard.to_dict()
                await uow.outbox.add(Platform.VK.value, who.chat_id, "text", payload)
            await uow.commit()
        self.worker.wake()


def _takes_callbacks(body: dict[str, Any]) -> bool:
    """Whether the resident's VK client shows inline callback buttons (else text buttons)."""
    client_info = _mapping(body.get("client_info"))
    actions = client_info.get("button_actions")
    return (not isinstance(actions, list) or "callback" in actions) and bool(
        client_info.get("inline_keyboard", True)
    )


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
