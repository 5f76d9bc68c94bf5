"""The weekly recap without asking, on the patient's day and hour; the goals' check-in with it."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session
from telegram import Bot
from telegram.error import TelegramError

from bot.companion import Companion
from bot.db.models import Patient, WeeklyRecap
from bot.delivery.goal_checkin import goal_checkin_message
from bot.delivery.kind import Claimed, DispatchReport
from bot.delivery.recurring import RecurringKind
from bot.domain.goals import checkin_done
from bot.domain.patients import zone_of
from bot.domain.recap import build_recap
from bot.domain.weekly import claim_due_recaps, recap_sent
from bot.telegram.sending import send_recap

log = logging.getLogger(__name__)


class WeeklyRecapKind(RecurringKind):
    name = "weekly recap"
    order = 10
    model = WeeklyRecap

    def claim_patients(self, companion: Companion, session: Session, now: datetime) -> list[int]:
        return claim_due_recaps(session, now, companion.settings.default_timezone)

    async def deliver(
        self, companion: Companion, bot: Bot, claimed: Claimed, report: DispatchReport
    ) -> None:
        """Build and send the recap, then schedule the next one."""
        patient_id, default_timezone = claimed.row_id, companion.settings.default_timezone
        with companion.sessions.begin() as session:
            patient = session.get_one(Patient, patient_id)
            recap = build_recap(
                session, patient, companion.schedule, companion.clock(), default_timezone
            )
            zone = zone_of(patient, default_timezone)
        async with companion.chat_lock(claimed.chat_id):
            try:
                await send_recap(companion, bot, claimed.chat_id, recap, zone, weekly=True)
            except TelegramError as exc:
                self.failed(companion, patient_id, exc)
                return
            with companion.sessions.begin() as session:
                recap_sent(
                    session,
                    session.get_one(Patient, patient_id),
                    companion.clock(),
                    default_timezone,
                )
                checkin = goal_checkin_message(companion, session, patient_id)
            if checkin is not None:
                # With the weekly recap on, the goals' check-in comes with it.
                try:
                    await bot.send_message(claimed.chat_id, checkin[0], reply_markup=checkin[1])
                except TelegramError as exc:
                    log.warning(
                        "the goal check-in after patient %s's recap failed: %s", patient_id, exc
                    )
                else:
                    with companion.sessions.begin() as session:
                        checkin_done(
                            session,
                            patient_id,
                            companion.clock(),
                            companion.schedule,
                            default_timezone,
                        )
        report.delivered[self.name] += 1
        log.info("sent the weekly recap to patient %s", patient_id)


KIND = WeeklyRecapKind()
