"""The database goes away right after the platform took a card: the card is recorded once the
database is back, not posted a second time (which would leave the first one, the one staff
see and reply to, unknown to the bot). PostgreSQL behind a proxy the test cuts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.core.catalog import load_catalog
from bot.core.config import CoreConfig
from bot.core.model import Keyboard
from bot.settings import DEFAULT_CATEGORIES_FILE
from storage.db import create_engine, session_factory
from storage.migrate import upgrade_to_head
from storage.outage import is_outage
from storage.uow import Database
from tests.core.recording import RecordingSender, drain, make_worker
from tests.core.test_delivery import make_due
from tests.core.test_lifecycle import ANNA, ROADS_GROUP, World, make_world
from tests.e2e.test_outage_e2e import postgres_url  # noqa: F401  (the fixture)
from tests.fakes.proxy import Proxy

AWAY_FOR = 2.0  # seconds


class CutAfterTheCard(RecordingSender):
    """Takes the card, then the database goes away for a while."""

    def __init__(self, proxy: Proxy) -> None:
        super().__init__()
        self.proxy = proxy
        self.restored: asyncio.Task[None] | None = None

    async def send_text(
        self, chat_id: str, text: str, keyboard: Keyboard | None, *, key: int = 0
    ) -> int:
        message_id = await super().send_text(chat_id, text, keyboard, key=key)
        if chat_id == str(ROADS_GROUP) and text.startswith("📌") and self.restored is None:
            await self.proxy.cut()
            self.restored = asyncio.create_task(self._restore())
        return message_id

    async def _restore(self) -> None:
        await asyncio.sleep(AWAY_FOR)
        await self.proxy.restore()


async def test_a_card_taken_just_before_the_database_went_is_recorded_not_posted_again(
    postgres_url: str,  # noqa: F811
    config: CoreConfig,
    tmp_path: Path,
) -> None:
    server = make_url(postgres_url)
    proxy = Proxy(server.host or "127.0.0.1", server.port or 5432)
    through = server.set(host="127.0.0.1", port=await proxy.start())
    engine = create_engine(through.render_as_string(hide_password=False))
    try:
        await upgrade_to_head(engine)
        db = Database(session_factory(engine))
        async with db.uow() as uow:
            await uow.catalog.sync(load_catalog(DEFAULT_CATEGORIES_FILE))
            await uow.commit()
        sender = CutAfterTheCard(proxy)
        world: World = await make_world(db, config)
        world.sender = sender
        world.worker = make_worker(db, config, sender)
        appeal_id, number = await world.file(ANNA, "roads")
        try:
            await drain(world.worker)  # the card goes, then the database is away
        except Exception as exc:  # a read of the queue while it was away
            assert is_outage(exc), exc
        assert sender.restored is not None
        await sender.restored
        for _ in range(3):  # what failed meanwhile (network errors) goes now
            await make_due(db)
            await drain(world.worker)
        cards = [s for s in sender.to(ROADS_GROUP) if s.text.startswith("📌")]
        assert len(cards) == 1, [s.text[:40] for s in cards]
        found = await world.staff.find_card(ROADS_GROUP, cards[0].message_id)
        assert found is not None and found[:2] == (appeal_id, "card")
        assert any(number in t for t in sender.texts_to(ANNA.chat_id))
    finally:
        await engine.dispose()
        await proxy.cut()
