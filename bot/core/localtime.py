"""Local-time rules: time zones, quiet hours, the times patients type. Pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

TIME_PATTERN = re.compile(r"([01]?\d|2[0-3])[:.]([0-5]\d)")
TIMEZONE_EXAMPLES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney")


@cache
def _zones_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones() if "/" in name or name == "UTC"}


def resolve_timezone(text: str) -> str | None:
    """The canonical IANA name for what the patient typed (any letter case), or None."""
    return _zones_by_lower_name().get(text.strip().lower())


def parse_clock(text: str) -> time | None:
    """ "8:00", "08:00" or "22.30" as a time of day, or None."""
    match = TIME_PATTERN.fullmatch(text.strip())
    return time(int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class QuietHours:
    """A nightly window (it may cross midnight) in which no prompt is sent."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


DEFAULT_QUIET_HOURS = QuietHours(time(22, 0), time(8, 0))


def parse_quiet_hours(text: str) -> QuietHours:
    """ "22:00-08:00" as QuietHours; raise ValueError with a reason otherwise."""
    parts = text.replace("–", "-").split("-")
    if len(parts) != 2:
        raise ValueError("format")
    start, end = parse_clock(parts[0]), parse_clock(parts[1])
    if start is None or end is None:
        raise ValueError("format")
    if start == end:
        raise ValueError("empty")
    return QuietHours(start, end)


def defer_past_quiet_hours(due_at: datetime, tz: ZoneInfo, quiet: QuietHours | None) -> datetime:
    """`due_at` if it falls outside quiet hours, else the moment those quiet hours end (UTC)."""
    if quiet is None:
        return due_at
    local = due_at.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return due_at
    end_day = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        end_day += timedelta(days=1)
    return datetime.combine(end_day, quiet.end, tzinfo=tz).astimezone(UTC)


class TreatmentTimeError(ValueError):
    """The patient's words do not name a usable treatment time; `reason` picks the reply."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


MAX_PAST = timedelta(days=30)
MAX_FUTURE = timedelta(days=180)
DAY_WORDS = {"yesterday": -1, "today": 0, "tomorrow": 1}


def parse_treatment_time(words: list[str], now: datetime, tz: ZoneInfo) -> datetime:
    """Turn `/treatment` arguments into a UTC time.

    Accepts nothing (now), "14:30" (today), "yesterday 18:00", "today 9:00", "tomorrow 10:00"
    and "2026-11-24 18:00", all in the patient's time zone.
    """
    if not words:
        return now
    today = now.astimezone(tz).date()
    lowered = [word.lower() for word in words]
    if len(lowered) == 1:
        day = today
        clock_text = lowered[0]
    elif len(lowered) == 2 and lowered[0] in DAY_WORDS:
        day = today + timedelta(days=DAY_WORDS[lowered[0]])
        clock_text = lowered[1]
    elif len(lowered) == 2:
        try:
            day = date.fromisoformat(lowered[0])
        except ValueError:
            raise TreatmentTimeError("format") from None
        clock_text = lowered[1]
    else:
        raise TreatmentTimeError("format")
    clock = parse_clock(clock_text)
    if clock is None:
        raise TreatmentTimeError("format")
    moment = datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)
    if moment < now - MAX_PAST:
        raise TreatmentTimeError("too_old")
    if moment > now + MAX_FUTURE:
        raise TreatmentTimeError("too_far")
    return moment


def format_day(moment: datetime, tz: ZoneInfo) -> str:
    """ "Tuesday 24 November" in the patient's zone."""
    local = moment.astimezone(tz)
    return f"{local:%A} {local.day} {local:%B}"


def format_short(moment: datetime, tz: ZoneInfo) -> str:
    """ "Tue 24 Nov, 18:00" in the patient's zone."""
    local = moment.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"


def format_clock(moment: datetime, tz: ZoneInfo) -> str:
    return f"{moment.astimezone(tz):%H:%M}"


def format_relative(moment: datetime, now: datetime, tz: ZoneInfo) -> str:
    """ "today at 21:00", "tomorrow at 08:00" or "on Tue 1 Dec at 10:00", in the patient's zone."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    if local.date() == today:
        return f"today at {local:%H:%M}"
    if local.date() == today + timedelta(days=1):
        return f"tomorrow at {local:%H:%M}"
    return f"on {local:%a} {local.day} {local:%b} at {local:%H:%M}"


def describe_duration(delta: timedelta) -> str:
    """ "an hour", "2 hours", "30 minutes", "45 seconds"; empty for zero."""
    seconds = int(delta.total_seconds())
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            if count == 1:
                return "an hour" if unit == "hour" else f"a {unit}"
            return f"{count} {unit}s"
    return ""


WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_weekday(text: str) -> int | None:
    """ "sun", "Sunday" -> 6 (Monday is 0); None if it names no weekday."""
    word = text.strip().lower()
    if len(word) < 3:
        return None
    return next((n for n, name in enumerate(WEEKDAY_NAMES) if name.startswith(word)), None)


def next_weekly(after: datetime, weekday: int, minute: int, tz: ZoneInfo) -> datetime:
    """The first moment after `after` that is `weekday` at `minute` local time, in UTC.

    Counted on the local calendar, so 18:00 on Sunday stays 18:00 across a time change.
    """
    local = after.astimezone(tz)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    moment = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)
    if moment <= local:
        moment = datetime.combine(day + timedelta(days=7), moment.time(), tzinfo=tz)
    return moment.astimezone(UTC)
