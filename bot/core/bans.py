"""Bans: a coordinator blocks the author of an appeal (/ban), lifts it (/unban), lists them.

A banned resident is told once and then ignored on every platform: the fronts ask ``gate``
before anything else and drop the update when it says so. Their appeals already filed stay as
they are; staff may still answer them.
"""

from __future__ import annotations

import logging

from bot.core import notify, texts
from bot.core.config import CoreConfig
from bot.core.model import Keyboard, Outcome, Platform, Reply, ResidentRef, StaffActor
from bot.core.numbering import normalize_number
from bot.core.routing import ONLY_COORDINATORS
from storage.models import Appeal, Resident
from storage.uow import BanKey, Database, UnitOfWork, utcnow

log = logging.getLogger(__name__)

MAX_BAN_REASON = 300
BANNED_LIST_LIMIT = 30
PLATFORM_TITLES = {"telegram": "Telegram", "vk": "ВКонтакте"}


def is_coordinator(config: CoreConfig, who: ResidentRef) -> bool:
    """Coordinators are Telegram users listed in COORDINATOR_IDS."""
    return (
        who.platform is Platform.TELEGRAM
        and who.user_id.lstrip("-").isdigit()
        and int(who.user_id) in config.coordinator_ids
    )


def _resident_is_coordinator(config: CoreConfig, resident: Resident) -> bool:
    return (
        resident.platform == Platform.TELEGRAM.value
        and resident.external_id.lstrip("-").isdigit()
        and int(resident.external_id) in config.coordinator_ids
    )


class BanService:
    def __init__(self, db: Database, config: CoreConfig) -> None:
        self.db = db
        self.config = config

    async def gate(self, who: ResidentRef) -> list[Reply] | None:
        """None: go on as usual. Otherwise the resident is banned and the update is dropped;
        the list holds the one message telling them so (the first time) or nothing."""
        if is_coordinator(self.config, who):
            return None
        key = (who.platform.value, who.user_id)
        if key not in await self._banned_keys():
            return None
        async with self.db.uow(read_only=True) as uow:
            state = await uow.residents.ban_state(*key)
        if state is None or state[1] is None:
            self.db.banned.forget(key)  # unbanned in another process
            return None
        resident_id, _, reason, notified = state
        if notified:
            return []
        async with self.db.uow() as uow:
            if not await uow.residents.claim_ban_notice(resident_id):
                return []
            await uow.commit()
        log.info("resident %s (banned) told of the ban", resident_id)
        return [Reply(texts.banned(reason), Keyboard(remove=True))]

    async def _banned_keys(self) -> set[BanKey]:
        """Every update of every resident asks: answered from memory, read again every few
        seconds (``BannedCache``)."""
        cache = self.db.banned
        keys = cache.fresh()
        if keys is not None:
            return keys
        async with cache.reading:
            keys = cache.fresh()
            if keys is None:
                cache.begin_read()
                async with self.db.uow(read_only=True) as uow:
                    keys = await uow.residents.banned_keys()
                cache.replace(keys)
        return keys

    def _refusal(self, actor: StaffActor) -> Outcome | None:
        if not actor.is_coordinator:
            return Outcome(ok=False, notice=ONLY_COORDINATORS)
        if actor.chat_id < 0:
            return Outcome(ok=False, notice=texts.BAN_PRIVATE_ONLY)
        return None

    def _number(self, word: str) -> str | None:
        return normalize_number(word, default_year=self.config.local(utcnow()).year)

    async def _author(self, uow: UnitOfWork, number: str) -> tuple[Appeal, Resident] | None:
        appeal = await uow.appeals.by_number(number)
        if appeal is None:
            return None
        resident = await uow.session.get(Resident, appeal.resident_id, with_for_update=True)
        return None if resident is None else (appeal, resident)

    @staticmethod
    async def _refresh(uow: UnitOfWork, appeal: Appeal, resident: Resident) -> None:
        """The cards of the resident's open appeals (and this one) show the ban."""
        await notify.refresh_resident_cards(uow, resident.id)
        if appeal.status not in ("new", "in_work", "reopened", "resolved"):
            await notify.refresh_cards(uow, appeal)

    def _who(self, resident: Resident) -> str:
        name = resident.first_name or "житель"
        return f"{name} ({PLATFORM_TITLES.get(resident.platform, resident.platform)})"

    async def ban(self, actor: StaffActor, args: str) -> Outcome:
        """/ban <number> [reason]: the author of that appeal is banned."""
        refused = self._refusal(actor)
        if refused is not None:
            return refused
        words = args.split(maxsplit=1)
        number = self._number(words[0]) if words else None
        if number is None:
            return Outcome(ok=False, notice=texts.BAN_USAGE)
        reason = " ".join(words[1].split()) if len(words) > 1 else ""
        if len(reason) > MAX_BAN_REASON:
            return Outcome(
                ok=False,
                notice=f"Причина длиннее {MAX_BAN_REASON} символов — сократите, пожалуйста.",
            )
        async with self.db.uow() as uow:
            found = await self._author(uow, number)
            if found is None:
                return Outcome(ok=False, notice=f"Обращение № {number} не найдено.")
            appeal, resident = found
            if _resident_is_coordinator(self.config, resident):
                return Outcome(ok=False, notice=texts.BAN_COORDINATOR)
            if resident.banned_at is not None:
                since = self.config.format_moment(resident.banned_at)
                return Outcome(
                    ok=False,
                    notice=f"Автор обращения № {number} уже заблокирован (с {since}). "
                    f"Снять блокировку: /unban {number}",
                )
            resident.banned_at = utcnow()
            resident.ban_reason = reason or None
            resident.ban_notified = False
            await uow.appeals.add_event(appeal.id, "banned", actor.name, reason or None)
            await self._refresh(uow, appeal, resident)
            open_count = len(await uow.appeals.open_of_resident(resident.id))
            await uow.commit()
        self.db.banned.mark((resident.platform, resident.external_id), banned=True)
        log.info("resident %s banned by %s (appeal %s)", resident.id, actor.user_id, number)
        said = f"⛔ Автор обращения № {number} — {self._who(resident)} — заблокирован."
        if reason:
            said += f"\nПричина (её увидит житель): {reason}"
        said += (
            "\nОн получит одно сообщение о блокировке, дальше его сообщения и нажатия кнопок "
            "не принимаются."
        )
        if open_count:
            said += (
                f"\nОткрытых обращений у него: {open_count} — они остаются в работе, "
                "отделы могут на них отвечать."
            )
        said += f"\nСнять блокировку: /unban {number}"
        return Outcome(ok=True, notice=said, wrote_outbox=True, appeal_id=appeal.id)

    async def unban(self, actor: StaffActor, args: str) -> Outcome:
        """/unban <number>: the author of that appeal may write again."""
        refused = self._refusal(actor)
        if refused is not None:
            return refused
        words = args.split()
        number = self._number(words[0]) if words else None
        if number is None:
            return Outcome(ok=False, notice=texts.UNBAN_USAGE)
        async with self.db.uow() as uow:
            found = await self._author(uow, number)
            if found is None:
                return Outcome(ok=False, notice=f"Обращение № {number} не найдено.")
            appeal, resident = found
            if resident.banned_at is None:
                return Outcome(ok=False, notice=f"Автор обращения № {number} не заблокирован.")
            resident.banned_at = None
            resident.ban_reason = None
            resident.ban_notified = False
            await uow.appeals.add_event(appeal.id, "unbanned", actor.name)
            await self._refresh(uow, appeal, resident)
            await uow.commit()
        self.db.banned.mark((resident.platform, resident.external_id), banned=False)
        log.info("resident %s unbanned by %s (appeal %s)", resident.id, actor.user_id, number)
        return Outcome(
            ok=True,
            notice=f"✅ Блокировка снята: {self._who(resident)}, автор обращения № {number}, "
            "снова может писать в приёмную.",
            wrote_outbox=True,
            appeal_id=appeal.id,
        )

    async def banned(self, actor: StaffActor) -> Outcome:
        """/banned: who is banned, since when, why, and a number to /unban them by."""
        refused = self._refusal(actor)
        if refused is not None:
            return refused
        async with self.db.uow() as uow:
            rows = await uow.residents.banned(BANNED_LIST_LIMIT + 1)
        if not rows:
            return Outcome(ok=True, notice=texts.BANNED_NONE)
        lines = ["⛔ Заблокированные жители:"]
        for resident, number in rows[:BANNED_LIST_LIMIT]:
            assert resident.banned_at is not None
            since = self.config.format_moment(resident.banned_at)
            line = f"• {self._who(resident)}, № {number or '—'}, с {since}"
            if resident.ban_reason:
                line += f": {resident.ban_reason}"
            lines.append(line)
        if len(rows) > BANNED_LIST_LIMIT:
            lines.append(f"Показаны последние {BANNED_LIST_LIMIT}.")
        lines.append("Снять блокировку: /unban <номер обращения>.")
        return Outcome(ok=True, notice="\n".join(lines))
