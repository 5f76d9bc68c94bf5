"""The patient's data rights: everything stored about them, deletion, and retention."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from bot.db import queries
from bot.db.models import (
    Entry,
    InboxUpdate,
    Patient,
    Practice,
    PromptStatus,
    Reminder,
    ScheduledPrompt,
    SessionNote,
    Treatment,
    WeeklyRecap,
)
from bot.goals import checks_of, goals_of
from bot.guides import guides_of
from bot.practices import practices_between

EXPORT_FORMAT = "integration-companion/personal-data/1"


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def personal_data(session: Session, patient: Patient, now: datetime) -> dict[str, Any]:
    """Everything stored about the patient, machine-readable (the shape is in the README)."""
    weekly = session.get(WeeklyRecap, patient.id)
    reminder = session.get(Reminder, patient.id)
    treatments = queries.treatments_of(session, patient.id)
    prompts = session.scalars(
        select(ScheduledPrompt)
        .where(ScheduledPrompt.patient_id == patient.id)
        .order_by(ScheduledPrompt.id)
    ).all()
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _when(now),
        "patient": {
            "telegram_user_id": patient.telegram_user_id,
            "chat_id": patient.chat_id,
            "first_name": patient.first_name,
            "consented_at": _when(patient.consented_at),
            "created_at": _when(patient.created_at),
            "timezone": patient.timezone,
            "country": patient.country,
            "quiet_hours": None
            if patient.quiet_start_minute is None
            else {
                "start_minute": patient.quiet_start_minute,
                "end_minute": patient.quiet_end_minute,
            },
            "paused_at": _when(patient.paused_at),
            "pending_intention": patient.pending_intention,
        },
        "weekly_recap": None
        if weekly is None
        else {
            "weekday": weekly.weekday,
            "minute": weekly.minute,
            "next_due_at": _when(weekly.due_at),
            "last_sent_at": _when(weekly.last_sent_at),
        },
        "practice_reminder": None
        if reminder is None
        else {
            "minute": reminder.minute,
            "practice": reminder.kind,
            "next_due_at": _when(reminder.due_at),
            "last_sent_at": _when(reminder.last_sent_at),
        },
        "treatments": [
            {
                "id": t.id,
                "number": t.number,
                "occurred_at": _when(t.occurred_at),
                "timezone": t.timezone,
                "intention": t.intention,
                "created_at": _when(t.created_at),
            }
            for t in treatments
        ],
        "prompts": [
            {
                "id": p.id,
                "treatment_id": p.treatment_id,
                "step": p.step_key,
                "status": p.status,
                "due_at": _when(p.due_at),
                "sent_at": _when(p.sent_at),
                "attempts": p.attempts,
            }
            for p in prompts
        ],
        "entries": [
            {
                "id": e.id,
                "created_at": _when(e.created_at),
                "edited_at": _when(e.edited_at),
                "kind": e.kind,
                "text": e.text,
                "mood": e.scale_value,
                "telegram_file_id": e.file_id,
                "duration_seconds": e.duration_seconds,
                "treatment_id": e.treatment_id,
                "prompt_id": e.prompt_id,
                "telegram_message_id": e.message_id,
            }
            for e in queries.entries_since(session, patient.id, None)
        ],
        "goals": [
            {
                "number": g.number,
                "kind": g.kind,
                "text": g.text,
                "status": g.status,
                "created_at": _when(g.created_at),
                "closed_at": _when(g.closed_at),
                "weekly_checks": [
                    {"week": week, "answer": answer, "note": note or None}
                    for week, answer, note in checks_of(session, g.id)
                ],
            }
            for g in goals_of(session, patient.id)
        ],
        "guides": [
            {
                "name": link.guide_name,
                "telegram_user_id": link.guide_user_id,
                "linked_at": _when(link.created_at),
            }
            for link in guides_of(session, patient.id)
        ],
        "session_notes": [
            {
                "treatment_id": note.treatment_id,
                "author": note.author,
                "text": note.text,
                "created_at": _when(note.created_at),
            }
            for note in session.scalars(
                select(SessionNote)
                .where(SessionNote.patient_id == patient.id)
                .order_by(SessionNote.id)
            )
        ],
        "practices": [
            {
                "id": p.id,
                "done_at": _when(p.done_at),
                "kind": p.kind,
                "label": p.label,
                "minutes": p.minutes,
                "note": p.note,
                "treatment_id": p.treatment_id,
                "prompt_id": p.prompt_id,
            }
            for p in practices_between(session, patient.id, None, now)
        ],
    }


def delete_patient(session: Session, patient: Patient) -> None:
    """Delete every row about the patient; the database cascades to everything that names them."""
    session.execute(delete(InboxUpdate).where(InboxUpdate.chat_id == patient.chat_id))
    session.execute(delete(Patient).where(Patient.id == patient.id))


def purge_before(session: Session, cutoff: datetime) -> int:
    """Retention: delete journal content older than `cutoff`; return how many rows went.

    Entries and practices go by when they were written; a treatment goes with its prompts once
    it is older than the cutoff and none of its prompts is still to be sent.
    """
    entries = session.execute(delete(Entry).where(Entry.created_at < cutoff))
    practices = session.execute(delete(Practice).where(Practice.done_at < cutoff))
    unsent = exists().where(
        ScheduledPrompt.treatment_id == Treatment.id,
        ScheduledPrompt.status.in_(
            [PromptStatus.PENDING, PromptStatus.HELD, PromptStatus.CLAIMED]
        ),
    )
    treatments = session.execute(delete(Treatment).where(Treatment.occurred_at < cutoff, ~unsent))
    removed = (result.rowcount for result in (entries, practices, treatments))  # type: ignore[attr-defined]
    return sum(int(count) for count in removed)
