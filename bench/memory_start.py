"""Benchmark 5, memory and start: the bot's resident memory and time to ready with 100,000
patients and 1,000,000 scheduled prompts, against 10 patients and against a bare
python-telegram-bot echo bot (bench/echo_bot.py, started the same way).

Each database has its patients (consented, one treatment each), ten future prompts per patient,
and ten prompts due now (due again before each start). `python -m bot run` starts as a
subprocess (DATABASE_URL, DATA_KEYS, TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE_URL at the fake Bot
API in its own process, PROMPTS_DIR, DISPATCH_INTERVAL_SECONDS=1); time to ready is from
spawning it to its first getUpdates at the fake, its memory (RSS) is read then, and again once
its first dispatch tick has sent the ten due prompts. Starts alternate between the databases
(after one uncounted start); each figure is the median of five.

The common alternative, measured in the same run (bench/apscheduler_jobs.py): one APScheduler
job per prompt in APScheduler 3's SQLAlchemyJobStore on SQLite, 100,000 jobs. Reported beside
ours: the time to schedule one prompt (APScheduler's add_job, one transaction per job; ours,
bot.domain.treatments.log_treatment writing a treatment's prompts in one transaction, per prompt,
on the large database), and the scheduler's start time and memory with 100,000 jobs against 10.

    .venv/bin/python -m bench.memory_start [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from bench.common import (
    PROMPTS,
    ROOT,
    TOKEN,
    FakeApi,
    Result,
    add_patients,
    add_prompts,
    indexes_dropped,
    print_results,
    rss_mib,
    sqlite_time,
)
from bot.companion import utc_now
from bot.core.schedule import load_schedule
from bot.db.crypto import Cipher, new_key, use_cipher
from bot.db.migrate import upgrade_to_head
from bot.db.models import Patient, ScheduledPrompt
from bot.db.session import create_db_engine, create_session_factory
from bot.domain.treatments import log_treatment

NUMBER, NAME = 5, "Memory and start"
PROMPTS_PER_PATIENT = 10
DUE = 10
READY_WITHIN = 120.0
STARTS = 5


@dataclass(frozen=True)
class Start:
    seconds: float  # from spawn to ready
    rss: float  # MiB, when ready
    rss_after_tick: float  # MiB, after the first dispatch tick (bot only)


def populate(path: Path, key: str, patients: int) -> None:
    now = utc_now().replace(microsecond=0)
    engine = create_db_engine(f"sqlite:///{path}")
    cipher = Cipher([key.encode()])
    use_cipher(cipher)
    upgrade_to_head(engine)
    with engine.begin() as connection:
        add_patients(connection, patients, now, first_name_token=cipher.encrypt("Alex"))
        with indexes_dropped(connection, "scheduled_prompts"):
            add_prompts(
                connection,
                patients * PROMPTS_PER_PATIENT,
                patients=patients,
                status="pending",
                due=sqlite_time(now, "86400 + n"),  # from tomorrow, one a second
                step_key="'s' || n",
                created=now,
            )
            add_prompts(
                connection,
                DUE,
                patients=DUE,
                status="pending",
                due=sqlite_time(now, "-60"),
                step_key="'checkin'",
                created=now,
            )
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()


def make_due(database: Path) -> None:
    """The ten due prompts due again (an earlier start sent them)."""
    engine = create_db_engine(f"sqlite:///{database}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE scheduled_prompts SET status = 'pending', sent_at = NULL, attempts = 0, "
            "claimed_until = NULL, telegram_message_id = NULL, "
            f"due_at = {sqlite_time(utc_now().replace(microsecond=0), '-60')} "
            "WHERE step_key = 'checkin'"
        )
    engine.dispose()


@contextmanager
def polling(
    fake: FakeApi, folder: Path, module: list[str], env: dict[str, str], log_name: str
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """`python -m <module>` in `folder` until its first getUpdates: the process and its time
    from spawn to then; terminated on leaving."""
    fake.reset()
    log_path = folder / log_name
    with log_path.open("ab") as log:
        spawned = time.monotonic()
        # In the temporary folder: no .env of this repository is read.
        process = subprocess.Popen(
            [sys.executable, "-m", *module], cwd=folder, env={**os.environ, **env}, stderr=log
        )
    try:
        while (ready_at := fake.stats()["first_poll_at"]) is None:
            if process.poll() is not None or time.monotonic() - spawned > READY_WITHIN:
                raise RuntimeError(f"{module[0]} did not start: {log_path.read_text()}")
            time.sleep(0.01)
        yield process, ready_at - spawned
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_bot(fake: FakeApi, folder: Path, database: Path, key: str) -> Start:
    make_due(database)
    env = {
        "DATABASE_URL": f"sqlite:///{database}",
        "DATA_KEYS": key,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": fake.base_url,
        "PROMPTS_DIR": str(PROMPTS),
        "DISPATCH_INTERVAL_SECONDS": "1",
        "DEFAULT_TIMEZONE": "UTC",
    }
    with polling(fake, folder, ["bot", "run"], env, "bot.log") as (process, seconds):
        rss = rss_mib(process.pid)
        if fake.wait_sends(DUE, timeout=30)["sends"] < DUE:
            raise RuntimeError(f"the first tick did not send: {(folder / 'bot.log').read_text()}")
        time.sleep(0.5)  # the tick records what it sent
        after_tick = rss_mib(process.pid)
    return Start(seconds, rss, after_tick)


def start_echo_bot(fake: FakeApi, folder: Path) -> Start:
    """The bare echo bot (bench/echo_bot.py): from spawn to its first getUpdates."""
    env = {
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": fake.base_url,
    }
    with polling(fake, folder, ["bench.echo_bot"], env, "echo.log") as (process, seconds):
        rss = rss_mib(process.pid)
    return Start(seconds, rss, rss)


def start_apscheduler(url: str) -> Start:
    spawned = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.apscheduler_jobs", "start", url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    if process.stdout.readline().strip() != "READY":
        process.kill()
        raise RuntimeError("APScheduler did not start")
    seconds = time.monotonic() - spawned
    rss = rss_mib(process.pid)
    process.stdin.close()
    process.wait(timeout=20)
    return Start(seconds, rss, rss)


def fill_apscheduler(url: str, jobs: int, timed: int) -> dict[str, float]:
    command = ["bench.apscheduler_jobs", "fill", url, "--jobs", str(jobs), "--timed", str(timed)]
    done = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def our_seconds_per_prompt(database: Path, key: str, treatments: int) -> float:
    """log_treatment for patients of the large database, one transaction each, as /treatment
    does; seconds per prompt row written."""
    use_cipher(Cipher([key.encode()]))
    engine = create_db_engine(f"sqlite:///{database}")
    sessions = create_session_factory(engine)
    schedule = load_schedule(PROMPTS)
    seconds, logged = 0.0, []
    for patient_id in range(DUE + 1, DUE + 1 + treatments):
        now = utc_now()
        start = time.perf_counter()
        with sessions.begin() as session:
            patient = session.get_one(Patient, patient_id)
            logged.append(log_treatment(session, patient, now, now, schedule, "UTC").treatment.id)
        seconds += time.perf_counter() - start
    with sessions() as session:
        written = session.scalar(
            select(func.count(ScheduledPrompt.id)).where(ScheduledPrompt.treatment_id.in_(logged))
        )
    engine.dispose()
    if not written:
        raise RuntimeError("log_treatment wrote no prompts")
    return seconds / written


def median_start(starts: list[Start]) -> Start:
    return Start(
        statistics.median(s.seconds for s in starts),
        statistics.median(s.rss for s in starts),
        statistics.median(s.rss_after_tick for s in starts),
    )


def run(quick: bool = False) -> list[Result]:
    patients, jobs, timed = (2_000, 2_000, 100) if quick else (100_000, 100_000, 1_000)
    starts = 1 if quick else STARTS
    key = new_key()
    with tempfile.TemporaryDirectory() as temp, FakeApi() as fake:
        folder = Path(temp)
        small, large = folder / "small.sqlite3", folder / "large.sqlite3"
        populate(small, key, 10)
        populate(large, key, patients)
        ours: dict[Path, list[Start]] = {small: [], large: []}
        echoes: list[Start] = []
        start_bot(fake, folder, small, key)  # not counted: the first start warms caches
        start_echo_bot(fake, folder)
        for _ in range(starts):
            echoes.append(start_echo_bot(fake, folder))
            for database in (small, large):
                ours[database].append(start_bot(fake, folder, database, key))
        per_prompt = our_seconds_per_prompt(large, key, 50 if quick else 200)

        aps_small = f"sqlite:///{folder / 'aps_small.sqlite3'}"
        aps_large = f"sqlite:///{folder / 'aps_large.sqlite3'}"
        fill_apscheduler(aps_small, 10, 5)
        adds = fill_apscheduler(aps_large, jobs, timed)
        theirs: dict[str, list[Start]] = {aps_small: [], aps_large: []}
        for _ in range(starts):
            for url in (aps_small, aps_large):
                theirs[url].append(start_apscheduler(url))
    bot_small, bot_large = median_start(ours[small]), median_start(ours[large])
    echo = median_start(echoes)
    aps_10, aps_many = median_start(theirs[aps_small]), median_start(theirs[aps_large])
    size = f"{patients:,} patients, {patients * PROMPTS_PER_PATIENT:,} prompts vs 10 patients"
    jobs_text = f"{jobs:,} jobs vs 10"
    return [
        Result.of(
            NUMBER,
            NAME,
            f"time to ready (spawn to first getUpdates), {patients:,} patients, "
            f"{patients * PROMPTS_PER_PATIENT:,} prompts vs a bare PTB echo bot",
            bot_large.seconds,
            echo.seconds,
            "s",
            "≤ 2 × the echo bot's",
            lambda ratio: ratio <= 2,
        ),
        Result.of(
            NUMBER,
            NAME,
            f"resident memory when ready, {patients:,} patients, "
            f"{patients * PROMPTS_PER_PATIENT:,} prompts vs a bare PTB echo bot",
            bot_large.rss,
            echo.rss,
            "MiB",
            "≤ 1.5 × the echo bot's",
            lambda ratio: ratio <= 1.5,
        ),
        Result.of(
            NUMBER,
            NAME,
            f"time to ready (spawn to first getUpdates), {size}",
            bot_large.seconds,
            bot_small.seconds,
            "s",
            "ratio < 1.2",
            lambda ratio: ratio < 1.2,
        ),
        Result.of(
            NUMBER,
            NAME,
            f"resident memory when ready, {size}",
            bot_large.rss,
            bot_small.rss,
            "MiB",
            "ratio < 1.2",
            lambda ratio: ratio < 1.2,
        ),
        Result.of(
            NUMBER,
            NAME,
            f"resident memory after the first dispatch tick, {size}",
            bot_large.rss_after_tick,
            bot_small.rss_after_tick,
            "MiB",
            "ratio < 1.2",
            lambda ratio: ratio < 1.2,
        ),
        Result.of(
            NUMBER,
            NAME,
            "time to schedule one prompt: ours (log_treatment, one transaction per treatment, "
            f"per prompt, {patients * PROMPTS_PER_PATIENT:,} in the table) vs APScheduler "
            f"add_job (one transaction per job, last {adds['timed']:,} of {jobs:,})",
            per_prompt,
            adds["per_add_last"],
            "s",
        ),
        Result.of(
            NUMBER,
            NAME,
            f"APScheduler SQLAlchemyJobStore: time to start, {jobs_text} (ours, large: "
            f"{bot_large.seconds:.2f} s)",
            aps_many.seconds,
            aps_10.seconds,
            "s",
        ),
        Result.of(
            NUMBER,
            NAME,
            f"APScheduler SQLAlchemyJobStore: resident memory when started, {jobs_text} (ours, "
            f"large: {bot_large.rss:.0f} MiB)",
            aps_many.rss,
            aps_10.rss,
            "MiB",
        ),
    ]


if __name__ == "__main__":
    print_results(run(quick="--quick" in sys.argv))
