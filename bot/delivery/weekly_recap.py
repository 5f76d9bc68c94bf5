"""The weekly recap without asking, on the patient's day and hour; the goals' check-in with it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session
from telegram import Bot
from telegram.error import TelegramError

from bot.companion import Companion
from bot.db.models import Patient, WeeklyRecap
from bot.delivery import goal_checkin
from bot.delivery.recurring import RecurringKind, Text
from bot.domain.patients import zone_of
from bot.domain.recap import Recap, build_recap
from bot.domain.weekly import claim_due_recaps, recap_sent
from bot.telegram.sending import send_recap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecapMessage:
    recap: Recap
    zone: ZoneInfo
    checkin: Text | None  # the goals' check-in that comes with it, if they have goals


class WeeklyRecapKind(RecurringKind[RecapMessage]):
    name = "weekly recap"
    order = 10
    model = WeeklyRecap

    def claim_patients(self, companion: Companion, session: Session, now: datetime) -> list[int]:
        return claim_due_recaps(session, now, companion.settings.default_timezone)

    def compose_for(
        self, companion: Companion, session: Session, patient_id: int
    ) -> RecapMessage | None:
        default_timezone = companion.settings.default_timezone
        patient = session.get_one(Patient, patient_id)
        recap = build_recap(
            session, patient, companion.schedule, companion.clock(), default_timezone
        )
        checkin = goal_checkin.KIND.compose_for(companion, session, patient_id)
        return RecapMessage(recap, zone_of(patient, default_timezone), checkin)

    async def send_to(
        self, companion: Companion, bot: Bot, chat_id: int, message: RecapMessage
    ) -> bool:
        """The recap, then the goals' check-in; if the check-in fails, the recap stands and the
        check-in comes next week. Whether the check-in went out."""
        await send_recap(companion, bot, chat_id, message.recap, message.zone, weekly=True)
        if message.checkin is None:
            return False
        try:
            await goal_checkin.KIND.send_to(companion, bot, chat_id, message.checkin)
        except TelegramError as exc:
            log.warning("the goal check-in after a recap failed: %s", type(exc).__name__)
            return False
        return True

    def record_for(
        self, companion: Companion, session: Session, patient_id: int, receipt: object
    ) -> None:
        """The next one a week on; the check-in's too, if it went out."""
        patient = session.get_one(Patient, patient_id)
        recap_sent(session, patient, companion.clock(), companion.settings.default_timezone)
        if receipt is True:
            goal_checkin.KIND.record_for(companion, session, patient_id, receipt)


KIND = WeeklyRecapKind()
