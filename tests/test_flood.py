"""Under a flood: chats waiting out their rate limit do not hold the handler slots, and a
crisis reply is never queued behind other patients' floods."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import Settings
from bot.db.models import Patient
from bot.telegram.updates import CHATS_AT_ONCE
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser

FLOODERS = 20
SAVED = "Saved in your journal."


def consented(bot: Harness, users: list[TgUser]) -> None:
    now = bot.clock()
    with bot.session() as session, session.begin():
        for user in users:
            session.add(
                Patient(
                    telegram_user_id=user.id,
                    chat_id=user.id,
                    first_name=user.first_name,
                    consented_at=now - timedelta(days=1),
                    created_at=now - timedelta(days=1),
                )
            )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Telegram-like limits, one chat at one message every three seconds: a flooding chat's
    # second acknowledgement must wait, and so does its handler.
    return settings.model_copy(
        update={
            "rate_limit_overall": 30,
            "rate_limit_per_chat": 1 / 3,
            "rate_limit_chat_burst": 1,
        }
    )


async def test_a_crisis_reply_is_not_queued_behind_other_patients_floods(
    bot: Harness, alice: TgUser
):
    assert FLOODERS > CHATS_AT_ONCE
    flooders = [TgUser(id=5000 + n, first_name=f"F{n}") for n in range(FLOODERS)]
    consented(bot, [*flooders, alice])
    last_ids = []
    for user in flooders:
        for n in range(3):
            last_ids.append(bot.fake.text_update(user, f"flood {n}"))

    def acknowledgements() -> list[int | None]:
        return [r.chat_id for r in bot.fake.sent() if r.text == SAVED]

    # Every flooding chat has had its first acknowledgement; the next ones wait their turn.
    assert await bot.fake.wait_until(lambda: len(acknowledgements()) >= FLOODERS, 10)
    crisis_id = bot.fake.text_update(alice, "i cant do this anymore i want to die")
    await bot.wait_handled(crisis_id)
    sent = bot.fake.sent()
    reply_at = next(
        i
        for i, r in enumerate(sent)
        if r.chat_id == alice.id and "glad you told me" in (r.text or "")
    )
    before_it = [r.chat_id for r in sent[:reply_at] if r.text == SAVED]
    assert len(before_it) == FLOODERS  # only the first acknowledgement of each flooding chat
    for update_id in last_ids:
        await bot.wait_handled(update_id)
    assert len(acknowledgements()) == 3 * FLOODERS + 1
