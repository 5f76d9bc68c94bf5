"""Before a planned treatment: an invitation to set an intention the evening before, the
intention again on the morning of the session; after it, the reflections come back to it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db.models import Entry, PromptStatus, ScheduledPrompt, Treatment
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser

BERLIN = ZoneInfo("Europe/Berlin")


def local(moment: datetime, zone: ZoneInfo = BERLIN) -> str:
    return f"{moment.astimezone(zone):%a %H:%M}"


async def test_it_invites_an_intention_the_evening_before_and_brings_it_back(
    agreed: Harness, alice: TgUser
):
    bot = agreed  # Wednesday 14:00 in Berlin
    reply = (await bot.send(alice, "/treatment 2026-11-26 10:00"))[0]
    assert "Treatment 1 is planned for <b>Thu 26 Nov, 10:00</b>." in reply
    assert "Before it, today at 19:00, I'll send you a few words about your intention" in reply
    assert "Your first reflection prompt will come tomorrow at 13:00." in reply

    invite = await bot.next_prompt(alice)
    assert local(bot.clock.now) == "Wed 19:00"
    assert (invite.text or "").startswith("<b>An intention</b>")
    assert "Tomorrow at 10:00 is your treatment." in (invite.text or "")
    assert await bot.send(alice, "To meet <what> comes & stay") == [
        "Thank you. This is your intention for treatment 1 now; I'll bring it back to you in "
        "your reflections. To change it, send /intention followed by the new words."
    ]
    with bot.session() as session:
        treatment = session.scalars(select(Treatment)).one()
        assert treatment.intention == "To meet <what> comes & stay"
        assert session.scalars(select(Entry.text)).all() == ["To meet <what> comes & stay"]

    morning = await bot.next_prompt(alice)
    assert local(bot.clock.now) == "Thu 08:00"
    assert "Your treatment is today at 10:00." in (morning.text or "")
    assert "<blockquote>To meet &lt;what&gt; comes &amp; stay</blockquote>" in (morning.text or "")
    # Nothing to answer: only the way to the crisis contacts, as under every prompt.
    assert morning.params["reply_markup"]["inline_keyboard"] == [
        [{"text": "Talk to someone now", "callback_data": "support"}]
    ]

    checkin = await bot.next_prompt(alice)
    assert local(bot.clock.now) == "Thu 13:00"
    assert (checkin.text or "").startswith("<b>Check-in</b>")
    await bot.next_prompt(alice)  # the mood question
    reflection = await bot.next_prompt(alice)
    assert "You came in with this intention:" in (reflection.text or "")
    assert "<blockquote>To meet &lt;what&gt; comes &amp; stay</blockquote>" in (
        reflection.text or ""
    )


async def test_quiet_hours_delay_the_morning_message_but_never_past_the_session(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/quiet 22:00-09:00")
    await bot.send(alice, "/treatment 2026-11-26 10:00")
    await bot.next_prompt(alice)  # the invitation, Wednesday 19:00
    morning = await bot.next_prompt(alice)
    assert local(bot.clock.now) == "Thu 09:00"  # after quiet hours, still before the session
    assert "Your session today" in (morning.text or "")

    # Quiet until 10:30 would push it past the 10:00 session: then it is not sent at all.
    await bot.send(alice, "/quiet 22:00-10:30")
    await bot.send(alice, "/treatment 2026-11-28 10:00")
    await bot.next_prompt(alice)
    bot.clock.set(datetime(2026, 11, 28, 7, 0, tzinfo=UTC))  # Saturday 08:00 in Berlin
    assert (await bot.dispatch()).sent == []  # quiet: Thursday's steps and the morning wait

    def morning_rows() -> list[str]:
        with bot.session() as session:
            return list(
                session.scalars(
                    select(ScheduledPrompt.status)
                    .where(ScheduledPrompt.step_key == "intention_morning")
                    .order_by(ScheduledPrompt.id)
                )
            )

    # From 10:30 Thursday's steps catch up, an hour apart; the morning message's turn comes
    # after the session has begun, so it is dropped.
    for _ in range(10):
        if morning_rows()[1] != PromptStatus.PENDING:
            break
        await bot.next_prompt(alice)
    assert morning_rows() == [PromptStatus.SENT, PromptStatus.SKIPPED]
    assert len([r for r in bot.prompts_sent(alice) if "Your session today" in (r.text or "")]) == 1


async def test_a_treatment_logged_after_it_happened_gets_no_invitation(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment 14:30")  # in half an hour: yesterday evening has passed
    await bot.send(alice, "/treatment yesterday 10:00")
    with bot.session() as session:
        keys = session.scalars(select(ScheduledPrompt.step_key)).all()
    assert "intention_invite" not in keys
    assert "intention_morning" not in keys


async def test_the_invitation_comes_at_19_00_in_the_patients_own_time_zone(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/timezone America/New_York")
    await bot.send(alice, "/treatment 2026-11-27 09:00")
    invite = await bot.next_prompt(alice)
    assert local(bot.clock.now, ZoneInfo("America/New_York")) == "Thu 19:00"
    assert "Tomorrow at 09:00 is your treatment." in (invite.text or "")


async def test_an_intention_already_set_is_shown_in_the_invitation(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/intention Be gentle")
    await bot.send(alice, "/treatment 2026-11-26 10:00")
    invite = await bot.next_prompt(alice)
    assert "Your intention so far:\n<blockquote>Be gentle</blockquote>" in (invite.text or "")


async def test_a_long_answer_to_the_invitation_is_kept_in_the_journal_only(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment 2026-11-26 10:00")
    await bot.next_prompt(alice)
    long_answer = "I want to look at many things. " * 40
    assert await bot.send(alice, long_answer) == [
        "Thank you. Saved as your answer to <i>An intention</i>."
    ]
    with bot.session() as session:
        assert session.scalars(select(Treatment.intention)).one() is None
        assert session.scalars(select(Entry.text)).one() == long_answer
