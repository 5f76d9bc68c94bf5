"""Benchmark 6: one, two and three real `python -m bot webhook` processes on one PostgreSQL
database dispatch 10,000 due prompts to 10,000 patients.

For each count of instances: the processes start and report healthy, then 10,000 prompts are
written due now in one transaction, and the clock runs until the fake Bot API (the tests' own,
in this process) has received a prompt for every patient. Reported: prompts a second, as a
ratio to one instance in the same run, and how many prompts arrived twice (must be zero).
Telegram's limits are lifted (RATE_LIMIT_OVERALL=10000) so the figure is the bot's own
capacity; in production Telegram's 30 a second is the bound, far below it.

Needs PostgreSQL: TEST_DATABASE_URL, or postgresql+psycopg://postgres@127.0.0.1:5432/test. The
database's public schema is emptied.

    .venv/bin/python -m bench.instances [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import create_engine, insert, text

from bench.common import ROOT, Result, print_results
from bot.db.crypto import Cipher, new_key, use_cipher
from bot.db.migrate import upgrade_to_head
from bot.db.models import Patient, PromptStatus, ScheduledPrompt, Treatment
from tests.fake_telegram import FakeTelegram
from tests.postgres import answers

NUMBER = 6
NAME = "PostgreSQL instances"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "bench-instances-secret-0123456789"
ONE_INSTANCE_GOAL = 150  # prompts a second
FIRST_CHAT_ID = 10_000
WAIT = 600.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def reset(url: str, key: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    use_cipher(Cipher([key.encode()]))
    upgrade_to_head(engine)
    engine.dispose()


def seed(url: str, patients: int, now: datetime) -> None:
    """`patients` consented patients with one treatment and one prompt due now each."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE patients RESTART IDENTITY CASCADE"))
        connection.execute(
            insert(Patient),
            [
                {
                    "telegram_user_id": FIRST_CHAT_ID + n,
                    "chat_id": FIRST_CHAT_ID + n,
                    "consented_at": now - timedelta(days=1),
                    "created_at": now - timedelta(days=1),
                }
                for n in range(patients)
            ],
        )
        connection.execute(
            insert(Treatment),
            [
                {
                    "patient_id": n,
                    "number": 1,
                    "occurred_at": now - timedelta(hours=3),
                    "timezone": "UTC",
                    "created_at": now,
                }
                for n in range(1, patients + 1)
            ],
        )
        connection.execute(
            insert(ScheduledPrompt),
            [
                {
                    "patient_id": n,
                    "treatment_id": n,
                    "step_key": "checkin",
                    "due_at": now,
                    "status": PromptStatus.PENDING,
                    "attempts": 0,
                    "created_at": now,
                }
                for n in range(1, patients + 1)
            ],
        )
    engine.dispose()


async def dispatch_with(
    count: int, url: str, key: str, patients: int, workdir: Path
) -> tuple[float, int]:
    """Seconds for `count` instances to send a prompt to each of `patients`; duplicates."""
    async with FakeTelegram() as fake:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "DATABASE_URL": url,
            "DATA_KEYS": key,
            "DISPATCH_INTERVAL_SECONDS": "1",
            "DEFAULT_TIMEZONE": "UTC",
            "RATE_LIMIT_OVERALL": "10000",
            "RATE_LIMIT_PER_CHAT": "10000",
            "RATE_LIMIT_CHAT_BURST": "100",
            "WEBHOOK_URL": "https://companion.example.org/telegram",
            "WEBHOOK_SECRET": SECRET,
            "LOG_LEVEL": "WARNING",
        }
        ports = [free_port() for _ in range(count)]
        processes = []
        for n, port in enumerate(ports):
            with (workdir / f"instance-{count}-{n}.log").open("ab") as log:
                processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bot",
                        "webhook",
                        env=env | {"WEBHOOK_PORT": str(port)},
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=log,
                    )
                )
        try:
            await _until_healthy(ports)
            start = time.monotonic()
            await asyncio.to_thread(seed, url, patients, datetime.now(UTC))

            def chats_reached() -> int:
                return len({r.chat_id for r in fake.sent() if r.result is not None})

            if not await fake.wait_until(lambda: chats_reached() >= patients, WAIT):
                raise RuntimeError(f"{count} instance(s) reached {chats_reached()} of {patients}")
            seconds = time.monotonic() - start
            await asyncio.sleep(2)  # a late duplicate would show by now
            copies = Counter(r.chat_id for r in fake.sent() if r.result is not None)
            return seconds, sum(n - 1 for n in copies.values())
        finally:
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                await asyncio.wait_for(process.wait(), 30)


async def _until_healthy(ports: list[int]) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as client:
        for port in ports:
            while True:
                try:
                    async with client.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("an instance did not become healthy")
                await asyncio.sleep(0.2)


def run(quick: bool = False) -> list[Result]:
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_URL)
    if not answers(url):
        raise RuntimeError(f"needs PostgreSQL: none answers at {url} (set TEST_DATABASE_URL)")
    patients = 500 if quick else 10_000
    key = new_key()
    reset(url, key)
    timings: dict[int, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for count in (1, 2, 3):
            timings[count] = asyncio.run(dispatch_with(count, url, key, patients, Path(folder)))
    one_rate = patients / timings[1][0]
    results = []
    # The figure for one instance is absolute: at least 150 prompts a second.
    results.append(
        Result(
            NUMBER,
            NAME,
            f"1 instance: prompts a second for {patients:,} due (goal: {ONE_INSTANCE_GOAL} /s)",
            one_rate,
            ONE_INSTANCE_GOAL,
            "/s",
            f"≥ {ONE_INSTANCE_GOAL} /s",
            one_rate >= ONE_INSTANCE_GOAL,
            one_rate / ONE_INSTANCE_GOAL,
        )
    )
    for count, (seconds, twice) in timings.items():
        if count > 1:
            results.append(
                Result.of(
                    NUMBER,
                    NAME,
                    f"{count} instances: prompts a second for {patients:,} due, vs 1 instance "
                    "(on this machine's 2 cores, shared with PostgreSQL and the fake)",
                    patients / seconds,
                    one_rate,
                    "/s",
                )
            )
        results.append(
            Result.of(
                NUMBER,
                NAME,
                f"{count} instance(s): prompts sent twice (of {patients:,})",
                twice,
                patients,
                "",
                "0 duplicates",
                lambda ratio: ratio == 0,
            )
        )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 prompts instead of 10,000")
    print_results(run(parser.parse_args().quick))
