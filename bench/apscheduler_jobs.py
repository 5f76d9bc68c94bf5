"""The common alternative to due times in rows, for benchmark 5: one APScheduler job per prompt
in APScheduler 3's SQLAlchemyJobStore (on SQLite), as python-telegram-bot's JobQueue would keep
them with a persistent job store.

``fill URL --jobs N --timed K``: a running BackgroundScheduler adds K date-trigger jobs one by
one (add_job: one transaction each) and times them, then N - 2K more are written straight into
its table in the same form (pickled job state; timing N adds would take minutes), then K more
are added and timed at the full size. Prints JSON: seconds per add, first and last K.

``start URL``: starts a BackgroundScheduler on that store, prints READY, and runs until its
standard input closes; the benchmark times the start and reads its memory.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.sqlalchemy import (  # type: ignore[import-untyped]
    SQLAlchemyJobStore,
)
from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
    BackgroundScheduler,
)
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]

FUNCTION = "bench.apscheduler_jobs:send_prompt"  # textual, so any process can load the jobs
# Every job is far in the future: neither adding nor starting runs one.
FIRST_DUE = datetime(2030, 1, 1, tzinfo=UTC)


def send_prompt(patient_id: int, prompt_id: int) -> None:
    """What each job would call."""


def scheduler_on(url: str) -> Any:
    return BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone=UTC)


def add_timed(scheduler: Any, numbers: range) -> float:
    """Seconds per add_job, over `numbers` (prompt numbers)."""
    start = time.perf_counter()
    for n in numbers:
        scheduler.add_job(
            FUNCTION,
            "date",
            run_date=FIRST_DUE + timedelta(minutes=n),
            args=[n % 100_000, n],
            id=f"prompt-{n}",
        )
    return (time.perf_counter() - start) / max(1, len(numbers))


def write_rows(scheduler: Any, numbers: range) -> None:
    """Jobs for `numbers` as add_job would store them, in one transaction."""
    if not numbers:
        return
    store = scheduler._lookup_jobstore("default")
    template = store.lookup_job("prompt-0").__getstate__()
    rows = []
    for n in numbers:
        run_date = FIRST_DUE + timedelta(minutes=n)
        state = template | {
            "id": f"prompt-{n}",
            "args": (n % 100_000, n),
            "trigger": DateTrigger(run_date, UTC),
            "next_run_time": run_date,
        }
        rows.append(
            {
                "id": state["id"],
                "next_run_time": run_date.timestamp(),
                "job_state": pickle.dumps(state, store.pickle_protocol),
            }
        )
    with store.engine.begin() as connection:
        connection.execute(store.jobs_t.insert(), rows)


def fill(url: str, jobs: int, timed: int) -> None:
    timed = max(1, min(timed, jobs // 2))
    scheduler = scheduler_on(url)
    scheduler.start()
    first = add_timed(scheduler, range(timed))
    write_rows(scheduler, range(timed, jobs - timed))
    last = add_timed(scheduler, range(jobs - timed, jobs))
    scheduler.shutdown()
    print(json.dumps({"per_add_first": first, "per_add_last": last, "timed": timed}))


def start(url: str) -> None:
    scheduler = scheduler_on(url)
    scheduler.start()
    print("READY", flush=True)
    sys.stdin.read()
    scheduler.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    filling = commands.add_parser("fill")
    filling.add_argument("url")
    filling.add_argument("--jobs", type=int, required=True)
    filling.add_argument("--timed", type=int, required=True)
    commands.add_parser("start").add_argument("url")
    args = parser.parse_args()
    if args.command == "fill":
        fill(args.url, args.jobs, args.timed)
    else:
        start(args.url)


if __name__ == "__main__":
    main()
