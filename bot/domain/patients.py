"""A patient's settings and state: consent, time zone, quiet hours, pause. Plain functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.core.localtime import DEFAULT_QUIET_HOURS, QuietHours
from bot.db import queries
from bot.db.models import Patient, PromptStatus


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def zone_of(patient: Patient, default_timezone: str) -> ZoneInfo:
    return ZoneInfo(patient.timezone or default_timezone)


def quiet_hours_of(patient: Patient) -> QuietHours | None:
    if patient.quiet_start_minute is None or patient.quiet_end_minute is None:
        return None
    start, end = patient.quiet_start_minute, patient.quiet_end_minute
    return QuietHours(time(start // 60, start % 60), time(end // 60, end % 60))


def set_quiet_hours(patient: Patient, quiet: QuietHours | None) -> None:
    patient.quiet_start_minute = None if quiet is None else _minutes(quiet.start)
    patient.quiet_end_minute = None if quiet is None else _minutes(quiet.end)


def start_pending(session: Session, telegram_user_id: int, chat_id: int, now: datetime) -> Patient:
    """The patient's row, created in the pending (no consent yet) state if new."""
    patient = queries.patient_by_user(session, telegram_user_id)
    if patient is None:
        patient = Patient(telegram_user_id=telegram_user_id, chat_id=chat_id, created_at=now)
        set_quiet_hours(patient, DEFAULT_QUIET_HOURS)
        session.add(patient)
        session.flush()
    return patient


def give_consent(patient: Patient, first_name: str | None, now: datetime) -> bool:
    """Record consent; False if it had already been given."""
    if patient.consented_at is not None:
        return False
    patient.consented_at = now
    patient.first_name = first_name
    return True


@dataclass(frozen=True)
class Resumed:
    was_paused: bool
    overdue: int  # prompts that fell due during the pause, now sent one at a time


def pause(session: Session, patient: Patient, now: datetime) -> bool:
    """Hold every pending prompt; False if already paused."""
    if patient.paused_at is not None:
        return False
    patient.paused_at = now
    queries.set_prompts_status(session, patient.id, PromptStatus.PENDING, PromptStatus.HELD)
    return True


def _release_held(session: Session, patient: Patient, now: datetime) -> int:
    """Held prompts become pending; the dispatcher spaces out those already due."""
    overdue = queries.count_due_prompts(session, patient.id, PromptStatus.HELD, now)
    queries.set_prompts_status(session, patient.id, PromptStatus.HELD, PromptStatus.PENDING)
    return overdue


def resume(session: Session, patient: Patient, now: datetime) -> Resumed:
    """Release held prompts (a patient who writes is reachable again, too)."""
    if patient.paused_at is None:
        return Resumed(was_paused=False, overdue=0)
    patient.paused_at = None
    patient.unreachable_at = None
    return Resumed(was_paused=True, overdue=_release_held(session, patient, now))


def mark_unreachable(session: Session, patient: Patient, now: datetime) -> None:
    """Telegram refuses to deliver to them: keep everything, stop sending until they return."""
    patient.unreachable_at = now
    queries.set_prompts_status(session, patient.id, PromptStatus.PENDING, PromptStatus.HELD)


def reactivate(session: Session, patient: Patient, now: datetime) -> int | None:
    """They are back (/start): prompts go on, what they missed one at a time. Returns how many
    fell due meanwhile, or None if they were reachable all along."""
    if patient.unreachable_at is None:
        return None
    patient.unreachable_at = None
    return 0 if patient.paused_at is not None else _release_held(session, patient, now)
