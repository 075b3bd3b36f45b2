"""The reports over real HTTP: ``python -m bot`` against the fake Bot API, as a coordinator
would try them after the first appeal came in: /stats with its chart, a period button, /map,
/export, and someone else asking for the same."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.core import texts
from tests.e2e.conftest import failed
from tests.e2e.test_telegram_e2e import (
    COORDINATOR_ID,
    INTRUDER_ID,
    TOKEN,
    BotProcess,
    say,
    start_appeal,
    submit,
    text_to,
)
from tests.fakes.fake_telegram import FakeTelegram, Request

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def running(
    api: FakeTelegram, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BotProcess]:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    process = BotProcess(api.base_url, tmp_path / "db.sqlite", workdir, tmp_path / "bot.log")
    try:
        await process.start(api)
        yield process
    finally:
        await process.stop()
        if failed(request.node):
            print(process.log())
            print(api.dump())


def upload(request: Request, field: str) -> bytes:
    """The bytes of a multipart upload, whether sent as the field or as attach://name."""
    ref = request.params.get(field)
    if isinstance(ref, dict):
        ref = ref.get("media")
    key = ref[9:] if isinstance(ref, str) and ref.startswith("attach://") else field
    return request.uploads[key]


async def test_reports_over_http(api: FakeTelegram, running: BotProcess) -> None:
    coordinator = api.user(COORDINATOR_ID, "Ольга", "Координаторова")
    outsider = api.user(INTRUDER_ID, "Иван", "Посторонний")
    anna = api.user(501, "Анна")
    await start_appeal(api, anna, "roads")
    await say(api, anna, "Огромная яма на дороге у дома 5, машины объезжают", "Где это?")
    await say(api, anna, "ул. Ленина, 5", "Пришлите фото")
    await say(api, anna, "Пропустить", "номер телефона для связи")
    api.send_text(anna, "Пропустить")
    await submit(api, anna, ("Дороги",))
    me = COORDINATOR_ID

    since = api.mark()
    api.send_text(coordinator, "/stats 7")
    stats = await api.wait_for(text_to(me, "Всего обращений: 1 (Telegram: 1)"), since=since)
    assert "• Дороги: 1" in stats.text and "• ул. Ленина, 5: 1" in stats.text
    chart = await api.wait_for(lambda r: r.ok and r.name == "sendphoto", since=since)
    assert upload(chart, "photo").startswith(PNG)
    buttons = await api.wait_for(
        lambda r: r.ok and r.name == "editmessagereplymarkup" and r.chat_id == me, since=since
    )
    assert stats.message is not None and chart.message is not None
    today = f"st:today:{chart.message['message_id']}"
    assert buttons.callback_data[0] == today

    since = api.mark()
    api.press(coordinator, api.message(me, stats.message["message_id"]), today)
    edited = await api.wait_for(lambda r: r.ok and r.name == "editmessagetext", since=since)
    assert "Статистика за сегодня" in edited.text and "Всего обращений: 1" in edited.text
    redrawn = await api.wait_for(lambda r: r.ok and r.name == "editmessagemedia", since=since)
    assert upload(redrawn, "media").startswith(PNG)

    since = api.mark()
    api.send_text(coordinator, "/map")
    await api.wait_for(text_to(me, "нет обращений с геометкой"), since=since)
    await api.wait_for(text_to(me, "Без геометки, только с адресом: 1."), since=since)

    since = api.mark()
    api.send_text(coordinator, "/export 30")
    document = await api.wait_for(lambda r: r.ok and r.name == "senddocument", since=since)
    sheet = load_workbook(io.BytesIO(upload(document, "document")), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 2
    assert rows[1][5:8] == ("Дороги", "Управление дорожного хозяйства", "новое")

    since = api.mark()
    api.send_text(outsider, "/stats")
    await api.wait_for(text_to(INTRUDER_ID, texts.REPORTS_ONLY_COORDINATORS), since=since)
