"""The weekly recap without asking: a patient's choice of day and hour, due times, claims."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.core.localtime import defer_past_quiet_hours, next_weekly
from bot.db.models import Patient, WeeklyRecap
from bot.domain.patients import quiet_hours_of, zone_of
from bot.domain.recurring import Recurring, claim_recurring

DEFAULT_WEEKDAY = 6  # Sunday
DEFAULT_MINUTE = 18 * 60


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
    """Claim the weekly recaps to send now (patient ids); a paused patient skips a week."""

    def next_week(row: Recurring, patient: Patient) -> datetime:
        assert isinstance(row, WeeklyRecap)
        return next_weekly(now, row.weekday, row.minute, zone_of(patient, default_timezone))

    return claim_recurring(session, WeeklyRecap, now, default_timezone, next_week)


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
