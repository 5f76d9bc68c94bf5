"""The data rights of patients and guides: everything stored about a patient, deletion of a
person (patient, guide or both), and retention.

Every table is classified below: either retention deletes its rows by a date of their own
(RETAINED), or it holds nothing a person wrote or did (NOT_CONTENT), with the reason. A test
fails for a table in neither, so a new table cannot land unclassified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from bot.db import queries
from bot.db.models import (
    Entry,
    Goal,
    GoalCheck,
    GoalCheckin,
    GuideInvite,
    GuideJoinAttempt,
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
from bot.domain.goals import checks_of, goals_of
from bot.domain.guides import GuideLeft, end_guide_role, guides_of
from bot.domain.practices import practices_between

EXPORT_FORMAT = "integration-companion/personal-data/1"


@dataclass(frozen=True)
class Retained:
    """How RETENTION_DAYS treats a table: the date columns it goes by, and the rule in words."""

    by: tuple[str, ...]
    rule: str


RETAINED: dict[str, Retained] = {
    "entries": Retained(("created_at",), "when it was written"),
    "practices": Retained(("done_at",), "when it was done"),
    "session_notes": Retained(("created_at",), "when it was written"),
    "goal_checks": Retained(("created_at",), "when it was answered (or last changed)"),
    "goals": Retained(
        ("closed_at", "created_at"),
        "a done or dropped goal by when it was closed; an active one once it was set before "
        "the cutoff and has no weekly answer left from after it",
    ),
    "scheduled_prompts": Retained(
        ("sent_at", "due_at"),
        "a sent, skipped or failed prompt by when it was sent (one never sent: when it was "
        "due); prompts still to come stay",
    ),
    "treatments": Retained(
        ("occurred_at",),
        "when it took place, once none of its prompts and session notes is left (they go by "
        "their own dates)",
    ),
    "patients": Retained(
        ("pending_intention_at",),
        "only the intention kept for the next treatment, by when it was set; the account and "
        "its settings stay until /delete",
    ),
    "guide_invites": Retained(("expires_at",), "when it expired"),
    "guide_join_attempts": Retained(("attempted_at",), "when it was made"),
    "inbox": Retained(("received_at",), "when Telegram delivered it"),
}

NOT_CONTENT: dict[str, str] = {
    "weekly_recaps": "a setting (the day and time of the weekly recap), kept until changed or "
    "/delete",
    "reminders": "a setting (the daily practice reminder), kept until /remind off or /delete",
    "goal_checkins": "when the next weekly goal check-in is due; it goes when no active goal "
    "is left",
    "guide_links": "the standing link to a guide the patient chose; it ends with /guide remove "
    "or either person's /delete",
    "chat_leases": "which instance is handling a chat, for seconds; expired ones are forgotten "
    "daily",
    "send_slots": "times for Telegram's rate limits, forgotten daily",
    "instances": "the bot's running processes",
}


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
            "pending_intention_set_at": _when(patient.pending_intention_at),
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
        "guides_told_of_treatments": patient.announce_treatments,
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


def delete_person(session: Session, telegram_user_id: int) -> list[GuideLeft]:
    """/delete: everything about this person, as a patient and as a guide (their private chat
    with the bot has their user id). Returns the patients whose guide they were, to be told."""
    left = end_guide_role(session, telegram_user_id)
    patient = queries.patient_by_user(session, telegram_user_id)
    if patient is not None:
        delete_patient(session, patient)
    session.execute(delete(InboxUpdate).where(InboxUpdate.chat_id == telegram_user_id))
    return left


def _count(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def purge_before(session: Session, cutoff: datetime) -> dict[str, int]:
    """Retention: delete what is older than `cutoff`, each table by its own date (RETAINED);
    return how many rows went (or were cleared) by table."""
    removed: dict[str, int] = {}

    def run(table: str, statement: Any) -> None:
        removed[table] = removed.get(table, 0) + _count(session.execute(statement))

    run("entries", delete(Entry).where(Entry.created_at < cutoff))
    run("practices", delete(Practice).where(Practice.done_at < cutoff))
    run("session_notes", delete(SessionNote).where(SessionNote.created_at < cutoff))
    run("goal_checks", delete(GoalCheck).where(GoalCheck.created_at < cutoff))
    answered = exists().where(GoalCheck.goal_id == Goal.id)
    run(
        "goals",
        delete(Goal).where(
            or_(
                and_(Goal.status != "active", Goal.closed_at < cutoff),
                and_(Goal.status == "active", Goal.created_at < cutoff, ~answered),
            )
        ),
    )
    still_active = exists().where(
        Goal.patient_id == GoalCheckin.patient_id, Goal.status == "active"
    )
    session.execute(delete(GoalCheckin).where(~still_active))
    done = [PromptStatus.SENT, PromptStatus.SKIPPED, PromptStatus.FAILED]
    run(
        "scheduled_prompts",
        delete(ScheduledPrompt).where(
            ScheduledPrompt.status.in_(done),
            func.coalesce(ScheduledPrompt.sent_at, ScheduledPrompt.due_at) < cutoff,
        ),
    )
    prompts_left = exists().where(ScheduledPrompt.treatment_id == Treatment.id)
    notes_left = exists().where(SessionNote.treatment_id == Treatment.id)
    run(
        "treatments",
        delete(Treatment).where(Treatment.occurred_at < cutoff, ~prompts_left, ~notes_left),
    )
    run(
        "patients",
        update(Patient)
        .where(Patient.pending_intention_at < cutoff)
        .values(pending_intention=None, pending_intention_at=None),
    )
    run("guide_invites", delete(GuideInvite).where(GuideInvite.expires_at < cutoff))
    run(
        "guide_join_attempts",
        delete(GuideJoinAttempt).where(GuideJoinAttempt.attempted_at < cutoff),
    )
    run("inbox", delete(InboxUpdate).where(InboxUpdate.received_at < cutoff))
    return removed
