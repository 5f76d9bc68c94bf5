"""Free entries and /journal paging."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.db.models import Entry
from bot.domain.journal import ENTRY_PREVIEW_LENGTH, PAGE_SIZE, snippet
from bot.render.telegram_html import TELEGRAM_LIMIT, visible_length
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser


def journal_buttons(request: ApiRequest) -> dict[str, str]:
    markup = request.params.get("reply_markup") or {"inline_keyboard": [[]]}
    return {b["text"]: b["callback_data"] for row in markup["inline_keyboard"] for b in row}


async def test_it_saves_free_entries_whole_and_escaped(agreed: Harness, alice: TgUser):
    text = "<u>plain</u> & *stars* stay as typed \u200b\u202e עברית 🌱\n" + "x" * 4000
    assert await agreed.send(alice, text) == ["Saved in your journal."]
    with agreed.session() as session:
        entry = session.scalars(select(Entry)).one()
        assert entry.text == text
        assert entry.prompt_id is None
        assert entry.treatment_id is None  # no treatment yet
    page = (await agreed.send(alice, "/journal"))[0]
    assert "&lt;u&gt;plain&lt;/u&gt; &amp; *stars* stay as typed" in page
    assert "…" in page  # long entries are shortened on the page


async def test_it_says_when_the_journal_is_empty(agreed: Harness, alice: TgUser):
    assert (await agreed.send(alice, "/journal"))[0].startswith("Your journal is empty")


async def test_it_pages_back_through_the_whole_journal(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    for number in range(1, 13):
        bot.clock.advance(timedelta(minutes=10))
        await bot.send(alice, f"Entry number {number}")

    first = next(r for r in await bot.send_raw(alice, "/journal") if r.method == "sendMessage")
    text = first.text or ""
    assert text.startswith("<b>Your journal</b> — page 1 of 3 (12 entries)")
    assert [f"Entry number {n}" in text for n in (12, 11, 10, 9, 8, 7)] == [True] * 5 + [False]
    assert text.index("Entry number 12") < text.index("Entry number 11")
    assert "<b>Wed 25 Nov, 16:00</b> · treatment 1" in text  # local time, newest first
    assert journal_buttons(first) == {
        "Treatment 1": "jtreat:1",
        "◀ Older": "journal:1",
        "Talk to someone now": "support",
    }

    await bot.press(alice, first.message_id, "journal:1")
    page2 = bot.fake.bot_message(alice.id, first.message_id)
    assert page2["text"].startswith("<b>Your journal</b> — page 2 of 3")
    assert "Entry number 7" in page2["text"]
    assert "Entry number 3" in page2["text"]
    assert [b["text"] for b in page2["reply_markup"]["inline_keyboard"][-2]] == [
        "◀ Older",
        "Newer ▶",
    ]

    await bot.press(alice, first.message_id, "journal:2")
    page3 = bot.fake.bot_message(alice.id, first.message_id)
    assert page3["text"].endswith("Entry number 1")
    assert "Entry number 3" not in page3["text"]
    assert [b["text"] for b in page3["reply_markup"]["inline_keyboard"][-2]] == ["Newer ▶"]

    # Data the message's buttons do not carry (forged, or stale) changes nothing.
    done = await bot.press(alice, first.message_id, "journal:99")
    assert [r.method for r in done] == ["answerCallbackQuery"]
    assert done[0].params["text"] == "That button no longer works. Try the command again."


async def test_it_shows_which_prompt_an_entry_answers(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.send(alice, "Calm")
    page = (await bot.send(alice, "/journal"))[0]
    assert "<b>Wed 25 Nov, 17:00</b> · treatment 1\n<i>Answer to: Check-in</i>\nCalm" in page


async def test_it_fits_a_page_of_the_longest_entries_in_one_message(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    for _ in range(PAGE_SIZE):
        bot.clock.advance(timedelta(minutes=1))
        await bot.send(alice, "🌊&" * 2000)  # escaping and two UTF-16 units per emoji
    page = (await bot.send(alice, "/journal"))[0]
    assert visible_length(page) <= TELEGRAM_LIMIT
    assert page.count("…") == PAGE_SIZE
    assert ENTRY_PREVIEW_LENGTH * PAGE_SIZE < TELEGRAM_LIMIT


async def test_it_ignores_a_button_pressed_by_someone_else(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.send(alice, "A private thought of Alice")
    journal = next(r for r in await bot.send_raw(alice, "/journal") if r.method == "sendMessage")
    await bot.agree(bob)
    # Bob presses a button on Alice's message (as if it reached him): nothing changes.
    done = await bot.press(bob, journal.message_id, "journal:0", chat_id=alice.id)
    assert [r.method for r in done] == ["answerCallbackQuery"]
    assert done[0].params["text"] == "This button belongs to someone else's message."
    unchanged = bot.fake.bot_message(alice.id, journal.message_id)
    assert "A private thought of Alice" in unchanged["text"]


async def test_it_does_not_save_a_redelivered_message_twice(agreed: Harness, alice: TgUser):
    bot = agreed
    assert await bot.send(alice, "Just once") == ["Saved in your journal."]
    again = await bot.redeliver(alice, bot.last_update_id)
    assert [r for r in again if r.method == "sendMessage"] == []
    with bot.session() as session:
        assert session.scalar(select(func.count(Entry.id))) == 1


async def test_it_shows_everything_around_one_treatment(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/intention Meet the old fear")
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.send(alice, "Calm")
    mood = await bot.next_prompt(alice)
    await bot.press(alice, mood.message_id, "prompt:scale:2:7")
    reflection = await bot.next_prompt(alice)
    await bot.send(alice, "A river of light")
    await bot.send(alice, "And my grandmother", reply_to=reflection.message_id)
    day2 = await bot.next_prompt(alice)
    await bot.press(alice, day2.message_id, "prompt:skip:4")
    await bot.send(alice, "A free thought")

    messages = await bot.send(alice, "/journal 1")
    assert len(messages) == 1
    text = messages[0]
    expected_in_order = [
        "<b>Treatment 1</b> — Wed 25 Nov, 14:00",
        "<blockquote>Meet the old fear</blockquote>",
        "<b>Check-in</b> · Wed 25 Nov, 17:00 · <i>answered</i>",
        "Calm",
        "<b>How you feel</b> · Thu 26 Nov, 08:00 · <i>answered</i>",
        "Mood: 7 out of 10",
        "<b>Reflection</b> · Thu 26 Nov, 09:00 · <i>answered</i>",
        "A river of light",
        "And my grandmother",
        "<b>One small step</b> · Fri 27 Nov, 14:00 · <i>skipped</i>",
        "<b>An integration practice</b> · <i>not sent yet</i>",
        "<b>One month on</b> · <i>not sent yet</i>",
        "<b>Everything else you wrote in this time</b>",
        "A free thought",
    ]
    positions = [text.index(part) for part in expected_in_order]
    assert positions == sorted(positions)

    page = next(r for r in await bot.send_raw(alice, "/journal") if r.method == "sendMessage")
    done = await bot.press(alice, page.message_id, "jtreat:1")
    assert [r.text for r in done if r.method == "sendMessage"] == messages


async def test_it_says_which_treatments_exist(agreed: Harness, alice: TgUser):
    await agreed.send(alice, "/treatment")
    assert (await agreed.send(alice, "/journal 9"))[0] == (
        "You haven't logged a treatment 9. Your treatments: 1."
    )


async def test_it_splits_a_treatment_with_long_entries_between_entries(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/treatment")
    for number in range(3):
        bot.clock.advance(timedelta(minutes=1))
        await bot.send(alice, f"Entry {number} " + "word " * 800)
    header, *messages = await bot.send(alice, "/journal 1")
    assert header.startswith("<b>Treatment 1</b>")
    assert len(messages) == 3
    for number, message in enumerate(messages):
        assert visible_length(message) <= TELEGRAM_LIMIT
        assert message.count("Entry ") == 1
        assert f"Entry {number} " in message


async def test_it_finds_entries_containing_every_word(agreed: Harness, alice: TgUser):
    bot = agreed
    for text in (
        "The garden of my father",
        "My FATHER called",
        "a garden party",
        "Father's garden, again & again",
    ):
        bot.clock.advance(timedelta(minutes=1))
        await bot.send(alice, text)
    result = (await bot.send(alice, "/journal search GARDEN father"))[0]
    assert result.startswith("<b>Search:</b> GARDEN father — 2 entries, page 1 of 1")
    assert "<b>Father</b>&#39;s <b>garden</b>, again &amp; again" in result
    assert "The <b>garden</b> of my <b>father</b>" in result
    assert result.index("again") < result.index("The <b>garden</b>")  # newest first
    assert "called" not in result
    assert "party" not in result


async def test_it_pages_through_search_results(agreed: Harness, alice: TgUser):
    bot = agreed
    for number in range(7):
        bot.clock.advance(timedelta(minutes=1))
        await bot.send(alice, f"Breathing practice number {number}")
    first = next(
        r
        for r in await bot.send_raw(alice, "/journal search breathing")
        if r.method == "sendMessage"
    )
    assert "7 entries, page 1 of 2" in (first.text or "")
    assert journal_buttons(first) == {
        "◀ Older": "jsearch:1:breathing",
        "Talk to someone now": "support",
    }
    await bot.press(alice, first.message_id, "jsearch:1:breathing")
    page2 = bot.fake.bot_message(alice.id, first.message_id)["text"]
    assert "page 2 of 2" in page2
    assert "number 1" in page2
    assert "number 0" in page2
    assert "number 6" not in page2


async def test_it_explains_searches_it_cannot_run(agreed: Harness, alice: TgUser):
    bot = agreed
    assert (await bot.send(alice, "/journal search <b>"))[0] == (
        "Nothing in your journal contains “&lt;b&gt;”."
    )
    too_long = "/journal search " + " ".join(["meditation"] * 6)
    assert (await bot.send(alice, too_long))[0].startswith("Please search with fewer words")
    assert (await bot.send(alice, "/journal banana"))[0].startswith("You can use:")


@pytest.mark.parametrize(
    ("text", "words", "marked"),
    [
        ("Straße garden", ["garden"], "garden"),  # "ß" folds to two letters
        ("ß" * 200 + " garden", ["garden"], "garden"),
        ("Ein STRASSE hier", ["straße"], "STRASSE"),
    ],
)
def test_the_snippet_marks_the_match_even_when_folding_changes_lengths(
    text: str, words: list[str], marked: str
):
    pieces = snippet(text, words)
    assert [piece for piece, is_match in pieces if is_match] == [marked]
