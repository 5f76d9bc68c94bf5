"""The prompts folder a clinic edits: the variables its templates get, checks and previews."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, TemplateError, TemplateSyntaxError, meta

from bot.core.localtime import (
    DEFAULT_QUIET_HOURS,
    defer_past_quiet_hours,
    format_clock,
    format_day,
)
from bot.core.schedule import Schedule, ScheduleError, Step, load_schedule
from bot.crisis import load_resources
from bot.domain.treatments import MAX_INTENTION_LENGTH
from bot.render.jinja import make_environment
from bot.render.telegram_html import TELEGRAM_LIMIT, telegram_html_problems, visible_length

CRISIS_RESOURCES = "crisis_resources.toml"
PROMPT_VARIABLES = frozenset(
    {
        "first_name",
        "treatment_number",
        "treatment_date",
        "treatment_time",
        "intention",
        "hours_since",
        "days_until",
        "guide_notes",
        "days_since",
        "step_title",
        "timezone",
    }
)


def prompt_context(
    *,
    first_name: str,
    treatment_number: int,
    treatment_at: datetime,
    intention: str,
    step: Step,
    now: datetime,
    zone: ZoneInfo,
    guide_notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The variables documented in prompts/README.md, for one step of one treatment."""
    elapsed = max(now - treatment_at, timedelta(0))
    days_until = (treatment_at.astimezone(zone).date() - now.astimezone(zone).date()).days
    return {
        "first_name": first_name,
        "treatment_number": treatment_number,
        "treatment_date": format_day(treatment_at, zone),
        "treatment_time": format_clock(treatment_at, zone),
        "intention": intention,
        "hours_since": int(elapsed.total_seconds() // 3600),
        "days_since": elapsed.days,
        "days_until": max(days_until, 0),
        "step_title": step.title,
        "timezone": zone.key,
        "guide_notes": list(guide_notes),
    }


def check_folder(folder: Path) -> list[str]:
    """Every problem in a prompts folder, one line each; empty when it is fine."""
    try:
        schedule = load_schedule(folder)
    except ScheduleError as exc:
        return exc.problems
    problems: list[str] = []
    env = make_environment(folder)
    assert env.loader is not None
    used = {step.template for step in schedule.steps}
    for step in schedule.steps:
        path = folder / step.template
        if not path.is_file():
            problems.append(f"step {step.key}: template {step.template} is missing")
            continue
        if path.suffix != ".html":
            # Rendered as HTML (and escaped) all the same; the name should not suggest otherwise.
            problems.append(
                f"step {step.key}: template {step.template} is not named .html; prompts are "
                f"Telegram HTML, so name it {path.stem}.html"
            )
        source = path.read_text(encoding="utf-8")
        try:
            parsed = env.parse(source, step.template)
        except TemplateSyntaxError as exc:
            problems.append(f"{step.template} line {exc.lineno}: {exc.message}")
            continue
        unknown = sorted(meta.find_undeclared_variables(parsed) - PROMPT_VARIABLES)
        for name in unknown:
            problems.append(f"{step.template}: unknown variable {name!r}")
        if not unknown:
            problems += _rendering_problems(env, step)
    for path in sorted(folder.glob("*.html")):
        if path.name not in used:
            problems.append(f"{path.name}: not used by any step")
    resources = folder / CRISIS_RESOURCES
    if resources.exists():
        try:
            load_resources(resources)
        except ValueError as exc:
            problems += str(exc).splitlines()
    return problems


# The longest a patient can make a prompt: a long name and the longest intention allowed.
_LONGEST_SAMPLE = {"first_name": "W" * 64, "intention": "Wide " * (MAX_INTENTION_LENGTH // 5)}


def _rendering_problems(env: Environment, step: Step) -> list[str]:
    """Render a step for a sample treatment: errors, tags Telegram refuses, and length."""
    treatment_at = datetime(2026, 3, 28, 18, 0, tzinfo=UTC)
    context = prompt_context(
        first_name=_LONGEST_SAMPLE["first_name"],
        treatment_number=12,
        treatment_at=treatment_at,
        intention=_LONGEST_SAMPLE["intention"],
        step=step,
        now=treatment_at + step.after.approximate(),
        zone=ZoneInfo("Europe/Berlin"),
    )
    try:
        html = env.get_template(step.template).render(context).strip()
    except Exception as exc:  # any error a template can raise is a problem to report
        return [f"{step.template}: cannot render: {exc}"]
    problems = [f"{step.template}: {problem}" for problem in telegram_html_problems(html)]
    if not html:
        problems.append(f"{step.template}: renders to an empty message")
    length = visible_length(html)
    if length > TELEGRAM_LIMIT:
        problems.append(
            f"{step.template}: {length} characters with the longest name and intention; "
            f"Telegram allows {TELEGRAM_LIMIT}"
        )
    return problems


@dataclass(frozen=True)
class PreviewItem:
    step: Step
    sends_at: datetime
    text: str


def preview_folder(
    schedule: Schedule, treatment_at: datetime, zone: ZoneInfo, intention: str
) -> list[PreviewItem]:
    """Every step rendered for a sample treatment, with its local send time.

    Send times follow the dispatcher's rules: out of quiet hours (22:00-08:00) and at least
    `min_gap` after the previous prompt.
    """
    env = make_environment(schedule.folder)
    items: list[PreviewItem] = []
    for step in schedule.steps:
        due = step.due_at(treatment_at, zone)
        if items:
            due = max(due, items[-1].sends_at + schedule.min_gap)
        due = defer_past_quiet_hours(due, zone, DEFAULT_QUIET_HOURS)
        context = prompt_context(
            first_name="Sam",
            treatment_number=1,
            treatment_at=treatment_at,
            intention=intention,
            step=step,
            now=due,
            zone=zone,
        )
        try:
            text = env.get_template(step.template).render(context).strip()
        except TemplateError as exc:
            text = f"(cannot render: {exc})"
        items.append(PreviewItem(step=step, sends_at=due, text=text))
    return items
