"""Different patients are handled at once; one patient's updates keep their order."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.db.models import Entry, Patient
from bot.telegram.updates import LINE_LIMIT, ChatOrderedUpdateProcessor
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser


def saved_to(chat_id: int):
    def match(request: ApiRequest) -> bool:
        return request.chat_id == chat_id and "Saved" in (request.text or "")

    return match


async def test_a_patient_waiting_on_telegram_does_not_hold_up_another(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.agree(bob)
    release = bot.fake.hold("sendMessage")  # Alice's acknowledgement is slow to be answered
    first = bot.fake.text_update(alice, "Alice, slowly")
    await bot.fake.wait_for(saved_to(alice.id))
    assert await bot.send(bob, "Bob, meanwhile") == ["Saved in your journal."]
    release.set()
    await bot.wait_handled(first)
    with bot.session() as session:
        assert set(session.scalars(select(Entry.text))) == {"Alice, slowly", "Bob, meanwhile"}


async def test_one_patients_updates_are_handled_in_the_order_they_came(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.agree(bob)
    release = bot.fake.hold("sendMessage")
    updates = []
    for number in range(6):
        updates.append(bot.fake.text_update(alice, f"Alice {number}"))
        updates.append(bot.fake.text_update(bob, f"Bob {number}"))
    await bot.fake.wait_for(lambda r: "Saved" in (r.text or ""))
    release.set()
    for update_id in updates:
        await bot.wait_handled(update_id)
    with bot.session() as session:
        for user, name in ((alice, "Alice"), (bob, "Bob")):
            texts = session.scalars(
                select(Entry.text)
                .join(Patient)
                .where(Patient.chat_id == user.id)
                .order_by(Entry.id)
            ).all()
            assert texts == [f"{name} {number}" for number in range(6)]
    for user in (alice, bob):
        acknowledged = [r for r in bot.fake.sent(user.id) if saved_to(user.id)(r)]
        assert len(acknowledged) == 6


async def test_a_flooding_chat_keeps_at_most_a_line_s_worth_in_memory_and_loses_nothing(
    agreed: Harness, alice: TgUser
):
    # Every update is in the inbox before it reaches a line: beyond LINE_LIMIT, the newest
    # wait there and are read back in order.
    bot = agreed
    count = 3 * LINE_LIMIT
    ids = [bot.fake.text_update(alice, f"entry {n}") for n in range(count)]
    for update_id in ids:
        await bot.wait_handled(update_id)
    processor = bot.app.update_processor if bot.app else None
    assert isinstance(processor, ChatOrderedUpdateProcessor)
    assert 0 < processor.longest_line <= LINE_LIMIT
    with bot.session() as session:
        written = list(session.scalars(select(Entry.text).order_by(Entry.id)))
    assert written == [f"entry {n}" for n in range(count)]
    acknowledged = [r for r in bot.fake.sent(alice.id) if r.text == "Saved in your journal."]
    assert len(acknowledged) == count


async def test_whole_journal_work_runs_off_the_event_loop(
    agreed: Harness, alice: TgUser, monkeypatch: pytest.MonkeyPatch
):
    # Search, the recap and the data export decrypt a whole journal: never on the loop that
    # serves every other chat.
    import threading

    from bot.domain.journal import search_journal
    from bot.domain.recap import build_recap
    from bot.domain.rights import personal_data

    threads: dict[str, str] = {}

    def recorded(name: str, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            threads[name] = threading.current_thread().name
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr("bot.handlers.journal.search_journal", recorded("search", search_journal))
    monkeypatch.setattr("bot.handlers.recap.build_recap", recorded("recap", build_recap))
    monkeypatch.setattr("bot.handlers.export.personal_data", recorded("data", personal_data))
    await agreed.send(alice, "the garden at dawn")
    await agreed.send(alice, "/journal search garden")
    await agreed.send(alice, "/recap")
    await agreed.send_raw(alice, "/export data")
    assert set(threads) == {"search", "recap", "data"}
    assert threading.main_thread().name not in threads.values()
