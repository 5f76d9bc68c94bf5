"""The durable inbox: an update stored before Telegram is told is handled once, after a crash."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import select
from telegram import Update

from bot.db.models import Entry, InboxUpdate
from bot.db.session import create_db_engine, create_session_factory
from bot.telegram.inbox import Inbox
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser


async def test_it_forgets_the_words_once_an_update_is_handled(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "A private line")
    with bot.session() as session:
        row = session.get_one(InboxUpdate, bot.last_update_id)
        assert row.handled_at is not None
        assert row.raw is None
        assert row.chat_id == alice.id


async def test_it_handles_what_a_crashed_process_stored_exactly_once(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.stop()
    # The crashed process had fetched and stored this update, but never handled it, and
    # Telegram never heard it arrived: both will offer it again.
    update_id = bot.fake.text_update(alice, "Written just before the crash")
    raw = copy.deepcopy(bot.fake.pushed[update_id])
    engine = create_db_engine(bot.settings.database_url)
    Inbox(create_session_factory(engine), bot.clock).store([Update.de_json(raw, None)])
    engine.dispose()

    await bot.start()
    # Handled from the inbox first; then polling brings the same update again, and it is
    # recognised and skipped.
    await bot.wait_handled_times(update_id, 2)
    with bot.session() as session:
        texts = session.scalars(select(Entry.text)).all()
        assert texts == ["Written just before the crash"]
        assert session.get_one(InboxUpdate, update_id).handled_at is not None
    acks = [r for r in bot.fake.sent(alice.id) if r.text == "Saved in your journal."]
    assert len(acks) == 1


async def test_a_reply_saved_but_never_acknowledged_is_acknowledged_once_when_it_comes_again(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    # Telegram fails every try of the acknowledgement: the entry is saved, the patient not told.
    tries = bot.limiter.network_attempts
    bot.fake.fail("sendMessage", error_code=500, description="Internal Server Error", times=tries)
    first = bot.fake.text_update(alice, "Saved, but did it say so?")
    await bot.wait_handled(first)
    with bot.session() as session:
        entry = session.scalars(select(Entry)).one()
        assert entry.acknowledged_at is None
    acks = [r for r in bot.fake.sent(alice.id) if r.text == "Saved in your journal."]
    assert [ack.result is None for ack in acks] == [True] * tries

    # The same message again (a crash came before it was marked handled): told now, once.
    await bot.redeliver(alice, first)
    await bot.redeliver(alice, first)
    acks = [r for r in bot.fake.sent(alice.id) if r.text == "Saved in your journal."]
    assert [ack.result is not None for ack in acks].count(True) == 1
    with bot.session() as session:
        entry = session.scalars(select(Entry)).one()
        assert entry.acknowledged_at is not None


async def test_an_entry_is_marked_handled_in_the_transaction_that_records_its_acknowledgement(
    agreed: Harness, alice: TgUser, monkeypatch: pytest.MonkeyPatch
):
    bot = agreed
    separately: list[int] = []  # updates marked handled in a transaction of their own
    mark_handled = Inbox.mark_handled

    def spy(inbox: Inbox, update_id: int) -> None:
        separately.append(update_id)
        mark_handled(inbox, update_id)

    monkeypatch.setattr(Inbox, "mark_handled", spy)
    await bot.send(alice, "One unit of work")
    with bot.session() as session:
        row = session.get_one(InboxUpdate, bot.last_update_id)
        entry = session.scalars(select(Entry)).one()
        assert row.handled_at is not None
        assert entry.acknowledged_at is not None
    assert bot.last_update_id not in separately
    # A command without a last transaction of its own is still marked, by the processor.
    await bot.send(alice, "/help")
    assert separately == [bot.last_update_id]
