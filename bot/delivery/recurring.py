"""What the kinds sent on a patient's own clock share (the weekly recap, a practice reminder,
the goals' check-in): one row per patient with a due time, claimed with a lease
(bot/domain/recurring.py), and tried again later when Telegram does not take the message."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from telegram.error import RetryAfter, TelegramError

from bot.companion import Companion
from bot.db import queries
from bot.db.models import Patient
from bot.delivery.kind import Claimed, DispatchReport, unreachable
from bot.domain.patients import mark_unreachable
from bot.domain.recurring import LEASE, Recurring, release_claim, release_for_retry

log = logging.getLogger(__name__)

RETRY = timedelta(minutes=5)


class RecurringKind:
    """A kind of delivery with one row per patient in `model`; its row ids are patient ids."""

    name: str
    order: int
    model: type[Recurring]

    def claim_patients(self, companion: Companion, session: Session, now: datetime) -> list[int]:
        raise NotImplementedError

    def claim(
        self, companion: Companion, session: Session, now: datetime, report: DispatchReport
    ) -> list[Claimed]:
        patients = self.claim_patients(companion, session, now)
        chats = queries.chats_of_patients(session, patients)
        return [Claimed(patient_id, chats[patient_id], now + LEASE) for patient_id in patients]

    def release(self, companion: Companion, claimed: Claimed) -> None:
        with companion.sessions.begin() as session:
            release_claim(session, self.model, claimed.row_id)

    def failed(self, companion: Companion, patient_id: int, error: TelegramError) -> None:
        """Telegram did not take it: try again later (when Telegram says, on 429), and stop for
        a patient it cannot reach."""
        wait = error.retry_after if isinstance(error, RetryAfter) else RETRY
        delay = wait if isinstance(wait, timedelta) else timedelta(seconds=wait)
        with companion.sessions.begin() as session:
            release_for_retry(session, self.model, patient_id, companion.clock() + delay)
            if unreachable(error):
                mark_unreachable(session, session.get_one(Patient, patient_id), companion.clock())
        log.warning(
            "the %s for patient %s will be retried: %s",
            self.name,
            patient_id,
            type(error).__name__,
        )
