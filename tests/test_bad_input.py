"""Bad input gets a clear, kind reply, and nothing is stored or corrupted."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.db.models import Entry, Patient, ScheduledPrompt, Treatment
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser


def counts(bot: Harness) -> tuple[int, int, int]:
    with bot.session() as session:
        return (
            session.scalar(select(func.count(Treatment.id))) or 0,
            session.scalar(select(func.count(ScheduledPrompt.id))) or 0,
            session.scalar(select(func.count(Entry.id))) or 0,
        )


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("/treatment 25:00", "I didn't understand that time. You can send:"),
        ("/treatment 25:99", "I didn't understand that time. You can send:"),
        ("/timezone Mars/Olympus", 'I don\'t know the time zone "Mars/Olympus"'),
        ("/quiet 8-22", "Please give quiet hours as two times, like /quiet 22:00-08:00"),
        ("/recap -5", "Please give a number of days from 1 to 365, for example /recap 30."),
        ("/journal -3", "You can use:\n/journal — your latest entries"),
        ("/export -1", "You can send /export for your whole journal"),
        # Found by the property test: "²" is a digit to str.isdigit(), not to int(), and a
        # number past 64 bits overflowed the query.
        ("/journal ²", "You can use:\n/journal — your latest entries"),
        ("/journal 99999999999999999999", "You can use:\n/journal — your latest entries"),
        ("/recap ²", "Please give a number of days from 1 to 365"),
        ("/export ²", "You can send /export for your whole journal"),
        ("/goal done ²", "You can send:\n/goal add build: walk every morning"),
        ("/goal drop 99999999999999999999", "You can send:\n/goal add build"),
        ("/treatment banana", "I didn't understand that time."),
        ("/treatment yesterday", "I didn't understand that time."),
        ("/treatment 2026-02-30 10:00", "I didn't understand that time."),
        ("/treatment 1 2 3", "I didn't understand that time."),
        ("/treatment 2026-01-01 10:00", "That's more than 30 days ago"),
        ("/treatment 2027-11-01 10:00", "That's more than 180 days ahead"),
        ("/timezone Not/AZone", "I don't know the time zone"),
        ("/quiet 8am-10pm", "Please give quiet hours as two times"),
        ("/quiet 22:00-22:00", "The start and end can't be the same."),
        ("/nonsense", "I don't know that command. /help lists what I can do."),
        ("/intention", "An intention is a few words"),
    ],
)
async def test_it_answers_malformed_commands_kindly(
    agreed: Harness, alice: TgUser, command: str, reply: str
):
    replies = await agreed.send(alice, command)
    assert len(replies) == 1
    assert reply in replies[0]
    assert counts(agreed) == (0, 0, 0)


async def test_it_refuses_an_over_long_intention(agreed: Harness, alice: TgUser):
    reply = (await agreed.send(alice, "/intention " + "so much to say " * 200))[0]
    assert "That's a little long for an intention (2999 characters)" in reply
    with agreed.session() as session:
        assert session.scalars(select(Patient)).one().pending_intention is None


async def test_it_escapes_an_intention_full_of_markup(agreed: Harness, alice: TgUser):
    reply = (await agreed.send(alice, "/intention <u>be</u> & *brave* </blockquote>"))[0]
    assert (
        "<blockquote>&lt;u&gt;be&lt;/u&gt; &amp; *brave* &lt;/blockquote&gt;</blockquote>" in reply
    )
    await agreed.send(alice, "/treatment")
    await agreed.next_prompt(alice)  # check-in
    await agreed.next_prompt(alice)  # mood
    reflection = await agreed.next_prompt(alice)
    assert "&lt;/blockquote&gt;</blockquote>" in (reflection.text or "")


@pytest.mark.parametrize(
    "fields",
    [
        {
            "sticker": {
                "file_id": "s1",
                "file_unique_id": "u1",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        },
        {"location": {"latitude": 52.5, "longitude": 13.4}},
        {"contact": {"phone_number": "+4930123456", "first_name": "Sam"}},
    ],
)
async def test_it_explains_what_the_journal_keeps(agreed: Harness, alice: TgUser, fields):
    requests = await agreed.send_update(alice, **fields)
    replies = [r.text or "" for r in requests if r.method == "sendMessage"]
    assert len(replies) == 1
    assert replies[0].startswith("I can't keep that in your journal. It holds what you write, ")
    assert "Stickers, locations and contacts aren't kept." in replies[0]
    assert counts(agreed) == (0, 0, 0)


@pytest.mark.parametrize("data", ["prompt:later:abc", "prompt:", "prompt:fly:1", "whatever"])
async def test_it_answers_unknown_buttons(agreed: Harness, alice: TgUser, data: str):
    message = agreed.fake.sent(alice.id)[-1]
    done = await agreed.press(alice, message.message_id, data)
    toast = next(r for r in done if r.method == "answerCallbackQuery")
    assert toast.params["text"] == "That button no longer works. Try the command again."
    assert counts(agreed) == (0, 0, 0)


async def test_it_refuses_a_button_for_another_patients_prompt(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.agree(bob)
    bobs_message = bot.fake.sent(bob.id)[-1]
    # Bob forges the data of Alice's prompt on a message of his own.
    done = await bot.press(bob, bobs_message.message_id, "prompt:skip:1")
    toast = next(r for r in done if r.method == "answerCallbackQuery")
    assert toast.params["text"] == "That button no longer works. Try the command again."
    with bot.session() as session:
        assert session.get_one(ScheduledPrompt, 1).status == "sent"


async def test_it_apologises_for_an_internal_error_without_logging_the_message(
    agreed: Harness,
    alice: TgUser,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("bot.domain.incoming.record_message", broken)
    replies = await agreed.send(alice, "My most private thought")
    assert replies == [
        "Sorry, something went wrong on my side. Nothing you wrote before is lost — "
        "please try again in a moment."
    ]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert errors
    assert errors[0].exc_info is not None
    assert "My most private thought" not in caplog.text


@pytest.mark.parametrize(
    "update",
    [
        # A channel post: no user at all.
        {
            "channel_post": {
                "message_id": 5,
                "date": 1,
                "chat": {"id": -1009, "type": "channel", "title": "News"},
                "text": "/start",
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            }
        },
        # A poll's new state: neither user nor chat.
        {
            "poll": {
                "id": "p1",
                "question": "?",
                "options": [{"text": "a", "voter_count": 1, "persistent_id": "o1"}],
                "total_voter_count": 1,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
        },
    ],
)
async def test_it_ignores_updates_without_a_patient(
    agreed: Harness, caplog: pytest.LogCaptureFixture, update: dict[str, object]
):
    bot = agreed
    before = len(bot.fake.requests)
    await bot.wait_handled(bot.fake.push_update(update))
    assert bot.fake.requests[before:] == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_it_skips_an_update_it_cannot_read_and_goes_on(
    agreed: Harness, alice: TgUser, caplog: pytest.LogCaptureFixture
):
    # A poll option without the id newer Bot APIs always send: python-telegram-bot cannot
    # parse it, and would otherwise fail every getUpdates from here on.
    bot = agreed
    unreadable = {
        "poll": {
            "id": "p2",
            "question": "SECRET QUESTION",
            "options": [{"text": "a", "voter_count": 1}],
            "total_voter_count": 1,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
        }
    }
    skipped = bot.fake.push_update(unreadable)
    assert await bot.send(alice, "Still heard") == ["Saved in your journal."]
    await bot.wait_handled(skipped)
    assert f"update {skipped} cannot be read" in caplog.text
    assert "SECRET QUESTION" not in caplog.text
