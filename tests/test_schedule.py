"""Schedule arithmetic and the schedule file: pure, no Telegram."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.core.schedule import Duration, ScheduleError, load_schedule, parse_duration, step_due_at

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "days", "seconds"),
    [
        ("30s", 0, 30),
        ("45m", 0, 2700),
        ("3h", 0, 10800),
        ("1d", 1, 0),
        ("2w", 14, 0),
        ("1d12h", 1, 43200),
        ("1w2d3h4m5s", 9, 3 * 3600 + 4 * 60 + 5),
        (" 14H ", 0, 14 * 3600),
        ("-1d", -1, 0),
        ("-2h", 0, -7200),
        ("-0d", 0, 0),
    ],
)
def test_it_parses_durations(text: str, days: int, seconds: int):
    parsed = parse_duration(text)
    assert (parsed.days, parsed.seconds) == (days, seconds)


@pytest.mark.parametrize("text", ["", "-", "3", "h", "3x", "1h1d", "--1h", "1.5h", "3 h", "1d 2h"])
def test_it_rejects_malformed_durations(text: str):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_it_keeps_the_local_hour_for_days_across_the_autumn_change():
    # Berlin leaves summer time in the night to Sunday 25 October 2026.
    treatment = datetime(2026, 10, 24, 18, 0, tzinfo=BERLIN).astimezone(UTC)
    due = step_due_at(treatment, BERLIN, parse_duration("1d"))
    assert due == datetime(2026, 10, 25, 18, 0, tzinfo=BERLIN)
    assert due - treatment == timedelta(hours=25)


def test_it_keeps_the_local_hour_for_days_across_the_spring_change():
    treatment = datetime(2026, 3, 28, 9, 30, tzinfo=BERLIN).astimezone(UTC)
    due = step_due_at(treatment, BERLIN, parse_duration("1w"))
    assert due == datetime(2026, 4, 4, 9, 30, tzinfo=BERLIN)


def test_it_counts_hours_as_elapsed_time_across_a_change():
    treatment = datetime(2026, 10, 24, 18, 0, tzinfo=BERLIN).astimezone(UTC)
    due = step_due_at(treatment, BERLIN, parse_duration("14h"))
    assert due - treatment == timedelta(hours=14)
    assert due.astimezone(BERLIN).hour == 7  # one hour "earlier" on the wall clock


def test_it_adds_days_then_hours():
    treatment = datetime(2026, 10, 24, 18, 0, tzinfo=BERLIN).astimezone(UTC)
    due = step_due_at(treatment, BERLIN, Duration(days=1, seconds=3600, text="1d1h"))
    assert due == datetime(2026, 10, 25, 19, 0, tzinfo=BERLIN)


def test_it_loads_the_default_schedule_in_time_order():
    schedule = load_schedule(Path(__file__).resolve().parent.parent / "prompts")
    keys = [step.key for step in schedule.steps]
    assert keys == [
        "intention_invite",
        "intention_morning",
        "checkin",
        "mood_first",
        "reflection",
        "day2",
        "mood_day3",
        "day3",
        "mood_week1",
        "week1",
        "week2",
        "week4",
    ]
    # A mood figure before the first reflection, at day 3 and at week 1.
    assert [step.key for step in schedule.steps if step.reply == "scale"] == [
        "mood_first",
        "mood_day3",
        "mood_week1",
    ]
    assert [step.key for step in schedule.steps if step.highlight] == [
        "reflection",
        "day2",
        "week1",
        "week2",
        "week4",
    ]
    reflection = schedule.step("reflection")
    assert reflection is not None
    # The main reflection falls in the 12-24 h window of heightened neuroplasticity.
    assert timedelta(hours=12) <= reflection.after.approximate() <= timedelta(hours=24)
    assert schedule.min_gap == timedelta(hours=1)
    assert schedule.snooze == timedelta(hours=1)


def write_schedule(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "schedule.toml").write_text(text, encoding="utf-8")
    return folder


def test_it_lists_every_problem_in_a_schedule(tmp_path: Path):
    folder = write_schedule(
        tmp_path / "p",
        """
min_gap = "soon"
colour = "blue"

[[step]]
key = "Check In"
after = "3 hours"
template = "a.html"
reply = "voice"

[[step]]
key = "b"
template = "b.html"
mood = true

[[step]]
key = "c"
after = "1h"
template = "c.html"

[[step]]
key = "c"
after = "2h"
template = "c.html"
""",
    )
    with pytest.raises(ScheduleError) as caught:
        load_schedule(folder)
    problems = caught.value.problems
    assert "schedule.toml: unknown top-level key 'colour'" in problems
    assert any(p.startswith("schedule.toml: min_gap: 'soon' is not a duration") for p in problems)
    assert any("step 1" in p and "key must be lowercase" in p for p in problems)
    assert any("step 1" in p and "reply must be one of text, scale, none" in p for p in problems)
    assert any("step 1" in p and "'3 hours' is not a duration" in p for p in problems)
    assert "schedule.toml step 2 (b): unknown field 'mood'" in problems
    assert any("step 2 (b): after is missing" in p for p in problems)
    assert "schedule.toml step 4: key 'c' is used twice" in problems


def test_it_reports_broken_toml(tmp_path: Path):
    folder = write_schedule(tmp_path / "p", "[[step]\nkey = ")
    with pytest.raises(ScheduleError, match="not valid TOML"):
        load_schedule(folder)


@pytest.mark.parametrize(("text", "before"), [("-0d", True), ("-1d", True), ("0d", False)])
def test_a_leading_minus_means_before_the_session(text: str, before: bool):
    assert parse_duration(text).before is before


def test_a_time_of_day_counts_whole_days_from_the_treatments_day():
    # A treatment at 09:30 on the Monday after the clocks went back.
    treatment = datetime(2026, 10, 26, 9, 30, tzinfo=BERLIN).astimezone(UTC)
    evening_before = step_due_at(treatment, BERLIN, parse_duration("-1d"), time(19, 0))
    assert evening_before == datetime(2026, 10, 25, 19, 0, tzinfo=BERLIN)
    morning_of = step_due_at(treatment, BERLIN, parse_duration("-0d"), time(8, 0))
    assert morning_of == datetime(2026, 10, 26, 8, 0, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ('after = "-1d"\nat = "7pm"', "at: '7pm' is not a time of day (use HH:MM, e.g. 19:00)"),
        ('after = "-1d"\nat = "24:00"', "at: '24:00' is not a time of day"),
        ('after = "-1d2h"\nat = "19:00"', "with at, after must be whole days"),
    ],
)
def test_it_explains_a_wrong_time_of_day(tmp_path: Path, lines: str, problem: str):
    (tmp_path / "schedule.toml").write_text(
        f'[[step]]\nkey = "a"\ntemplate = "a.html"\n{lines}\n', encoding="utf-8"
    )
    with pytest.raises(ScheduleError) as raised:
        load_schedule(tmp_path)
    assert any(problem in line for line in raised.value.problems), raised.value.problems
