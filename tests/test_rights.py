"""The patient's data rights: everything as JSON, deletion of every row, plain words."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from bot.db.models import Base, Entry
from bot.domain.rights import EXPORT_FORMAT
from bot.telegram.keyboards import DELETE_NO, DELETE_YES
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser

IDENTIFYING_COLUMNS = ("patient_id", "telegram_user_id", "chat_id")


def rows_naming(bot: Harness, user: TgUser) -> dict[str, int]:
    """For every table, how many rows name the user (by patient, user or chat id)."""
    found = {}
    with bot.session() as session:
        patient_ids = [
            row[0]
            for row in session.execute(
                Base.metadata.tables["patients"]
                .select()
                .with_only_columns(Base.metadata.tables["patients"].c.id)
                .where(Base.metadata.tables["patients"].c.telegram_user_id == user.id)
            )
        ]
        for table in Base.metadata.sorted_tables:
            count = 0
            for name in IDENTIFYING_COLUMNS:
                if name not in table.c:
                    continue
                wanted = patient_ids if name == "patient_id" else [user.id]
                count += (
                    session.scalar(
                        select(func.count()).select_from(table).where(table.c[name].in_(wanted))
                    )
                    or 0
                )
            found[table.name] = count
    return found


async def build_journal(bot: Harness, user: TgUser) -> None:
    await bot.agree(user)
    await bot.send(user, "/intention Be gentle")
    await bot.send(user, "/treatment")
    await bot.send(user, "/recap weekly on")
    await bot.next_prompt(user)
    await bot.send(user, f"Answer from {user.first_name}")
    await bot.send(user, f"A note from {user.first_name}")


def document(requests: list[ApiRequest]) -> bytes:
    [upload] = [r.params["document"] for r in requests if r.method == "sendDocument"]
    return bytes(upload.data)


async def test_it_exports_everything_about_the_patient_as_json(
    bot: Harness, alice: TgUser, bob: TgUser
):
    await build_journal(bot, alice)
    await build_journal(bot, bob)
    data = json.loads(document(await bot.send_raw(alice, "/export data")))
    assert data["format"] == EXPORT_FORMAT
    assert data["patient"]["first_name"] == "Alice"
    assert data["patient"]["telegram_user_id"] == alice.id
    assert data["weekly_recap"]["weekday"] == 6
    assert [t["intention"] for t in data["treatments"]] == ["Be gentle"]
    assert len(data["prompts"]) == 10
    assert [e["text"] for e in data["entries"]] == ["Answer from Alice", "A note from Alice"]
    assert "Bob" not in json.dumps(data)


async def test_it_deletes_every_row_about_the_patient_and_nothing_else(
    bot: Harness, alice: TgUser, bob: TgUser
):
    await build_journal(bot, alice)
    await build_journal(bot, bob)
    before_bob = rows_naming(bot, bob)
    assert all(before_bob[table] > 0 for table in ("patients", "treatments", "entries"))

    ask = next(r for r in await bot.send_raw(alice, "/delete") if r.method == "sendMessage")
    assert (ask.text or "").startswith("<b>Delete everything?</b>")
    done = await bot.press(alice, ask.message_id, DELETE_YES)
    replies = [r.text or "" for r in done if r.method == "sendMessage"]
    assert replies[0].startswith("Everything I kept about you is deleted")
    assert set(rows_naming(bot, alice).values()) == {0}
    assert rows_naming(bot, bob) == before_bob

    # Nothing more is sent to her, ever; /start begins afresh.
    sent_before = len(bot.fake.sent(alice.id))
    bot.clock.advance(timedelta(days=30))
    for _ in range(12):
        await bot.dispatch()
        bot.clock.advance(timedelta(hours=2))
    assert len(bot.fake.sent(alice.id)) == sent_before
    assert "Do you agree?" in (await bot.send(alice, "/start"))[0]


async def test_it_keeps_everything_when_the_patient_changes_their_mind(
    agreed: Harness, alice: TgUser
):
    await agreed.send(alice, "Kept safe in the journal")
    ask = next(r for r in await agreed.send_raw(alice, "/delete") if r.method == "sendMessage")
    done = await agreed.press(alice, ask.message_id, DELETE_NO)
    assert [r.text for r in done if r.method == "sendMessage"] == [
        "Nothing was deleted. Your journal is still here."
    ]
    with agreed.session() as session:
        assert session.scalars(select(Entry.text)).all() == ["Kept safe in the journal"]


async def test_it_explains_privacy_in_plain_words(bot: Harness, alice: TgUser):
    text = (await bot.send(alice, "/privacy"))[0]
    for words in ("encrypted", "/export data", "/delete", "Telegram keeps its own copy"):
        assert words in text
