"""What the core needs to know from the settings, without depending on how they are loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.workhours import WorkSchedule


@dataclass(frozen=True)
class CoreConfig:
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    answer_deadline: timedelta = timedelta(hours=8)
    coordinator_ids: tuple[int, ...] = ()
    solution_deadline: timedelta = timedelta(days=3)
    # The department is reminded once this share of a deadline has passed.
    reminder_share: float = 0.75
    # Delay after an overdue deadline for escalation levels 1 (department group),
    # 2 (deputy head's chat) and 3 (head's chat and the coordinators).
    escalation_delays: tuple[timedelta, ...] = (
        timedelta(0),
        timedelta(hours=4),
        timedelta(hours=8),
    )
    deputy_chat_ids: tuple[int, ...] = ()
    head_chat_ids: tuple[int, ...] = ()
    # None: deadlines run in calendar hours.
    schedule: WorkSchedule | None = None
    # New appeals one resident may file within an hour (APPEALS_PER_HOUR; 5 by default in the
    # settings); 0 here, the core's default, means no limit. Coordinators are never limited.
    appeals_per_hour: int = 0
    # «Решено» waits this long for the resident's word, then the appeal closes unconfirmed
    # (as «Наш город» gives residents 15 days to confirm or dispute).
    verdict_wait: timedelta = timedelta(days=15)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def format_moment(self, moment: datetime) -> str:
        return self.local(moment).strftime("%d.%m.%Y %H:%M")

    def due(self, start: datetime, span: timedelta) -> datetime:
        """When a deadline of ``span`` started at ``start`` falls due."""
        return self.schedule.add(start, span) if self.schedule is not None else start + span
