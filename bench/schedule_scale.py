"""Benchmark 3, the scale of the schedule: the dispatch tick's claim as the table grows.

Runs the real claim (bot.delivery.reflection.claim_due: release expired leases, select due rows,
claim them) on a SQLite file, rolled back after each tick, with 100 prompts due, of which a claim
takes bot.delivery.reflection.CLAIMED_AT_ONCE (those it can send soon). The baseline database
holds 1,000 future and 1,000 already-sent prompts besides; the large one 1,000,000 of each.
Ticks alternate between the databases; each figure is the median tick. A flat ratio (near 1)
is the goal: the partial index on pending rows keeps the claim's cost independent of the rows
it does not claim. For contrast, a copy of the large database with an index on the due time
alone instead of the partial index.

    .venv/bin/python -m bench.schedule_scale [--quick]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from bench.common import (
    PROMPTS,
    Result,
    add_patients,
    add_prompts,
    indexes_dropped,
    print_results,
    sqlite_time,
)
from bot.core.schedule import load_schedule
from bot.db.crypto import Cipher, new_key, use_cipher
from bot.db.migrate import upgrade_to_head
from bot.db.session import create_db_engine, create_session_factory
from bot.delivery.kind import DispatchReport
from bot.delivery.reflection import CLAIMED_AT_ONCE, claim_due

NUMBER, NAME = 3, "Schedule scale"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PATIENTS = 2000
DUE = 100
LEASE = timedelta(minutes=2)
PARTIAL_INDEX = "ix_scheduled_prompts_pending_due"


def populate(engine: Engine, sent: int, future: int) -> None:
    use_cipher(Cipher([new_key().encode()]))  # the migrations encrypt as they go
    upgrade_to_head(engine)
    with engine.begin() as connection:
        add_patients(connection, PATIENTS, NOW, treated_seconds_ago=60 * 86400)
        with indexes_dropped(connection, "scheduled_prompts"):
            # Sent a month ago, one a second; future from an hour ahead; due five minutes ago.
            for key, count, status, due, was_sent in (
                ("s", sent, "sent", sqlite_time(NOW, "-2592000 - n"), True),
                ("f", future, "pending", sqlite_time(NOW, "3600 + n"), False),
                ("d", DUE, "pending", sqlite_time(NOW, "-300 - n"), False),
            ):
                add_prompts(
                    connection,
                    count,
                    patients=PATIENTS,
                    status=status,
                    due=due,
                    step_key=f"'{key}' || n",
                    sent=was_sent,
                    created=NOW - timedelta(days=60),
                )
        connection.exec_driver_sql("ANALYZE")


def due_index_only(path: Path, copy: Path) -> None:
    """A copy of the database whose claim can use only an index on the due time."""
    shutil.copyfile(path, copy)  # whole: SQLite folds the WAL in when the last connection closes
    engine = create_db_engine(f"sqlite:///{copy}")
    with engine.begin() as connection:
        connection.execute(text(f"DROP INDEX {PARTIAL_INDEX}"))
        connection.execute(text("CREATE INDEX ix_due_only ON scheduled_prompts (due_at)"))
        connection.execute(text("ANALYZE"))
    engine.dispose()


def measure(paths: list[Path], rounds: int) -> list[float]:
    """The median claim tick of each database, ticks interleaved across them."""
    schedule = load_schedule(PROMPTS)
    engines = [create_db_engine(f"sqlite:///{path}") for path in paths]
    factories = [create_session_factory(engine) for engine in engines]
    times: list[list[float]] = [[] for _ in paths]
    for _ in range(rounds):
        for sessions, series in zip(factories, times, strict=True):
            with sessions() as session:
                start = time.perf_counter()
                claimed = claim_due(session, NOW, schedule, "UTC", DispatchReport(), LEASE)
                series.append(time.perf_counter() - start)
                session.rollback()
            if len(claimed) != min(DUE, CLAIMED_AT_ONCE):
                raise RuntimeError(f"claimed {len(claimed)} prompts, not {CLAIMED_AT_ONCE}")
    for engine in engines:
        engine.dispose()
    return [statistics.median(series) for series in times]


def run(quick: bool = False) -> list[Result]:
    size = 20_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        paths = [folder / "baseline.sqlite3", folder / "large.sqlite3", folder / "naive.sqlite3"]
        for path, count in zip(paths[:2], (1_000, size), strict=False):
            engine = create_db_engine(f"sqlite:///{path}")
            populate(engine, sent=count, future=count)
            engine.dispose()
        due_index_only(paths[1], paths[2])
        base, large, naive = measure(paths, rounds=9 if quick else 25)
    tick = f"claim tick ({DUE} due, median)"
    return [
        Result.of(
            NUMBER,
            NAME,
            f"{tick}: {size:,} future + {size:,} sent prompts vs 1,000 + 1,000",
            large,
            base,
            "s",
            "ratio < 1.5",
            lambda ratio: ratio < 1.5,
        ),
        Result.of(
            NUMBER,
            NAME,
            f"for contrast, {tick} with an index on the due time alone: {size:,} + {size:,} "
            "vs the baseline",
            naive,
            base,
            "s",
        ),
    ]


if __name__ == "__main__":
    print_results(run(quick="--quick" in sys.argv))
