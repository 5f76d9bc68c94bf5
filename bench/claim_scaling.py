"""How the dispatcher's claim tick grows with sent and future prompts.

Runs the real claim (release expired leases, select due rows, claim them) on a SQLite file,
rolled back after each tick, first on a small database (the baseline), then on one with a million
sent and many future prompts. Prints each median and the ratio to the baseline measured in the same
run; a flat ratio (near 1) is the goal. For contrast it repeats the large case with an index on
the due time alone instead of the partial index on pending rows.

    .venv/bin/python bench/claim_scaling.py [--sent 1000000] [--future 200000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, text

from bot.db.crypto import Cipher, new_key, use_cipher
from bot.db.migrate import upgrade_to_head
from bot.db.models import Patient, PromptStatus, ScheduledPrompt, Treatment
from bot.db.session import create_db_engine, create_session_factory
from bot.dispatch import DispatchReport, claim_due
from bot.schedule import load_schedule

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PATIENTS = 2000
DUE = 100
ROUNDS = 25
LEASE = timedelta(minutes=2)
PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


def populate(engine: Engine, sent: int, future: int) -> None:
    use_cipher(Cipher([new_key().encode()]))  # the migrations encrypt as they go
    upgrade_to_head(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(Patient),
            [
                {
                    "telegram_user_id": n,
                    "chat_id": n,
                    "consented_at": NOW - timedelta(days=90),
                    "created_at": NOW - timedelta(days=90),
                }
                for n in range(1, PATIENTS + 1)
            ],
        )
        connection.execute(
            insert(Treatment),
            [
                {
                    "patient_id": n,
                    "number": 1,
                    "occurred_at": NOW - timedelta(days=60),
                    "timezone": "UTC",
                    "created_at": NOW - timedelta(days=60),
                }
                for n in range(1, PATIENTS + 1)
            ],
        )
        rows = []
        for n in range(sent + future + DUE):
            patient = n % PATIENTS + 1
            if n < sent:
                status, due = PromptStatus.SENT, NOW - timedelta(days=30, seconds=n)
            elif n < sent + future:
                status, due = PromptStatus.PENDING, NOW + timedelta(hours=1, seconds=n)
            else:
                status, due = PromptStatus.PENDING, NOW - timedelta(minutes=5, seconds=n)
            rows.append(
                {
                    "patient_id": patient,
                    "treatment_id": patient,
                    "step_key": f"s{n}",
                    "due_at": due,
                    "status": status,
                    "attempts": 0,
                    "sent_at": due if status == PromptStatus.SENT else None,
                    "created_at": NOW - timedelta(days=60),
                }
            )
            if len(rows) == 50_000:
                connection.execute(insert(ScheduledPrompt), rows)
                rows = []
        if rows:
            connection.execute(insert(ScheduledPrompt), rows)
        connection.execute(text("ANALYZE"))


def tick_seconds(engine: Engine) -> float:
    sessions = create_session_factory(engine)
    schedule = load_schedule(PROMPTS)
    times = []
    for _ in range(ROUNDS):
        with sessions() as session:
            start = time.perf_counter()
            claimed = claim_due(session, NOW, schedule, "UTC", DispatchReport(), LEASE)
            times.append(time.perf_counter() - start)
            session.rollback()
        assert claimed, "nothing was due"
    return statistics.median(times)


def measure(folder: Path, name: str, sent: int, future: int, due_index_only: bool) -> float:
    engine = create_db_engine(f"sqlite:///{folder / name}.sqlite3")
    populate(engine, sent, future)
    if due_index_only:
        with engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_scheduled_prompts_pending_due"))
            connection.execute(text("CREATE INDEX ix_due_only ON scheduled_prompts (due_at)"))
            connection.execute(text("ANALYZE"))
    seconds = tick_seconds(engine)
    engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sent", type=int, default=1_000_000)
    parser.add_argument("--future", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = measure(Path(folder), "baseline", 1_000, 1_000, due_index_only=False)
        large = measure(Path(folder), "large", args.sent, args.future, due_index_only=False)
        naive = measure(Path(folder), "naive", args.sent, args.future, due_index_only=True)
    print(f"claim tick, {DUE} due rows, median of {ROUNDS} (SQLite)")
    print("| database | median ms | ratio to baseline |")
    print("| --- | ---: | ---: |")
    print(f"| baseline: 1,000 sent, 1,000 future | {base * 1000:.2f} | 1.00 |")
    rows = (("partial index", large), ("due-time index only", naive))
    for label, value in rows:
        print(
            f"| {args.sent:,} sent, {args.future:,} future, {label} | {value * 1000:.2f} "
            f"| {value / base:.2f} |"
        )


if __name__ == "__main__":
    main()
