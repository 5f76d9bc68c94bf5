"""The integration schedule: steps read from prompts/schedule.toml and their due-time arithmetic.

Pure: nothing here knows Telegram or the database.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, cast
from zoneinfo import ZoneInfo

ReplyKind = Literal["text", "scale", "none"]
REPLY_KINDS: tuple[ReplyKind, ...] = ("text", "scale", "none")
STEP_FIELDS = {"key", "title", "after", "template", "reply", "highlight"}
TOP_LEVEL_FIELDS = {"min_gap", "snooze", "step"}
KEY_PATTERN = re.compile(r"[a-z0-9_]{1,40}")
DURATION_PATTERN = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


@dataclass(frozen=True)
class Duration:
    """A schedule offset: calendar days keep the local clock time, the rest is elapsed time."""

    days: int
    seconds: int
    text: str

    def approximate(self) -> timedelta:
        return timedelta(days=self.days, seconds=self.seconds)


def parse_duration(text: str) -> Duration:
    """Parse "30s", "45m", "3h", "1d", "2w" or combinations in that order such as "1d12h"."""
    cleaned = text.strip().lower()
    match = DURATION_PATTERN.fullmatch(cleaned)
    if not cleaned or match is None:
        raise ValueError(
            f"{text!r} is not a duration (use numbers with w, d, h, m, s, e.g. 3h or 1d12h)"
        )
    weeks, days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return Duration(
        days=weeks * 7 + days, seconds=hours * 3600 + minutes * 60 + seconds, text=cleaned
    )


def step_due_at(treatment_at: datetime, tz: ZoneInfo, after: Duration) -> datetime:
    """When a step falls due, in UTC.

    Whole days are added on the local calendar so that "1d" after 18:00 is 18:00 the next day
    even across a daylight-saving change; hours, minutes and seconds are elapsed time.
    """
    local = treatment_at.astimezone(tz)
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


@dataclass(frozen=True)
class Schedule:
    folder: Path
    steps: tuple[Step, ...]
    min_gap: timedelta
    snooze: timedelta

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
    if len(problems) > before or after is None:
        return None
    return Step(
        key=cast(str, key),
        title=cast(str, title).strip(),
        after=after,
        template=cast(str, template).strip(),
        reply=cast(ReplyKind, reply),
        highlight=highlight is True,
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
    ordered = sorted(steps, key=lambda step: step.after.approximate())
    return Schedule(
        folder=folder,
        steps=tuple(ordered),
        min_gap=min_gap.approximate(),
        snooze=snooze.approximate(),
    )
