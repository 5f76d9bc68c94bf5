"""/timezone, /quiet, /pause and /resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db.models import Patient, PromptStatus, ScheduledPrompt
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser


def patient(bot: Harness) -> Patient:
    with bot.session() as session:
        return session.scalars(select(Patient)).one()


async def test_it_sets_a_time_zone_in_any_letter_case(agreed: Harness, alice: TgUser):
    reply = (await agreed.send(alice, "/timezone america/new_york"))[0]
    assert reply == "Your time zone is now <b>America/New_York</b>. It's 08:00 there."
    assert patient(agreed).timezone == "America/New_York"
    reply = (await agreed.send(alice, "/timezone"))[0]
    assert reply.startswith("Your time zone is <b>America/New_York</b>.")


async def test_it_explains_a_wrong_time_zone_with_examples(agreed: Harness, alice: TgUser):
    reply = (await agreed.send(alice, "/timezone Berlin <b>"))[0]
    assert 'I don\'t know the time zone "Berlin &lt;b&gt;"' in reply
    assert "Europe/Berlin, America/New_York" in reply
    assert patient(agreed).timezone is None


async def test_it_shows_the_default_zone_until_one_is_set(agreed: Harness, alice: TgUser):
    reply = (await agreed.send(alice, "/timezone"))[0]
    assert reply.startswith("Your time zone is <b>Europe/Berlin</b> (the default).")


async def test_it_schedules_in_the_patients_zone(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/timezone Asia/Tokyo")  # 22:00 in Tokyo now
    reply = (await bot.send(alice, "/treatment 20:00"))[0]
    assert "Treatment 1 is logged for <b>Wed 25 Nov, 20:00</b>" in reply
    # 23:00 Tokyo is in quiet hours: the check-in waits until 08:00 Tokyo time.
    assert "Your first reflection prompt will come tomorrow at 08:00." in reply
    await bot.next_prompt(alice)
    assert bot.clock.now == datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # 08:00 in Tokyo


async def test_it_sets_and_turns_off_quiet_hours(agreed: Harness, alice: TgUser):
    bot = agreed
    reply = (await bot.send(alice, "/quiet 23:30-07:15"))[0]
    assert reply.startswith("Quiet hours are now <b>23:30-07:15</b> (Europe/Berlin).")
    assert (patient(bot).quiet_start_minute, patient(bot).quiet_end_minute) == (1410, 435)
    assert (await bot.send(alice, "/quiet"))[0].startswith("Your quiet hours are <b>23:30-07:15")
    reply = (await bot.send(alice, "/quiet off"))[0]
    assert reply.startswith("Quiet hours are off.")
    assert patient(bot).quiet_start_minute is None


@pytest.mark.parametrize("given", ["22-8", "25:00-08:00", "tonight", "22:00 08:00 09:00"])
async def test_it_explains_malformed_quiet_hours(agreed: Harness, alice: TgUser, given: str):
    reply = (await agreed.send(alice, f"/quiet {given}"))[0]
    assert reply.startswith("Please give quiet hours as two times, like /quiet 22:00-08:00")
    assert (patient(agreed).quiet_start_minute, patient(agreed).quiet_end_minute) == (1320, 480)


async def test_it_sends_during_the_night_when_quiet_hours_are_off(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/quiet off")
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.next_prompt(alice)
    assert bot.clock.now.astimezone(ZoneInfo("Europe/Berlin")).hour == 3  # 13 h after 14:00


async def test_it_defers_a_prompt_when_quiet_hours_change_after_logging(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment")
    await bot.send(alice, "/quiet 16:00-18:30")  # covers the check-in at 17:00
    await bot.next_prompt(alice)
    assert bot.clock.now.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") == "18:30"


async def test_it_holds_prompts_while_paused_and_sends_them_one_at_a_time(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment")
    assert (await bot.send(alice, "/pause"))[0].startswith("Prompts are paused. Nothing is lost")
    assert (await bot.send(alice, "/pause"))[0].startswith("Prompts are already paused")
    bot.clock.advance(timedelta(days=5))  # six steps fall due, up to day 3
    assert (await bot.dispatch()).sent == []
    with bot.session() as session:
        statuses = session.scalars(select(ScheduledPrompt.status)).all()
        assert set(statuses) == {PromptStatus.HELD}

    reply = (await bot.send(alice, "/resume"))[0]
    assert reply == (
        "Prompts are back on. 6 came due while you were paused; I'll send them one at a time, "
        "at least an hour apart, oldest first."
    )
    first = await bot.dispatch()
    assert len(first.sent) == 1
    assert (await bot.dispatch()).sent == []  # no flood: the next waits an hour
    bot.clock.advance(timedelta(minutes=59))
    assert (await bot.dispatch()).sent == []
    titles = [(bot.prompts_sent(alice)[-1].text or "").split("</b>")[0]]
    for _ in range(5):
        bot.clock.advance(timedelta(minutes=1))
        assert len((await bot.dispatch()).sent) == 1
        titles.append((bot.prompts_sent(alice)[-1].text or "").split("</b>")[0])
        bot.clock.advance(timedelta(minutes=59))
    assert titles == [
        "<b>Check-in",
        "<b>How you feel",
        "<b>Reflection",
        "<b>One small step",
        "<b>How you feel",
        "<b>An integration practice",
    ]
    assert (await bot.send(alice, "/resume"))[0] == "Prompts are not paused."


async def test_it_holds_prompts_of_a_treatment_logged_while_paused(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/pause")
    reply = (await bot.send(alice, "/treatment"))[0]
    assert "I'll hold them until you send /resume" in reply
    bot.clock.advance(timedelta(hours=4))
    assert (await bot.dispatch()).sent == []
    await bot.send(alice, "/resume")
    assert len((await bot.dispatch()).sent) == 1
