"""Storage on SQLite and PostgreSQL: numbering under concurrency, catalogue sync, migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.catalog import Catalog, CatalogError, CategorySpec, DepartmentSpec, load_catalog
from bot.core.config import CoreConfig
from bot.core.intake import IntakeService
from bot.core.model import InputKind, IntakeInput, Platform, ResidentRef
from bot.core.numbering import appeal_number, normalize_number
from bot.settings import DEFAULT_CATEGORIES_FILE
from storage.models import Appeal, Base, Category, ProcessedEvent
from storage.uow import Database

CONCURRENT = 25


async def test_concurrent_counter_is_gap_free(db: Database) -> None:
    async def bump() -> int:
        async with db.uow() as uow:
            seq = await uow.appeals.next_seq(2026)
            await asyncio.sleep(0)  # let the others try to interleave
            await uow.commit()
            return seq

    numbers = await asyncio.gather(*(bump() for _ in range(CONCURRENT)))
    assert sorted(numbers) == list(range(1, CONCURRENT + 1))


async def test_concurrent_submissions_get_distinct_numbers(
    db: Database, config: CoreConfig
) -> None:
    intake = IntakeService(db, config)

    async def file(user: int) -> str:
        who = ResidentRef(Platform.TELEGRAM, user_id=str(user), chat_id=str(user))
        steps = [
            IntakeInput(InputKind.ACTION, action="i:category:waste"),
            IntakeInput(InputKind.TEXT, text="Контейнеры не вывозят уже неделю"),
            IntakeInput(InputKind.TEXT, text="ул. Пушкина, 1"),
            IntakeInput(InputKind.TEXT, text="Пропустить"),
            IntakeInput(InputKind.TEXT, text="Пропустить"),
        ]
        await intake.start(who)
        for given in steps:
            await intake.handle(who, given)
        result = await intake.handle(who, IntakeInput(InputKind.ACTION, action="i:confirm:submit"))
        assert result.submitted_number is not None
        return result.submitted_number

    numbers = await asyncio.gather(*(file(1000 + i) for i in range(CONCURRENT)))
    seqs = sorted(int(n.split("-")[1]) for n in numbers)
    assert seqs == list(range(1, CONCURRENT + 1))
    async with db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Appeal)) == CONCURRENT


async def test_catalog_sync_is_idempotent(db: Database) -> None:
    catalog = load_catalog(DEFAULT_CATEGORIES_FILE)
    for _ in range(2):
        async with db.uow() as uow:
            await uow.catalog.sync(catalog)
            await uow.commit()
    async with db.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Category)) == len(
            catalog.categories
        )
    # Removing a category from the file hides it; renaming keeps its id.
    trimmed = Catalog(
        departments=[*catalog.departments, DepartmentSpec("parks", "Парки")],
        categories=[
            CategorySpec(code="roads", title="Дороги и тротуары", department="parks"),
        ],
    )
    async with db.uow() as uow:
        before = await uow.catalog.category_by_code("roads")
        assert len(await uow.catalog.active_categories()) > 1  # the list is now cached
        await uow.catalog.sync(trimmed)
        await uow.commit()
    async with db.uow() as uow:
        active = await uow.catalog.active_categories()
        assert [(c.code, c.title) for c in active] == [("roads", "Дороги и тротуары")]
        after = await uow.catalog.category_by_code("roads")
        assert before is not None and after is not None and after.id == before.id


async def test_migrations_match_models(engine: AsyncEngine) -> None:
    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection)  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def test_numbers() -> None:
    assert appeal_number(2026, 123) == "2026-000123"
    assert normalize_number("№ 2026-123") == "2026-000123"
    assert normalize_number(" 2026/000045 ") == "2026-000045"
    assert normalize_number("123") is None
    assert normalize_number("abcd-12") is None
    assert normalize_number("45", default_year=2026) == "2026-000045"
    assert normalize_number("²", default_year=2026) is None
    assert normalize_number("2026-²") is None
    assert normalize_number("2026-" + "9" * 4000) is None
    assert normalize_number("0", default_year=2026) is None


def test_catalog_rejects_codes_that_break_buttons(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[department]]\ncode = "roads"\nname = "Дороги"\n'
        '[[category]]\ncode = "дороги-и-тротуары"\ntitle = "Дороги"\ndepartment = "roads"\n',
        encoding="utf-8",
    )
    with pytest.raises(CatalogError, match="category code"):
        load_catalog(bad)


async def test_a_draft_reads_back_as_written_and_goes_with_delete(db: Database) -> None:
    data = {"photos": ["AgAC-1", "AgAC-2"], "description": "Яма у подъезда № 3 — «глубокая»"}
    async with db.uow() as uow:
        assert await uow.drafts.get("telegram", "501") is None
        await uow.drafts.save("telegram", "501", "address", data)
        await uow.drafts.save("vk", "501", "category", {"photos": []})  # another platform
        await uow.commit()
    async with db.uow() as uow:
        saved = await uow.drafts.get("telegram", "501")
        assert saved is not None and (saved.step, saved.data) == ("address", data)
        await uow.drafts.save("telegram", "501", "photos", {**data, "address": "ул. Мира, 5"})
        await uow.commit()
    async with db.uow() as uow:
        saved = await uow.drafts.get("telegram", "501")
        assert saved is not None and saved.step == "photos"
        assert saved.data["address"] == "ул. Мира, 5"
        await uow.drafts.delete("telegram", "501")
        await uow.commit()
    async with db.uow() as uow:
        assert await uow.drafts.get("telegram", "501") is None
        other = await uow.drafts.get("vk", "501")
        assert other is not None and other.step == "category"


async def test_a_resident_added_in_a_unit_is_found_in_it(db: Database) -> None:
    """A unit of work remembers whom it found, and that nobody was there until it added them."""
    async with db.uow() as uow:
        assert await uow.residents.find("telegram", "777") is None
        added = await uow.residents.upsert("telegram", "777", "777", "Анна")
        assert await uow.residents.find("telegram", "777") is added
        await uow.commit()
    async with db.uow() as uow:
        found = await uow.residents.find("telegram", "777")
        assert found is not None and (found.id, found.first_name) == (added.id, "Анна")
        again = await uow.residents.upsert("telegram", "777", "778", "")
        assert again is found and again.chat_id == "778" and again.first_name == "Анна"
        await uow.commit()


async def test_an_update_is_recorded_once(db: Database) -> None:
    async with db.uow() as uow:
        assert not await uow.state.event_seen("tg:1:42")
        await uow.state.remember("tg:1:42")
        await uow.commit()
    async with db.uow() as uow:
        assert await uow.state.event_seen("tg:1:42")
        first = await uow.session.scalar(select(ProcessedEvent.at))
        await uow.state.remember("tg:1:42")  # a second time changes nothing, fails nothing
        await uow.commit()
    async with db.uow() as uow:
        assert await uow.state.event_seen("tg:1:42")
        assert list(await uow.session.scalars(select(ProcessedEvent.at))) == [first]
        assert not await uow.state.event_seen("tg:1:43")
