"""The guide: linked with a one-time code, adds session notes, sees only what is shared."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from bot.db.models import SessionNote
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser

SECRET = "ALICEPRIVATEGARDEN"


async def invite(bot: Harness, user: TgUser) -> str:
    [reply] = await bot.send(user, "/guide invite")
    match = re.search(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>", reply)
    assert match, reply
    return match.group(1)


def notes(bot: Harness) -> list[tuple[str, str]]:
    with bot.session() as session:
        rows = session.scalars(select(SessionNote).order_by(SessionNote.id))
        return [(note.author, note.text) for note in rows]


def everything_sent_to(bot: Harness, user: TgUser) -> str:
    return "\n".join(str(r.params) for r in bot.fake.requests if r.chat_id == user.id)


async def test_a_guide_joins_adds_notes_and_the_patient_finds_them_everywhere(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.send(alice, f"{SECRET} is what I wrote")
    code = await invite(bot, alice)
    [joined] = await bot.send(bob, f"/guide join {code}")  # Bob never started the bot himself
    assert joined.startswith("You're now linked to <b>Alice</b> as their guide.")
    assert "<b>Bob</b> is now linked to you as your guide." in bot.fake.sent(alice.id)[-1].text  # type: ignore[operator]
    assert "Linked to you: <b>Bob</b>." in (await bot.send(alice, "/guide"))[0]

    await bot.send(alice, "/treatment")
    assert (await bot.send(bob, "/notes"))[0].startswith("Send your notes for Alice's treatment 1")
    assert await bot.send(bob, "Calm, & <tearful> at the end") == [
        "Noted for Alice's treatment 1. They'll see it in their reflection and their journal."
    ]
    told = bot.fake.sent(alice.id)[-1].text or ""
    assert told.startswith("Your guide added a note to treatment 1.")
    await bot.send(bob, "/notes Asked for water twice")
    assert notes(bot) == [
        ("guide", "Calm, & <tearful> at the end"),
        ("guide", "Asked for water twice"),
    ]

    # In the reflection, the journal, the recap and the export: marked as the guide's.
    prompt = await bot.next_prompt(alice)
    while "Reflection" not in (prompt.text or ""):
        prompt = await bot.next_prompt(alice)
    assert (
        "Your guide noted:\n<blockquote>Calm, &amp; &lt;tearful&gt; at the end</blockquote>"
        in (prompt.text or "")
    )
    page = "\n".join(await bot.send(alice, "/journal 1"))
    assert "<b>Your guide's note</b>\n<blockquote>Asked for water twice</blockquote>" in page
    recap = "\n".join(await bot.send(alice, "/recap"))
    assert "Your guide noted: <i>Asked for water twice</i>" in recap
    files = [r for r in await bot.send_raw(alice, "/export") if r.method == "sendDocument"]
    markdown = next(r for r in files if r.params["document"].filename.endswith(".md"))
    text = markdown.params["document"].data.decode()
    assert "### Session notes" in text
    assert "*From the guide*" in text

    # The guide saw none of it.
    assert SECRET not in everything_sent_to(bot, bob)


async def test_a_patient_shares_a_recap_or_an_export_only_when_asking(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.send(alice, f"{SECRET} is what I wrote")
    await bot.send(bob, f"/guide join {await invite(bot, alice)}")
    assert SECRET not in everything_sent_to(bot, bob)
    assert await bot.send(alice, "/share recap") == ["Sent your recap to your guide."]
    received = everything_sent_to(bot, bob)
    assert "<b>Alice</b> shared their recap with you." in received
    assert "Your last 7 days" in received
    await bot.send(alice, "/share export")
    documents = bot.fake.sent(bob.id, "sendDocument")
    assert {r.params["document"].filename.rsplit(".", 1)[1] for r in documents} == {"md", "pdf"}
    assert SECRET in documents[0].params["document"].data.decode()


async def test_a_guide_reaches_only_their_own_patients(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser
):
    bot = agreed
    await bot.agree(carol)
    await bot.send(alice, "/treatment")
    await bot.send(carol, "/treatment")
    # Carol is no one's guide: her /notes are her own, about her own session.
    await bot.send(carol, "/notes I saw colours")
    assert notes(bot) == [("patient", "I saw colours")]
    # Bob guides both: he has to say whom.
    await bot.send(bob, f"/guide join {await invite(bot, alice)}")
    await bot.send(bob, f"/guide join {await invite(bot, carol)}")
    [which] = await bot.send(bob, "/notes Calm")
    assert which.startswith("You guide more than one person: name them first")
    await bot.send(bob, "/notes Car steady breathing")
    with bot.session() as session:
        mine = session.scalars(select(SessionNote).where(SessionNote.author == "guide")).one()
        assert mine.text == "steady breathing"
    assert bot.fake.sent(carol.id)[-1].text.startswith("Your guide added a note")  # type: ignore[union-attr]
    assert not (bot.fake.sent(alice.id)[-1].text or "").startswith("Your guide added")

    # Unlinked, Bob reaches no one.
    await bot.send(alice, "/guide remove")
    await bot.send(carol, "/guide remove")
    before = notes(bot)
    [refused] = await bot.send(bob, "/notes Alice one more")
    # No longer anyone's guide, and no patient himself: he is only invited to start.
    assert refused.startswith("Hello! Send /start to begin")
    assert notes(bot) == before


async def test_codes_work_once_for_24_hours_and_not_for_oneself(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser
):
    bot = agreed
    code = await invite(bot, alice)
    assert (await bot.send(alice, f"/guide join {code}"))[0].startswith("That's your own code")
    await bot.send(bob, f"/guide join {code}")
    assert (await bot.send(carol, f"/guide join {code}"))[0].startswith("That code doesn't work")
    late = await invite(bot, alice)
    bot.clock.advance(timedelta(hours=24, minutes=1))
    assert (await bot.send(carol, f"/guide join {late}"))[0].startswith("That code doesn't work")
    assert (await bot.send(carol, "/guide join NOPE-NOPE"))[0].startswith("That code doesn't work")


async def test_a_patient_without_a_guide_keeps_session_notes(agreed: Harness, alice: TgUser):
    bot = agreed
    assert (await bot.send(alice, "/notes"))[0].startswith("There's no treatment logged yet")
    await bot.send(alice, "/treatment")
    [asked] = await bot.send(alice, "/notes")
    assert asked.startswith("Send what you want to remember from treatment 1")
    assert await bot.send(alice, "A door opening") == [
        "Kept as a session note for treatment 1. You'll find it in /journal 1, your recap and "
        "your export."
    ]
    # Once: the next message is an entry again, and a redelivered note adds nothing.
    await bot.redeliver(alice, bot.last_update_id)
    assert await bot.send(alice, "Something else") == ["Saved in your journal."]
    assert notes(bot) == [("patient", "A door opening")]


async def test_a_guide_replies_to_the_treatment_announcement_with_notes(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.send(bob, f"/guide join {await invite(bot, alice)}")
    await bot.send(alice, "/guide announce on")  # her choice: off unless she makes it
    await bot.send(alice, "/treatment")
    announcement = bot.fake.sent(bob.id)[-1]
    assert (announcement.text or "").startswith(
        "<b>Alice</b> logged treatment 1 (Wed 25 Nov, 14:00)."
    )
    assert await bot.send(bob, "Peaceful throughout", reply_to=announcement.message_id) == [
        "Noted for Alice's treatment 1. They'll see it in their reflection and their journal."
    ]
    # A reply to any other message of the bot is not a note.
    [joined] = [r for r in bot.fake.sent(bob.id) if "You're now linked" in (r.text or "")]
    [other] = await bot.send(bob, "Hello?", reply_to=joined.message_id)
    assert other.startswith("Hello! Send /start to begin")
    assert notes(bot) == [("guide", "Peaceful throughout")]
