"""What a guide receives, what the database keeps about a guide, invite codes, and a guide's
/delete: the README's promises about guides, checked through the real bot."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy import Engine, select

from bot.db.crypto import Cipher, current_cipher, new_key
from bot.db.keys import rotate_keys
from bot.db.migrate import upgrade_to_head
from bot.db.models import GuideInvite, GuideJoinAttempt, GuideLink, Patient, SessionNote
from bot.db.session import create_db_engine, create_session_factory
from bot.telegram.keyboards import DELETE_NO, DELETE_YES, GUIDE_ANNOUNCE_OFF, GUIDE_ANNOUNCE_ON
from tests.auxil.dump import key_in_use, raw_rows, tables_showing
from tests.auxil.harness import Harness
from tests.auxil.migrations import at_revision
from tests.fake_telegram import ApiRequest, FakeTelegram, TgUser

CODE = re.compile(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>")
WRONG_CODE = "WRONG-CODE2"


async def invite(bot: Harness, user: TgUser) -> tuple[str, ApiRequest]:
    """A new code from the user, and the message that carries it (with its buttons)."""
    sent = [r for r in await bot.send_raw(user, "/guide invite") if r.method == "sendMessage"]
    [reply] = [r for r in sent if CODE.search(r.text or "")]
    match = CODE.search(reply.text or "")
    assert match
    return match.group(1), reply


def engine_of(bot: Harness) -> Engine:
    assert bot.companion is not None
    engine: Engine = bot.companion.sessions.kw["bind"]
    return engine


def buttons(request: ApiRequest) -> list[tuple[str, str]]:
    rows = request.params.get("reply_markup", {}).get("inline_keyboard", [])
    return [(button["text"], button["callback_data"]) for row in rows for button in row]


def texts_to(bot: Harness, user: TgUser, since: int = 0) -> list[str]:
    return [r.text or "" for r in bot.fake.sent(user.id)[since:]]


# Announcements of treatments are the patient's choice.


async def test_it_tells_a_guide_of_treatments_only_when_the_patient_chose_to(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    code, invitation = await invite(bot, alice)
    assert (invitation.text or "").endswith(
        "Should I also tell your guide each time you log a treatment (its number and time, "
        "nothing more), so they can reply with their notes? You can change this any time: "
        "/guide announce on or off."
    )
    assert buttons(invitation) == [
        ("Yes, tell my guide when I log a treatment", GUIDE_ANNOUNCE_ON),
        ("No, only what I share", GUIDE_ANNOUNCE_OFF),
    ]
    await bot.send(bob, f"/guide join {code}")
    seen_by_bob = len(bot.fake.sent(bob.id))

    # Not chosen: logging a treatment sends the guide nothing.
    await bot.send(alice, "/treatment")
    assert texts_to(bot, bob, seen_by_bob) == []

    # Chosen under the invitation: the next treatment is announced.
    done = await bot.press(alice, invitation.message_id, GUIDE_ANNOUNCE_ON)
    assert [r.text for r in done if r.method == "sendMessage"] == [
        "Your guide will be told each time you log a treatment: its number and time, nothing "
        "of your journal. They can reply to that message with their session notes. /guide "
        "announce off stops it."
    ]
    assert any(r.method == "editMessageReplyMarkup" for r in done)
    bot.clock.advance(timedelta(days=7))
    await bot.send(alice, "/treatment")
    assert texts_to(bot, bob, seen_by_bob) == [
        "<b>Alice</b> logged treatment 2 (Wed 2 Dec, 14:00). Reply to this message with your "
        "session notes, or send /notes."
    ]

    # Turned off by command: nothing again.
    assert await bot.send(alice, "/guide announce off") == [
        "Your guide won't be told when you log a treatment: nothing reaches them but what you "
        "send with /share. They can still add notes with /notes. /guide announce on changes "
        "this."
    ]
    bot.clock.advance(timedelta(days=7))
    await bot.send(alice, "/treatment")
    assert len(texts_to(bot, bob, seen_by_bob)) == 1

    # And back on with the button under /guide, which says how it is now.
    [shown] = [r for r in await bot.send_raw(alice, "/guide") if r.method == "sendMessage"]
    assert "They are not told when you log a treatment (/guide announce on)." in (shown.text or "")
    assert buttons(shown) == [("Tell my guide when I log a treatment", GUIDE_ANNOUNCE_ON)]
    await bot.press(alice, shown.message_id, GUIDE_ANNOUNCE_ON)
    [shown] = [r for r in await bot.send_raw(alice, "/guide") if r.method == "sendMessage"]
    assert "They are told when you log a treatment" in (shown.text or "")
    assert buttons(shown) == [("Stop telling my guide about treatments", GUIDE_ANNOUNCE_OFF)]
    bot.clock.advance(timedelta(days=7))
    await bot.send(alice, "/treatment")
    assert texts_to(bot, bob, seen_by_bob)[-1].startswith("<b>Alice</b> logged treatment 4")
    # The choice is part of what /export data gives her.
    await bot.send(alice, "/export data")
    exported = json.loads(bot.fake.sent(alice.id, "sendDocument")[-1].params["document"].data)
    assert exported["guides_told_of_treatments"] is True
    assert [guide["telegram_user_id"] for guide in exported["guides"]] == [bob.id]


async def test_it_keeps_announcements_off_for_a_guide_linked_without_a_choice(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    code, _ = await invite(bot, alice)  # the buttons are never pressed
    await bot.send(bob, f"/guide join {code}")
    before = len(bot.fake.sent(bob.id))
    await bot.send(alice, "/treatment")
    await bot.send(alice, "/treatment yesterday 10:00")
    assert texts_to(bot, bob, before) == []
    # The guide still adds notes the usual way.
    assert await bot.send(bob, "/notes Calm throughout") == [
        "Noted for Alice's treatment 1. They'll see it in their reflection and their journal."
    ]


# What the database keeps about a guide.


async def test_a_database_dump_shows_no_guides_telegram_id(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    code, _ = await invite(bot, alice)
    await bot.send(alice, "/guide announce on")
    await bot.send(bob, f"/guide join {code}")
    await bot.send(alice, "/treatment")
    await bot.send(bob, "/notes Calm at the end")
    await bot.send(bob, "/notes")
    await bot.send(bob, "Asked for water")
    await bot.send(bob, "/guide join NOPE1-NOPE1")
    # Only the inbox, which keeps each chat's updates in order for two days, holds Bob's chat id
    # (without the update itself once handled).
    assert tables_showing(engine_of(bot), bob.id) - {"send_slots"} == {"inbox"}
    rows = raw_rows(engine_of(bot))
    [link] = rows["guide_links"]
    assert link["guide_user_hash"] in current_cipher().lookup_hashes(str(bob.id))
    assert str(link["guide_user_id"]).startswith("gAAAAA")
    assert str(link["guide_chat_id"]).startswith("gAAAAA")
    # The notes keep where they came from only as a keyed hash, to recognise a redelivery.
    assert {note["chat_hash"] for note in rows["session_notes"]} == {
        current_cipher().lookup_hash(str(bob.id))
    }
    # Every check still holds: Bob's notes reach Alice, a redelivered note adds nothing.
    await bot.redeliver(bob, bot.last_update_id - 1)
    with bot.session() as session:
        assert session.scalars(select(SessionNote.text).order_by(SessionNote.id)).all() == [
            "Calm at the end",
            "Asked for water",
        ]


async def test_a_guide_still_reaches_their_patients_through_a_key_rotation(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser, fake: FakeTelegram
):
    bot = agreed
    await bot.agree(carol)
    code, _ = await invite(bot, alice)
    await bot.send(bob, f"/guide join {code}")
    await bot.send(alice, "/treatment")
    old, new = key_in_use(bot.settings), new_key()
    await bot.stop()
    # A new key first, the old one still there (before `keys rotate` has run): the links
    # written under the old key still match, and new ones are written under the new key.
    both = bot.settings.model_copy(update={"data_keys": SecretStr(f"{new},{old}")})
    rotated = Harness(both, fake, bot.clock)
    await rotated.start()
    try:
        assert await rotated.send(bob, "/notes Steady") == [
            "Noted for Alice's treatment 1. They'll see it in their reflection and their journal."
        ]
        code, _ = await invite(rotated, carol)
        await rotated.send(bob, f"/guide join {code}")
        [which] = await rotated.send(bob, "/notes Calm")
        assert which.startswith("You guide more than one person")
        # Carol is still no one's guide, whichever key.
        await rotated.send(carol, "/treatment")
        assert await rotated.send(carol, "/notes My own") == [
            "Kept as a session note for treatment 1. You'll find it in /journal 1, your recap "
            "and your export."
        ]
    finally:
        await rotated.stop()
    # `keys rotate` recomputes the lookup hashes under the new key; then the old key goes.
    engine = create_db_engine(bot.settings.database_url)
    rotate_keys(engine, Cipher([new.encode(), old.encode()]))
    engine.dispose()
    only_new = bot.settings.model_copy(update={"data_keys": SecretStr(new)})
    after = Harness(only_new, fake, bot.clock)
    await after.start()
    try:
        assert await after.send(bob, "/notes Carol Still steady") == [
            "Noted for Carol's treatment 1. They'll see it in their reflection and their journal."
        ]
        assert await after.send(alice, "/guide") == [
            "Linked to you: <b>Bob</b>. They can add notes to your sessions and see only what "
            "you /share. They are not told when you log a treatment (/guide announce on). "
            "/guide remove unlinks them."
        ]
    finally:
        await after.stop()


# Invite codes.


async def test_it_stores_an_invite_code_as_a_keyed_hash_only(agreed: Harness, alice: TgUser):
    bot = agreed
    code, _ = await invite(bot, alice)
    plain = code.replace("-", "")
    assert len(plain) == 10
    with bot.session() as session:
        [stored] = session.scalars(select(GuideInvite.code_hash)).all()
    assert stored != hashlib.sha256(plain.encode()).hexdigest()
    assert stored == current_cipher().lookup_hash(plain)


async def test_it_refuses_every_code_after_five_failed_attempts_in_an_hour(
    agreed: Harness, alice: TgUser, bob: TgUser, dave: TgUser
):
    bot = agreed
    code, _ = await invite(bot, alice)
    for _ in range(5):
        [refused] = await bot.send(dave, f"/guide join {WRONG_CODE}")
        assert refused.startswith("That code doesn't work")
        bot.clock.advance(timedelta(minutes=1))
    # The limit is per person: Bob's wrong code is his first.
    assert (await bot.send(bob, f"/guide join {WRONG_CODE}"))[0].startswith(
        "That code doesn't work"
    )
    # Now even the right code is refused, kindly, until the hour since the first has passed;
    # the limit is in the database, so a restart changes nothing.
    await bot.restart()
    assert await bot.send(dave, f"/guide join {code}") == [
        "Several codes in a row didn't work, so to keep everyone's codes safe I'll take the "
        "next one in about 55 minutes. If your code keeps failing, ask for a new one (/guide "
        "invite)."
    ]
    bot.clock.advance(timedelta(minutes=54))
    [waiting] = await bot.send(dave, f"/guide join {code}")
    assert "in about 1 minute." in waiting
    with bot.session() as session:
        assert session.scalar(select(sa.func.count(GuideLink.id))) == 0
        # Refused while waiting is not another failure: the window does not move on.
        assert session.scalar(select(sa.func.count(GuideJoinAttempt.id))) == 6
    bot.clock.advance(timedelta(minutes=1))
    [joined] = await bot.send(dave, f"/guide join {code}")
    assert joined.startswith("You're now linked to <b>Alice</b> as their guide.")
    # The attempts name no one: only the keyed hash of each person's id.
    assert tables_showing(engine_of(bot), dave.id) - {"send_slots"} == {"inbox"}


# A guide's /delete.


async def guiding_alice_and_carol(bot: Harness, alice: TgUser, bob: TgUser, carol: TgUser) -> None:
    """Bob guides Alice and Carol, has noted Alice's session, and tried one wrong code."""
    await bot.agree(carol)
    for patient in (alice, carol):
        code, _ = await invite(bot, patient)
        await bot.send(bob, f"/guide join {code}")
    await bot.send(alice, "/treatment")
    await bot.send(bob, "/notes Alice Calm at the end")
    await bot.send(bob, f"/guide join {WRONG_CODE}")


def bobs_traces(bot: Harness, bob: TgUser) -> dict[str, int]:
    hashes = current_cipher().lookup_hashes(str(bob.id))
    with bot.session() as session:
        return {
            "links": len(
                session.scalars(
                    select(GuideLink).where(GuideLink.guide_user_hash.in_(hashes))
                ).all()
            ),
            "attempts": len(
                session.scalars(
                    select(GuideJoinAttempt).where(GuideJoinAttempt.user_hash.in_(hashes))
                ).all()
            ),
            "notes_naming_him": len(
                session.scalars(
                    select(SessionNote).where(
                        SessionNote.chat_hash.in_(hashes) | SessionNote.message_id.is_not(None)
                    )
                ).all()
            ),
        }


async def test_a_guide_who_never_was_a_patient_deletes_everything_and_patients_are_told(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser
):
    bot = agreed
    await guiding_alice_and_carol(bot, alice, bob, carol)
    assert bobs_traces(bot, bob) == {"links": 2, "attempts": 1, "notes_naming_him": 1}

    [ask] = [r for r in await bot.send_raw(bob, "/delete") if r.method == "sendMessage"]
    assert ask.text == (
        "<b>Delete everything?</b>\n\n"
        "This ends your role as a guide: everything I keep about you is your links to the 2 "
        "people you guide, and it goes. You'll no longer be able to add notes to anyone's "
        "sessions; the notes you wrote stay in their journals, with nothing that points to "
        "you, and I'll let each of them know kindly that you have left. It can't be undone.\n\n"
        "The messages in this chat are Telegram's copy: you can clear the chat in Telegram "
        "yourself."
    )
    # Keeping changes nothing.
    kept = await bot.press(bob, ask.message_id, DELETE_NO)
    assert [r.text for r in kept if r.method == "sendMessage"] == [
        "Nothing was deleted. You are still linked as a guide."
    ]
    assert bobs_traces(bot, bob)["links"] == 2

    [ask] = [r for r in await bot.send_raw(bob, "/delete") if r.method == "sendMessage"]
    alice_before, carol_before = len(bot.fake.sent(alice.id)), len(bot.fake.sent(carol.id))
    done = await bot.press(bob, ask.message_id, DELETE_YES)
    assert [r.text for r in done if r.method == "sendMessage" and r.chat_id == bob.id] == [
        "Everything I kept about you is deleted: you are no longer anyone's guide here, and I "
        "won't send you anything more. Thank you for the care you gave."
    ]
    left = (
        "<b>Bob</b> has left the companion, so they are no longer linked to you: they can't "
        "add notes to your sessions any more, and nothing you /share reaches them. The notes "
        "they already wrote stay in your journal. Whenever you'd like, /guide invite makes a "
        "code for a guide."
    )
    assert texts_to(bot, alice, alice_before) == [left]
    assert texts_to(bot, carol, carol_before) == [left]
    assert bobs_traces(bot, bob) == {"links": 0, "attempts": 0, "notes_naming_him": 0}
    assert tables_showing(engine_of(bot), bob.id) <= {"inbox", "send_slots"}
    with bot.session() as session:
        assert [(n.author, n.text) for n in session.scalars(select(SessionNote))] == [
            ("guide", "Calm at the end")
        ]
    # The note is still Alice's, marked as her guide's; Bob reaches no one now.
    page = "\n".join(await bot.send(alice, "/journal 1"))
    assert "<b>Your guide's note</b>\n<blockquote>Calm at the end</blockquote>" in page
    assert (await bot.send(bob, "/notes Alice one more"))[0].startswith("Hello! Send /start")
    assert await bot.send(alice, "/guide") == [
        "No guide is linked to you. /guide invite makes a one-time code for your guide or "
        "therapist, so they can add their notes to your sessions."
    ]


async def test_a_patient_who_is_also_a_guide_deletes_both_roles(
    agreed: Harness, alice: TgUser, bob: TgUser, carol: TgUser
):
    bot = agreed
    await bot.agree(bob)
    await bot.send(bob, "Bob's own journal")
    await guiding_alice_and_carol(bot, alice, bob, carol)
    [ask] = [r for r in await bot.send_raw(bob, "/delete") if r.method == "sendMessage"]
    assert (ask.text or "").startswith("<b>Delete everything?</b>\n\nThis deletes everything")
    assert (
        "It also ends your role as a guide. You'll no longer be able to add notes to anyone's "
        "sessions;" in (ask.text or "")
    )
    alice_before = len(bot.fake.sent(alice.id))
    done = await bot.press(bob, ask.message_id, DELETE_YES)
    assert [r.text for r in done if r.method == "sendMessage" and r.chat_id == bob.id] == [
        "Everything I kept about you is deleted, and I won't send you anything more. Thank you "
        "for the trust you gave this journal. If you ever want to start again, send /start."
    ]
    assert texts_to(bot, alice, alice_before)[0].startswith("<b>Bob</b> has left the companion")
    assert bobs_traces(bot, bob) == {"links": 0, "attempts": 0, "notes_naming_him": 0}
    assert tables_showing(engine_of(bot), bob.id) <= {"inbox", "send_slots"}
    with bot.session() as session:
        assert [n.text for n in session.scalars(select(SessionNote))] == ["Calm at the end"]


# The migration.


def test_it_migrates_guides_ids_notes_and_invites_to_keyed_hashes(tmp_path: Path, cipher: Cipher):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    with at_revision(engine, "0013") as connection:
        connection.execute(
            sa.text(
                "INSERT INTO patients (id, telegram_user_id, chat_id, pending_intention, "
                "created_at) VALUES (1, 1001, 1001, :intention, '2026-11-01 10:00:00')"
            ),
            {"intention": cipher.encrypt("Be gentle")},
        )
        connection.execute(
            sa.text(
                "INSERT INTO treatments (id, patient_id, number, occurred_at, timezone, "
                "created_at) VALUES (1, 1, 1, '2026-11-02 10:00:00', 'UTC', "
                "'2026-11-02 10:00:00')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO guide_links (patient_id, guide_user_id, guide_chat_id, created_at) "
                "VALUES (1, 1002, 1002, '2026-11-01 11:00:00')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO session_notes (patient_id, treatment_id, author, text, chat_id, "
                "message_id, created_at) VALUES (1, 1, 'guide', :text, 1002, 7, "
                "'2026-11-02 11:00:00')"
            ),
            {"text": cipher.encrypt("Calm")},
        )
        connection.execute(
            sa.text(
                "INSERT INTO guide_invites (patient_id, code_hash, expires_at) "
                "VALUES (1, :hash, '2026-11-03 10:00:00')"
            ),
            {"hash": hashlib.sha256(b"ABCD2345").hexdigest()},
        )
    upgrade_to_head(engine)
    with create_session_factory(engine)() as session:
        link = session.scalars(select(GuideLink)).one()
        assert (link.guide_user_id, link.guide_chat_id) == (1002, 1002)
        assert link.guide_user_hash == cipher.lookup_hash("1002")
        note = session.scalars(select(SessionNote)).one()
        assert (note.text, note.chat_hash, note.message_id) == (
            "Calm",
            cipher.lookup_hash("1002"),
            7,
        )
        assert session.scalars(select(GuideInvite)).all() == []
        patient = session.scalars(select(Patient)).one()
        assert patient.pending_intention == "Be gentle"
        assert patient.pending_intention_at is not None
        assert patient.announce_treatments is False
    assert tables_showing(engine, 1002) == set()
    engine.dispose()
