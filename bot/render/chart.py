"""The mood chart: mood figures over a window with treatments marked, as PNG bytes. Pure.

Only the object-oriented matplotlib API is used (a Figure on its own Agg canvas), never pyplot:
pyplot keeps every figure in global state, which a long-running bot would leak and share across
threads. A Figure built here is ordinary garbage once the bytes are out. matplotlib is imported
on the first chart, not when the bot starts: most starts never draw one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from io import BytesIO
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.core.moods import MOOD_MAX, MOOD_MIN, MoodPoint, TreatmentMark, require_aware

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FONT = "DejaVu Sans"  # ships with matplotlib, so every host draws the same glyphs
WIDTH_INCHES, HEIGHT_INCHES, DPI = 10, 5, 100
MOOD_COLOUR = "#3f7f8c"
TREATMENT_COLOUR = "#9b8fbf"
GRID_COLOUR = "#e8e8e8"
TEXT_COLOUR = "#333333"
# Treatment labels nearer than this (a fraction of the axis width) to the last one written would
# overlap it, as a series of infusions does on a year's chart; their lines are still drawn.
MIN_LABEL_GAP = 0.03
# Beyond this many points (about one per 8 px), full-size markers merge into a solid band.
DENSE_POINTS = 120


def mood_chart_png(
    points: Sequence[MoodPoint],
    treatments: Sequence[TreatmentMark],
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    *,
    title: str,
) -> bytes:
    """A 1000×500 PNG of the mood points inside [start, end], dated in `zone`.

    Points are joined in time order; each treatment inside the window gets a dashed line labelled
    "T<number>". With no points the chart shows just the axes and the treatments.
    """
    require_aware(start)
    require_aware(end)
    if end <= start:
        raise ValueError("the chart window must end after it starts")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    shown = sorted((point for point in points if start <= point.when <= end), key=_when)
    dense = len(shown) > DENSE_POINTS

    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.xaxis_date(zone)
    axes.plot(
        _date_numbers([point.when for point in shown]),
        [point.value for point in shown],
        color=MOOD_COLOUR,
        linewidth=1.2 if dense else 1.8,
        marker="o",
        markersize=2.5 if dense else 4.5,
    )
    _mark_treatments(axes, treatments, start, end)

    axes.set_xlim(*_date_numbers([start, end]))
    # Half a step of room so markers at 1 and 10 are not cut in half by the frame.
    axes.set_ylim(MOOD_MIN - 0.5, MOOD_MAX + 0.5)
    axes.set_yticks(range(MOOD_MIN, MOOD_MAX + 1))
    # Both need the zone: ticks fall on local midnights and read as local dates and hours.
    locator = AutoDateLocator(tz=zone, minticks=4, maxticks=14)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = ConciseDateFormatter(locator, tz=zone)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)

    axes.set_ylabel("Mood (1–10)", fontfamily=FONT, fontsize=11, color=TEXT_COLOUR)
    # Titles carry user text (a patient's name): no mathtext for "$", no glyphs the font lacks.
    axes.set_title(
        _drawable(title),
        loc="left",
        pad=22,  # clears the treatment labels that sit on top of the frame
        fontfamily=FONT,
        fontsize=14,
        color=TEXT_COLOUR,
        parse_math=False,
    )
    axes.tick_params(labelsize=10, labelfontfamily=FONT, colors=TEXT_COLOUR)
    axes.xaxis.get_offset_text().set_fontfamily(FONT)
    axes.grid(color=GRID_COLOUR, linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)

    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _when(event: MoodPoint | TreatmentMark) -> datetime:
    return event.when


def _date_numbers(moments: Sequence[datetime]) -> list[float]:
    """matplotlib's numbers for aware moments (days since its epoch, in UTC), as axes take them."""
    from matplotlib.dates import date2num

    # matplotlib.dates ships without type hints, hence the float() of each number.
    return [float(number) for number in date2num(moments)]  # type: ignore[no-untyped-call]


def _mark_treatments(
    axes: Axes, treatments: Sequence[TreatmentMark], start: datetime, end: datetime
) -> None:
    inside = sorted((mark for mark in treatments if start <= mark.when <= end), key=_when)
    last_label_at: float | None = None
    for mark, line_at in zip(inside, _date_numbers([mark.when for mark in inside]), strict=True):
        axes.axvline(line_at, color=TREATMENT_COLOUR, linestyle="--", linewidth=1.3)
        label_at = (mark.when - start) / (end - start)
        if last_label_at is not None and label_at - last_label_at < MIN_LABEL_GAP:
            continue
        last_label_at = label_at
        axes.text(
            label_at,
            1.01,
            f"T{mark.number}",
            transform=axes.transAxes,
            ha="center",
            va="bottom",
            fontfamily=FONT,
            fontsize=10,
            color=TREATMENT_COLOUR,
        )


def _drawable(text: str) -> str:
    """The text without the characters DejaVu Sans has no glyph for, such as emoji.

    matplotlib would draw each as an empty box and warn.
    """
    characters = _font_characters()
    return "".join(char for char in text if char == "\n" or ord(char) in characters)


@cache
def _font_characters() -> frozenset[int]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_manager.findfont(FONT)).get_charmap())
