"""The weekly recap: the last days' treatments, prompts, answers and entries, as a context."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.db import queries
from bot.db.models import Patient, PromptStatus
from bot.localtime import format_day, format_short
from bot.patients import zone_of
from bot.schedule import Schedule
from bot.text import shorten, step_title
from bot.treatments import expected_send_time

RECAP_DAYS = 7
ANSWER_LENGTH = 300
UPCOMING = 3


def build_recap(
    session: Session,
    patient: Patient,
    schedule: Schedule,
    now: datetime,
    default_timezone: str,
    days: int = RECAP_DAYS,
) -> dict[str, Any]:
    """Everything the recap template shows, queried before rendering."""
    zone = zone_of(patient, default_timezone)
    start = now - timedelta(days=days)
    treatments = queries.treatments_between(session, patient.id, start, now)
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

    answers = []
    free_entries = []
    for entry in entries:
        item = {
            "when": format_short(entry.created_at, zone),
            "text": shorten(entry.text, ANSWER_LENGTH) if entry.text else "",
            "scale_value": entry.scale_value,
            "treatment_number": numbers.get(entry.treatment_id) if entry.treatment_id else None,
        }
        prompt = prompts.get(entry.prompt_id) if entry.prompt_id else None
        if prompt is not None:
            answers.append({**item, "prompt_title": step_title(schedule, prompt.step_key)})
        else:
            free_entries.append(item)

    upcoming = queries.upcoming_prompts(session, patient.id, UPCOMING)
    upcoming_numbers = queries.treatments_by_id(session, (p.treatment_id for p in upcoming))
    planned = queries.next_planned_treatment(session, patient.id, now)
    return {
        "first_name": patient.first_name or "",
        "days": days,
        "window_start": format_day(start, zone),
        "window_end": format_day(now, zone),
        "treatments": [
            {
                "number": t.number,
                "when": format_short(t.occurred_at, zone),
                "intention": t.intention or "",
            }
            for t in treatments
        ],
        "prompts_sent": len(sent),
        "prompts_answered": len(answered & {p.id for p in sent}),
        "prompts_skipped": sum(1 for p in sent if p.status == PromptStatus.SKIPPED),
        "answers": answers,
        "free_entries": free_entries,
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
