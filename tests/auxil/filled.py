"""Through the real bot, a value in every encrypted column: for tests of rotation and of what a
database dump shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, select
from telegram import Update

from bot.db.crypto import is_encrypted
from bot.db.models import Base
from bot.db.session import create_db_engine, create_session_factory
from bot.telegram.inbox import Inbox
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser

# What `fill_every_encrypted_column` writes: distinctive, so a raw scan can look for each.
SECRET_WORDS = {
    "name": "Alice",
    "guide": "Bob",
    "intention": "Meet the old fear",
    "next_intention": "Rest before the next one",
    "answer": "A river of light",
    "mood_note": "Tired but hopeful",
    "voice": "VOICEFILEQUOKKA",
    "photo": "PHOTOFILEPANGOLIN",
    "caption": "My hidden garden",
    "practice_label": "Pottery with clay",
    "practice_note": "Hands steady and warm",
    "goal": "walk every morning",
    "goal_note": "Three mornings of five",
    "guide_note": "Calm and tearful at the end",
    "own_note": "I saw violet colours",
}
# The update a crash leaves stored but unhandled: a search of the journal, whose answer shows
# the update was read and every entry with it.
CRASHED_UPDATE = "/journal search river"
MOOD = 9
VOICE_SECONDS = 4242
PRACTICE_MINUTES = 1234
SUNDAY_18_BERLIN = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


def stored_values(engine: Engine) -> dict[tuple[str, str], list[Any]]:
    """Every value of every encrypted column of the models, as stored (no cipher), by
    (table, column); an empty list for a column that holds nothing."""
    values: dict[tuple[str, str], list[Any]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            # Untyped columns: the values as the database holds them, nothing decrypted.
            bare = sa.table(table.name, *(sa.column(c.name) for c in table.columns))
            for column in table.columns:
                if is_encrypted(column.type):
                    stored = bare.c[column.name]
                    values[table.name, column.name] = list(
                        connection.scalars(select(stored).where(stored.is_not(None)))
                    )
    return values


async def fill_every_encrypted_column(bot: Harness, alice: TgUser, bob: TgUser) -> int:
    """Alice, who has agreed, uses everything that stores something encrypted, with Bob as her
    guide; then the bot stops with one of her updates stored but not handled (a crash came
    between), whose id is returned. Fails if an encrypted column of the models is left empty,
    so a new encrypted column cannot escape the tests of rotation and of what a dump shows."""
    await use_every_feature(bot, alice, bob)
    return await stop_with_an_unhandled_update(bot, alice)


async def use_every_feature(bot: Harness, alice: TgUser, bob: TgUser) -> None:
    """Alice writes everything SECRET_WORDS holds, in every feature; Bob is her guide."""
    words = SECRET_WORDS
    await bot.send(alice, "/country GB")
    # Goals and their weekly check-in, before any treatment so no prompt takes the note.
    await bot.send(alice, f"/goal add build: {words['goal']}")
    bot.clock.set(SUNDAY_18_BERLIN)
    await bot.dispatch()
    [checkin] = [r for r in bot.dispatched if "How did this week go?" in (r.text or "")]
    yes = bot.fake.bot_message(alice.id, checkin.message_id)["reply_markup"]["inline_keyboard"]
    await bot.press(alice, checkin.message_id, yes[0][0]["callback_data"])
    assert await bot.send(alice, words["goal_note"]) == [
        "Added to this week's check-in. Thank you."
    ]
    # A guide, linked by invitation.
    [invited] = await bot.send(alice, "/guide invite")
    match = re.search(r"<code>/guide join ([A-Z0-9-]+)</code>", invited)
    assert match, invited
    await bot.send(bob, f"/guide join {match.group(1)}")
    # An intention, a treatment, the first prompt answered.
    await bot.send(alice, f"/intention {words['intention']}")
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.send(alice, words["answer"])
    await bot.send(bob, f"/notes {words['guide_note']}")
    await bot.send(alice, f"/notes {words['own_note']}")
    # Media, a mood, practices, a reminder, the next intention.
    await bot.send_update(
        alice,
        voice={"file_id": words["voice"], "file_unique_id": "uv", "duration": VOICE_SECONDS},
    )
    await bot.send_update(
        alice,
        photo=[{"file_id": words["photo"], "file_unique_id": "up", "width": 1, "height": 1}],
        caption=words["caption"],
    )
    ask = next(r for r in await bot.send_raw(alice, "/mood") if r.method == "sendMessage")
    await bot.press(alice, ask.message_id, f"mood:{MOOD}")
    await bot.send(alice, words["mood_note"])
    await bot.send(alice, "/practice other")
    await bot.send(alice, words["practice_label"])
    await bot.send(alice, words["practice_note"])
    await bot.send(alice, f"/practice meditation {PRACTICE_MINUTES}")
    await bot.send(alice, "/remind 08:00 meditation")
    await bot.send(alice, f"/intention {words['next_intention']}")


async def stop_with_an_unhandled_update(bot: Harness, alice: TgUser) -> int:
    """The bot stops; Alice's CRASHED_UPDATE is stored in the inbox by a process that crashed
    before handling it, and Telegram will not offer it again. Checks that every encrypted column of
    the models holds a value now; returns the update's id."""
    await bot.stop()
    update_id = bot.fake.text_update(alice, CRASHED_UPDATE)
    raw = bot.fake.withdraw(update_id)
    engine = create_db_engine(bot.settings.database_url)
    try:
        Inbox(create_session_factory(engine), bot.clock).store([Update.de_json(raw, None)])
        empty = [f"{t}.{c}" for (t, c), values in stored_values(engine).items() if not values]
    finally:
        engine.dispose()
    assert empty == [], f"seed these in tests/auxil/filled.py: {empty}"
    return update_id
