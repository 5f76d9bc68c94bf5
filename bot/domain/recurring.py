"""What comes back on a patient's own clock (the weekly recap, a practice reminder, the goals'
check-in): one row per patient with a due time in UTC, claimed with a lease like prompts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.core.localtime import defer_past_quiet_hours
from bot.db.models import GoalCheckin, Patient, Reminder, WeeklyRecap
from bot.db.queries import skips_locked_rows
from bot.domain.patients import quiet_hours_of, zone_of

Recurring = WeeklyRecap | Reminder | GoalCheckin
LEASE = timedelta(minutes=5)
BATCH_SIZE = 200


def claim_recurring(
    session: Session,
    model: type[Recurring],
    now: datetime,
    default_timezone: str,
    next_due: Callable[[Recurring, Patient], datetime],
    skip: Callable[[Patient], bool] = lambda patient: False,
) -> list[int]:
    """Claim the rows of `model` due now (patient ids). Paused or unreachable patients (and
    those `skip` names) move to `next_due`; rows in quiet hours wait for their end. A
    conditional UPDATE claims each, so two dispatchers never send the same one."""
    statement = (
        select(model, Patient)
        .join(Patient, Patient.id == model.patient_id)
        .where(
            model.due_at <= now,
            or_(model.claimed_until.is_(None), model.claimed_until <= now),
        )
        .order_by(model.due_at)
        .limit(BATCH_SIZE)
    )
    if skips_locked_rows(session):
        statement = statement.with_for_update(of=model, skip_locked=True)
    due = session.execute(statement).all()
    claimed = []
    for row, patient in cast("list[tuple[Recurring, Patient]]", due):
        if patient.paused_at is not None or patient.unreachable_at is not None or skip(patient):
            row.due_at = next_due(row, patient)
            continue
        zone = zone_of(patient, default_timezone)
        not_before = defer_past_quiet_hours(now, zone, quiet_hours_of(patient))
        if not_before > now:
            row.due_at = not_before
            continue
        won = session.execute(
            update(model)
            .where(
                model.patient_id == row.patient_id,
                model.due_at == row.due_at,
                or_(model.claimed_until.is_(None), model.claimed_until <= now),
            )
            .values(claimed_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if won.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(row.patient_id)
    return claimed


def release_claim(session: Session, model: type[Recurring], patient_id: int) -> None:
    """Give a claim back unsent, due as it was."""
    row = cast("Recurring | None", session.get(model, patient_id))
    if row is not None:
        row.claimed_until = None


def release_for_retry(
    session: Session, model: type[Recurring], patient_id: int, retry_at: datetime
) -> None:
    """Sending failed: release the claim and try again at `retry_at` (unless turned off)."""
    row = cast("Recurring | None", session.get(model, patient_id))
    if row is not None and row.due_at is not None:
        row.due_at, row.claimed_until = retry_at, None
