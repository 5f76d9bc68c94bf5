"""Benchmark 2, dispatch: the bot's CPU per prompt sent, and the pace under Telegram's limits.

Unthrottled: 10,000 patients each have a check-in prompt due.
bot.delivery.dispatch.dispatch_due, with the bot the Application uses (its rate limiter set far
above the rate reached), is called until every prompt is sent: it claims them batch by batch,
renders each (encrypted first name decrypted, Jinja template, keyboard), sends it to the fake
Bot API (in its own process) and records it as sent. The baseline is a bare loop of python-
telegram-bot send_message calls, the same number in flight as the dispatcher keeps, to the same
fake, with exactly the text and buttons the dispatcher last sent. The figure is this process's
CPU time per prompt.

Limited: 600 prompts due at once with the default limiter (30 a second overall, the default
per chat). All should be sent in 600 / 30 = 20 s, within 5 %; the fake reports the most
messages it received in any one second.

    .venv/bin/python -m bench.dispatch_cost [--quick]
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.request import HTTPXRequest

from bench.common import (
    FIRST_CHAT_ID,
    TOKEN,
    FakeApi,
    Result,
    add_patients,
    add_prompts,
    bench_settings,
    print_results,
    sqlite_time,
)
from bot.app import build_application, build_companion
from bot.companion import utc_now
from bot.db.crypto import current_cipher
from bot.db.session import create_db_engine
from bot.delivery.dispatch import dispatch_due
from bot.delivery.kind import IN_FLIGHT

NUMBER, NAME = 2, "Dispatch"
OVERALL = 30  # Telegram's limit, the bot's default


@dataclass(frozen=True)
class Dispatched:
    cpu: float  # CPU seconds per prompt
    seconds: float  # from the first claim to the last prompt recorded as sent
    stats: dict[str, Any]  # the fake's


async def dispatch_all(fake: FakeApi, folder: Path, count: int, **limits: Any) -> Dispatched:
    settings = bench_settings(folder, fake.base_url, **limits)
    companion = build_companion(settings)
    now = utc_now().replace(microsecond=0)
    engine = create_db_engine(settings.database_url)
    with engine.begin() as connection:
        add_patients(connection, count, now, first_name_token=current_cipher().encrypt("Alex"))
        add_prompts(
            connection,
            count,
            patients=count,
            status="pending",
            due=sqlite_time(now, "-60"),
            step_key="'checkin'",
            created=now,
        )
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    bot = build_application(companion).bot
    await bot.initialize()
    await fake.reset_async()
    cpu, start = time.process_time(), time.perf_counter()
    sent = 0
    while sent < count:
        report = await dispatch_due(companion, bot)
        if not report.sent:
            raise RuntimeError(f"dispatch stalled after {sent} of {count}: {report}")
        sent += len(report.sent)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    await bot.shutdown()
    companion.sessions.kw["bind"].dispose()
    stats = await fake.stats_async()
    if stats["sends"] != count:
        raise RuntimeError(f"the fake received {stats['sends']} messages, not {count}")
    return Dispatched(cpu / count, seconds, stats)


async def bare_loop(fake: FakeApi, count: int, sample: dict[str, Any]) -> float:
    """CPU seconds per send_message, IN_FLIGHT at a time, of the text and buttons in `sample`."""
    text = sample["text"]
    markup = InlineKeyboardMarkup.de_json(json.loads(sample["reply_markup"]), None)
    chats = iter(range(FIRST_CHAT_ID, FIRST_CHAT_ID + count))
    bot = Bot(TOKEN, base_url=fake.base_url, request=HTTPXRequest(connection_pool_size=256))

    async def worker() -> None:
        for chat_id in chats:
            await bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup)

    async with bot:
        await fake.reset_async()
        cpu = time.process_time()
        async with asyncio.TaskGroup() as group:
            for _ in range(IN_FLIGHT):
                group.create_task(worker())
        cpu = time.process_time() - cpu
    stats = await fake.stats_async()
    if stats["sends"] != count:
        raise RuntimeError(f"the fake received {stats['sends']} messages, not {count}")
    return cpu / count


async def measure(quick: bool) -> tuple[Dispatched, float, Dispatched, int, int]:
    count, limited = (500, 90) if quick else (10_000, 600)
    with FakeApi() as fake:
        with tempfile.TemporaryDirectory() as folder:
            ours = await dispatch_all(fake, Path(folder), count)
        bare = await bare_loop(fake, count, ours.stats["last_send"])
        with tempfile.TemporaryDirectory() as folder:
            paced = await dispatch_all(
                fake,
                Path(folder),
                limited,
                rate_limit_overall=OVERALL,
                rate_limit_per_chat=1,
                rate_limit_chat_burst=3,
            )
    return ours, bare, paced, count, limited


def run(quick: bool = False) -> list[Result]:
    ours, bare, paced, count, limited = asyncio.run(measure(quick))
    target = limited / OVERALL
    peak = paced.stats["max_sends_in_a_second"]
    return [
        Result.of(
            NUMBER,
            NAME,
            f"bot CPU per prompt, {count:,} due, unthrottled, vs a bare PTB send_message loop",
            ours.cpu * 1000,
            bare * 1000,
            "ms",
            "≤ 1.2 × the bare loop",
            lambda ratio: ratio <= 1.2,
        ),
        Result.of(
            NUMBER,
            NAME,
            f"{limited} due at once, limiter at {OVERALL}/s: time until all sent, vs "
            f"{limited}/{OVERALL} s (at most {peak} reached the fake in any second)",
            paced.seconds,
            target,
            "s",
            "within 5 % of the target",
            lambda ratio: abs(ratio - 1) <= 0.05,
        ),
    ]


if __name__ == "__main__":
    print_results(run(quick="--quick" in sys.argv))
