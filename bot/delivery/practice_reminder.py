"""The daily practice reminder, with a button to note the practice as done."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.companion import Companion
from bot.db.models import Patient, Reminder
from bot.delivery.recurring import RecurringKind, Text
from bot.domain.reminders import claim_due_reminders, reminder_sent
from bot.telegram.keyboards import reminder_keyboard


class PracticeReminderKind(RecurringKind[Text]):
    name = "practice reminder"
    order = 30
    model = Reminder

    def claim_patients(self, companion: Companion, session: Session, now: datetime) -> list[int]:
        return claim_due_reminders(session, now, companion.settings.default_timezone)

    def compose_for(self, companion: Companion, session: Session, patient_id: int) -> Text | None:
        reminder = session.get(Reminder, patient_id)
        if reminder is None:  # turned off since the claim
            return None
        patient = session.get_one(Patient, patient_id)
        text = companion.texts.render(
            "reminder.html", first_name=patient.first_name or "", kind=reminder.kind
        )
        return Text(text, reminder_keyboard(companion, reminder.kind))

    def record_for(
        self, companion: Companion, session: Session, patient_id: int, receipt: object
    ) -> None:
        reminder_sent(session, patient_id, companion.clock(), companion.settings.default_timezone)


KIND = PracticeReminderKind()
