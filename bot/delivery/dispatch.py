"""The dispatch job: every kind of delivery this folder holds, claimed, sent and recorded.

Due times live in the database, and each kind (kind.py) claims its due rows with a lease, so
two dispatchers never send the same row and a claim a crash left behind runs out and is taken
again. A tick takes the kinds in their order and each kind's rows batch after batch until none
is due: one transaction claims rows, and for each batch of IN_FLIGHT of them one composes
the messages (under the chats' locks), they are sent with no transaction open, and one
transaction records how each went. The rate limiter (bot/telegram/ratelimit.py) spaces them
under Telegram's limits. The next batch is claimed and composed while the last one's messages
are still travelling, so no claim waits long for its turn.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from collections.abc import Callable
from contextlib import AsyncExitStack
from functools import cache

from telegram import Bot
from telegram.error import TelegramError

from bot.companion import Companion
from bot.delivery.kind import IN_FLIGHT, Claimed, Delivery, DeliveryKind, DispatchReport

log = logging.getLogger(__name__)

BATCHES_PER_TICK = 150  # of one kind; then the next kind gets its turn, and the next tick goes on


@cache
def delivery_kinds() -> tuple[DeliveryKind, ...]:
    """The KIND of every module in this folder, in their order: a new kind is a new module."""
    package = __name__.rpartition(".")[0]
    found: list[DeliveryKind] = []
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        kind = getattr(importlib.import_module(f"{package}.{module.name}"), "KIND", None)
        if kind is not None:
            found.append(kind)
    return tuple(sorted(found, key=lambda kind: kind.order))


async def _deliver_batch(
    companion: Companion,
    bot: Bot,
    kind: DeliveryKind,
    batch: list[Claimed],
    report: DispatchReport,
    keep_going: Callable[[], bool],
    previous: asyncio.Event | None,
    sending: asyncio.Event,
    recorded: asyncio.Event,
) -> None:
    """Under the batch's chats' locks: compose in one transaction; once the batch before is
    recorded (`previous`), send every message at once (`sending`); record in one transaction
    (`recorded`).

    Only one batch is on its way at a time, so a crash can leave at most one batch (IN_FLIGHT
    messages) sent but not recorded, to be sent again once its claims run out. The locks keep
    a reply to a message from being handled before the message is recorded as sent; they are
    taken in the order of the chat ids, so two instances' batches never wait in a circle."""
    try:
        async with AsyncExitStack() as locks:
            for chat_id in sorted({claimed.chat_id for claimed in batch}):
                await locks.enter_async_context(companion.chat_lock(chat_id))
            try:
                with companion.sessions.begin() as session:
                    deliveries = kind.compose(companion, session, batch, report)
            except Exception:
                # A bug must not stop the tick; these claims run out and are taken again.
                log.exception("a batch of %s could not be composed", kind.name)
                return
            if previous is not None:
                await previous.wait()
            # A batch goes whole or not at all: when the bot is stopping, record() gives back
            # what has not begun.
            begin = keep_going()
            sending.set()

            async def send_one(delivery: Delivery) -> None:
                delivery.begun = True
                try:
                    delivery.receipt = await kind.send(companion, bot, delivery)
                except TelegramError as exc:
                    delivery.error = exc
                except Exception:
                    # A bug must not cancel the others; this claim runs out and is taken again.
                    delivery.crashed = True
                    log.exception("%s %s could not be sent", kind.name, delivery.claimed.row_id)

            async with asyncio.TaskGroup() as sends:
                for delivery in deliveries if begin else []:
                    sends.create_task(send_one(delivery))
            if deliveries:
                try:
                    with companion.sessions.begin() as session:
                        kind.record(companion, session, deliveries, report)
                except Exception:
                    # The claims run out and what was sent goes again: rare, and said loudly.
                    log.exception("the outcomes of a batch of %s were not recorded", kind.name)
    finally:
        sending.set()
        recorded.set()


async def dispatch_due(
    companion: Companion, bot: Bot, keep_going: Callable[[], bool] = lambda: True
) -> DispatchReport:
    """One tick: each kind's due rows, claimed and sent batch after batch. `keep_going` turns
    false when the bot is asked to stop: the tick then winds down.

    The next batch is claimed and composed while the one before is on its way, and sent once
    that one is recorded."""
    report = DispatchReport()
    for kind in delivery_kinds():
        # A kind's messages are all out before the next kind's go: a patient's due prompt
        # comes before the weekly recap that sums it up.
        previous: asyncio.Event | None = None
        async with asyncio.TaskGroup() as batches:
            for _ in range(BATCHES_PER_TICK):
                if not keep_going():
                    break
                with companion.sessions.begin() as session:
                    claimed = kind.claim(companion, session, companion.clock(), report)
                if not claimed:
                    break
                for start in range(0, len(claimed), IN_FLIGHT):
                    sending, recorded = asyncio.Event(), asyncio.Event()
                    batches.create_task(
                        _deliver_batch(
                            companion,
                            bot,
                            kind,
                            claimed[start : start + IN_FLIGHT],
                            report,
                            keep_going,
                            previous,
                            sending,
                            recorded,
                        )
                    )
                    previous = recorded
                    await sending.wait()
    return report
