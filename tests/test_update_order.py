"""Different patients are handled at once; one patient's updates keep their order."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.models import Entry, Patient
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
