"""The card's history stays readable on a busy appeal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.cards import HISTORY_LINES, history_lines
from bot.core.config import CoreConfig
from storage.models import AppealEvent

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def events(*kinds: tuple[str, str | None, str | None]) -> list[AppealEvent]:
    return [
        AppealEvent(
            appeal_id=1, kind=kind, actor=actor, detail=detail, at=START + timedelta(minutes=i)
        )
        for i, (kind, actor, detail) in enumerate(kinds)
    ]


def test_repeats_in_a_row_are_one_line(config: CoreConfig) -> None:
    lines = history_lines(
        events(
            ("created", None, None),
            ("taken", "Иван", None),
            ("solution_photo", "Иван", None),
            ("solution_photo", "Иван", None),
            ("solution_photo", "Иван", None),
            ("comment", None, None),
            ("comment", None, None),
        ),
        config,
    )
    assert lines == [
        "30.11 12:00 — принято",
        "30.11 12:01 — взято в работу (Иван)",
        "30.11 12:04 — фото решения (Иван) ×3",  # the latest time of the three
        "30.11 12:06 — житель дополнил обращение ×2",
    ]


def test_a_long_history_keeps_how_it_began_and_the_latest(config: CoreConfig) -> None:
    busy = [("created", None, None), ("taken", "Иван", None)]
    for index in range(12):  # alternating, so nothing merges
        busy.append(("comment", None, None) if index % 2 else ("answer", "Иван", None))
    lines = history_lines(events(*busy), config)
    assert len(lines) == HISTORY_LINES
    assert lines[0] == "30.11 12:00 — принято"
    assert lines[1] == f"… и ещё записей: {len(busy) - HISTORY_LINES + 1}"
    assert lines[-1].startswith("30.11 12:13 — житель дополнил обращение")


def test_a_title_waiting_for_its_detail_reads_well_without_it(config: CoreConfig) -> None:
    lines = history_lines(
        events(("banned", "Ольга", "спам и оскорбления"), ("banned", "Ольга", None)), config
    )
    assert lines == [
        "30.11 12:00 — ⛔ автор заблокирован: спам и оскорбления (Ольга)",
        "30.11 12:01 — ⛔ автор заблокирован (Ольга)",
    ]
