"""The weekly check-in on a patient's goals, on its own when the weekly recap is off."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.companion import Companion
from bot.db.models import GoalCheckin, Patient
from bot.delivery.recurring import RecurringKind, Text
from bot.domain.goals import active_goals, checkin_done, claim_due_checkins
from bot.telegram.keyboards import goal_checkin_keyboard


class GoalCheckinKind(RecurringKind[Text]):
    name = "goal check-in"
    order = 20
    model = GoalCheckin

    def claim_patients(self, companion: Companion, session: Session, now: datetime) -> list[int]:
        default_timezone = companion.settings.default_timezone
        return claim_due_checkins(session, now, companion.schedule, default_timezone)

    def compose_for(self, companion: Companion, session: Session, patient_id: int) -> Text | None:
        """The check-in on the patient's active goals; None without any."""
        goals = active_goals(session, patient_id)
        if not goals:
            return None
        patient = session.get_one(Patient, patient_id)
        text = companion.texts.render(
            "goal_checkin.html", first_name=patient.first_name or "", goals=goals
        )
        return Text(
            text, goal_checkin_keyboard(companion, [(goal.id, goal.number) for goal in goals])
        )

    def record_for(
        self, companion: Companion, session: Session, patient_id: int, receipt: object
    ) -> None:
        """The next one a week on."""
        checkin_done(
            session,
            patient_id,
            companion.clock(),
            companion.schedule,
            companion.settings.default_timezone,
        )


KIND = GoalCheckinKind()
