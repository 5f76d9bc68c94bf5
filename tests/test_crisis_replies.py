"""Crisis language gets resources at once, before anything else, and is still saved."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.models import Entry, Patient
from bot.telegram.keyboards import SUPPORT
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser


async def test_it_answers_crisis_language_first_and_still_saves_it(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/timezone Europe/London")
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    replies = await bot.send(alice, "honestly I don't see the point of going on anymore")
    assert len(replies) == 2
    crisis, saved = replies
    assert crisis.startswith("I'm really glad you told me.")
    assert "<b>Samaritans</b>: call 116 123" in crisis  # the time zone's country: GB
    assert saved == "Thank you. Saved as your answer to <i>Check-in</i>."
    with bot.session() as session:
        assert session.scalars(select(Entry.text)).one() == (
            "honestly I don't see the point of going on anymore"
        )


async def test_it_does_not_alarm_on_integration_metaphors(agreed: Harness, alice: TgUser):
    for text in (
        "the old me died in that session and it felt freeing",
        "that meeting killed me",
        "I'm dying to try yoga",
    ):
        assert await agreed.send(alice, text) == ["Saved in your journal."]


async def test_it_answers_crisis_in_captions_edits_and_commands(agreed: Harness, alice: TgUser):
    bot = agreed
    photo = [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]
    requests = await bot.send_update(alice, photo=photo, caption="I cut myself again last night")
    texts = [r.text or "" for r in requests if r.method == "sendMessage"]
    assert texts[0].startswith("I'm really glad you told me.")
    assert texts[1] == "Saved your photo in your journal."

    replies = await bot.send(alice, "/intention I want to die")
    assert replies[0].startswith("I'm really glad you told me.")
    assert replies[1].startswith("Your intention is set")


async def test_it_answers_crisis_even_before_consent_and_stores_nothing(bot: Harness, bob: TgUser):
    replies = await bot.send(bob, "I took all my pills")
    assert replies[0].startswith("I'm really glad you told me.")
    assert "Send /start to begin" in replies[1]
    with bot.session() as session:
        assert session.scalars(select(Patient)).all() == []


async def test_it_shows_resources_for_the_chosen_country(agreed: Harness, alice: TgUser):
    bot = agreed
    default_country = (await bot.send(alice, "/crisis"))[0]
    assert default_country.startswith("<b>If you are in crisis</b>")
    assert "0800 111 0 111" in default_country  # Europe/Berlin: Germany
    assert (await bot.send(alice, "/country us"))[0] == (
        "Your country is now <b>US</b>: /crisis shows its contacts."
    )
    assert "call or text 988" in (await bot.send(alice, "/crisis"))[0]
    assert (await bot.send(alice, "/country UK"))[0].startswith(
        '"UK" isn\'t a country code I know.'
    )
    assert (await bot.send(alice, "/country auto"))[0].startswith(
        "Your country now follows your time zone (Europe/Berlin: DE)"
    )


async def test_it_mentions_crisis_resources_in_start_and_help(bot: Harness, alice: TgUser):
    assert "/crisis" in (await bot.send(alice, "/start"))[0]
    assert "/crisis" in (await bot.send(alice, "/help"))[0]


async def test_someone_elses_support_button_posts_nothing_in_their_chat(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    """Bob pressing "Talk to someone now" on Alice's message (forwarded, say) is told it is not
    his; nothing appears in Alice's chat. Alice's own press still shows the contacts."""
    [journal] = [r for r in await agreed.send_raw(alice, "/journal") if r.method == "sendMessage"]
    rows = journal.params["reply_markup"]["inline_keyboard"]
    assert SUPPORT in [button["callback_data"] for row in rows for button in row]
    done = await agreed.press(bob, journal.message_id, SUPPORT, chat_id=alice.id)
    assert [r.method for r in done] == ["answerCallbackQuery"]
    assert done[0].params["show_alert"] is True
    done = await agreed.press(alice, journal.message_id, SUPPORT)
    assert [r.method for r in done] == ["answerCallbackQuery", "sendMessage"]
    assert done[1].chat_id == alice.id
