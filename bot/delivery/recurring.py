"""What the kinds sent on a patient's own clock share (the weekly recap, a practice reminder,
the goals' check-in): one row per patient with a due time, claimed with a lease
(bot/domain/recurring.py), and tried again later when Telegram does not take the message.

A kind says how to claim, compose and record for one patient (and how to send, when its
message is more than a text with buttons); the batch-wise compose, send and record the
dispatch job calls are the same for all of them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session
from telegram import Bot, InlineKeyboardMarkup
from telegram.error import RetryAfter, TelegramError

from bot.companion import Companion
from bot.db import queries
from bot.db.models import Patient
from bot.delivery.kind import Claimed, Delivery, DispatchReport, unreachable
from bot.domain.patients import mark_unreachable
from bot.domain.recurring import LEASE, Recurring, release_claim, release_for_retry

log = logging.getLogger(__name__)

RETRY = timedelta(minutes=5)


@dataclass(frozen=True)
class Text:
    """A message of one text and its buttons."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None


M = TypeVar("M")


class RecurringKind(Generic[M]):
    """A kind of delivery with one row per patient in `model`; its row ids are patient ids."""

    name: str
    order: int
    model: type[Recurring]

    # -- what a kind says --------------------------------------------------------------------

    def claim_patients(self, companion: Companion, session: Session, now: datetime) -> list[int]:
        raise NotImplementedError

    def compose_for(self, companion: Companion, session: Session, patient_id: int) -> M | None:
        """The message for the patient; None when there is nothing to say this time (it is
        recorded as done all the same)."""
        raise NotImplementedError

    async def send_to(self, companion: Companion, bot: Bot, chat_id: int, message: M) -> Any:
        """Send it; what this returns reaches record_for."""
        if not isinstance(message, Text):
            raise TypeError(f"{self.name}: override send_to() for {type(message).__name__}")
        return await bot.send_message(chat_id, message.text, reply_markup=message.keyboard)

    def record_for(
        self, companion: Companion, session: Session, patient_id: int, receipt: Any
    ) -> None:
        """Delivered, or nothing to deliver (receipt None): set the next due time."""
        raise NotImplementedError

    # -- what the dispatch job calls ---------------------------------------------------------

    def claim(
        self, companion: Companion, session: Session, now: datetime, report: DispatchReport
    ) -> list[Claimed]:
        patients = self.claim_patients(companion, session, now)
        chats = queries.chats_of_patients(session, patients)
        return [Claimed(patient_id, chats[patient_id], now + LEASE) for patient_id in patients]

    def compose(
        self,
        companion: Companion,
        session: Session,
        batch: list[Claimed],
        report: DispatchReport,
    ) -> list[Delivery]:
        deliveries = []
        for claimed in batch:
            message = self.compose_for(companion, session, claimed.row_id)
            if message is None:
                self.record_for(companion, session, claimed.row_id, None)
            else:
                deliveries.append(Delivery(claimed, message))
        return deliveries

    async def send(self, companion: Companion, bot: Bot, delivery: Delivery) -> Any:
        return await self.send_to(companion, bot, delivery.claimed.chat_id, delivery.message)

    def record(
        self,
        companion: Companion,
        session: Session,
        deliveries: list[Delivery],
        report: DispatchReport,
    ) -> None:
        for delivery in deliveries:
            patient_id = delivery.claimed.row_id
            if delivery.crashed:
                continue  # the claim runs out and it is taken again
            if not delivery.begun:
                release_claim(session, self.model, patient_id)
            elif delivery.error is not None:
                self._failed(companion, session, patient_id, delivery.error)
            else:
                self.record_for(companion, session, patient_id, delivery.receipt)
                report.delivered[self.name] += 1
                log.info("sent the %s to patient %s", self.name, patient_id)

    def _failed(
        self, companion: Companion, session: Session, patient_id: int, error: TelegramError
    ) -> None:
        """Telegram did not take it: try again later (when Telegram says, on 429), and stop for
        a patient it cannot reach."""
        wait = error.retry_after if isinstance(error, RetryAfter) else RETRY
        delay = wait if isinstance(wait, timedelta) else timedelta(seconds=wait)
        release_for_retry(session, self.model, patient_id, companion.clock() + delay)
        if unreachable(error):
            mark_unreachable(session, session.get_one(Patient, patient_id), companion.clock())
        log.warning(
            "the %s for patient %s will be retried: %s",
            self.name,
            patient_id,
            type(error).__name__,
        )
