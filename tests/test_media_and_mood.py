"""Voice notes, photos and documents in the journal; edits; /mood with an optional note."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.db.models import Entry
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser

VOICE = {"voice": {"file_id": "voice-1", "file_unique_id": "uv1", "duration": 42}}
PHOTO = {
    "photo": [
        {"file_id": "photo-small", "file_unique_id": "up1", "width": 90, "height": 90},
        {"file_id": "photo-large", "file_unique_id": "up2", "width": 1280, "height": 960},
    ],
    "caption": "My drawing of the <river> & the light",
}
DOCUMENT = {"document": {"file_id": "doc-1", "file_unique_id": "ud1", "file_name": "notes.pdf"}}


def sent_texts(requests: list[ApiRequest]) -> list[str]:
    return [r.text or "" for r in requests if r.method == "sendMessage"]


def entries(bot: Harness) -> list[Entry]:
    with bot.session() as session:
        return list(session.scalars(select(Entry).order_by(Entry.id)))


async def test_it_keeps_a_voice_note_as_the_answer_to_a_prompt(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    replies = sent_texts(await bot.send_update(alice, **VOICE))
    assert replies == ["Thank you. Saved your voice note as your answer to <i>Check-in</i>."]
    [entry] = entries(bot)
    assert (entry.kind, entry.file_id, entry.duration_seconds, entry.prompt_id) == (
        "voice",
        "voice-1",
        42,
        1,
    )


async def test_it_keeps_photos_and_documents_and_sends_them_back(agreed: Harness, alice: TgUser):
    bot = agreed
    assert sent_texts(await bot.send_update(alice, **PHOTO)) == [
        "Saved your photo in your journal."
    ]
    bot.clock.advance(timedelta(minutes=1))
    assert sent_texts(await bot.send_update(alice, **DOCUMENT)) == [
        "Saved your document in your journal."
    ]
    photo, document = entries(bot)
    assert (photo.kind, photo.file_id, photo.text) == (
        "photo",
        "photo-large",
        "My drawing of the <river> & the light",
    )
    assert (document.kind, document.file_id, document.text) == ("document", "doc-1", None)

    page = next(r for r in await bot.send_raw(alice, "/journal") if r.method == "sendMessage")
    assert "[Document]" in (page.text or "")
    assert "[Photo]\nMy drawing of the &lt;river&gt; &amp; the light" in (page.text or "")
    rows = page.params["reply_markup"]["inline_keyboard"]
    assert [row[0]["text"] for row in rows] == [
        "▶ Document, Wed 25 Nov, 14:01",
        "▶ Photo, Wed 25 Nov, 14:00",
        "Talk to someone now",
    ]
    done = await bot.press(alice, page.message_id, rows[1][0]["callback_data"])
    [sent] = [r for r in done if r.method == "sendPhoto"]
    assert sent.params["photo"] == "photo-large"


async def test_it_shows_the_length_of_a_voice_note(agreed: Harness, alice: TgUser):
    await agreed.send_update(alice, **VOICE)
    assert "[Voice note, 0:42]" in (await agreed.send(alice, "/journal"))[0]


async def test_it_never_sends_another_patients_file(agreed: Harness, alice: TgUser, bob: TgUser):
    bot = agreed
    await bot.send_update(alice, **VOICE)
    await bot.agree(bob)
    bobs_message = bot.fake.sent(bob.id)[-1]
    done = await bot.press(bob, bobs_message.message_id, "file:1")
    assert [r.method for r in done] == ["answerCallbackQuery"]


async def test_it_applies_an_edit_and_notes_it(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "The original words")
    original = bot.fake.pushed[bot.last_update_id]["message"]
    bot.clock.advance(timedelta(minutes=3))
    edited = dict(original, text="The better words", edit_date=1)
    update_id = bot.fake.push_update({"edited_message": edited})
    await bot.wait_handled(update_id)
    assert bot.fake.sent(alice.id)[-1].text == (
        "Updated in your journal. I've kept a note that you edited it."
    )
    [entry] = entries(bot)
    assert entry.text == "The better words"
    assert entry.edited_at == bot.clock.now
    assert entry.created_at == bot.clock.now - timedelta(minutes=3)
    assert (
        "<b>Wed 25 Nov, 14:00</b> · edited\nThe better words"
        in (await bot.send(alice, "/journal"))[0]
    )


async def test_it_ignores_an_edit_of_a_message_that_made_no_entry(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/journal")
    command = bot.fake.pushed[bot.last_update_id]["message"]
    before = len(bot.fake.requests)
    update_id = bot.fake.push_update({"edited_message": dict(command, text="/recap", edit_date=1)})
    await bot.wait_handled(update_id)
    assert bot.fake.requests[before:] == []
    assert entries(bot) == []


async def test_it_keeps_a_mood_with_an_optional_note(agreed: Harness, alice: TgUser):
    bot = agreed
    ask = next(r for r in await bot.send_raw(alice, "/mood") if r.method == "sendMessage")
    assert (ask.text or "").startswith("<b>How are you feeling right now?</b>")
    assert [
        b["callback_data"] for row in ask.params["reply_markup"]["inline_keyboard"] for b in row
    ] == [f"mood:{n}" for n in range(1, 11)]
    done = await bot.press(alice, ask.message_id, "mood:6")
    assert sent_texts(done) == [
        "Noted: 6 out of 10.\n"
        "If you like, write a few words about it: your next message will be kept with it."
    ]
    assert "reply_markup" not in bot.fake.bot_message(alice.id, ask.message_id)
    bot.clock.advance(timedelta(minutes=10))
    assert await bot.send(alice, "Tired but hopeful") == [
        "Added as the note to your mood (6 out of 10)."
    ]
    assert await bot.send(alice, "Another thought") == ["Saved in your journal."]
    mood, free = entries(bot)
    assert (mood.kind, mood.scale_value, mood.text) == ("mood", 6, "Tired but hopeful")
    assert (free.kind, free.text) == ("text", "Another thought")
    assert "Mood: 6 out of 10\nTired but hopeful" in (await bot.send(alice, "/journal"))[0]


async def test_it_stops_waiting_for_a_mood_note_after_a_while(agreed: Harness, alice: TgUser):
    bot = agreed
    ask = next(r for r in await bot.send_raw(alice, "/mood") if r.method == "sendMessage")
    await bot.press(alice, ask.message_id, "mood:4")
    bot.clock.advance(timedelta(minutes=31))
    assert await bot.send(alice, "Much later") == ["Saved in your journal."]
    mood, free = entries(bot)
    assert mood.text is None
    assert free.text == "Much later"


async def test_it_lets_a_newer_prompt_take_the_next_answer(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(hours=2, minutes=50))
    ask = next(r for r in await bot.send_raw(alice, "/mood") if r.method == "sendMessage")
    await bot.press(alice, ask.message_id, "mood:5")
    await bot.next_prompt(alice)  # the check-in arrives after the mood was given
    assert await bot.send(alice, "Resting") == [
        "Thank you. Saved as your answer to <i>Check-in</i>."
    ]
