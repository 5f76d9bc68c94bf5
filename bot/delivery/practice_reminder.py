"""The daily practice reminder, with a button to note the practice as done."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session
from telegram import Bot
from telegram.error import TelegramError

from bot.companion import Companion
from bot.db.models import Patient, Reminder
from bot.delivery.kind import Claimed, DispatchReport
from bot.delivery.recurring import RecurringKind
from bot.domain.reminders import claim_due_reminders, reminder_sent
from bot.telegram.keyboards import reminder_keyboard

log = logging.getLogger(__name__)


class PracticeReminderKind(RecurringKind):
    name = "practice reminder"
    order = 30
    model = Reminder

    def claim_patients(self, companion: Companion, session: Session, now: datetime) -> list[int]:
        return claim_due_reminders(session, now, companion.settings.default_timezone)

    async def deliver(
        self, companion: Companion, bot: Bot, claimed: Claimed, report: DispatchReport
    ) -> None:
        patient_id = claimed.row_id
        with companion.sessions.begin() as session:
            patient = session.get_one(Patient, patient_id)
            reminder = session.get(Reminder, patient_id)
            if reminder is None:  # turned off since the claim
                return
            kind = reminder.kind
            text = companion.texts.render(
                "reminder.html", first_name=patient.first_name or "", kind=kind
            )
        async with companion.chat_lock(claimed.chat_id):
            try:
                await bot.send_message(
                    claimed.chat_id, text, reply_markup=reminder_keyboard(companion, kind)
                )
            except TelegramError as exc:
                self.failed(companion, patient_id, exc)
                return
            with companion.sessions.begin() as session:
                reminder_sent(
                    session, patient_id, companion.clock(), companion.settings.default_timezone
                )
        report.delivered[self.name] += 1
        log.info("sent the practice reminder to patient %s", patient_id)


KIND = PracticeReminderKind()
