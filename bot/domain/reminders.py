"""Daily practice reminders: a local time of day and a practice, durable like prompts.

The due time lives in the database and the dispatcher claims it with a lease, so a reminder
survives restarts and is never sent twice by two dispatchers. After each one (sent, or skipped
while the patient pauses or cannot be reached) the next is set for the following day at the
same local time, across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.core.localtime import defer_past_quiet_hours, parse_clock
from bot.db.models import Patient, Reminder
from bot.domain.patients import quiet_hours_of, zone_of
from bot.domain.practices import kind_of
from bot.domain.recurring import Recurring, claim_recurring


def next_daily(after: datetime, minute: int, tz: ZoneInfo) -> datetime:
    """The first moment after `after` at `minute` local time, in UTC."""
    local = after.astimezone(tz)
    moment = datetime.combine(local.date(), time(minute // 60, minute % 60), tzinfo=tz)
    if moment <= local:
        moment = datetime.combine(local.date() + timedelta(days=1), moment.time(), tzinfo=tz)
    return moment.astimezone(UTC)


def parse_reminder(args: Sequence[str]) -> tuple[int, str] | None:
    """`08:00 meditation` as (local minute of the day, practice kind), or None."""
    if len(args) != 2:
        return None
    clock, kind = parse_clock(args[0]), kind_of(args[1])
    if clock is None or kind is None or kind == "other":
        return None
    return clock.hour * 60 + clock.minute, kind


def reminder_of(session: Session, patient: Patient) -> Reminder | None:
    return session.get(Reminder, patient.id)


def set_reminder(
    session: Session, patient: Patient, minute: int, kind: str, now: datetime, default_tz: str
) -> Reminder:
    reminder = reminder_of(session, patient)
    if reminder is None:
        reminder = Reminder(patient_id=patient.id, minute=minute, kind=kind, due_at=now)
        session.add(reminder)
    reminder.minute, reminder.kind = minute, kind
    reminder.due_at = next_daily(now, minute, zone_of(patient, default_tz))
    reminder.claimed_until = None
    return reminder


def remove_reminder(session: Session, patient: Patient) -> bool:
    reminder = reminder_of(session, patient)
    if reminder is None:
        return False
    session.delete(reminder)
    return True


def expected_at(reminder: Reminder, patient: Patient, default_tz: str) -> datetime:
    """When the next reminder should arrive, counting quiet hours."""
    zone = zone_of(patient, default_tz)
    return defer_past_quiet_hours(reminder.due_at, zone, quiet_hours_of(patient))


def claim_due_reminders(session: Session, now: datetime, default_tz: str) -> list[int]:
    """Claim the reminders to send now (patient ids); a paused patient's moves a day on."""

    def tomorrow(row: Recurring, patient: Patient) -> datetime:
        assert isinstance(row, Reminder)
        return next_daily(now, row.minute, zone_of(patient, default_tz))

    return claim_recurring(session, Reminder, now, default_tz, tomorrow)


def reminder_sent(session: Session, patient_id: int, now: datetime, default_tz: str) -> None:
    """Sent: the next one tomorrow at the same local time."""
    reminder = session.get(Reminder, patient_id)
    if reminder is None:  # turned off meanwhile
        return
    patient = session.get_one(Patient, patient_id)
    reminder.last_sent_at = now
    reminder.claimed_until = None
    reminder.due_at = next_daily(now, reminder.minute, zone_of(patient, default_tz))
