"""The weekly check-in on a patient's goals, on its own when the weekly recap is off."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session
from telegram import Bot, InlineKeyboardMarkup
from telegram.error import TelegramError

from bot.companion import Companion
from bot.db.models import GoalCheckin, Patient
from bot.delivery.kind import Claimed, DispatchReport
from bot.delivery.recurring import RecurringKind
from bot.domain.goals import active_goals, checkin_done, claim_due_checkins
from bot.telegram.keyboards import goal_checkin_keyboard

log = logging.getLogger(__name__)


def goal_checkin_message(
    companion: Companion, session: Session, patient_id: int
) -> tuple[str, InlineKeyboardMarkup] | None:
    """The weekly check-in on the patient's active goals; None without any."""
    patient = session.get_one(Patient, patient_id)
    goals = active_goals(session, patient_id)
    if not goals:
        return None
    text = companion.texts.render(
        "goal_checkin.html", first_name=patient.first_name or "", goals=goals
    )
    return text, goal_checkin_keyboard(companion, [(goal.id, goal.number) for goal in goals])


class GoalCheckinKind(RecurringKind):
    name = "goal check-in"
    order = 20
    model = GoalCheckin

    def claim_patients(self, companion: Companion, session: Session, now: datetime) -> list[int]:
        default_timezone = companion.settings.default_timezone
        return claim_due_checkins(session, now, companion.schedule, default_timezone)

    async def deliver(
        self, companion: Companion, bot: Bot, claimed: Claimed, report: DispatchReport
    ) -> None:
        """Send the check-in and set the next, a week on."""
        patient_id, default_timezone = claimed.row_id, companion.settings.default_timezone
        with companion.sessions.begin() as session:
            checkin = goal_checkin_message(companion, session, patient_id)
            if checkin is None:
                checkin_done(
                    session, patient_id, companion.clock(), companion.schedule, default_timezone
                )
                return
        async with companion.chat_lock(claimed.chat_id):
            try:
                await bot.send_message(claimed.chat_id, checkin[0], reply_markup=checkin[1])
            except TelegramError as exc:
                self.failed(companion, patient_id, exc)
                return
            with companion.sessions.begin() as session:
                checkin_done(
                    session, patient_id, companion.clock(), companion.schedule, default_timezone
                )
        report.delivered[self.name] += 1
        log.info("sent the goal check-in to patient %s", patient_id)


KIND = GoalCheckinKind()
