"""RETENTION_DAYS reaches every table that holds what a person wrote or did, each by its own
date; the daily job forgets spent invitations, old join attempts and where old notes came from."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from telegram.ext import CallbackContext

from bot.app import maintenance_job
from bot.config import Settings
from bot.db.models import (
    Base,
    Entry,
    Goal,
    GoalCheck,
    GoalCheckin,
    GuideInvite,
    GuideJoinAttempt,
    InboxUpdate,
    Patient,
    Practice,
    ScheduledPrompt,
    SessionNote,
    Treatment,
)
from bot.domain.rights import NOT_CONTENT, RETAINED
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser

RETENTION_DAYS = 7
SUNDAY_29_NOV_18_BERLIN = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)
SUNDAY_6_DEC_18_BERLIN = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
NEW_THINGS_AT = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
JOB_AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # the cutoff: Monday 30 Nov, 09:00 UTC


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"retention_days": RETENTION_DAYS})


async def invite(bot: Harness, user: TgUser) -> str:
    [code] = [
        match.group(1)
        for text in await bot.send(user, "/guide invite")
        if (match := re.search(r"<code>([A-Z0-9-]+)</code>", text))
    ]
    return code


async def run_daily_job(bot: Harness) -> None:
    """The maintenance job, as the job queue runs it once a day."""
    assert bot.app is not None
    await maintenance_job(CallbackContext(bot.app))


def test_it_classifies_every_table_for_retention():
    """A table holds a person's content and retention deletes it by a date of its own, or it
    is listed as holding none, with the reason: a new table cannot land unclassified."""
    tables = set(Base.metadata.tables)
    assert set(RETAINED) & set(NOT_CONTENT) == set()
    assert sorted(tables - set(RETAINED) - set(NOT_CONTENT)) == []
    assert sorted((set(RETAINED) | set(NOT_CONTENT)) - tables) == []
    for name, retained in RETAINED.items():
        table = Base.metadata.tables[name]
        for column in retained.by:
            assert column in table.c, f"{name}.{column}"
            assert isinstance(table.c[column].type, sa.DateTime | sa.TypeDecorator), column
        assert retained.rule
    assert all(reason.strip() for reason in NOT_CONTENT.values())


def what_is_kept(bot: Harness) -> dict[str, Any]:
    """For each table retention covers, what it holds now, in words a test can compare."""
    with bot.session() as session:
        patients = session.scalars(select(Patient).order_by(Patient.id)).all()
        return {
            "entries": sorted(e.text or "" for e in session.scalars(select(Entry))),
            "practices": sorted(p.minutes or 0 for p in session.scalars(select(Practice))),
            "session_notes": sorted(n.text for n in session.scalars(select(SessionNote))),
            "goal_checks": sorted(c.week for c in session.scalars(select(GoalCheck))),
            "goals": sorted(g.number for g in session.scalars(select(Goal))),
            "scheduled_prompts": [
                p.step_key
                for p in session.scalars(select(ScheduledPrompt).order_by(ScheduledPrompt.id))
            ],
            "treatments": sorted(t.number for t in session.scalars(select(Treatment))),
            "patients": {p.first_name: p.pending_intention for p in patients},
            "guide_invites": len(session.scalars(select(GuideInvite)).all()),
            "guide_join_attempts": len(session.scalars(select(GuideJoinAttempt)).all()),
            "inbox": session.scalar(select(sa.func.min(InboxUpdate.received_at))),
        }


async def checkin_answer(bot: Harness, user: TgUser, at: datetime, goal_id: int) -> None:
    """The weekly goal check-in at `at`, answered "yes" for one goal only."""
    bot.clock.set(at)
    before = len(bot.dispatched)
    await bot.dispatch()
    [checkin] = [r for r in bot.dispatched[before:] if "How did this week go?" in (r.text or "")]
    await bot.press(user, checkin.message_id, f"goal:{goal_id}:yes")
    bot.clock.advance(timedelta(hours=1))  # past the few words the check-in waits for


async def send_prompts_until(bot: Harness, user: TgUser, step: str) -> None:
    """Send the user's prompts in order until the one of this step has gone out."""
    while True:
        with bot.session() as session:
            status = session.scalars(
                select(ScheduledPrompt.status).where(ScheduledPrompt.step_key == step)
            ).one()
        if status == "sent":
            return
        await bot.next_prompt(user)


async def test_it_deletes_what_is_older_than_the_retention_each_table_by_its_own_date(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser, dave: TgUser
):
    bot = agreed
    await bot.agree(carol)
    # Wednesday 25 November: the old things.
    for goal in ("build: an old habit", "closed long ago", "checked lately", "closed lately"):
        await bot.send(alice, f"/goal add {goal}")
    await bot.send(alice, "/goal done 2")
    await bot.send(alice, "/treatment")
    await bot.send(alice, "Old entry")
    await bot.send(alice, "/practice meditation 10")
    await bot.send(alice, "/notes Old own note")
    await bot.send(bob, f"/guide join {await invite(bot, alice)}")
    await bot.send(bob, "/notes Old guide note")
    await bot.send(carol, "/guide invite")  # never used: it expires
    await bot.send(dave, "/guide join WRONG-CODE2")
    await bot.send(alice, "/intention Old hope")  # kept for her next treatment
    await send_prompts_until(bot, alice, "day3")
    await checkin_answer(bot, alice, SUNDAY_29_NOV_18_BERLIN, goal_id=3)
    await send_prompts_until(bot, alice, "week1")
    await checkin_answer(bot, alice, SUNDAY_6_DEC_18_BERLIN, goal_id=3)
    # Monday 7 December: the new things.
    bot.clock.set(NEW_THINGS_AT)
    await bot.send(alice, "/goal done 4")
    await bot.send(alice, "/goal add a new goal")
    await bot.send(alice, "New entry")
    await bot.send(alice, "/practice walk 20")
    await bot.send(alice, "/notes New own note")
    await bot.send(bob, "/notes New guide note")
    await bot.send(carol, "/guide invite")
    await bot.send(dave, "/guide join WRONG-CODE2")
    await bot.send(carol, "/intention New hope")

    cutoff = JOB_AT - timedelta(days=RETENTION_DAYS)
    before = what_is_kept(bot)
    assert before["inbox"] < cutoff
    bot.clock.set(JOB_AT)
    await run_daily_job(bot)
    after = what_is_kept(bot)
    assert after["inbox"] >= cutoff
    del before["inbox"], after["inbox"]
    steps = ["mood_first", "reflection", "day2", "mood_day3", "day3", "mood_week1", "week1"]
    assert before == {
        "entries": ["New entry", "Old entry"],
        "practices": [10, 20],
        "session_notes": ["New guide note", "New own note", "Old guide note", "Old own note"],
        "goal_checks": ["2026-W48", "2026-W49"],
        "goals": [1, 2, 3, 4, 5],
        "scheduled_prompts": ["checkin", *steps, "week2", "week4"],
        "treatments": [1],
        "patients": {"Alice": "Old hope", "Carol": "New hope"},
        "guide_invites": 3,
        "guide_join_attempts": 2,
    }
    assert after == {
        "entries": ["New entry"],
        "practices": [20],
        "session_notes": ["New guide note", "New own note"],
        # Goal 3 stays, answered lately; 1 was never answered since it was set; 2 was closed
        # long ago; 4 was closed lately.
        "goal_checks": ["2026-W49"],
        "goals": [3, 4, 5],
        # Sent since the cutoff, or still to come; the treatment stays while they do.
        "scheduled_prompts": ["mood_week1", "week1", "week2", "week4"],
        "treatments": [1],
        "patients": {"Alice": None, "Carol": "New hope"},
        "guide_invites": 1,
        "guide_join_attempts": 1,
    }
    # Every table retention covers was seen losing its old rows and keeping its new ones.
    assert set(before) | {"inbox"} == set(RETAINED)

    # Months later, with the rest of the schedule sent: nothing of it is left, the accounts
    # and their settings stay.
    await send_prompts_until(bot, alice, "week4")
    bot.clock.set(datetime(2027, 3, 1, 9, 0, tzinfo=UTC))
    await run_daily_job(bot)
    latest = what_is_kept(bot)
    assert latest == {
        "entries": [],
        "practices": [],
        "session_notes": [],
        "goal_checks": [],
        "goals": [],
        "scheduled_prompts": [],
        "treatments": [],
        "patients": {"Alice": None, "Carol": None},
        "guide_invites": 0,
        "guide_join_attempts": 0,
        "inbox": latest["inbox"],
    }
    with bot.session() as session:
        # No goal left to ask about: the weekly check-in goes too.
        assert session.scalars(select(GoalCheckin)).all() == []
    assert (await bot.send(alice, "/guide"))[0].startswith("Linked to you: <b>Bob</b>.")


async def test_without_retention_the_daily_job_forgets_only_what_serves_nothing(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser, dave: TgUser
):
    bot = agreed
    bot.settings.retention_days = None
    await bot.agree(carol)
    await bot.send(alice, "/treatment")
    await bot.send(bob, f"/guide join {await invite(bot, alice)}")
    await bot.send(bob, "/notes Calm at the end")
    await bot.send(carol, "/guide invite")
    await bot.send(dave, "/guide join WRONG-CODE2")
    bot.clock.advance(timedelta(hours=12))
    await bot.send(carol, "/guide invite")
    await bot.send(dave, "/guide join WRONG-CODE2")
    await run_daily_job(bot)
    with bot.session() as session:
        # The used invitation goes at once; the unused ones when they expire.
        assert len(session.scalars(select(GuideInvite)).all()) == 2
        # An attempt limits joins for an hour, then goes.
        assert len(session.scalars(select(GuideJoinAttempt)).all()) == 1
        note = session.scalars(select(SessionNote)).one()
        assert note.chat_hash is not None
        assert note.message_id is not None
    bot.clock.advance(timedelta(days=2))
    await run_daily_job(bot)
    with bot.session() as session:
        assert session.scalars(select(GuideInvite)).all() == []
        assert session.scalars(select(GuideJoinAttempt)).all() == []
        # Two days on, a note no longer says which chat or message it came from.
        note = session.scalars(select(SessionNote)).one()
        assert (note.text, note.chat_hash, note.message_id) == ("Calm at the end", None, None)
        assert len(session.scalars(select(Entry)).all()) == 0
        assert len(session.scalars(select(Treatment)).all()) == 1


async def test_it_says_in_privacy_what_goes_by_which_date(bot: Harness, alice: TgUser):
    [text] = await bot.send(alice, "/privacy")
    assert (
        "<b>How long:</b> what is older than 7 days is deleted automatically, each thing by its "
        "own date: entries and session notes by when they were written, practices by when they "
        "were done, prompts by when they were sent, a weekly goal answer by when it was given, "
        "a closed goal by when it was closed (an active one once you haven't answered for it "
        "since), a treatment once nothing of it is left, and the intention for your next "
        "treatment by when you set it."
    ) in text
    assert "They are told when you log a treatment only if you choose so" in text
