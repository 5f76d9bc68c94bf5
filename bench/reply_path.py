"""Benchmark 1, the reply path: journal replies handled per second, end to end.

Patients who consented, logged a treatment and were sent the check-in prompt each reply to it
with a short text. The companion is the real Application (build_companion + build_application,
SQLite file, migrations, a DATA_KEYS key, the durable inbox, encryption at rest, limits set far
above the rate reached) long polling a fake Bot API that runs in its own process: each reply is
stored in the inbox, saved as an encrypted entry, acknowledged ("Thank you. Saved as your
answer to Check-in.") and the prompt's buttons are removed (an editMessageReplyMarkup).

The baseline is a bare python-telegram-bot echo bot (ApplicationBuilder defaults, one
MessageHandler replying with the text) on the same fake, with the same number of updates.

All updates are queued at the fake at once; the rate is updates / (last reply's arrival - push),
timed by the fake. Both bots run in this process, one after the other, and the fake in another,
so this process's CPU time over a run (until the bot is idle again) is the bot's alone. Rounds
alternate echo and companion; each figure is the median over the rounds.

    .venv/bin/python -m bench.reply_path [--quick]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bench.common import (
    FIRST_CHAT_ID,
    TOKEN,
    FakeApi,
    Result,
    add_patients,
    add_prompts,
    bench_settings,
    median,
    print_results,
    sqlite_time,
)
from bot.app import build_application, build_companion
from bot.companion import utc_now
from bot.db.crypto import current_cipher
from bot.db.session import create_db_engine
from bot.telegram.updates import ChatOrderedUpdateProcessor

NUMBER, NAME = 1, "Reply path"
REPLY = (
    "I slept well and woke up calm. The images from the session keep coming back: my father's "
    "garden, the light through the leaves. I want to walk there this weekend and just sit."
)
ACK = "Thank you. Saved"  # the first words of the acknowledgement of an answer
POLL_TIMEOUT = 10  # seconds, python-telegram-bot's default long poll
WAIT = 300.0


@dataclass(frozen=True)
class Run:
    rate: float  # updates handled per second
    cpu: float  # CPU seconds of the bot per update


async def measure(fake: FakeApi, app: Any, first_chat: int, count: int, ack: str | None) -> Run:
    """Push `count` replies from `count` chats at once; time them until the last reply."""
    await app.initialize()
    if app.post_init is not None:  # run_polling() calls it; starting piecewise, we do
        await app.post_init(app)
    await app.start()
    await app.updater.start_polling(poll_interval=0, timeout=POLL_TIMEOUT)
    await fake.reset_async()
    cpu = time.process_time()
    await fake.push(first_chat, count, REPLY)
    stats = await fake.wait_sends_async(count, WAIT)
    await idle(app)
    cpu = time.process_time() - cpu
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    if app.post_shutdown is not None:
        await app.post_shutdown(app)
    if stats["sends"] < count:
        raise RuntimeError(f"only {stats['sends']} of {count} replies arrived: {stats}")
    if ack is not None and stats["texts"].get(ack, 0) != count:
        raise RuntimeError(f"not every reply was acknowledged as an answer: {stats['texts']}")
    return Run(rate=count / (stats["last_send_at"] - stats["pushed_at"]), cpu=cpu / count)


async def idle(app: Any) -> None:
    """Until every update taken in has been handled to the end (the companion still records
    the acknowledgement and removes the prompt's buttons after the reply)."""
    processor = app.update_processor

    def busy() -> bool:
        return not app.update_queue.empty() or (
            isinstance(processor, ChatOrderedUpdateProcessor)
            and bool(processor.in_hand or processor.queued)
        )

    # The processor signals nothing when it falls idle: look every few milliseconds.
    while busy():  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the text."""
    if update.message is not None and update.message.text is not None:
        await update.message.reply_text(update.message.text)


async def echo_run(fake: FakeApi, first_chat: int, count: int) -> Run:
    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder().token(TOKEN).base_url(fake.base_url).build()
    )
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return await measure(fake, app, first_chat, count, ack=None)


async def companion_run(fake: FakeApi, folder: Path, count: int) -> Run:
    settings = bench_settings(folder, fake.base_url)
    companion = build_companion(settings)
    now = utc_now().replace(microsecond=0)
    engine = create_db_engine(settings.database_url)
    with engine.begin() as connection:
        add_patients(connection, count, now, first_name_token=current_cipher().encrypt("Alex"))
        # Each patient's check-in went out ten minutes ago as Telegram message 1.
        add_prompts(
            connection,
            count,
            patients=count,
            status="sent",
            due=sqlite_time(now, "-600"),
            step_key="'checkin'",
            sent=True,
            message_id="1",
            created=now,
        )
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    app = build_application(companion)
    # add_patients: patient p writes from chat FIRST_CHAT_ID + p.
    return await measure(fake, app, FIRST_CHAT_ID + 1, count, ack=ACK)


async def measure_all(quick: bool) -> tuple[list[Run], list[Run], int]:
    count, rounds = (200, 1) if quick else (2000, 3)
    echoes, companions = [], []
    with FakeApi() as fake:
        for round_number in range(rounds):
            echoes.append(await echo_run(fake, 1_000_000 + round_number * count, count))
            with tempfile.TemporaryDirectory() as folder:
                companions.append(await companion_run(fake, Path(folder), count))
    return echoes, companions, count


def run(quick: bool = False) -> list[Result]:
    echoes, companions, count = asyncio.run(measure_all(quick))
    rounds = f"{count:,} replies, median of {len(echoes)}"
    return [
        Result.of(
            NUMBER,
            NAME,
            f"replies handled per second ({rounds}) vs a bare PTB echo bot",
            median([r.rate for r in companions]),
            median([r.rate for r in echoes]),
            "/s",
            "≥ 0.8 × the echo bot's rate",
            lambda ratio: ratio >= 0.8,
        ),
        Result.of(
            NUMBER,
            NAME,
            f"bot CPU per reply ({rounds}) vs the echo bot",
            median([r.cpu for r in companions]) * 1000,
            median([r.cpu for r in echoes]) * 1000,
            "ms",
            "≤ 1.6 × the echo bot's CPU",
            lambda ratio: ratio <= 1.6,
        ),
    ]


if __name__ == "__main__":
    print_results(run(quick="--quick" in sys.argv))
