"""/remind: a daily practice reminder at a local time, durable, outside quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db.models import Patient, Practice, Reminder
from bot.domain.reminders import next_daily
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser

BERLIN = ZoneInfo("Europe/Berlin")


def reminders_sent(bot: Harness, user: TgUser) -> list[ApiRequest]:
    return [
        r for r in bot.dispatched if r.chat_id == user.id and "gentle reminder" in (r.text or "")
    ]


async def tick_at(bot: Harness, moment: datetime) -> None:
    bot.clock.set(moment)
    await bot.dispatch()


async def test_it_reminds_every_day_at_the_local_time_and_notes_the_practice(
    agreed: Harness, alice: TgUser
):
    bot = agreed  # Wednesday 14:00 in Berlin
    [reply] = await bot.send(alice, "/remind 08:00 meditation")
    assert reply.startswith(
        "Every day at 08:00 (Europe/Berlin) I'll remind you of <b>meditation</b>"
    )
    assert "The first comes tomorrow at 08:00." in reply
    await tick_at(bot, datetime(2026, 11, 26, 6, 59, tzinfo=UTC))
    assert reminders_sent(bot, alice) == []
    await tick_at(bot, datetime(2026, 11, 26, 7, 0, tzinfo=UTC))  # 08:00 in Berlin
    [first] = reminders_sent(bot, alice)
    assert "<b>Meditation</b>, even five minutes" in (first.text or "")
    await tick_at(bot, datetime(2026, 11, 26, 7, 5, tzinfo=UTC))
    assert len(reminders_sent(bot, alice)) == 1  # once a day

    # The button notes the practice, then asks how long, as /practice does.
    [done] = [
        b["callback_data"]
        for row in bot.fake.bot_message(alice.id, first.message_id)["reply_markup"][
            "inline_keyboard"
        ]
        for b in row
    ]
    await bot.press(alice, first.message_id, done)
    with bot.session() as session:
        assert session.scalars(select(Practice.kind)).all() == ["meditation"]
    assert "How long did it take, roughly?" in (bot.fake.sent(alice.id)[-1].text or "")

    await tick_at(bot, datetime(2026, 11, 27, 7, 0, tzinfo=UTC))
    assert len(reminders_sent(bot, alice)) == 2


async def test_it_waits_for_quiet_hours_to_end(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/quiet 22:00-09:00")
    [reply] = await bot.send(alice, "/remind 08:00 walk")
    assert "The first comes tomorrow at 09:00." in reply
    await tick_at(bot, datetime(2026, 11, 26, 7, 0, tzinfo=UTC))
    assert reminders_sent(bot, alice) == []
    await tick_at(bot, datetime(2026, 11, 26, 8, 0, tzinfo=UTC))  # 09:00
    assert len(reminders_sent(bot, alice)) == 1


async def test_it_survives_a_restart_and_skips_days_while_paused(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/remind 08:00 yoga")
    await bot.restart()
    await tick_at(bot, datetime(2026, 11, 26, 7, 0, tzinfo=UTC))
    assert len(reminders_sent(bot, alice)) == 1
    await bot.send(alice, "/pause")
    await tick_at(bot, datetime(2026, 11, 27, 7, 0, tzinfo=UTC))
    assert len(reminders_sent(bot, alice)) == 1
    await bot.send(alice, "/resume")
    await tick_at(bot, datetime(2026, 11, 28, 7, 0, tzinfo=UTC))
    assert len(reminders_sent(bot, alice)) == 2


async def test_it_turns_off_and_shows_the_reminder(agreed: Harness, alice: TgUser):
    bot = agreed
    assert (await bot.send(alice, "/remind off")) == ["There's no daily reminder to turn off."]
    await bot.send(alice, "/remind 18:30 walk")
    [shown] = await bot.send(alice, "/remind")
    assert "Every day at 18:30 I remind you of <b>a walk in nature</b>" in shown
    assert (await bot.send(alice, "/remind off")) == ["The daily reminder is off."]
    with bot.session() as session:
        assert session.scalars(select(Reminder)).all() == []
    await tick_at(bot, datetime(2026, 11, 26, 17, 30, tzinfo=UTC))
    assert reminders_sent(bot, alice) == []


@pytest.mark.parametrize(
    "command",
    ["/remind 25:00 meditation", "/remind 08:00 banana", "/remind meditation", "/remind 8 other"],
)
async def test_it_explains_the_command_when_it_cannot_read_it(
    agreed: Harness, alice: TgUser, command: str
):
    bot = agreed
    [reply] = await bot.send(alice, command)
    assert reply.startswith("A daily reminder for a practice, at a time of your day:")
    with bot.session() as session:
        assert session.scalars(select(Reminder)).all() == []


def test_a_daily_time_keeps_the_local_hour_across_the_clock_change():
    # 08:00 in Berlin is 06:00 UTC in summer and 07:00 UTC in winter.
    before = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    assert next_daily(before, 8 * 60, BERLIN) == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)
    assert next_daily(before - timedelta(days=1), 8 * 60, BERLIN) == datetime(
        2026, 10, 24, 6, 0, tzinfo=UTC
    )


async def test_a_reminder_telegram_refuses_is_tried_again_and_a_blocked_patient_is_held(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/remind 08:00 meditation")
    bot.fake.fail("sendMessage", error_code=500, description="Internal Server Error", times=3)
    await tick_at(bot, datetime(2026, 11, 26, 7, 0, tzinfo=UTC))
    assert reminders_sent(bot, alice) == []
    with bot.session() as session:
        retry_at = session.scalars(select(Reminder.due_at)).one()
    await tick_at(bot, retry_at)
    assert len(reminders_sent(bot, alice)) == 1

    bot.fake.fail(
        "sendMessage", error_code=403, description="Forbidden: bot was blocked by the user"
    )
    await tick_at(bot, datetime(2026, 11, 27, 7, 0, tzinfo=UTC))
    with bot.session() as session:
        assert session.scalars(select(Patient.unreachable_at)).one() is not None
