"""What the core needs to know from the settings, without depending on how they are loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class CoreConfig:
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    answer_deadline: timedelta = timedelta(hours=8)
    coordinator_ids: tuple[int, ...] = ()

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def format_moment(self, moment: datetime) -> str:
        return self.local(moment).strftime("%d.%m.%Y %H:%M")
