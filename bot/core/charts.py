"""PNG images for reports, drawn with matplotlib's Agg backend (no display, no network).

matplotlib's pyplot keeps global state and is not thread-safe, so figures are built through the
object API (``Figure``) and nothing is shared between calls.
"""

from __future__ import annotations

import io
import math
from datetime import date
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: the bot runs headless

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, ScalarFormatter

# Bundled with matplotlib and covers Cyrillic, so labels read the same on any server.
FONT = "DejaVu Sans"
BARS_UP_TO_DAYS = 62


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # Fixed margins rather than bbox_inches="tight", which draws the whole figure twice.
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def daily_flow(days: list[date], flow: dict[str, list[int]], title: str) -> bytes:
    """Stacked bars of appeals per local day, one colour per category; a long period becomes
    stacked areas per week (hundreds of thin bars are slow to draw and unreadable)."""
    figure = Figure(figsize=(11, 5.5))
    figure.subplots_adjust(left=0.06, right=0.8, bottom=0.14, top=0.93)
    axes = figure.add_subplot()
    colours = matplotlib.colormaps["tab10" if len(flow) <= 10 else "tab20"]
    palette = [colours(index % colours.N) for index in range(len(flow))]
    if len(days) <= BARS_UP_TO_DAYS:
        _bars(axes, days, flow, palette)
        axes.set_ylabel("Обращений в день", fontname=FONT)
    else:
        _weekly_areas(axes, days, flow, palette)
        axes.set_ylabel("Обращений в неделю", fontname=FONT)
    axes.tick_params(axis="x", labelrotation=45)
    axes.set_title(title, fontname=FONT)
    axes.grid(axis="y", alpha=0.3)
    if flow:
        axes.legend(
            loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False, title="Категории"
        )
    else:
        axes.text(0.5, 0.5, "Обращений нет", ha="center", va="center", transform=axes.transAxes)
    return _png(figure)


def _bars(axes: Axes, days: list[date], flow: dict[str, list[int]], palette: list[Any]) -> None:
    positions = list(range(len(days)))
    bottom = [0] * len(days)
    for colour, (category, counts) in zip(palette, flow.items(), strict=True):
        axes.bar(positions, counts, bottom=bottom, width=0.85, label=category, color=colour)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    every = max(1, math.ceil(len(days) / 15))  # at most ~15 date labels, whatever the period
    # Counted back from the last day, so that the newest bar (today) always has its date.
    labelled = positions[::-1][::every][::-1]
    axes.set_xticks(labelled, [f"{days[i]:%d.%m}" for i in labelled])
    axes.set_xlim(-0.6, len(days) - 0.4)


def _weekly_areas(
    axes: Axes, days: list[date], flow: dict[str, list[int]], palette: list[Any]
) -> None:
    weeks = list(range(0, len(days), 7))
    series = [[sum(counts[w : w + 7]) for w in weeks] for counts in flow.values()]
    if series:
        axes.stackplot(weeks, *series, labels=list(flow), colors=palette, alpha=0.9)
    every = max(1, math.ceil(len(weeks) / 15))
    axes.set_xticks(weeks[::every], [f"{days[w]:%d.%m.%y}" for w in weeks[::every]])
    axes.set_xlim(0, max(weeks[-1], 1))


def heat_map(
    cells: list[tuple[int, int, int]],
    size: int,
    south: float,
    north: float,
    west: float,
    east: float,
    title: str,
) -> bytes:
    """Appeals per grid cell, on a log scale (a few busy streets would otherwise hide the rest);
    axes in degrees, stretched so that a kilometre looks the same both ways."""
    grid = [[0.0] * size for _ in range(size)]
    for row, column, count in cells:
        if 0 <= row < size and 0 <= column < size:
            grid[row][column] = float(count)
    masked = [[value if value > 0 else math.nan for value in line] for line in grid]
    figure = Figure(figsize=(8.5, 8))
    figure.subplots_adjust(left=0.1, right=0.95, bottom=0.07, top=0.94)
    axes = figure.add_subplot()
    pad_lat = (north - south) / (2 * (size - 1)) if north > south else 0.005
    pad_lon = (east - west) / (2 * (size - 1)) if east > west else 0.005
    busiest = max(1.0, max(max(line) for line in grid))
    # Few appeals per cell: a plain scale of whole numbers; many: a log scale, so that a few
    # busy streets do not hide the rest.
    norm: Normalize = (
        Normalize(vmin=0.5, vmax=busiest + 0.5) if busiest < 10 else LogNorm(vmin=1, vmax=busiest)
    )
    image = axes.imshow(
        masked,
        origin="lower",
        extent=(west - pad_lon, east + pad_lon, south - pad_lat, north + pad_lat),
        cmap="inferno_r",
        norm=norm,
        interpolation="nearest",
    )
    axes.set_aspect(1 / max(math.cos(math.radians((south + north) / 2)), 0.1))
    axes.set_facecolor("#f4f4f0")
    axes.set_xlabel("Долгота", fontname=FONT)
    axes.set_ylabel("Широта", fontname=FONT)
    axes.set_title(title, fontname=FONT)
    axes.grid(alpha=0.25)
    # Plain degrees (no "+5.575e1" offsets), few enough ticks not to run together.
    axes.ticklabel_format(useOffset=False, style="plain")
    axes.xaxis.set_major_locator(MaxNLocator(4))
    axes.yaxis.set_major_locator(MaxNLocator(6))
    bar = figure.colorbar(image, ax=axes, shrink=0.7, label="Обращений в клетке")
    if busiest < 10:
        bar.set_ticks(list(range(1, int(busiest) + 1)))
    else:
        bar.formatter = ScalarFormatter()
        bar.update_ticks()
    return _png(figure)
