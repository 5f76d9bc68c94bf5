"""Rows written straight into the database, for tests that need many patients at once."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.db.models import Patient, PromptStatus, ScheduledPrompt, Treatment

FIRST_CHAT_ID = 10_000


def add_due_prompts(
    session: Session, now: datetime, count: int, step_key: str = "checkin"
) -> set[int]:
    """`count` consented patients, each with one treatment and one prompt due now; their chat
    ids. The caller commits."""
    chat_ids = set()
    for n in range(count):
        chat_id = FIRST_CHAT_ID + n
        patient = Patient(
            telegram_user_id=chat_id,
            chat_id=chat_id,
            first_name=f"P{n}",
            consented_at=now - timedelta(days=1),
            created_at=now - timedelta(days=1),
        )
        session.add(patient)
        session.flush()
        treatment = Treatment(
            patient_id=patient.id,
            number=1,
            occurred_at=now - timedelta(hours=3),
            timezone="Europe/Berlin",
            created_at=now - timedelta(hours=3),
        )
        session.add(treatment)
        session.flush()
        session.add(
            ScheduledPrompt(
                patient_id=patient.id,
                treatment_id=treatment.id,
                step_key=step_key,
                due_at=now,
                status=PromptStatus.PENDING,
                attempts=0,
                created_at=now,
            )
        )
        chat_ids.add(chat_id)
    return chat_ids
