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
from bot.delivery.kind import Claimed
from bot.delivery.recurring import RecurringKind
from bot.domain.patients import zone_of
from bot.domain.recap import Recap, build_recap
from bot.domain.weekly import claim_due_recaps, recap_sent
from bot.telegram.sending import send_recap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecapMessage:
    recap: Recap
    zone: ZoneInfo


class WeeklyRecapKind(RecurringKind[RecapMessage]):
    name = "weekly recap"
    order = 10
    model = WeeklyRecap

    def claim_patients(self, companion: Companion, session: Session, now: datetime) -> list[int]:
        return claim_due_recaps(session, now, companion.settings.default_timezone)

    def compose(
        self, companion: Companion, session: Session, patient_id: int
    ) -> RecapMessage | None:
        default_timezone = companion.settings.default_timezone
        patient = session.get_one(Patient, patient_id)
        recap = build_recap(
            session, patient, companion.schedule, companion.clock(), default_timezone
        )
        return RecapMessage(recap, zone_of(patient, default_timezone))

    async def send(
        self, companion: Companion, bot: Bot, chat_id: int, message: RecapMessage
    ) -> None:
        await send_recap(companion, bot, chat_id, message.recap, message.zone, weekly=True)

    def record(self, companion: Companion, session: Session, patient_id: int) -> None:
        """The next one a week on."""
        patient = session.get_one(Patient, patient_id)
        recap_sent(session, patient, companion.clock(), companion.settings.default_timezone)

    async def then(self, companion: Companion, bot: Bot, claimed: Claimed) -> None:
        """With the weekly recap on, the goals' check-in comes with it; if it fails, the recap
        stands and the check-in comes next week."""
        checkin = goal_checkin.KIND
        with companion.sessions.begin() as session:
            message = checkin.compose(companion, session, claimed.row_id)
        if message is None:
            return
        try:
            await checkin.send(companion, bot, claimed.chat_id, message)
        except TelegramError as exc:
            log.warning(
                "the goal check-in after patient %s's recap failed: %s", claimed.row_id, exc
            )
            return
        with companion.sessions.begin() as session:
            checkin.record(companion, session, claimed.row_id)


KIND = WeeklyRecapKind()
