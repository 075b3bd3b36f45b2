"""Deadlines over real HTTP, as a new operator would try them: a four-second answer deadline,
an appeal nobody touches — the reminder, then each escalation level once — /overdue listing it,
and an answer taking it off the list. Settings come from the environment, as in production."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import failed
from tests.e2e.helpers import (
    COORDINATOR_ID,
    ROADS_DEPARTMENT,
    ROADS_GROUP,
    STAFF_ID,
    TOKEN,
    BotProcess,
    bind_group,
    card_in,
    number,
    say,
    start_appeal,
    submit,
    text_to,
)
from tests.fakes.fake_telegram import FakeTelegram

DEPUTY_GROUP = -100333


class ShortDeadlineBot(BotProcess):
    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            ANSWER_DEADLINE="4",
            SOLUTION_DEADLINE="P1D",
            ESCALATION_DELAYS="0,1,2",
            SCAN_INTERVAL="1",
            DEPUTY_CHAT_IDS=str(DEPUTY_GROUP),
        )
        return env


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def short_bot(
    api: FakeTelegram, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[ShortDeadlineBot]:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    process = ShortDeadlineBot(api.base_url, tmp_path / "db.sqlite", workdir, tmp_path / "log")
    try:
        await process.start(api)
        yield process
    finally:
        await process.stop()
        if failed(request.node):
            print("===== bot log =====")
            print(process.log())
            print("===== Bot API requests =====")
            print(api.dump())


async def test_untouched_appeal_is_reminded_escalated_and_listed(
    api: FakeTelegram, short_bot: ShortDeadlineBot
) -> None:
    fake = api
    coordinator = fake.user(COORDINATOR_ID, "Ольга", "Координаторова")
    staff = fake.user(STAFF_ID, "Пётр", "Сидоров")
    anna = fake.user(501, "Анна")
    fake.group(ROADS_GROUP, "Дороги — сотрудники")
    fake.group(DEPUTY_GROUP, "Заместитель главы")
    await say(fake, coordinator, "/start", "Вы координатор")
    await bind_group(fake, coordinator, ROADS_GROUP, ROADS_DEPARTMENT, "/bind")

    await start_appeal(fake, anna, "roads")
    await say(fake, anna, "Яма на дороге у дома 5, глубокая", "Где это?")
    await say(fake, anna, "ул. Ленина, 5", "Пришлите фото")
    await say(fake, anna, "Пропустить", "номер телефона для связи")
    since = fake.mark()
    fake.send_text(anna, "Пропустить")
    await submit(fake, anna, ("Дороги",))
    first = number(1)
    card = await fake.wait_for(card_in(ROADS_GROUP, first), since=since, what="the card")
    assert card.message is not None

    reminder = text_to(ROADS_GROUP, "⏰ Напоминание", f"№ {first}")
    level_1 = text_to(ROADS_GROUP, f"№ {first} — эскалация, уровень 1.")
    level_2 = text_to(DEPUTY_GROUP, f"№ {first} — эскалация, уровень 2.")
    level_3 = text_to(COORDINATOR_ID, f"№ {first} — эскалация, уровень 3.")
    for step, what in ((reminder, "reminder"), (level_1, "level 1"), (level_2, "level 2")):
        await fake.wait_for(step, since=since, what=what)
    await fake.wait_for(level_3, since=since, what="level 3")
    await asyncio.sleep(2)  # two more scans: nothing may repeat
    for step in (reminder, level_1, level_2, level_3):
        assert len(fake.find(step, since)) == 1

    mark = fake.mark()
    fake.send_text(coordinator, "/overdue")
    listing = await fake.wait_for(
        text_to(COORDINATOR_ID, "Просроченные обращения: 1", f"№ {first} — срок ответа истёк"),
        since=mark,
        what="/overdue lists the appeal",
    )
    assert "исполнитель не назначен" in listing.text

    # Staff answer by replying to the card: the appeal leaves the list.
    mark = fake.mark()
    fake.send_text(
        staff,
        "Выехали на место",
        chat=ROADS_GROUP,
        reply_to=fake.message(ROADS_GROUP, card.message["message_id"]),
    )
    await fake.wait_for(text_to(anna["id"], "Выехали на место"), since=mark, what="the answer")
    mark = fake.mark()
    fake.send_text(coordinator, "/overdue")
    await fake.wait_for(
        text_to(COORDINATOR_ID, "Просроченных обращений нет"), since=mark, what="empty /overdue"
    )
