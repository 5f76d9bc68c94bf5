"""A treatment starts its schedule; prompts arrive on time and answers land on the right prompt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.db.models import Entry, PromptStatus, ScheduledPrompt, Treatment
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser

BERLIN = ZoneInfo("Europe/Berlin")


def buttons(request: ApiRequest) -> list[str]:
    markup = request.params.get("reply_markup") or {"inline_keyboard": []}
    return [button["text"] for row in markup["inline_keyboard"] for button in row]


def callback(request: ApiRequest, label: str) -> str:
    for row in request.params["reply_markup"]["inline_keyboard"]:
        for button in row:
            if button["text"] == label:
                return str(button["callback_data"])
    raise AssertionError(f"no {label} button")


async def test_it_carries_a_patient_through_a_whole_schedule(agreed: Harness, alice: TgUser):
    bot = agreed
    assert (await bot.send(alice, "/intention To meet my grief with kindness"))[0].startswith(
        "Your intention is set for your next treatment"
    )
    reply = (await bot.send(alice, "/treatment"))[0]
    assert "Treatment 1 is logged for <b>Wed 25 Nov, 14:00</b>" in reply
    assert "To meet my grief with kindness" in reply
    assert "Your first reflection prompt will come today at 17:00." in reply

    # 3 h after: the check-in, with Later and Skip.
    checkin = await bot.next_prompt(alice)
    assert bot.clock.now == datetime(2026, 11, 25, 17, 0, tzinfo=BERLIN)
    assert (checkin.text or "").startswith("<b>Check-in</b>")
    assert "Hi Alice" in (checkin.text or "")
    assert buttons(checkin) == ["Later", "Skip", "Talk to someone now"]
    assert await bot.send(alice, "Tired, a bit shaky, calm") == [
        "Thank you. Saved as your answer to <i>Check-in</i>."
    ]
    # Answered: Later and Skip are gone; the way to the crisis contacts stays.
    kept = bot.fake.bot_message(alice.id, checkin.message_id)["reply_markup"]
    assert [b["text"] for row in kept["inline_keyboard"] for b in row] == ["Talk to someone now"]

    # 13 h after is 03:00, inside quiet hours: the mood question waits until 08:00.
    mood = await bot.next_prompt(alice)
    assert bot.clock.now == datetime(2026, 11, 26, 8, 0, tzinfo=BERLIN)
    assert (mood.text or "").startswith("<b>How you feel</b>")
    assert buttons(mood) == [str(n) for n in range(1, 11)] + [
        "Later",
        "Skip",
        "Talk to someone now",
    ]
    await bot.press(alice, mood.message_id, callback(mood, "7"))

    # The reflection (due 04:00) keeps an hour's distance from the mood question.
    reflection = await bot.next_prompt(alice)
    assert bot.clock.now == datetime(2026, 11, 26, 9, 0, tzinfo=BERLIN)
    assert "<blockquote>To meet my grief with kindness</blockquote>" in (reflection.text or "")
    answer = await bot.send(alice, "I saw my father's garden", reply_to=reflection.message_id)
    assert answer == ["Thank you. Saved as your answer to <i>Reflection</i>."]

    # Day 2: skipped.
    day2 = await bot.next_prompt(alice)
    assert bot.clock.now == datetime(2026, 11, 27, 14, 0, tzinfo=BERLIN)
    pressed = await bot.press(alice, day2.message_id, callback(day2, "Skip"))
    toast = next(r for r in pressed if r.method == "answerCallbackQuery")
    assert toast.params["text"] == "Skipped. The next one will come as planned."

    # Day 3: a mood typed as a number, then "Later" asks again an hour later.
    await bot.next_prompt(alice)
    assert bot.clock.now == datetime(2026, 11, 28, 13, 0, tzinfo=BERLIN)
    await bot.send(alice, "6")
    day3 = await bot.next_prompt(alice)
    assert bot.clock.now == datetime(2026, 11, 28, 14, 0, tzinfo=BERLIN)
    pressed = await bot.press(alice, day3.message_id, callback(day3, "Later"))
    toast = next(r for r in pressed if r.method == "answerCallbackQuery")
    assert toast.params["text"] == "I'll ask again in about an hour."
    assert await bot.send(alice, "Just a thought in between") == ["Saved in your journal."]
    day3_again = await bot.next_prompt(alice)
    assert bot.clock.now == datetime(2026, 11, 28, 15, 0, tzinfo=BERLIN)
    assert day3_again.text == day3.text
    await bot.send(alice, "A walk in the woods on Sunday")

    # Week 1 mood goes unanswered; the rest is answered.
    await bot.next_prompt(alice)
    assert bot.clock.now == datetime(2026, 12, 2, 13, 0, tzinfo=BERLIN)
    for expected_day, expected_title in (
        (datetime(2026, 12, 2, 14, 0, tzinfo=BERLIN), "One week on"),
        (datetime(2026, 12, 9, 14, 0, tzinfo=BERLIN), "Two weeks on"),
        (datetime(2026, 12, 23, 14, 0, tzinfo=BERLIN), "One month on"),
    ):
        prompt = await bot.next_prompt(alice)
        assert bot.clock.now == expected_day
        assert (prompt.text or "").startswith(f"<b>{expected_title}</b>")
        await bot.send(alice, f"Notes for {expected_title}")

    with bot.session() as session:
        rows = session.scalars(select(ScheduledPrompt).order_by(ScheduledPrompt.id)).all()
        assert [(p.step_key, p.status) for p in rows] == [
            ("checkin", PromptStatus.SENT),
            ("mood_first", PromptStatus.SENT),
            ("reflection", PromptStatus.SENT),
            ("day2", PromptStatus.SKIPPED),
            ("mood_day3", PromptStatus.SENT),
            ("day3", PromptStatus.SENT),
            ("mood_week1", PromptStatus.SENT),
            ("week1", PromptStatus.SENT),
            ("week2", PromptStatus.SENT),
            ("week4", PromptStatus.SENT),
        ]
        keys = {p.id: p.step_key for p in rows}
        entries = session.scalars(select(Entry).order_by(Entry.id)).all()
        assert [
            (e.kind, e.scale_value, e.text, keys.get(e.prompt_id) if e.prompt_id else None)
            for e in entries
        ] == [
            ("text", None, "Tired, a bit shaky, calm", "checkin"),
            ("mood", 7, None, "mood_first"),
            ("text", None, "I saw my father's garden", "reflection"),
            ("mood", 6, None, "mood_day3"),
            ("text", None, "Just a thought in between", None),
            ("text", None, "A walk in the woods on Sunday", "day3"),
            ("text", None, "Notes for One week on", "week1"),
            ("text", None, "Notes for Two weeks on", "week2"),
            ("text", None, "Notes for One month on", "week4"),
        ]
        treatment = session.scalars(select(Treatment)).one()
        assert {e.treatment_id for e in entries} == {treatment.id}
        assert treatment.intention == "To meet my grief with kindness"
    # Ten steps, day 3 asked twice, nothing else.
    assert len(bot.prompts_sent(alice)) == 11
    assert (await bot.dispatch()).sent == []


async def test_it_keeps_a_prompt_answerable_until_the_next_one_arrives(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment")
    checkin = await bot.next_prompt(alice)
    assert await bot.send(alice, "First answer") == [
        "Thank you. Saved as your answer to <i>Check-in</i>."
    ]
    # The next plain text is a free entry; a Telegram reply to the prompt still answers it.
    assert await bot.send(alice, "Something else") == ["Saved in your journal."]
    assert await bot.send(alice, "One more thing", reply_to=checkin.message_id) == [
        "Thank you. Saved as your answer to <i>Check-in</i>."
    ]
    await bot.next_prompt(alice)  # the reflection: the check-in is closed now
    assert await bot.send(alice, "Late thought", reply_to=checkin.message_id) == [
        "Saved in your journal."
    ]
    pressed = await bot.press(alice, checkin.message_id, "prompt:skip:1")
    toast = next(r for r in pressed if r.method == "answerCallbackQuery")
    assert toast.params["text"] == "That button no longer works. Try the command again."
    with bot.session() as session:
        entries = session.scalars(select(Entry).order_by(Entry.id)).all()
        assert [(e.text, e.prompt_id) for e in entries] == [
            ("First answer", 1),
            ("Something else", None),
            ("One more thing", 1),
            ("Late thought", None),
        ]
        assert session.get_one(ScheduledPrompt, 1).status == PromptStatus.SENT
        # Free entries still belong to the treatment they were written after.
        assert {e.treatment_id for e in entries} == {1}


async def test_it_logs_treatments_at_given_times_and_numbers_them(agreed: Harness, alice: TgUser):
    bot = agreed
    reply = (await bot.send(alice, "/treatment yesterday 18:00"))[0]
    assert "Treatment 1 is logged for <b>Tue 24 Nov, 18:00</b>" in reply
    # 20 h later: the check-in has passed; the main reflection (due 08:00 today) comes now.
    assert "Your first reflection prompt will come today at 14:00." in reply
    assert "(2 earlier prompts for this time had already passed.)" in reply
    prompt = await bot.next_prompt(alice)
    assert (prompt.text or "").startswith("<b>Reflection</b>")

    reply = (await bot.send(alice, "/treatment 2026-12-01 10:00"))[0]
    assert "Treatment 2 is planned for <b>Tue 1 Dec, 10:00</b>." in reply
    assert "Your first reflection prompt will come on Tue 1 Dec at 13:00." in reply
    # An intention now goes to the planned treatment.
    reply = (await bot.send(alice, "/intention Stay curious"))[0]
    assert "for treatment 2 (Tue 1 Dec, 10:00)" in reply
    with bot.session() as session:
        planned = session.scalars(select(Treatment).where(Treatment.number == 2)).one()
        assert planned.intention == "Stay curious"
        assert planned.occurred_at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    reply = (await bot.send(alice, "/treatment 14:30"))[0]  # later today
    assert "Treatment 3 is planned for <b>Wed 25 Nov, 14:30</b>." in reply


async def test_it_does_not_log_the_same_treatment_twice(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(minutes=5))
    reply = (await bot.send(alice, "/treatment"))[0]
    assert "already logged treatment 1" in reply
    with bot.session() as session:
        assert len(session.scalars(select(Treatment)).all()) == 1
        assert len(session.scalars(select(ScheduledPrompt)).all()) == 10
