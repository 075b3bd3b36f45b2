"""An appeal's two deadlines and the reminder/escalation steps planned around them.

Pure functions of the appeal's row and the settings: the scheduler's scan decides what is due,
the card and /overdue decide what to show, all from the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core import texts
from bot.core.config import CoreConfig
from bot.core.model import OPEN_STATUSES, Status
from storage.models import Appeal, Category

ANSWER = "answer"
SOLUTION = "solution"
REMINDER = 0  # the level of the reminder; escalation levels count from 1

# What each deadline is called in a sentence: «срок ответа», «срок решения».
KIND_TITLES = {ANSWER: "ответа", SOLUTION: "решения"}
LEVEL_TITLES = {1: "отдел", 2: "заместитель главы", 3: "глава и координаторы"}


def deadline_for(category: Category, config: CoreConfig) -> timedelta:
    """Time to the first answer."""
    if category.answer_deadline_seconds:
        return timedelta(seconds=category.answer_deadline_seconds)
    return config.answer_deadline


def solution_deadline_for(category: Category, config: CoreConfig) -> timedelta:
    if category.solution_deadline_seconds:
        return timedelta(seconds=category.solution_deadline_seconds)
    return config.solution_deadline


def set_deadlines(
    appeal: Appeal, category: Category | None, config: CoreConfig, start: datetime
) -> None:
    """Both clocks start at ``start`` (filing, or the resident's «не решена»)."""
    answer = deadline_for(category, config) if category else config.answer_deadline
    solution = solution_deadline_for(category, config) if category else config.solution_deadline
    appeal.deadline_at = config.due(start, answer)
    appeal.solution_deadline_at = max(config.due(start, solution), appeal.deadline_at)
    appeal.next_check_at = start  # the next scan plans the reminders for the new deadlines


def answer_pending(appeal: Appeal) -> bool:
    """The department still owes the resident an answer.

    A reopened appeal owes a new one until staff take it up again (taking or answering moves
    it back to «в работе»).
    """
    status = Status(appeal.status)
    if status is Status.REOPENED:
        return True
    return status in OPEN_STATUSES and appeal.first_answer_at is None


def solution_pending(appeal: Appeal) -> bool:
    return Status(appeal.status) in OPEN_STATUSES and appeal.solution_deadline_at is not None


def pending_deadlines(appeal: Appeal) -> list[tuple[str, datetime]]:
    """The deadlines still running (or already missed) for this appeal."""
    running: list[tuple[str, datetime]] = []
    if answer_pending(appeal):
        running.append((ANSWER, appeal.deadline_at))
    solution = appeal.solution_deadline_at
    if solution_pending(appeal) and solution is not None:
        # A solution due no later than the pending answer (an extended answer deadline pushes
        # it along) is chased by the answer's steps alone: one reminder, not two at once.
        if not running or solution > appeal.deadline_at:
            running.append((SOLUTION, solution))
    return running


def missed_deadline(appeal: Appeal, now: datetime) -> tuple[str, datetime] | None:
    """The earliest pending deadline already past, if any."""
    missed = [(kind, at) for kind, at in pending_deadlines(appeal) if at <= now]
    return min(missed, key=lambda item: item[1]) if missed else None


@dataclass(frozen=True)
class PlannedStep:
    kind: str
    level: int
    deadline_at: datetime
    at: datetime

    @property
    def key(self) -> tuple[str, datetime, int]:
        return self.kind, self.deadline_at, self.level


def planned_steps(
    appeal: Appeal, category: Category | None, config: CoreConfig
) -> list[PlannedStep]:
    """Every reminder and escalation step for the deadlines still pending, in time order."""
    spans = {
        ANSWER: deadline_for(category, config) if category else config.answer_deadline,
        SOLUTION: (
            solution_deadline_for(category, config) if category else config.solution_deadline
        ),
    }
    steps: list[PlannedStep] = []
    for kind, deadline in pending_deadlines(appeal):
        # The lead comes from the category's own span, so an extended deadline is reminded of
        # as early before its end as the original one would have been.
        lead = spans[kind] * (1 - config.reminder_share)
        steps.append(PlannedStep(kind, REMINDER, deadline, deadline - lead))
        for level, delay in enumerate(config.escalation_delays, start=1):
            steps.append(PlannedStep(kind, level, deadline, deadline + delay))
    return sorted(steps, key=lambda step: (step.at, step.level))


def outstanding(step: PlannedStep, done: set[tuple[str, datetime, int]], now: datetime) -> bool:
    """Still to happen: not done, and not a reminder whose deadline has already passed."""
    if step.key in done:
        return False
    return not (step.level == REMINDER and now >= step.deadline_at)


def escalation_levels(appeal: Appeal, done: set[tuple[str, datetime, int]]) -> dict[str, int]:
    """The highest escalation level reached by each pending deadline (missing: none yet)."""
    levels: dict[str, int] = {}
    for kind, deadline in pending_deadlines(appeal):
        reached = [lvl for k, at, lvl in done if k == kind and at == deadline and lvl > REMINDER]
        if reached:
            levels[kind] = max(reached)
    return levels


LESS_THAN_A_MINUTE = texts.LESS_THAN_A_MINUTE


def format_span(span: timedelta) -> str:
    """«2 дн 3 ч», «5 ч 10 мин», «15 мин», «меньше минуты»: how long, at a glance."""
    minutes = max(int(span.total_seconds() // 60), 0)
    if minutes < 1:
        return LESS_THAN_A_MINUTE
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} дн {hours} ч" if hours else f"{days} дн"
    if hours:
        return f"{hours} ч {minutes} мин" if minutes else f"{hours} ч"
    return f"{minutes} мин"
