"""The recap: a window's treatments, prompts, moods, highlights and entries, as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.core.localtime import format_day, format_short
from bot.core.moods import MoodPoint, TreatmentMark
from bot.core.schedule import Schedule
from bot.core.text import shorten, step_title
from bot.db import queries
from bot.db.models import EntryKind, Patient, PromptStatus
from bot.domain.goals import WEEKS_SHOWN, progress
from bot.domain.guides import notes_of
from bot.domain.patients import zone_of
from bot.domain.practices import practices_between, summarize
from bot.domain.treatments import expected_send_time

RECAP_DAYS = 7
MAX_RECAP_DAYS = 365
HIGHLIGHT_LENGTH = 300
UPCOMING = 3
# A change of at least one point over the window reads as a trend, less as steady.
TREND_THRESHOLD = 1.0


def mood_trend(points: list[MoodPoint]) -> str:
    """ "rising", "falling" or "steady" by the least-squares slope; empty under two points."""
    if len(points) < 2:
        return ""
    first = points[0].when
    xs = [(p.when - first).total_seconds() / 86400 for p in points]
    ys = [float(p.value) for p in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return "steady"
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    change = slope * (xs[-1] - xs[0])
    if change >= TREND_THRESHOLD:
        return "rising"
    if change <= -TREND_THRESHOLD:
        return "falling"
    return "steady"


@dataclass(frozen=True)
class Recap:
    context: dict[str, Any]  # what recap.html shows
    moods: list[MoodPoint]  # for the chart; empty: no chart
    treatments: list[TreatmentMark]
    start: datetime
    end: datetime


def build_recap(
    session: Session,
    patient: Patient,
    schedule: Schedule,
    now: datetime,
    default_timezone: str,
    days: int = RECAP_DAYS,
) -> Recap:
    """Everything the recap shows, queried before rendering."""
    zone = zone_of(patient, default_timezone)
    start = now - timedelta(days=days)
    treatments = queries.treatments_between(session, patient.id, start, now)
    session_notes = notes_of(session, [t.id for t in treatments])
    sent = queries.prompts_sent_between(session, patient.id, start, now)
    answered = queries.answered_prompt_ids(session, (p.id for p in sent))
    entries = queries.entries_between(session, patient.id, start, now)
    prompts = queries.prompts_by_id(session, (e.prompt_id for e in entries if e.prompt_id))
    numbers = {
        tid: t.number
        for tid, t in queries.treatments_by_id(
            session, {e.treatment_id for e in entries if e.treatment_id}
        ).items()
    }

    moods = [
        MoodPoint(e.created_at, e.scale_value)
        for e in entries
        if e.kind == EntryKind.MOOD and e.scale_value is not None
    ]
    values = [point.value for point in moods]
    highlights = []
    for entry in entries:
        prompt = prompts.get(entry.prompt_id) if entry.prompt_id else None
        step = schedule.step(prompt.step_key) if prompt else None
        if step is None or not step.highlight or not entry.text:
            continue
        highlights.append(
            {
                "prompt_title": step.title,
                "treatment_number": numbers.get(entry.treatment_id)
                if entry.treatment_id
                else None,
                "when": format_short(entry.created_at, zone),
                "text": shorten(entry.text, HIGHLIGHT_LENGTH),
            }
        )
    free_entries = [e for e in entries if e.prompt_id is None and e.kind != EntryKind.MOOD]
    days_written = {e.created_at.astimezone(zone).date() for e in entries}
    practices = summarize(practices_between(session, patient.id, start, now), zone)

    upcoming = queries.upcoming_prompts(session, patient.id, UPCOMING)
    upcoming_numbers = queries.treatments_by_id(session, (p.treatment_id for p in upcoming))
    planned = queries.next_planned_treatment(session, patient.id, now)
    context = {
        "first_name": patient.first_name or "",
        "days": days,
        "window_start": format_day(start, zone),
        "window_end": format_day(now, zone),
        "treatments": [
            {
                "number": t.number,
                "when": format_short(t.occurred_at, zone),
                "intention": t.intention or "",
                "notes": [
                    {"author": note.author, "text": shorten(note.text, HIGHLIGHT_LENGTH)}
                    for note in session_notes[t.id]
                ],
            }
            for t in treatments
        ],
        "prompts_sent": len(sent),
        "prompts_answered": len(answered & {p.id for p in sent}),
        "prompts_skipped": sum(1 for p in sent if p.status == PromptStatus.SKIPPED),
        "mood": None
        if not values
        else {
            "count": len(values),
            "low": min(values),
            "high": max(values),
            "average": f"{sum(values) / len(values):.1f}",
            "trend": mood_trend(moods),
        },
        "practices": practices,
        "goals": progress(session, patient, now, default_timezone),
        "goal_weeks": WEEKS_SHOWN,
        "highlights": highlights,
        "free_entries": len(free_entries),
        "days_written": len(days_written),
        "paused": patient.paused_at is not None,
        "upcoming": [
            {
                "title": step_title(schedule, p.step_key),
                "treatment_number": upcoming_numbers[p.treatment_id].number,
                "when": format_short(
                    expected_send_time(p.due_at, now, patient, default_timezone), zone
                ),
            }
            for p in upcoming
        ],
        "planned": None
        if planned is None
        else {
            "number": planned.number,
            "when": format_short(planned.occurred_at, zone),
            "intention": planned.intention or "",
        },
        "pending_intention": patient.pending_intention or "",
    }
    marks = [
        TreatmentMark(t.occurred_at, t.number)
        for t in queries.treatments_between(session, patient.id, start, now)
    ]
    return Recap(context=context, moods=moods, treatments=marks, start=start, end=now)
