"""Local-time rules: quiet hours and the times patients type."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.localtime import (
    QuietHours,
    TreatmentTimeError,
    defer_past_quiet_hours,
    describe_duration,
    format_relative,
    next_weekly,
    parse_quiet_hours,
    parse_treatment_time,
    parse_weekday,
    resolve_timezone,
)

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietHours(time(22, 0), time(8, 0))
# Wednesday 25 November 2026, 14:00 in Berlin.
NOW = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def test_it_resolves_time_zones_in_any_case():
    assert resolve_timezone("europe/berlin") == "Europe/Berlin"
    assert resolve_timezone(" America/New_York ") == "America/New_York"
    assert resolve_timezone("UTC") == "UTC"
    assert resolve_timezone("Mars/Olympus") is None
    assert resolve_timezone("../../etc/passwd") is None
    assert resolve_timezone("") is None


def test_it_parses_quiet_hours():
    assert parse_quiet_hours("22:00-08:00") == NIGHT
    assert parse_quiet_hours("13:30–14.15") == QuietHours(time(13, 30), time(14, 15))
    for bad in ("22-08", "25:00-08:00", "22:00", "22:00-08:00-09:00", "ab:cd-ef:gh"):
        with pytest.raises(ValueError, match="format"):
            parse_quiet_hours(bad)
    with pytest.raises(ValueError, match="empty"):
        parse_quiet_hours("08:00-08:00")


def test_it_knows_when_quiet_hours_cover_a_moment():
    assert NIGHT.contains(time(23, 0))
    assert NIGHT.contains(time(3, 0))
    assert not NIGHT.contains(time(8, 0))
    assert not NIGHT.contains(time(12, 0))
    lunch = QuietHours(time(12, 0), time(13, 0))
    assert lunch.contains(time(12, 30))
    assert not lunch.contains(time(13, 0))


def test_it_defers_a_due_time_to_the_end_of_quiet_hours():
    assert defer_past_quiet_hours(local(2026, 11, 25, 23, 30), BERLIN, NIGHT) == local(
        2026, 11, 26, 8, 0
    )
    assert defer_past_quiet_hours(local(2026, 11, 26, 2, 0), BERLIN, NIGHT) == local(
        2026, 11, 26, 8, 0
    )
    daytime = local(2026, 11, 26, 9, 0)
    assert defer_past_quiet_hours(daytime, BERLIN, NIGHT) == daytime
    assert defer_past_quiet_hours(local(2026, 11, 25, 23, 30), BERLIN, None) == local(
        2026, 11, 25, 23, 30
    )


def test_it_ends_quiet_hours_at_the_local_hour_across_a_time_change():
    # The night summer time ends in Berlin, quiet hours still end at 08:00 local.
    night = local(2026, 10, 24, 23, 0)
    assert defer_past_quiet_hours(night, BERLIN, NIGHT).astimezone(BERLIN).hour == 8


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([], NOW),
        (["14:30"], local(2026, 11, 25, 14, 30)),
        (["9:05"], local(2026, 11, 25, 9, 5)),
        (["yesterday", "18:00"], local(2026, 11, 24, 18, 0)),
        (["Tomorrow", "10:00"], local(2026, 11, 26, 10, 0)),
        (["2026-11-24", "18:00"], local(2026, 11, 24, 18, 0)),
    ],
)
def test_it_reads_treatment_times_in_the_patients_zone(words: list[str], expected: datetime):
    assert parse_treatment_time(words, NOW, BERLIN) == expected


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        (["25:00"], "format"),
        (["banana"], "format"),
        (["yesterday"], "format"),
        (["2026-13-01", "10:00"], "format"),
        (["last", "week", "monday"], "format"),
        (["2026-01-01", "10:00"], "too_old"),
        (["2027-12-01", "10:00"], "too_far"),
    ],
)
def test_it_rejects_unusable_treatment_times(words: list[str], reason: str):
    with pytest.raises(TreatmentTimeError) as caught:
        parse_treatment_time(words, NOW, BERLIN)
    assert caught.value.reason == reason


def test_it_describes_times_relative_to_today():
    assert format_relative(local(2026, 11, 25, 17, 0), NOW, BERLIN) == "today at 17:00"
    assert format_relative(local(2026, 11, 26, 8, 0), NOW, BERLIN) == "tomorrow at 08:00"
    assert format_relative(local(2026, 12, 1, 10, 0), NOW, BERLIN) == "on Tue 1 Dec at 10:00"


def test_it_describes_durations():
    assert describe_duration(timedelta(hours=1)) == "an hour"
    assert describe_duration(timedelta(hours=3)) == "3 hours"
    assert describe_duration(timedelta(minutes=90)) == "90 minutes"
    assert describe_duration(timedelta(seconds=5)) == "5 seconds"
    assert describe_duration(timedelta(0)) == ""


def test_it_reads_weekday_names():
    assert parse_weekday("sun") == 6
    assert parse_weekday("Monday") == 0
    assert parse_weekday("WED") == 2
    assert parse_weekday("mo") is None  # too short to be sure
    assert parse_weekday("someday") is None


def test_it_finds_the_next_weekly_time_in_local_hours_across_a_change():
    # Sunday 25 October 2026: Berlin leaves summer time at 03:00.
    after = local(2026, 10, 20, 12, 0)  # a Tuesday
    first = next_weekly(after, 6, 18 * 60, BERLIN)
    assert first == datetime(2026, 10, 25, 18, 0, tzinfo=BERLIN)
    assert first.hour == 17  # UTC: an hour later than in summer
    second = next_weekly(first, 6, 18 * 60, BERLIN)
    assert second == datetime(2026, 11, 1, 18, 0, tzinfo=BERLIN)
    # At the very moment, the next one is a week on; just before, it is today.
    assert next_weekly(first - timedelta(seconds=1), 6, 18 * 60, BERLIN) == first
