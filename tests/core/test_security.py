"""The hourly limit on new appeals and bans, through the core on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, update

from bot.core import texts
from bot.core.bans import BanService
from bot.core.config import CoreConfig
from bot.core.intake import IntakeService
from bot.core.model import Platform, ResidentRef, StaffActor, Step
from bot.core.routing import ONLY_COORDINATORS
from storage.models import Appeal, AppealEvent, Draft, OutboxMessage, Resident
from storage.uow import BannedCache, Database, utcnow
from tests.conftest import COORDINATOR
from tests.core.test_intake import ANNA, DESCRIPTION, fill_until_confirm, press, step_of, text

BORIS = ResidentRef(Platform.TELEGRAM, user_id="502", chat_id="502", first_name="Борис")
VK_MARIA = ResidentRef(Platform.VK, user_id="5551001", chat_id="5551001", first_name="Мария")
BOSS_AS_RESIDENT = ResidentRef(
    Platform.TELEGRAM, user_id=str(COORDINATOR), chat_id=str(COORDINATOR), first_name="Ольга"
)
BOSS = StaffActor(user_id=COORDINATOR, name="Ольга", chat_id=COORDINATOR, is_coordinator=True)
STRANGER = StaffActor(user_id=701, name="Иван", chat_id=701)


def limited(config: CoreConfig, per_hour: int) -> CoreConfig:
    return dataclasses.replace(config, appeals_per_hour=per_hour)


async def file(intake: IntakeService, who: ResidentRef) -> str:
    await fill_until_confirm(intake, who)
    result = await intake.handle(who, press("i:confirm:submit"))
    assert result.submitted_number is not None, [r.text for r in result.replies]
    return result.submitted_number


async def age_appeals(db: Database, who: ResidentRef, filed_at: datetime) -> None:
    """As if the resident's appeals had been filed at ``filed_at``."""
    async with db.uow() as uow:
        resident = await uow.residents.find(who.platform.value, who.user_id)
        assert resident is not None
        await uow.session.execute(
            update(Appeal).where(Appeal.resident_id == resident.id).values(created_at=filed_at)
        )
        await uow.commit()


def shown_time(config: CoreConfig, moment: datetime, now: datetime | None = None) -> str:
    """When the resident is told they may file again: the minute up, with the date when that
    is not today (an hour from 23:30 is tomorrow)."""
    local = config.local(moment)
    if local.second or local.microsecond:
        local = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if local.date() != config.local(now or utcnow()).date():
        return local.strftime("%d.%m.%Y %H:%M")
    return local.strftime("%H:%M")


async def outbox_count(db: Database) -> int:
    async with db.uow() as uow:
        return len(list(await uow.session.scalars(select(OutboxMessage))))


async def appeal_count(db: Database) -> int:
    async with db.uow() as uow:
        return len(list(await uow.session.scalars(select(Appeal))))


async def test_the_limit_refuses_a_new_appeal_and_keeps_the_draft(
    db: Database, config: CoreConfig
) -> None:
    config = limited(config, 2)
    intake = IntakeService(db, config)
    await file(intake, ANNA)
    await file(intake, ANNA)

    # Starting a third one within the hour: told the limit and when; no draft is begun.
    started = await intake.start(ANNA)
    said = started.replies[-1].text
    assert "вы уже отправили 2 обращения" in said and "не больше 2 в час" in said
    assert await step_of(db) is None
    assert "i:category:roads" not in str(started.replies)

    # A problem written straight away is kept (as a draft to continue), not thrown away. The
    # open appeals are offered first; the resident says it is a new one.
    asked = await intake.handle(ANNA, text(DESCRIPTION))
    assert "к одному из ваших обращений" in asked.replies[-1].text
    first = await intake.handle(ANNA, press("i:followup:new"))
    assert texts.LIMIT_TEXT_KEPT in first.replies[-1].text
    async with db.uow() as uow:
        draft = await uow.drafts.get("telegram", "501")
        assert draft is not None and draft.step == Step.RESUME
        assert draft.data["description"] == DESCRIPTION
    again = await intake.new_appeal(ANNA)
    assert texts.LIMIT_DRAFT_KEPT in again.replies[-1].text
    assert await appeal_count(db) == 2

    # An hour later: the same draft continues and is sent.
    await age_appeals(db, ANNA, utcnow() - timedelta(minutes=61))
    resumed = await intake.new_appeal(ANNA)
    assert resumed.replies[-1].text == texts.RESUME
    await intake.handle(ANNA, press("i:resume:continue"))
    await intake.handle(ANNA, press("i:category:roads"))
    assert await step_of(db) == "address"  # the description was kept


async def test_a_summary_sent_over_the_limit_stays_to_be_sent_later(
    db: Database, config: CoreConfig
) -> None:
    config = limited(config, 2)
    intake = IntakeService(db, config)
    await file(intake, ANNA)
    await file(intake, ANNA)
    await age_appeals(db, ANNA, utcnow() - timedelta(hours=2))
    await fill_until_confirm(intake)  # allowed: nothing within the last hour

    # Meanwhile (as if filed ten minutes ago from another device): over the limit now.
    recent = utcnow() - timedelta(minutes=10)
    await age_appeals(db, ANNA, recent)
    queued_before = await outbox_count(db)
    refused = await intake.handle(ANNA, press("i:confirm:submit"))
    assert refused.submitted_number is None
    assert refused.replies[0].text == texts.appeal_limit(
        2, 2, shown_time(config, recent + timedelta(hours=1)), texts.LIMIT_SUMMARY_KEPT
    )
    summary = refused.replies[1]
    assert "Описание: " + DESCRIPTION in summary.text
    assert summary.keyboard is not None
    assert "i:confirm:submit" in [b.action for row in summary.keyboard.rows for b in row]
    assert await step_of(db) == "confirm"
    assert await appeal_count(db) == 2
    assert await outbox_count(db) == queued_before  # no card, no confirmation

    # The hour passes: the kept summary's «Отправить» now files it.
    await age_appeals(db, ANNA, utcnow() - timedelta(minutes=61))
    sent = await intake.handle(ANNA, press("i:confirm:submit"))
    assert sent.submitted_number is not None
    assert await appeal_count(db) == 3


async def test_late_in_the_evening_the_limit_names_tomorrows_date(
    db: Database, config: CoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 23:50 the next appeal is allowed after midnight: «после 00:40» alone would read as
    forty minutes past midnight today, already gone; the date says which midnight."""
    config = limited(config, 2)
    intake = IntakeService(db, config)
    await file(intake, ANNA)
    await file(intake, ANNA)
    evening = datetime(2026, 11, 30, 23, 50, tzinfo=config.tz).astimezone(UTC)
    monkeypatch.setattr("bot.core.intake.utcnow", lambda: evening)
    await age_appeals(db, ANNA, evening - timedelta(minutes=10))

    said = (await intake.start(ANNA)).replies[-1].text
    assert "после 01.12.2026 00:40." in said
    assert shown_time(config, evening + timedelta(minutes=50), now=evening) == "01.12.2026 00:40"

    # At noon the same wait is told as a time alone.
    noon = datetime(2026, 11, 30, 12, 0, tzinfo=config.tz).astimezone(UTC)
    monkeypatch.setattr("bot.core.intake.utcnow", lambda: noon)
    await age_appeals(db, ANNA, noon - timedelta(minutes=10))
    assert "после 12:50." in (await intake.start(ANNA)).replies[-1].text


async def test_the_limit_is_per_resident_and_platform_and_spares_coordinators(
    db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(db, limited(config, 1))
    await file(intake, ANNA)
    await file(intake, BORIS)  # another resident has a limit of their own
    await file(intake, VK_MARIA)
    refused = await intake.start(VK_MARIA)
    assert "уже отправили 1 обращение" in refused.replies[-1].text  # VK the same as Telegram
    for _ in range(3):
        await file(intake, BOSS_AS_RESIDENT)
    assert await appeal_count(db) == 6
    # 0: no limit at all.
    unlimited = IntakeService(db, limited(config, 0))
    await file(unlimited, ANNA)
    await file(unlimited, ANNA)


async def test_ban_is_told_once_recorded_and_lifted(db: Database, config: CoreConfig) -> None:
    intake = IntakeService(db, config)
    bans: BanService = intake.bans
    number = await file(intake, ANNA)
    await fill_until_confirm(intake)  # a draft in progress when the ban comes
    assert await bans.gate(ANNA) is None

    # As /appeal does, the number may be given without this year's prefix.
    seq = str(int(number.split("-")[1]))
    outcome = await bans.ban(BOSS, f"{seq}  Оскорбления   в адрес сотрудников")
    assert outcome.ok and f"№ {number}" in outcome.notice and "Анна (Telegram)" in outcome.notice
    assert "Открытых обращений у него: 1" in outcome.notice
    async with db.uow() as uow:
        resident = await uow.residents.find("telegram", "501")
        assert resident is not None and resident.banned_at is not None
        assert resident.ban_reason == "Оскорбления в адрес сотрудников"
        assert resident.ban_notified is False
        events = list(await uow.session.scalars(select(AppealEvent.kind)))
        refreshes = await uow.session.scalars(
            select(OutboxMessage.kind).where(OutboxMessage.kind == "card_refresh")
        )
        assert "banned" in events and list(refreshes)  # the card shows it

    told = await bans.gate(ANNA)
    assert told is not None and len(told) == 1
    assert told[0].text == texts.banned("Оскорбления в адрес сотрудников")
    assert "другим способом" in told[0].text
    assert await bans.gate(ANNA) == []  # then silence
    assert await bans.gate(BORIS) is None  # others are not touched
    async with db.uow() as uow:
        draft = await uow.session.scalar(select(Draft))
        assert draft is not None and draft.step == "confirm"  # kept as it was

    again = await bans.ban(BOSS, number)
    assert not again.ok and "уже заблокирован" in again.notice
    listed = await bans.banned(BOSS)
    assert f"Анна (Telegram), № {number}" in listed.notice
    assert "Оскорбления в адрес сотрудников" in listed.notice

    lifted = await bans.unban(BOSS, number)
    assert lifted.ok and "снова может писать" in lifted.notice
    assert await bans.gate(ANNA) is None
    assert (await bans.banned(BOSS)).notice == texts.BANNED_NONE
    assert not (await bans.unban(BOSS, number)).ok
    async with db.uow() as uow:
        events = list(await uow.session.scalars(select(AppealEvent.kind)))
        resident = await uow.residents.find("telegram", "501")
    assert events[-1] == "unbanned"
    assert resident is not None and resident.banned_at is None and resident.ban_reason is None

    # Banned again later: told again, once.
    assert (await bans.ban(BOSS, number)).ok
    notice = await bans.gate(ANNA)
    assert notice is not None and notice[0].text == texts.banned(None)
    assert await bans.gate(ANNA) == []


async def test_a_ban_from_another_process_holds_within_seconds(
    db: Database, config: CoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process keeps who is banned in memory: the gate of a resident nobody banned reads
    nothing, a ban made by another process (its own Database) holds here once the set is read
    again, and an unban elsewhere lets the resident through at once."""
    monkeypatch.setattr(BannedCache, "TTL", 0.3)
    here = IntakeService(db, config)
    elsewhere = IntakeService(Database(db.factory), config)
    number = await file(here, ANNA)
    assert await here.bans.gate(ANNA) is None  # the set is read now

    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert await here.bans.gate(ANNA) is None
            assert await here.bans.gate(BORIS) is None
        assert statements == []

        assert (await elsewhere.bans.ban(BOSS, number)).ok
        assert await elsewhere.bans.gate(ANNA) is not None  # that process: at once
        await asyncio.sleep(0.4)
        told = await here.bans.gate(ANNA)
        assert told is not None and told == []  # the other process told her already
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)

    assert (await elsewhere.bans.unban(BOSS, number)).ok
    assert await here.bans.gate(ANNA) is None  # not a stale ban, though the set still has her
    async with db.uow() as uow:
        assert await uow.residents.banned_keys() == set()


async def test_who_may_ban_and_whom(db: Database, config: CoreConfig) -> None:
    intake = IntakeService(db, config)
    bans = intake.bans
    number = await file(intake, ANNA)
    own = await file(intake, BOSS_AS_RESIDENT)
    maria = await file(intake, VK_MARIA)

    for refused in (
        await bans.ban(STRANGER, number),
        await bans.unban(STRANGER, number),
        await bans.banned(STRANGER),
    ):
        assert not refused.ok and refused.notice == ONLY_COORDINATORS
    in_group = dataclasses.replace(BOSS, chat_id=-100111)
    assert (await bans.ban(in_group, number)).notice == texts.BAN_PRIVATE_ONLY
    assert (await bans.ban(BOSS, "")).notice == texts.BAN_USAGE
    assert (await bans.ban(BOSS, "abc причина")).notice == texts.BAN_USAGE
    assert (await bans.unban(BOSS, "")).notice == texts.UNBAN_USAGE
    assert (await bans.ban(BOSS, "2026-999999")).notice == "Обращение № 2026-999999 не найдено."
    assert (await bans.ban(BOSS, own)).notice == texts.BAN_COORDINATOR
    assert (await bans.ban(BOSS, number)).ok

    # A VK resident is banned the same way.
    assert (await bans.ban(BOSS, maria)).ok
    assert await bans.gate(VK_MARIA) is not None
    async with db.uow() as uow:
        banned = list(
            await uow.session.scalars(
                select(Resident.external_id).where(Resident.banned_at.is_not(None))
            )
        )
    assert sorted(banned) == ["501", "5551001"]


def test_appeals_per_hour_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.app import core_config
    from bot.settings import SettingsError, load_settings

    monkeypatch.setenv("BOT_TOKEN", "123:abc")
    monkeypatch.delenv("APPEALS_PER_HOUR", raising=False)
    assert load_settings(_env_file=None).appeals_per_hour == 5
    for given, expected in (("", 5), ("0", 0), (" 12 ", 12)):
        monkeypatch.setenv("APPEALS_PER_HOUR", given)
        assert core_config(load_settings(_env_file=None)).appeals_per_hour == expected
    for bad in ("-1", "five", "2.5"):
        monkeypatch.setenv("APPEALS_PER_HOUR", bad)
        with pytest.raises(SettingsError) as refused:
            load_settings(_env_file=None)
        assert str(refused.value).startswith("Setting APPEALS_PER_HOUR is malformed: expected")
    assert CoreConfig().appeals_per_hour == 0  # the core alone: no limit unless configured
