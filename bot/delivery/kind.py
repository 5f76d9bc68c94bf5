"""What a kind of delivery is: the rows it claims, how it sends one and what it records.

The dispatch job (dispatch.py) runs every kind this folder holds, in their `order`: a module
here that defines `KIND` is found and run, so a new kind of message the companion sends on its
own (a reflection prompt, a weekly recap, a practice reminder, a goal check-in, ...) is one new
module, and the job itself does not change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session
from telegram import Bot
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.companion import Companion

# Messages on their way at once, of every kind: enough to keep Telegram's 30 a second busy over
# a slow link, few enough that a patient's reply, queued in the rate limiter behind them, still
# goes out within a second.
IN_FLIGHT = 10


@dataclass(frozen=True)
class Claimed:
    """A row claimed for sending: its id (a prompt's, or the patient's for a row per patient),
    the chat it goes to, and the lease that names the claim."""

    row_id: int
    chat_id: int
    lease: datetime


@dataclass
class DispatchReport:
    """What one tick did."""

    sent: list[int] = field(default_factory=list)  # reflection prompts sent, by id
    deferred: int = 0  # prompts pushed past quiet hours or spaced after the previous one
    retrying: int = 0
    failed: int = 0
    delivered: Counter[str] = field(default_factory=Counter)  # messages sent, by kind name


class DeliveryKind(Protocol):
    name: str  # in the report and the logs
    order: int  # kinds with a lower order are sent first in a tick

    def claim(
        self, companion: Companion, session: Session, now: datetime, report: DispatchReport
    ) -> list[Claimed]:
        """Claim a batch of the rows due at `now`, in `session`; an empty list when none are."""
        ...

    async def deliver(
        self, companion: Companion, bot: Bot, claimed: Claimed, report: DispatchReport
    ) -> None:
        """Send one claimed row under its chat's lock and record what happened."""
        ...

    def release(self, companion: Companion, claimed: Claimed) -> None:
        """Give a claimed row back unsent, due as it was (the bot is stopping)."""
        ...


def unreachable(error: TelegramError) -> bool:
    """Telegram will not deliver to this chat: blocked, deactivated, or no such chat."""
    return isinstance(error, Forbidden) or (
        isinstance(error, BadRequest) and "chat not found" in error.message.lower()
    )
