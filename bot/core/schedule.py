"""The integration schedule: steps read from prompts/schedule.toml and their due-time arithmetic.

Pure: nothing here knows Telegram or the database.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Literal, cast
from zoneinfo import ZoneInfo

# "intention": the answer becomes the treatment's intention (a step before the session);
# "practice": buttons to note an integration practice done.
ReplyKind = Literal["text", "scale", "none", "intention", "practice"]
REPLY_KINDS: tuple[ReplyKind, ...] = ("text", "scale", "none", "intention", "practice")
STEP_FIELDS = {"key", "title", "after", "at", "template", "reply", "highlight"}
TOP_LEVEL_FIELDS = {"min_gap", "snooze", "goal_checkin", "step"}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KEY_PATTERN = re.compile(r"[a-z0-9_]{1,40}")
DURATION_PATTERN = re.compile(r"(-)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
TIME_OF_DAY_PATTERN = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class Duration:
    """A schedule offset: calendar days keep the local clock time, the rest is elapsed time."""

    days: int
    seconds: int
    text: str
    before: bool = False  # written with a "-": a step before the session ("-0d" is its day)

    def approximate(self) -> timedelta:
        return timedelta(days=self.days, seconds=self.seconds)


def parse_duration(text: str) -> Duration:
    """Parse "30s", "45m", "3h", "1d", "2w" or combinations in that order such as "1d12h";
    a leading "-" means before ("-1d")."""
    cleaned = text.strip().lower()
    match = DURATION_PATTERN.fullmatch(cleaned)
    if not cleaned.lstrip("-") or match is None:
        raise ValueError(
            f"{text!r} is not a duration (use numbers with w, d, h, m, s, e.g. 3h, 1d12h or -1d)"
        )
    sign = -1 if match.group(1) else 1
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups()[1:])
    return Duration(
        days=sign * (weeks * 7 + days),
        seconds=sign * (hours * 3600 + minutes * 60 + seconds),
        text=cleaned,
        before=sign < 0,
    )


def parse_time_of_day(text: str) -> time:
    match = TIME_OF_DAY_PATTERN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a time of day (use HH:MM, e.g. 19:00)")
    return time(int(match.group(1)), int(match.group(2)))


def step_due_at(
    treatment_at: datetime, tz: ZoneInfo, after: Duration, at: time | None = None
) -> datetime:
    """When a step falls due, in UTC.

    Whole days are added on the local calendar so that "1d" after 18:00 is 18:00 the next day
    even across a daylight-saving change; hours, minutes and seconds are elapsed time. With
    `at`, the step comes at that local time of day, `after.days` days from the treatment's day
    ("-1d" at 19:00: the evening before).
    """
    local = treatment_at.astimezone(tz)
    if at is not None:
        day = local.date() + timedelta(days=after.days)
        return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
    # Aware-datetime arithmetic with a ZoneInfo keeps the wall-clock time: what we want for days.
    shifted = (local + timedelta(days=after.days)).astimezone(UTC)
    return shifted + timedelta(seconds=after.seconds)


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    after: Duration
    template: str
    reply: ReplyKind
    highlight: bool = False  # its answers are the recap's highlights
    at: time | None = None  # a local time of day, `after.days` days from the treatment's

    @property
    def before_session(self) -> bool:
        """Only for a planned treatment, and never sent once the session has begun."""
        return self.after.before

    def due_at(self, treatment_at: datetime, tz: ZoneInfo) -> datetime:
        return step_due_at(treatment_at, tz, self.after, self.at)

    def order(self) -> timedelta:
        """Roughly where the step sits around the treatment, to list the steps in order; the
        due times of one treatment are what count."""
        return self.after.approximate()


@dataclass(frozen=True)
class Schedule:
    folder: Path
    steps: tuple[Step, ...]
    min_gap: timedelta
    snooze: timedelta
    # When patients with goals are asked how the week went: (weekday, Monday 0; local minute).
    goal_checkin: tuple[int, int] = (6, 18 * 60)

    def step(self, key: str) -> Step | None:
        return next((step for step in self.steps if step.key == key), None)


class ScheduleError(Exception):
    """The schedule folder has problems; each is one line a clinic editor can act on."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _duration_field(raw: object, where: str, problems: list[str]) -> Duration | None:
    if not isinstance(raw, str):
        problems.append(f'{where}: must be a duration in quotes, e.g. "3h"')
        return None
    try:
        return parse_duration(raw)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _weekly_field(raw: object, problems: list[str]) -> tuple[int, int] | None:
    """ "sun 18:00": a weekday and a local time of day."""
    words = raw.split() if isinstance(raw, str) else []
    if len(words) == 2 and words[0].lower()[:3] in WEEKDAYS:
        try:
            at = parse_time_of_day(words[1])
        except ValueError:
            pass
        else:
            return WEEKDAYS.index(words[0].lower()[:3]), at.hour * 60 + at.minute
    problems.append('schedule.toml: goal_checkin must be a weekday and a time, e.g. "sun 18:00"')
    return None


def _parse_step(raw: object, index: int, problems: list[str]) -> Step | None:
    where = f"schedule.toml step {index}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a [[step]] table")
        return None
    key = raw.get("key")
    if isinstance(key, str):
        where = f"schedule.toml step {index} ({key})"
    before = len(problems)
    for unknown in sorted(set(raw) - STEP_FIELDS):
        problems.append(f"{where}: unknown field {unknown!r}")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        problems.append(f"{where}: key must be lowercase letters, digits or _ (at most 40)")
    template = raw.get("template")
    if not isinstance(template, str) or not template.strip():
        problems.append(f"{where}: template must name a file in the folder")
    title = raw.get("title", key)
    if not isinstance(title, str) or not title.strip():
        problems.append(f"{where}: title must be text")
    reply = raw.get("reply", "text")
    if reply not in REPLY_KINDS:
        problems.append(f"{where}: reply must be one of {', '.join(REPLY_KINDS)}")
    highlight = raw.get("highlight", False)
    if not isinstance(highlight, bool):
        problems.append(f"{where}: highlight must be true or false")
    if "after" not in raw:
        problems.append(f'{where}: after is missing (e.g. after = "3h")')
        after = None
    else:
        after = _duration_field(raw["after"], f"{where}: after", problems)
    at = None
    if "at" in raw:
        try:
            at = parse_time_of_day(str(raw["at"]))
        except ValueError as exc:
            problems.append(f"{where}: at: {exc}")
        if after is not None and after.seconds:
            problems.append(f'{where}: with at, after must be whole days (e.g. "-1d" or "0d")')
    if len(problems) > before or after is None:
        return None
    return Step(
        key=cast(str, key),
        title=cast(str, title).strip(),
        after=after,
        template=cast(str, template).strip(),
        reply=cast(ReplyKind, reply),
        highlight=highlight is True,
        at=at,
    )


def load_schedule(folder: Path) -> Schedule:
    """Read and validate `folder/schedule.toml`; raise ScheduleError listing every problem."""
    path = folder / "schedule.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScheduleError([f"{path}: not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError([f"schedule.toml: not valid TOML: {exc}"]) from None

    problems: list[str] = []
    for unknown in sorted(set(data) - TOP_LEVEL_FIELDS):
        problems.append(f"schedule.toml: unknown top-level key {unknown!r}")
    min_gap = _duration_field(data.get("min_gap", "1h"), "schedule.toml: min_gap", problems)
    snooze = _duration_field(data.get("snooze", "1h"), "schedule.toml: snooze", problems)
    if snooze is not None and snooze.approximate() <= timedelta(0):
        problems.append("schedule.toml: snooze must be longer than 0s")
    goal_checkin = _weekly_field(data.get("goal_checkin", "sun 18:00"), problems)
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append("schedule.toml: no [[step]] tables")
        raw_steps = []
    steps: list[Step] = []
    for index, raw in enumerate(raw_steps, start=1):
        step = _parse_step(raw, index, problems)
        if step is None:
            continue
        if any(other.key == step.key for other in steps):
            problems.append(f"schedule.toml step {index}: key {step.key!r} is used twice")
            continue
        steps.append(step)
    if problems or min_gap is None or snooze is None:
        raise ScheduleError(problems)
    ordered = sorted(steps, key=Step.order)
    return Schedule(
        folder=folder,
        steps=tuple(ordered),
        min_gap=min_gap.approximate(),
        snooze=snooze.approximate(),
        goal_checkin=goal_checkin or (6, 18 * 60),
    )
