"""Benchmark 4, the recap: /recap of the latest week for a long history against a short one.

Two patients in one SQLite database live the same routine: a treatment every week, each
followed by its schedule's first seven prompts, one sent a day; every day an answer to that
day's prompt (encrypted text) and a mood; a free entry every third day and a practice every
other day; a session note per treatment; two goals with a weekly check each. One has done so
for three years, the other for a week; both have the same latest week and the same prompts
still to come.

The figure is the median time to build the recap (bot.domain.recap.build_recap: every query, every
decryption) and render its text (recap.html), each round in a fresh session, the two
patients' rounds interleaved. The mood chart (matplotlib) is left out: it draws the same week
for both and would only hide a difference.

    .venv/bin/python -m bench.recap_history [--quick]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from bench.common import PROMPTS, Result, print_results
from bot.core.schedule import Schedule, load_schedule
from bot.db.crypto import Cipher, new_key, use_cipher
from bot.db.migrate import upgrade_to_head
from bot.db.models import (
    Entry,
    EntryKind,
    Goal,
    GoalCheck,
    Patient,
    Practice,
    PromptStatus,
    ScheduledPrompt,
    SessionNote,
    Treatment,
)
from bot.db.session import SessionFactory, create_db_engine, create_session_factory
from bot.domain.recap import build_recap
from bot.render.jinja import Renderer

NUMBER, NAME = 4, "Recap"
NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
PERIOD_DAYS = 7  # a treatment a week, its first seven steps one a day
# What both recaps must show alike (treatment numbers and goals' past weeks may differ).
COMPARED = (
    "prompts_sent",
    "prompts_answered",
    "mood",
    "practices",
    "highlights",
    "free_entries",
    "days_written",
)
ANSWER = (
    "Today the feeling of the session came back while I was cooking: the warmth, and the sense "
    "that my father's garden is still there inside me. I sat with it for a while and let it be. "
    "Tomorrow I want to walk by the river before work."
)


def add_history(session: Session, schedule: Schedule, patient_id: int, days: int) -> Patient:
    """`days` of the routine up to NOW for a new patient; returns the patient."""
    chat_id = 10_000 + patient_id
    start = NOW - timedelta(days=days)
    patient = Patient(
        id=patient_id,
        telegram_user_id=chat_id,
        chat_id=chat_id,
        first_name="Alex",
        consented_at=start - timedelta(days=1),
        timezone="Europe/Berlin",
        quiet_start_minute=22 * 60,
        quiet_end_minute=8 * 60,
        created_at=start - timedelta(days=1),
    )
    session.add(patient)
    session.flush()  # no relationships: rows go in the order they are flushed
    goals = [
        Goal(patient_id=patient_id, number=n, kind=kind, text=text, created_at=start)
        for n, kind, text in ((1, "build", "walk every morning"), (2, "break", "phone in bed"))
    ]
    session.add_all(goals)
    session.flush()
    steps = [step for step in schedule.steps if not step.before_session][:PERIOD_DAYS]
    treatment: Treatment | None = None
    # Counted back from NOW, so that both patients' latest weeks are the same.
    for back in range(days, -1, -1):
        morning = NOW - timedelta(days=back)
        if back % PERIOD_DAYS == 0:
            treatment = Treatment(
                patient_id=patient_id,
                number=(treatment.number + 1) if treatment else 1,
                occurred_at=morning - timedelta(hours=3),
                timezone="Europe/Berlin",
                intention="To meet my grief with kindness",
                created_at=morning - timedelta(hours=3),
            )
            session.add(treatment)
            session.flush()
            session.add(
                SessionNote(
                    patient_id=patient_id,
                    treatment_id=treatment.id,
                    author="patient",
                    text="The music carried me; I saw the garden again.",
                    created_at=morning,
                )
            )
        assert treatment is not None
        step = steps[-back % PERIOD_DAYS]  # the treatment was `-back % 7` days ago
        prompt = ScheduledPrompt(
            patient_id=patient_id,
            treatment_id=treatment.id,
            step_key=step.key,
            due_at=morning,
            status=PromptStatus.SENT,
            attempts=1,
            sent_at=morning,
            telegram_message_id=back * 10 + 1,
            created_at=treatment.created_at,
        )
        session.add(prompt)
        session.flush()
        message = back * 10 + 2
        session.add_all(
            [
                Entry(
                    patient_id=patient_id,
                    treatment_id=treatment.id,
                    prompt_id=prompt.id,
                    kind=EntryKind.TEXT,
                    text=ANSWER,
                    chat_id=chat_id,
                    message_id=message,
                    acknowledged_at=morning + timedelta(hours=1),
                    created_at=morning + timedelta(hours=1),
                ),
                Entry(
                    patient_id=patient_id,
                    treatment_id=treatment.id,
                    kind=EntryKind.MOOD,
                    scale_value=3 + back % 6,
                    chat_id=chat_id,
                    created_at=morning + timedelta(hours=10),
                ),
            ]
        )
        if back % 3 == 0:
            session.add(
                Entry(
                    patient_id=patient_id,
                    treatment_id=treatment.id,
                    kind=EntryKind.TEXT,
                    text="A quiet day. I noticed the light on the water.",
                    chat_id=chat_id,
                    message_id=message + 1,
                    created_at=morning + timedelta(hours=8),
                )
            )
        if back % 2 == 0:
            session.add(
                Practice(
                    patient_id=patient_id,
                    treatment_id=treatment.id,
                    kind="meditation",
                    minutes=10,
                    done_at=morning + timedelta(hours=2),
                )
            )
        if back % 7 == 0:
            week = morning.isocalendar()
            for goal in goals:
                session.add(
                    GoalCheck(
                        goal_id=goal.id,
                        week=f"{week.year}-W{week.week:02}",
                        answer="yes",
                        created_at=morning,
                    )
                )
    # The next steps of the latest treatment are still to come.
    assert treatment is not None
    for n, step in enumerate(steps[-3:]):
        session.add(
            ScheduledPrompt(
                patient_id=patient_id,
                treatment_id=treatment.id,
                step_key=f"{step.key}_next",
                due_at=NOW + timedelta(days=n + 1),
                status=PromptStatus.PENDING,
                attempts=0,
                created_at=NOW,
            )
        )
    return patient


def recap_seconds(
    sessions: SessionFactory, schedule: Schedule, texts: Renderer, patient_id: int
) -> tuple[float, str]:
    """Seconds to build and render the patient's recap, and what it counted."""
    with sessions() as session:
        start = time.perf_counter()
        patient = session.get_one(Patient, patient_id)
        recap = build_recap(session, patient, schedule, NOW, "UTC")
        blocks = texts.render_blocks("recap.html", **recap.context, weekly=False)
        seconds = time.perf_counter() - start
    shown = {key: recap.context[key] for key in COMPARED}
    shown["highlights"] = [{**h, "treatment_number": None} for h in shown["highlights"]]
    return seconds, repr(shown) if blocks else ""


def run(quick: bool = False) -> list[Result]:
    # Whole weeks, so that each history starts with a treatment: 13 weeks or three years.
    days, rounds = (13 * 7, 9) if quick else (156 * 7, 31)
    use_cipher(Cipher([new_key().encode()]))
    schedule = load_schedule(PROMPTS)
    texts = Renderer()
    with tempfile.TemporaryDirectory() as folder:
        engine = create_db_engine(f"sqlite:///{Path(folder) / 'recap.sqlite3'}")
        upgrade_to_head(engine)
        sessions = create_session_factory(engine)
        with sessions.begin() as session:
            add_history(session, schedule, 1, days)
            add_history(session, schedule, 2, 7)
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
        long, short = [], []
        for _ in range(rounds):
            seconds, long_text = recap_seconds(sessions, schedule, texts, 1)
            long.append(seconds)
            seconds, short_text = recap_seconds(sessions, schedule, texts, 2)
            short.append(seconds)
        engine.dispose()
    # The same latest week, so the same recap: only the history behind it differs.
    if long_text != short_text:
        raise RuntimeError(f"the recaps differ:\n{long_text}\n---\n{short_text}")
    years = f"{days / 364:.0f} years" if days >= 364 else f"{days} days"
    return [
        Result.of(
            NUMBER,
            NAME,
            f"/recap of the latest week (build + render, median of {rounds}): {years} of "
            "daily history vs one week",
            statistics.median(long),
            statistics.median(short),
            "s",
            "ratio < 2",
            lambda ratio: ratio < 2,
        )
    ]


if __name__ == "__main__":
    print_results(run(quick="--quick" in sys.argv))
