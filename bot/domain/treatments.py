"""Treatments and their integration schedules: logging one writes its prompts as due rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.core.localtime import defer_past_quiet_hours
from bot.core.schedule import Schedule
from bot.db import queries
from bot.db.models import Patient, PromptStatus, ScheduledPrompt, Treatment
from bot.domain.patients import quiet_hours_of, zone_of

# Two treatments this close together are almost certainly the same one logged twice.
DUPLICATE_WINDOW = timedelta(hours=2)
MAX_INTENTION_LENGTH = 1000


class DuplicateTreatmentError(Exception):
    def __init__(self, existing: Treatment) -> None:
        super().__init__(f"treatment {existing.number} is at nearly the same time")
        self.existing = existing


@dataclass(frozen=True)
class LoggedTreatment:
    treatment: Treatment
    planned: bool
    first_prompt_at: datetime | None  # when the first reflection should arrive, after quiet hours
    missed_steps: int  # steps already past when it was logged, left out
    before_session_at: datetime | None = None  # the first step before a planned session


def expected_send_time(
    prompt_due_at: datetime, now: datetime, patient: Patient, default_timezone: str
) -> datetime:
    """When a pending prompt should go out, counting quiet hours."""
    zone = zone_of(patient, default_timezone)
    return defer_past_quiet_hours(max(prompt_due_at, now), zone, quiet_hours_of(patient))


def log_treatment(
    session: Session,
    patient: Patient,
    occurred_at: datetime,
    now: datetime,
    schedule: Schedule,
    default_timezone: str,
) -> LoggedTreatment:
    """Record a treatment (past or planned) and write its schedule as due rows.

    Steps already past when a late treatment is logged are left out, except the latest of them,
    which is sent now: a patient who logs yesterday's session still gets the reflection that fits.
    Steps before the session (an intention the evening before) are kept only while still ahead.
    """
    clash = queries.treatments_between(
        session, patient.id, occurred_at - DUPLICATE_WINDOW, occurred_at + DUPLICATE_WINDOW
    )
    if clash:
        raise DuplicateTreatmentError(clash[0])

    zone = zone_of(patient, default_timezone)
    treatment = Treatment(
        patient_id=patient.id,
        number=queries.next_treatment_number(session, patient.id),
        occurred_at=occurred_at,
        timezone=zone.key,
        intention=patient.pending_intention,
        created_at=now,
    )
    patient.pending_intention, patient.pending_intention_at = None, None
    session.add(treatment)
    session.flush()

    due_times = sorted(
        ((step, step.due_at(occurred_at, zone)) for step in schedule.steps),
        key=lambda pair: pair[1],
    )
    before = [pair for pair in due_times if pair[0].before_session and pair[1] < occurred_at]
    after = [pair for pair in due_times if not pair[0].before_session]
    past = [pair for pair in after if pair[1] <= now]
    kept = [pair for pair in before if pair[1] > now] + past[-1:]
    kept += [pair for pair in after if pair[1] > now]
    status = PromptStatus.HELD if patient.paused_at else PromptStatus.PENDING
    for step, due_at in kept:
        session.add(
            ScheduledPrompt(
                patient_id=patient.id,
                treatment_id=treatment.id,
                step_key=step.key,
                due_at=max(due_at, now),
                status=status,
                created_at=now,
            )
        )
    first = min(
        (max(due_at, now) for step, due_at in kept if not step.before_session), default=None
    )
    ahead = min((due_at for step, due_at in kept if step.before_session), default=None)
    return LoggedTreatment(
        treatment=treatment,
        planned=occurred_at > now,
        first_prompt_at=None
        if first is None
        else expected_send_time(first, now, patient, default_timezone),
        missed_steps=len(past) - len(past[-1:]),
        before_session_at=None
        if ahead is None
        else expected_send_time(ahead, now, patient, default_timezone),
    )


@dataclass(frozen=True)
class IntentionSet:
    treatment: Treatment | None  # the planned treatment it went to, or None: the next one logged


def set_intention(session: Session, patient: Patient, text: str, now: datetime) -> IntentionSet:
    """Attach the intention to the upcoming planned treatment, or keep it for the next one."""
    planned = queries.next_planned_treatment(session, patient.id, now)
    if planned is not None:
        planned.intention = text
        return IntentionSet(treatment=planned)
    patient.pending_intention, patient.pending_intention_at = text, now
    return IntentionSet(treatment=None)


def integration_treatment(
    session: Session, patient: Patient, now: datetime, schedule: Schedule
) -> Treatment | None:
    """The treatment whose integration period `now` falls in: its last step plus a week."""
    latest = queries.latest_treatment_before(session, patient.id, now)
    if latest is None:
        return None
    longest = max(step.after.approximate() for step in schedule.steps)
    return latest if now - latest.occurred_at <= longest + timedelta(weeks=1) else None
