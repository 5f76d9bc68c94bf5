"""What a kind of delivery is: the rows it claims, how it composes, sends and records them.

The dispatch job (dispatch.py) runs every kind this folder holds, in their `order`: a module
here that defines `KIND` is found and run, so a new kind of message the companion sends on its
own (a reflection prompt, a weekly recap, a practice reminder, a goal check-in, ...) is one new
module, and the job itself does not change. The job owns the transactions and the chats'
locks: per batch, one transaction claims, one composes every message, the messages are sent
(no transaction is open meanwhile), and one records every outcome.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session
from telegram import Bot
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.companion import Companion

# Messages on their way at once, of every kind (a batch): enough to keep Telegram's 30 a second
# busy over a slow link, few enough that a patient's reply, queued in the rate limiter behind
# them, still goes out within a second, and that a crash leaves few sent but unrecorded.
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


@dataclass
class Delivery:
    """One claimed row on its way: the message composed for it, and how sending went."""

    claimed: Claimed
    message: Any  # whatever the kind composed; its send() knows what to do with it
    begun: bool = False  # False once the batch is done: the bot was stopping, give it back
    receipt: Any = None  # what send() returned (a kind records, say, the Telegram message)
    error: TelegramError | None = None  # Telegram did not take it
    crashed: bool = False  # a bug of ours: the claim is left to run out and be taken again

    @property
    def sent(self) -> bool:
        return self.begun and self.error is None and not self.crashed


class DeliveryKind(Protocol):
    name: str  # in the report and the logs
    order: int  # kinds with a lower order are sent first in a tick

    def claim(
        self, companion: Companion, session: Session, now: datetime, report: DispatchReport
    ) -> list[Claimed]:
        """Claim a batch of the rows due at `now`, in `session`; an empty list when none are."""
        ...

    def compose(
        self,
        companion: Companion,
        session: Session,
        batch: list[Claimed],
        report: DispatchReport,
    ) -> list[Delivery]:
        """Load and render the batch's messages in `session`, under their chats' locks. A row
        with nothing to send (or that can no longer be sent) is settled here and left out."""
        ...

    async def send(self, companion: Companion, bot: Bot, delivery: Delivery) -> Any:
        """Send one composed message; what it returns is the delivery's receipt. Telegram's
        refusal is raised as TelegramError."""
        ...

    def record(
        self,
        companion: Companion,
        session: Session,
        deliveries: list[Delivery],
        report: DispatchReport,
    ) -> None:
        """Record every outcome of the batch in `session`: sent, refused by Telegram, or never
        begun (given back, due as it was)."""
        ...


def unreachable(error: TelegramError) -> bool:
    """Telegram will not deliver to this chat: blocked, deactivated, or no such chat."""
    return isinstance(error, Forbidden) or (
        isinstance(error, BadRequest) and "chat not found" in error.message.lower()
    )
