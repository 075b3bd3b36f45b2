"""The /stats report as text: plain Russian a coordinator can forward to the head as it is."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from bot.core import texts
from bot.core.deadlines import LESS_THAN_A_MINUTE, format_span
from bot.core.model import Status
from bot.core.periods import describe
from bot.core.reports import Spike, StatsReport, TimeFigures

MAX_ADDRESS = 60


def duration(seconds: float) -> str:
    """«3 ч 20 мин», «2 дн 4 ч», «45 мин», «меньше минуты» (to the nearest minute)."""
    return format_span(timedelta(minutes=round(seconds / 60)))


def amount(value: int) -> str:
    """11540 → «11 540» (a no-break space, as Russian writes thousands)."""
    return f"{value:,}".replace(",", "\u00a0")


def percent(share: float) -> str:
    return f"{share * 100:.0f} %"


MAX_LINES = 12  # per list: a long categories file must not push /stats past Telegram's 4096


def _lines(counter: Counter[str], labels: dict[str, str] | None = None) -> list[str]:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    shown = ranked if len(ranked) <= MAX_LINES else ranked[: MAX_LINES - 1]
    lines = [f"• {(labels or {}).get(name, name)[:60]}: {amount(number)}" for name, number in shown]
    rest = ranked[len(shown) :]
    if rest:
        lines.append(f"• остальные ({len(rest)}): {amount(sum(number for _, number in rest))}")
    return lines


def _times(title: str, figures: TimeFigures, counted: str) -> str:
    if figures.median is None or figures.p90 is None:
        return f"{title}: пока нет данных."
    p90 = duration(figures.p90)
    within = p90 if p90 == LESS_THAN_A_MINUTE else f"не дольше {p90}"
    return (
        f"{title}: медиана {duration(figures.median)}, у 90 % — {within} "
        f"({counted}: {amount(figures.count)})."
    )


def spike_line(spike: Spike) -> str:
    mean = spike.baseline_mean
    norm = amount(round(mean)) if mean >= 10 else f"{mean:.1f}".replace(".", ",").removesuffix(",0")
    ratio = spike.count / spike.baseline_mean if spike.baseline_mean else None
    times = f" — в {ratio:.1f} раза больше обычного".replace(".", ",") if ratio else ""
    return f"• {spike.category}: {amount(spike.count)} при обычных ~{norm}{times}."


def stats_text(report: StatsReport) -> str:
    head = f"📊 Статистика за {describe(report.period)}"
    if report.total == 0:
        return f"{head}\nОбращений за этот период нет."
    platforms = " · ".join(
        f"{texts.REPORT_PLATFORM.get(name, name)}: {amount(number)}"
        for name, number in report.by_platform.most_common()
    )
    statuses = {status.value: texts.REPORT_STATUS[status] for status in Status}
    lines = [head, f"Всего обращений: {amount(report.total)} ({platforms})", "", "По статусам:"]
    lines += _lines(report.by_status, statuses)
    lines += ["", "По категориям:", *_lines(report.by_category)]
    lines += ["", "По отделам:", *_lines(report.by_department), ""]
    lines.append(_times("Первый ответ", report.first_answer, "с ответом"))
    lines.append(_times("Решение", report.solution, "решено"))
    share = report.on_time_share
    waiting = report.total - report.on_time - report.late
    if share is None:
        lines.append("Ответили в срок: пока не у кого проверять — сроки ещё не истекли.")
    else:
        lines.append(
            f"Ответили в срок: {percent(share)} ({amount(report.on_time)} из "
            f"{amount(report.on_time + report.late)}; без ответа, но в пределах срока: "
            f"{amount(waiting)})."
        )
    if report.reopened_share is not None:
        lines.append(
            f"Возобновлены жителями («не решена»): {percent(report.reopened_share)} "
            f"({amount(report.reopened)})."
        )
    if report.top_addresses:
        lines += ["", "Чаще всего адреса:"]
        lines += [
            f"• {address[:MAX_ADDRESS]}: {amount(number)}"
            for address, number in report.top_addresses
        ]
    lines.append("")
    if report.spikes:
        lines.append("⚠️ Всплески (больше, чем обычно за такой же срок):")
        lines += [spike_line(spike) for spike in report.spikes]
    elif report.spike_norm_periods == 0:
        lines.append("Всплески: сравнить пока не с чем — нет истории за такие же прошлые сроки.")
    else:
        lines.append("Всплесков нет: все категории в пределах обычного.")
    return "\n".join(lines)
