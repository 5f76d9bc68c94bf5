"""The weekly recap without asking: a patient's choice of day and hour, due times, claims."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.db.models import Patient, WeeklyRecap
from bot.localtime import defer_past_quiet_hours, next_weekly
from bot.patients import quiet_hours_of, zone_of

DEFAULT_WEEKDAY = 6  # Sunday
DEFAULT_MINUTE = 18 * 60
LEASE = timedelta(minutes=5)
BATCH_SIZE = 100


def weekly_of(session: Session, patient: Patient) -> WeeklyRecap | None:
    return session.get(WeeklyRecap, patient.id)


def turn_on(
    session: Session,
    patient: Patient,
    now: datetime,
    default_timezone: str,
    weekday: int | None = None,
    minute: int | None = None,
) -> WeeklyRecap:
    """Start (or move) the weekly recap; the day and time are kept from before if not given."""
    weekly = weekly_of(session, patient)
    if weekly is None:
        weekly = WeeklyRecap(patient_id=patient.id, weekday=DEFAULT_WEEKDAY, minute=DEFAULT_MINUTE)
        session.add(weekly)
    if weekday is not None:
        weekly.weekday = weekday
    if minute is not None:
        weekly.minute = minute
    weekly.due_at = next_weekly(
        now, weekly.weekday, weekly.minute, zone_of(patient, default_timezone)
    )
    weekly.claimed_until = None
    return weekly


def turn_off(session: Session, patient: Patient) -> bool:
    """Stop the weekly recap (its day and time are kept); False if it was not on."""
    weekly = weekly_of(session, patient)
    if weekly is None or weekly.due_at is None:
        return False
    weekly.due_at = None
    weekly.claimed_until = None
    return True


def expected_at(weekly: WeeklyRecap, patient: Patient, default_timezone: str) -> datetime | None:
    """When the next weekly recap should arrive, counting quiet hours."""
    if weekly.due_at is None:
        return None
    zone = zone_of(patient, default_timezone)
    return defer_past_quiet_hours(weekly.due_at, zone, quiet_hours_of(patient))


def claim_due_recaps(session: Session, now: datetime, default_timezone: str) -> list[int]:
    """Claim the weekly recaps to send now (patient ids), with a lease.

    Paused patients skip a week; recaps in quiet hours wait for their end. A conditional
    UPDATE claims each one, so two dispatchers never send the same recap.
    """
    due = session.execute(
        select(WeeklyRecap, Patient)
        .join(Patient, Patient.id == WeeklyRecap.patient_id)
        .where(
            WeeklyRecap.due_at <= now,
            or_(WeeklyRecap.claimed_until.is_(None), WeeklyRecap.claimed_until <= now),
        )
        .order_by(WeeklyRecap.due_at)
        .limit(BATCH_SIZE)
    ).all()
    claimed = []
    for weekly, patient in due:
        zone = zone_of(patient, default_timezone)
        if patient.paused_at is not None or patient.unreachable_at is not None:
            weekly.due_at = next_weekly(now, weekly.weekday, weekly.minute, zone)
            continue
        not_before = defer_past_quiet_hours(now, zone, quiet_hours_of(patient))
        if not_before > now:
            weekly.due_at = not_before
            continue
        won = session.execute(
            update(WeeklyRecap)
            .where(
                WeeklyRecap.patient_id == weekly.patient_id,
                WeeklyRecap.due_at == weekly.due_at,
                or_(WeeklyRecap.claimed_until.is_(None), WeeklyRecap.claimed_until <= now),
            )
            .values(claimed_until=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if won.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(weekly.patient_id)
    return claimed


def recap_sent(session: Session, patient: Patient, now: datetime, default_timezone: str) -> None:
    """Record the recap as sent and schedule the next one, a week on."""
    weekly = weekly_of(session, patient)
    if weekly is None:
        return
    weekly.last_sent_at = now
    weekly.claimed_until = None
    if weekly.due_at is not None:
        weekly.due_at = next_weekly(
            now, weekly.weekday, weekly.minute, zone_of(patient, default_timezone)
        )


def recap_failed(session: Session, patient_id: int, retry_at: datetime) -> None:
    """Release the claim and try again later."""
    weekly = session.get(WeeklyRecap, patient_id)
    if weekly is not None and weekly.due_at is not None:
        weekly.due_at = retry_at
        weekly.claimed_until = None
