"""The dispatch job: every kind of delivery this folder holds, claimed, sent and recorded.

Due times live in the database, and each kind (kind.py) claims its due rows with a lease, so
two dispatchers never send the same row and a claim a crash left behind runs out and is taken
again. A tick takes the kinds in their order and each kind's rows batch after batch until none
is due, IN_FLIGHT messages on their way at a time; the rate limiter (bot/telegram/ratelimit.py)
spaces them under Telegram's limits. The next batch is claimed while the last one's messages
are still travelling, so no claim waits long for its turn.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from collections.abc import Callable
from functools import cache

from telegram import Bot

from bot.companion import Companion
from bot.delivery.kind import IN_FLIGHT, Claimed, DeliveryKind, DispatchReport

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


async def _start_sending(
    companion: Companion,
    bot: Bot,
    kind: DeliveryKind,
    claimed: list[Claimed],
    report: DispatchReport,
    keep_going: Callable[[], bool],
    sends: asyncio.TaskGroup,
    in_flight: asyncio.Semaphore,
) -> None:
    """Deliver claimed rows in `sends`, `in_flight` at a time with the batches before, and
    return once each has begun. When the bot is stopping, those not begun are given back."""
    begun = [asyncio.Event() for _ in claimed]

    async def send_one(row: Claimed, started: asyncio.Event) -> None:
        async with in_flight:
            started.set()
            if not keep_going():
                kind.release(companion, row)
                return
            try:
                await kind.deliver(companion, bot, row, report)
            except Exception:
                # A bug must not cancel the others; this claim runs out and is taken again.
                log.exception("%s %s could not be sent", kind.name, row.row_id)

    for row, started in zip(claimed, begun, strict=True):
        sends.create_task(send_one(row, started))
    for started in begun:
        await started.wait()


async def dispatch_due(
    companion: Companion, bot: Bot, keep_going: Callable[[], bool] = lambda: True
) -> DispatchReport:
    """One tick: each kind's due rows, claimed and sent batch after batch. `keep_going` turns
    false when the bot is asked to stop: the tick then winds down."""
    report = DispatchReport()
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    for kind in delivery_kinds():
        # A kind's messages are all out before the next kind's go: a patient's due prompt
        # comes before the weekly recap that sums it up.
        async with asyncio.TaskGroup() as sends:
            for _ in range(BATCHES_PER_TICK):
                if not keep_going():
                    break
                with companion.sessions.begin() as session:
                    claimed = kind.claim(companion, session, companion.clock(), report)
                if not claimed:
                    break
                await _start_sending(
                    companion, bot, kind, claimed, report, keep_going, sends, in_flight
                )
    return report
