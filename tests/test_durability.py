"""Due times live in the database: restarts, crashes and Telegram errors lose nothing."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.db import queries
from bot.db.models import Entry, Patient, PromptStatus, ScheduledPrompt
from bot.delivery import reflection
from bot.delivery.kind import DispatchReport
from bot.delivery.reflection import MAX_ATTEMPTS, claim_due
from bot.status import format_status, read_status
from bot.telegram.updates import ChatOrderedUpdateProcessor
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser


def statuses(bot: Harness) -> dict[str, str]:
    with bot.session() as session:
        rows = session.scalars(select(ScheduledPrompt).order_by(ScheduledPrompt.id))
        return {row.step_key: row.status for row in rows}


def steps_sent(bot: Harness) -> list[str]:
    """The step of each prompt sent, in the order they went out."""
    with bot.session() as session:
        return list(
            session.scalars(
                select(ScheduledPrompt.step_key)
                .where(ScheduledPrompt.status == PromptStatus.SENT)
                .order_by(ScheduledPrompt.sent_at, ScheduledPrompt.id)
            )
        )


def in_schedule_order(bot: Harness, keys: list[str]) -> list[str]:
    assert bot.companion is not None
    return [step.key for step in bot.companion.schedule.steps if step.key in keys]


async def test_it_goes_on_after_a_restart_with_nothing_lost_or_repeated(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.send(alice, "Before the restart")
    # Two days go by while the bot is down: the mood question, the reflection and day 2 fall due.
    await bot.stop()
    bot.clock.advance(timedelta(days=2, hours=1))
    await bot.start()

    first = await bot.dispatch()
    assert len(first.sent) == 1  # the mood question now; the others wait their turn
    assert (await bot.dispatch()).sent == []
    await bot.send(alice, "After the restart")
    bot.clock.advance(timedelta(hours=1))
    assert len((await bot.dispatch()).sent) == 1  # the reflection
    while True:
        try:
            await bot.next_prompt(alice)
        except AssertionError:
            break
    titles = [(r.text or "").split("</b>")[0] for r in bot.prompts_sent(alice)]
    assert titles == [
        "<b>Check-in",
        "<b>How you feel",
        "<b>Reflection",
        "<b>One small step",
        "<b>How you feel",
        "<b>An integration practice",
        "<b>How you feel",
        "<b>One week on",
        "<b>Two weeks on",
        "<b>One month on",
    ]
    assert set(statuses(bot).values()) == {PromptStatus.SENT}
    with bot.session() as session:
        answers = session.execute(select(Entry.text, Entry.prompt_id).order_by(Entry.id)).all()
        assert answers == [("Before the restart", 1), ("After the restart", 2)]


async def test_it_resends_a_prompt_claimed_by_a_dispatcher_that_crashed(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(hours=3))
    assert bot.companion is not None
    # A dispatcher claims the check-in and dies before sending it.
    lease = timedelta(seconds=bot.settings.claim_lease_seconds)
    with bot.companion.sessions.begin() as session:
        claimed = claim_due(
            session, bot.clock.now, bot.companion.schedule, "UTC", DispatchReport(), lease
        )
    assert len(claimed) == 1
    await bot.restart()
    assert (await bot.dispatch()).sent == []  # the lease still holds
    bot.clock.advance(lease)
    assert (await bot.dispatch()).sent == claimed
    assert (await bot.dispatch()).sent == []
    assert len(bot.prompts_sent(alice)) == 1


async def test_it_waits_as_telegram_asks_after_a_429_and_then_sends(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(hours=3))
    bot.fake.fail("sendMessage", error_code=429, description="Too Many Requests", retry_after=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = await bot.dispatch()
    assert len(report.sent) == 1
    assert loop.time() - started >= 1.0  # it waited as told before trying again
    assert [r.result is not None for r in bot.fake.sent(alice.id)[-2:]] == [False, True]


async def test_it_reschedules_a_prompt_when_telegram_keeps_answering_429(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    bot.limiter.retry_after_attempts = 1  # give up at once rather than wait in the test
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(hours=3))
    bot.fake.fail("sendMessage", error_code=429, description="Too Many Requests", retry_after=7)
    report = await bot.dispatch()
    assert (report.sent, report.retrying) == ([], 1)
    bot.clock.advance(timedelta(seconds=6))
    assert (await bot.dispatch()).sent == []
    bot.clock.advance(timedelta(seconds=1))
    assert len((await bot.dispatch()).sent) == 1


async def test_a_prompt_waiting_for_its_retry_holds_back_the_patient_s_later_ones(
    agreed: Harness, alice: TgUser
):
    """Several steps are overdue (the bot was down); the first fails and waits for a retry: the
    next ones wait with it, so Alice still gets them in the schedule's order."""
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(days=2))
    bot.fake.fail("sendMessage", error_code=502, description="Bad Gateway", times=3)
    report = await bot.dispatch()
    assert (report.sent, report.retrying) == ([], 1)
    with bot.session() as session:
        due = session.scalars(
            select(ScheduledPrompt)
            .where(ScheduledPrompt.status == PromptStatus.PENDING)
            .order_by(ScheduledPrompt.due_at, ScheduledPrompt.id)
        ).all()
    retried = next(p for p in due if p.attempts == 1)
    assert due[0] is retried  # still first in line
    assert all(p.due_at >= retried.due_at for p in due)
    for _ in range(4):
        await bot.next_prompt(alice)
    in_order = steps_sent(bot)
    assert len(in_order) == 4
    assert in_order == in_schedule_order(bot, in_order)


async def test_a_deferred_prompt_takes_the_patient_s_later_due_ones_with_it(
    agreed: Harness, alice: TgUser, monkeypatch: pytest.MonkeyPatch
):
    """Several steps are overdue and each waits `min_gap` after the one before; the dispatcher
    looks at one due prompt at a time (a busy table), so the ones it did not look at must wait
    with the one it deferred, or a later step would overtake it."""
    bot = agreed
    monkeypatch.setattr(reflection, "BATCH_SIZE", 1)
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(days=4))
    report = await bot.dispatch()
    assert len(report.sent) == 1
    # The next tick finds the first one sent, and the second due too soon after it.
    report = await bot.dispatch()
    assert (len(report.sent), report.deferred) == (0, 1)
    with bot.session() as session:
        pending = session.scalars(
            select(ScheduledPrompt).where(
                ScheduledPrompt.status == PromptStatus.PENDING,
                ScheduledPrompt.due_at <= bot.clock.now,
            )
        ).all()
    assert pending == []  # every overdue one waits for the gap, not only the one looked at
    for _ in range(4):
        await bot.next_prompt(alice)
    in_order = steps_sent(bot)
    assert len(in_order) == 5
    assert in_order == in_schedule_order(bot, in_order)


async def test_no_prompt_of_a_patient_is_claimed_while_another_is_in_flight(
    agreed: Harness, alice: TgUser
):
    """Two dispatchers may both have read a patient's prompts as free; the one that claims
    second gets none of them, so a patient's prompts never go out side by side."""
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(days=2))
    assert bot.companion is not None
    lease = timedelta(seconds=bot.settings.claim_lease_seconds)
    with bot.companion.sessions.begin() as session:
        due = session.scalars(
            select(ScheduledPrompt.id)
            .where(
                ScheduledPrompt.status == PromptStatus.PENDING,
                ScheduledPrompt.due_at <= bot.clock.now,
            )
            .order_by(ScheduledPrompt.due_at, ScheduledPrompt.id)
        ).all()
    assert len(due) >= 2
    with bot.companion.sessions.begin() as session:
        assert queries.claim_prompts(session, [due[0]], bot.clock.now + lease) == [due[0]]
    with bot.companion.sessions.begin() as session:
        assert queries.claim_prompts(session, [due[1]], bot.clock.now + lease) == []
    bot.clock.advance(lease)  # the first claim runs out: its dispatcher died
    assert (await bot.dispatch()).sent == [due[0]]


def due_prompt_ids(bot: Harness) -> list[int]:
    with bot.session() as session:
        return list(
            session.scalars(
                select(ScheduledPrompt.id)
                .where(
                    ScheduledPrompt.status == PromptStatus.PENDING,
                    ScheduledPrompt.due_at <= bot.clock.now,
                )
                .order_by(ScheduledPrompt.due_at, ScheduledPrompt.id)
            )
        )


async def test_a_prompt_is_claimed_only_first_in_its_patients_line(agreed: Harness, alice: TgUser):
    """However a dispatcher came to choose a patient's second prompt, it cannot claim it while
    the first still waits."""
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(days=2))
    assert bot.companion is not None
    lease = timedelta(seconds=bot.settings.claim_lease_seconds)
    first, second, *_ = due_prompt_ids(bot)
    with bot.companion.sessions.begin() as session:
        assert queries.claim_prompts(session, [second], bot.clock.now + lease) == []
        assert queries.claim_prompts(session, [first], bot.clock.now + lease) == [first]


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="row locks between dispatchers: PostgreSQL",
)
async def test_a_prompt_row_another_dispatcher_locked_does_not_hide_the_first_in_line(
    agreed: Harness, alice: TgUser
):
    """On PostgreSQL another instance's due query may lock a prompt row and then skip it, its
    patient being taken: that row lock lasts until its transaction ends. The due query locks
    patients only, so this one still sees the patient's first prompt and chooses it, where
    skipping the locked row made it claim the second (which went out before the first)."""
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(days=2))
    assert bot.companion is not None
    first, *_ = due_prompt_ids(bot)
    with bot.companion.sessions.begin() as other:
        other.execute(
            select(ScheduledPrompt.id).where(ScheduledPrompt.id == first).with_for_update()
        )
        with bot.companion.sessions.begin() as session:
            candidates = queries.due_prompts(session, bot.clock.now, reflection.BATCH_SIZE)
            assert [prompt.id for prompt, _ in candidates][:1] == [first]


async def test_it_retries_server_errors_then_records_a_failure(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(hours=3))
    # Each tick tries a few times at once (the rate limiter), then leaves it for a later tick.
    tries = bot.limiter.network_attempts
    bot.fake.fail(
        "sendMessage", error_code=502, description="Bad Gateway", times=MAX_ATTEMPTS * tries
    )
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = await bot.dispatch()
        assert report.sent == []
        with bot.session() as session:
            prompt = session.get_one(ScheduledPrompt, 1)
            assert prompt.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert prompt.status == PromptStatus.PENDING
            bot.clock.set(prompt.due_at)  # the backoff doubles each time
    assert prompt.status == PromptStatus.FAILED
    assert prompt.last_error is not None
    with bot.session() as session:
        shown = format_status(read_status(session, bot.clock.now))
    assert "prompts failed: 1\n" in shown
    assert "prompts pending: 9\n" in shown
    assert "inbox backlog: 0" in shown
    # The other steps go on as planned.
    assert (await bot.next_prompt(alice)).text


@pytest.mark.parametrize(
    ("code", "description"),
    [
        (403, "Forbidden: bot was blocked by the user"),
        (403, "Forbidden: user is deactivated"),
        (400, "Bad Request: chat not found"),
    ],
)
async def test_it_holds_the_prompts_of_a_patient_telegram_cannot_reach(
    agreed: Harness, alice: TgUser, code: int, description: str
):
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(hours=3))
    bot.fake.fail("sendMessage", error_code=code, description=description, chat_id=alice.id)
    assert (await bot.dispatch()).sent == []
    assert set(statuses(bot).values()) == {PromptStatus.HELD}
    with bot.session() as session:
        patient = session.scalars(select(Patient)).one()
        assert patient.unreachable_at is not None
        assert patient.paused_at is None  # not a pause they chose
    bot.clock.advance(timedelta(days=1))
    assert (await bot.dispatch()).sent == []
    # Back again: nothing was lost, and what they missed comes one at a time.
    assert (
        "3 reflection prompts came due while I couldn't reach you. I'll send them one at a "
        "time, at least an hour apart." in (await bot.send(alice, "/start"))[0]
    )
    assert len((await bot.dispatch()).sent) == 1
    assert (await bot.dispatch()).sent == []
    bot.clock.advance(timedelta(hours=1))
    assert len((await bot.dispatch()).sent) == 1


async def test_it_lets_a_reply_wait_for_the_prompt_it_answers_to_be_recorded(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(hours=3))
    # Telegram has delivered the check-in, but its answer has not reached the bot yet...
    release = bot.fake.hold("sendMessage")
    dispatching = asyncio.create_task(bot.dispatch())
    [checkin] = await bot.fake.wait_for(
        lambda r: r.method == "sendMessage" and "prompt:" in str(r.params.get("reply_markup"))
    )
    # ...when Alice already replies to it.
    update_id = bot.fake.text_update(alice, "Quick reply", reply_to=checkin.message_id)
    assert bot.app is not None
    processor = bot.app.update_processor
    assert isinstance(processor, ChatOrderedUpdateProcessor)
    for _ in range(1000):
        if processor.in_hand:
            break
        await asyncio.sleep(0)
    assert processor.in_hand == 1  # the reply is being handled, and waits
    release.set()
    assert len((await dispatching).sent) == 1
    await bot.wait_handled(update_id)
    with bot.session() as session:
        assert session.execute(select(Entry.text, Entry.prompt_id)).all() == [("Quick reply", 1)]
