"""The weekly recap without asking: on the chosen local day and hour, once, durably."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db.models import WeeklyRecap
from bot.domain.recurring import LEASE
from bot.domain.weekly import claim_due_recaps
from bot.telegram.keyboards import WEEKLY_ON
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser

BERLIN = ZoneInfo("Europe/Berlin")


def weekly_recaps(bot: Harness, user: TgUser) -> list[str]:
    return [
        r.text or ""
        for r in bot.fake.sent(user.id)
        if (r.text or "").startswith("<b>Your weekly recap</b>")
    ]


async def test_it_is_off_until_asked_for(agreed: Harness, alice: TgUser):
    reply = (await agreed.send(alice, "/recap weekly"))[0]
    assert reply.startswith("Your weekly recap is off. /recap weekly on sends one every Sunday")
    agreed.clock.advance(timedelta(days=8))
    await agreed.dispatch()
    assert weekly_recaps(agreed, alice) == []


async def test_it_sends_the_recap_every_week_once(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "A thought for the week")
    reply = (await bot.send(alice, "/recap weekly on"))[0]
    assert reply.startswith(
        "Your weekly recap is on: every <b>Sunday at 18:00</b> (Europe/Berlin), the last 7 days "
        "in one message. The next one comes on Sun 29 Nov at 18:00."
    )
    bot.clock.set(datetime(2026, 11, 29, 17, 59, tzinfo=BERLIN))
    assert (await bot.dispatch()).delivered["weekly recap"] == 0
    bot.clock.set(datetime(2026, 11, 29, 18, 0, tzinfo=BERLIN))
    assert (await bot.dispatch()).delivered["weekly recap"] == 1
    [recap] = weekly_recaps(bot, alice)
    assert "1 entry of your own; you wrote on 1 of 7 days." in recap
    # Never twice: not on the next tick, not after a restart.
    assert (await bot.dispatch()).delivered["weekly recap"] == 0
    await bot.restart()
    bot.clock.advance(timedelta(hours=1))
    assert (await bot.dispatch()).delivered["weekly recap"] == 0
    bot.clock.set(datetime(2026, 12, 6, 18, 0, tzinfo=BERLIN))
    assert (await bot.dispatch()).delivered["weekly recap"] == 1
    assert len(weekly_recaps(bot, alice)) == 2
    assert (await bot.send(alice, "/recap weekly off"))[0].startswith("Your weekly recap is off.")
    bot.clock.set(datetime(2026, 12, 13, 18, 0, tzinfo=BERLIN))
    assert (await bot.dispatch()).delivered["weekly recap"] == 0


async def test_it_keeps_the_local_hour_across_a_time_change(agreed: Harness, alice: TgUser):
    bot = agreed
    bot.clock.set(datetime(2026, 10, 20, 12, 0, tzinfo=BERLIN))
    reply = (await bot.send(alice, "/recap weekly sun 18:00"))[0]
    assert "The next one comes on Sun 25 Oct at 18:00." in reply
    bot.clock.set(datetime(2026, 10, 25, 16, 0, tzinfo=UTC))  # 17:00 in Berlin after the change
    assert (await bot.dispatch()).delivered["weekly recap"] == 0
    bot.clock.set(datetime(2026, 10, 25, 17, 0, tzinfo=UTC))  # 18:00
    assert (await bot.dispatch()).delivered["weekly recap"] == 1


async def test_it_waits_for_the_end_of_quiet_hours(agreed: Harness, alice: TgUser):
    bot = agreed
    reply = (await bot.send(alice, "/recap weekly saturday 23:30"))[0]
    assert "every <b>Saturday at 23:30</b>" in reply
    assert "The next one comes on Sun 29 Nov at 08:00." in reply  # after quiet hours
    bot.clock.set(datetime(2026, 11, 28, 23, 30, tzinfo=BERLIN))
    assert (await bot.dispatch()).delivered["weekly recap"] == 0
    bot.clock.set(datetime(2026, 11, 29, 8, 0, tzinfo=BERLIN))
    assert (await bot.dispatch()).delivered["weekly recap"] == 1


async def test_it_skips_a_week_while_paused(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/recap weekly on")
    await bot.send(alice, "/pause")
    bot.clock.set(datetime(2026, 11, 29, 18, 0, tzinfo=BERLIN))
    assert (await bot.dispatch()).delivered["weekly recap"] == 0
    await bot.send(alice, "/resume")
    bot.clock.set(datetime(2026, 12, 6, 18, 0, tzinfo=BERLIN))
    assert (await bot.dispatch()).delivered["weekly recap"] == 1


async def test_it_resends_a_recap_whose_dispatcher_crashed(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/recap weekly on")
    bot.clock.set(datetime(2026, 11, 29, 18, 0, tzinfo=BERLIN))
    assert bot.companion is not None
    with bot.companion.sessions.begin() as session:
        assert claim_due_recaps(session, bot.clock.now, "Europe/Berlin") == [1]
    await bot.restart()
    assert (await bot.dispatch()).delivered["weekly recap"] == 0  # the lease holds
    bot.clock.advance(LEASE)
    assert (await bot.dispatch()).delivered["weekly recap"] == 1
    assert (await bot.dispatch()).delivered["weekly recap"] == 0
    assert len(weekly_recaps(bot, alice)) == 1


async def test_it_offers_the_weekly_recap_after_the_first_treatment(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    logged = next(r for r in await bot.send_raw(alice, "/treatment") if r.method == "sendMessage")
    assert "Would you like a recap of your week without asking" in (logged.text or "")
    [[button]] = logged.params["reply_markup"]["inline_keyboard"]
    assert button == {"text": "Yes, a recap every Sunday", "callback_data": WEEKLY_ON}
    done = await bot.press(alice, logged.message_id, WEEKLY_ON)
    assert any(
        (r.text or "").startswith("Your weekly recap is on")
        for r in done
        if r.method == "sendMessage"
    )
    with bot.session() as session:
        assert session.scalars(select(WeeklyRecap.due_at)).one() is not None
    bot.clock.advance(timedelta(days=3))
    second = next(r for r in await bot.send_raw(alice, "/treatment") if r.method == "sendMessage")
    assert "reply_markup" not in second.params
    assert "Would you like a recap" not in (second.text or "")


@pytest.mark.parametrize("words", ["maybe", "fri 25:00", "someday 10:00", "on off"])
async def test_it_explains_weekly_settings_it_cannot_read(
    agreed: Harness, alice: TgUser, words: str
):
    reply = (await agreed.send(alice, f"/recap weekly {words}"))[0]
    assert reply.startswith("You can send:\n/recap weekly on")
    with agreed.session() as session:
        assert session.scalars(select(WeeklyRecap)).all() == []
