"""What the kinds sent on a patient's own clock share (the weekly recap, a practice reminder,
the goals' check-in): one row per patient with a due time, claimed with a lease
(bot/domain/recurring.py), composed in one transaction, sent under the chat's lock, recorded in
another, and tried again later when Telegram does not take the message.

A kind says how to compose its message, how to send it and how to record it; delivering is
the same for all of them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy.orm import Session
from telegram import Bot, InlineKeyboardMarkup
from telegram.error import RetryAfter, TelegramError

from bot.companion import Companion
from bot.db import queries
from bot.db.models import Patient
from bot.delivery.kind import Claimed, DispatchReport, unreachable
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

    def claim_patients(self, companion: Companion, session: Session, now: datetime) -> list[int]:
        raise NotImplementedError

    def compose(self, companion: Companion, session: Session, patient_id: int) -> M | None:
        """The message for the patient; None when there is nothing to say this time (it is
        recorded as done all the same)."""
        raise NotImplementedError

    async def send(self, companion: Companion, bot: Bot, chat_id: int, message: M) -> None:
        if not isinstance(message, Text):
            raise TypeError(f"{self.name}: override send() for {type(message).__name__}")
        await bot.send_message(chat_id, message.text, reply_markup=message.keyboard)

    def record(self, companion: Companion, session: Session, patient_id: int) -> None:
        """Delivered (or nothing to deliver): set the next due time."""
        raise NotImplementedError

    async def then(self, companion: Companion, bot: Bot, claimed: Claimed) -> None:
        """What follows a delivery, still under the chat's lock; nothing by default."""

    def claim(
        self, companion: Companion, session: Session, now: datetime, report: DispatchReport
    ) -> list[Claimed]:
        patients = self.claim_patients(companion, session, now)
        chats = queries.chats_of_patients(session, patients)
        return [Claimed(patient_id, chats[patient_id], now + LEASE) for patient_id in patients]

    async def deliver(
        self, companion: Companion, bot: Bot, claimed: Claimed, report: DispatchReport
    ) -> None:
        """Compose in one transaction, send, record in another: no transaction stays open
        while Telegram is asked."""
        patient_id = claimed.row_id
        with companion.sessions.begin() as session:
            message = self.compose(companion, session, patient_id)
            if message is None:
                self.record(companion, session, patient_id)
                return
        async with companion.chat_lock(claimed.chat_id):
            try:
                await self.send(companion, bot, claimed.chat_id, message)
            except TelegramError as exc:
                self.failed(companion, patient_id, exc)
                return
            with companion.sessions.begin() as session:
                self.record(companion, session, patient_id)
            await self.then(companion, bot, claimed)
        report.delivered[self.name] += 1
        log.info("sent the %s to patient %s", self.name, patient_id)

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
