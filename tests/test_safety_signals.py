"""Safety that does not depend on wording: a very low mood gets a gentle check-in with the
crisis contacts one tap away, and that tap is under every prompt and journal page."""

from __future__ import annotations

import logging

import pytest

from bot.telegram.keyboards import SUPPORT
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser

CHECK_IN = (
    "Thank you for telling me. A {value} out of 10 sounds like a really hard time, and you "
    "don't have to carry it alone. If you'd like to talk to someone right now, tap below for "
    "people you can reach at any hour. And whenever you want to write, I'm here."
)


def buttons(request: ApiRequest) -> list[str]:
    rows = request.params.get("reply_markup", {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row]


def kept_buttons(bot: Harness, user: TgUser, prompt: ApiRequest) -> list[str]:
    """The callback data of the buttons the prompt carries now."""
    assert prompt.message_id is not None
    markup = bot.fake.bot_message(user.id, prompt.message_id).get("reply_markup", {})
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


def sent(requests: list[ApiRequest]) -> list[ApiRequest]:
    return [r for r in requests if r.method == "sendMessage"]


@pytest.mark.parametrize("value", [1, 2])
async def test_it_checks_in_gently_after_a_very_low_mood(
    agreed: Harness, alice: TgUser, value: int
):
    ask = sent(await agreed.send_raw(alice, "/mood"))[0]
    replies = sent(await agreed.press(alice, ask.message_id, f"mood:{value}"))
    assert [r.text for r in replies] == [
        f"Noted: {value} out of 10.\n"
        "If you like, write a few words about it: your next message will be kept with it.",
        CHECK_IN.format(value=value),
    ]
    assert buttons(replies[1]) == [SUPPORT]


async def test_it_says_nothing_more_after_a_mood_of_three(agreed: Harness, alice: TgUser):
    ask = sent(await agreed.send_raw(alice, "/mood"))[0]
    replies = sent(await agreed.press(alice, ask.message_id, "mood:3"))
    assert len(replies) == 1


async def test_it_checks_in_after_a_low_answer_to_a_scale_prompt_pressed_or_typed(
    agreed: Harness, alice: TgUser
):
    await agreed.send(alice, "/treatment")
    await agreed.next_prompt(alice)  # the check-in
    await agreed.send(alice, "tired")
    scale = await agreed.next_prompt(alice)  # how do you feel, 1-10
    pressed = sent(await agreed.press(alice, scale.message_id, buttons(scale)[1]))
    assert [r.text for r in pressed][-1] == CHECK_IN.format(value=2)
    await agreed.next_prompt(alice)  # the reflection
    await agreed.send(alice, "it was a lot")
    await agreed.next_prompt(alice)  # day two
    await agreed.send(alice, "calmer today")
    await agreed.next_prompt(alice)  # the day-three scale
    assert (agreed.fake.sent(alice.id)[-1].text or "").startswith("<b>How you feel</b>")
    typed = await agreed.send(alice, "1")
    assert typed[-1] == CHECK_IN.format(value=1)


async def test_every_prompt_and_journal_page_has_the_crisis_contacts_one_tap_away(
    agreed: Harness, alice: TgUser
):
    await agreed.send(alice, "/treatment")
    prompt = await agreed.next_prompt(alice)
    assert buttons(prompt)[-1] == SUPPORT
    await agreed.send(alice, "a first entry")
    # Answered, the prompt keeps that one button (Later and Skip go); so does one whose scale
    # was pressed.
    assert kept_buttons(agreed, alice, prompt) == [SUPPORT]
    scale = await agreed.next_prompt(alice)
    await agreed.press(alice, scale.message_id, buttons(scale)[0])
    assert kept_buttons(agreed, alice, scale) == [SUPPORT]
    page = sent(await agreed.send_raw(alice, "/journal"))[-1]
    assert buttons(page)[-1] == SUPPORT
    treatment_page = sent(await agreed.send_raw(alice, "/journal 1"))[-1]
    assert buttons(treatment_page)[-1] == SUPPORT

    contacts = sent(await agreed.press(alice, prompt.message_id, SUPPORT))
    assert len(contacts) == 1
    assert (contacts[0].text or "").startswith("<b>If you are in crisis</b>")
    assert "TelefonSeelsorge" in (contacts[0].text or "")  # Berlin's country, Germany


async def test_a_crisis_reply_is_logged_without_anything_that_names_the_patient(
    agreed: Harness, alice: TgUser, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="bot")
    replies = await agreed.send(alice, "i cant do this anymore i want to die")
    assert replies[0].startswith("I'm really glad you told me")
    crisis_lines = [r.getMessage() for r in caplog.records if "crisis" in r.getMessage()]
    assert crisis_lines == ["sent crisis resources"]
    assert not any(str(alice.id) in line for line in crisis_lines)
