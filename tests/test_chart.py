"""The mood chart: a PNG for any window, however many points and treatments it holds."""

from __future__ import annotations

import io
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from bot.core.moods import MoodPoint, TreatmentMark
from bot.render.chart import mood_chart_png

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Wednesday 25 November 2026, 18:00 in Berlin.
END = datetime(2026, 11, 25, 18, 0, tzinfo=BERLIN)
WEEK_START = END - timedelta(days=7)


def week_of(values: list[int]) -> list[MoodPoint]:
    """One mood a day for the week before END, oldest first."""
    return [
        MoodPoint(WEEK_START + timedelta(days=day, hours=2), value)
        for day, value in enumerate(values)
    ]


def chart(
    points: list[MoodPoint],
    treatments: list[TreatmentMark] | None = None,
    start: datetime = WEEK_START,
) -> bytes:
    return mood_chart_png(points, treatments or [], start, END, BERLIN, title="Mood this week")


def image(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as opened:
        opened.load()
        return opened.copy()


def test_it_returns_a_png_of_about_1000_by_500_pixels():
    png = chart(week_of([4, 5, 6, 5, 7, 8, 7]), [TreatmentMark(WEEK_START + timedelta(days=3), 1)])

    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as opened:
        assert opened.format == "PNG"
        width, height = opened.size
    assert 900 <= width <= 1100
    assert 450 <= height <= 550


def test_it_draws_a_single_point():
    assert chart(week_of([6])).startswith(PNG_SIGNATURE)


def test_it_draws_only_the_axes_and_treatments_without_points():
    png = chart([], [TreatmentMark(WEEK_START + timedelta(days=2), 3)])

    assert image(png).size == image(chart(week_of([6]))).size


def test_it_draws_a_year_of_daily_points():
    start = END - timedelta(days=365)
    year = [MoodPoint(start + timedelta(days=day), 1 + day % 10) for day in range(365)]
    series = [
        TreatmentMark(start + timedelta(days=day), number)
        for number, day in enumerate((30, 32, 35, 37, 40, 42, 200), start=1)
    ]

    assert chart(year, series, start=start).startswith(PNG_SIGNATURE)


def test_it_ignores_treatments_and_points_outside_the_window():
    week = week_of([4, 5, 6, 5, 7, 8, 7])
    outside = [
        TreatmentMark(WEEK_START - timedelta(days=30), 1),
        TreatmentMark(END + timedelta(days=1), 2),
    ]
    stray = [MoodPoint(END + timedelta(hours=1), 1)]

    assert image(chart(week, outside)).tobytes() == image(chart(week)).tobytes()
    assert image(chart(week + stray)).tobytes() == image(chart(week)).tobytes()


def test_it_draws_different_pixels_for_different_moods():
    calm = image(chart(week_of([5, 5, 5, 5, 5, 5, 5])))
    rising = image(chart(week_of([2, 3, 4, 5, 6, 7, 8])))

    assert calm.size == rising.size
    assert calm.tobytes() != rising.tobytes()


def test_it_draws_a_treatment_inside_the_window():
    week = week_of([4, 5, 6, 5, 7, 8, 7])
    treated = chart(week, [TreatmentMark(WEEK_START + timedelta(days=3), 1)])

    assert image(treated).tobytes() != image(chart(week)).tobytes()


def test_it_joins_points_in_time_order_whatever_order_they_come_in():
    week = week_of([4, 5, 6, 5, 7, 8, 7])

    assert image(chart(week[::-1])).tobytes() == image(chart(week)).tobytes()


def test_it_accepts_any_zone_for_the_moments():
    week = week_of([4, 5, 6, 5, 7, 8, 7])
    in_utc = [MoodPoint(point.when.astimezone(UTC), point.value) for point in week]

    assert image(chart(in_utc)).tobytes() == image(chart(week)).tobytes()


def test_it_takes_any_title_text_without_warning():
    # An emoji DejaVu Sans cannot draw and dollar signs that would start mathtext.
    png = mood_chart_png(
        week_of([5, 6]), [], WEEK_START, END, BERLIN, title="Mood 🌿 of $Al$ex — Алиса"
    )

    assert png.startswith(PNG_SIGNATURE)


def test_it_rejects_naive_times_and_moods_off_the_scale():
    with pytest.raises(ValueError, match="time zone"):
        MoodPoint(datetime(2026, 11, 25, 12, 0), 5)  # noqa: DTZ001
    with pytest.raises(ValueError, match="time zone"):
        TreatmentMark(datetime(2026, 11, 25, 12, 0), 1)  # noqa: DTZ001
    with pytest.raises(ValueError, match="outside"):
        MoodPoint(END, 11)
    with pytest.raises(ValueError, match="outside"):
        MoodPoint(END, 0)


def test_it_rejects_a_window_that_is_empty_or_naive():
    with pytest.raises(ValueError, match="end after it starts"):
        mood_chart_png([], [], END, END, BERLIN, title="Nothing")
    with pytest.raises(ValueError, match="time zone"):
        mood_chart_png([], [], WEEK_START.replace(tzinfo=None), END, BERLIN, title="Naive")
