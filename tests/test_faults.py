"""Telegram failing in every way the fake can: timeouts, dropped connections, 5xx, 429, a chat
that cannot be reached. Nothing written is lost; what can repeat is the documented window."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.db.models import Entry, Patient, PromptStatus, ScheduledPrompt
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser

TIMEOUT = 0.3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The bot gives up on an answer after TIMEOUT seconds, so a stall need not last long.
    return settings.model_copy(update={"telegram_timeout_seconds": TIMEOUT})


def checkins(bot: Harness, user: TgUser) -> list[ApiRequest]:
    return [r for r in bot.fake.sent(user.id) if "Check-in" in (r.text or "")]


def acks(bot: Harness, user: TgUser) -> list[ApiRequest]:
    return [r for r in bot.fake.sent(user.id) if r.text == "Saved in your journal."]


async def due_checkin(bot: Harness, user: TgUser) -> None:
    await bot.send(user, "/treatment")
    bot.clock.advance(timedelta(hours=3))


def prompt_row(bot: Harness, user: TgUser) -> ScheduledPrompt:
    with bot.session() as session:
        return session.scalars(
            select(ScheduledPrompt)
            .join(Patient)
            .where(Patient.chat_id == user.id, ScheduledPrompt.step_key == "checkin")
        ).one()


async def test_a_prompt_whose_send_times_out_is_sent_again(agreed: Harness, alice: TgUser):
    bot = agreed
    await due_checkin(bot, alice)
    bot.fake.stall("sendMessage", seconds=TIMEOUT * 3, chat_id=alice.id)
    assert len((await bot.dispatch()).sent) == 1
    assert [r.result is not None for r in checkins(bot, alice)] == [False, True]
    prompt = prompt_row(bot, alice)
    assert prompt.status == PromptStatus.SENT
    assert prompt.telegram_message_id == checkins(bot, alice)[-1].message_id


async def test_a_prompt_delivered_but_unconfirmed_arrives_twice_the_documented_window(
    agreed: Harness, alice: TgUser
):
    # Telegram got it, the answer was lost: the bot cannot know, and sends again rather than
    # risk losing it. The patient sees it twice; the journal knows the one it confirmed.
    bot = agreed
    await due_checkin(bot, alice)
    bot.fake.stall("sendMessage", seconds=TIMEOUT * 3, chat_id=alice.id, delivered=True)
    assert len((await bot.dispatch()).sent) == 1
    delivered = [r for r in checkins(bot, alice) if r.result is not None]
    assert len(delivered) == 2
    assert prompt_row(bot, alice).telegram_message_id == delivered[-1].message_id


async def test_a_dropped_connection_loses_no_reply(agreed: Harness, alice: TgUser):
    bot = agreed
    bot.fake.drop("sendMessage", chat_id=alice.id)
    assert await bot.send(alice, "Through a bad connection") == [
        "Saved in your journal.",
        "Saved in your journal.",
    ]
    assert [r.result is not None for r in acks(bot, alice)] == [False, True]
    with bot.session() as session:
        assert session.scalars(select(Entry.text)).all() == ["Through a bad connection"]


@pytest.mark.parametrize(("code", "description"), [(500, "Internal Server Error"), (502, "")])
async def test_server_errors_are_retried_for_replies(
    agreed: Harness, alice: TgUser, code: int, description: str
):
    bot = agreed
    bot.fake.fail("sendMessage", error_code=code, description=description, times=2)
    await bot.send(alice, "Despite the server")
    assert [r.result is not None for r in acks(bot, alice)] == [False, False, True]


async def test_a_429_pauses_every_send_not_only_the_refused_one(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.agree(bob)
    await due_checkin(bot, alice)
    bot.fake.fail(
        "sendMessage",
        error_code=429,
        description="Too Many Requests",
        retry_after=1,
        chat_id=alice.id,
    )
    loop = asyncio.get_running_loop()
    dispatching = asyncio.create_task(bot.dispatch())
    await bot.fake.wait_for(lambda r: r.chat_id == alice.id and r.result is None)
    refused_at = loop.time()
    # Bob writes during the pause: his acknowledgement waits for it to end.
    assert await bot.send(bob, "During the pause") == ["Saved in your journal."]
    assert loop.time() - refused_at >= 0.9
    assert len((await dispatching).sent) == 1
    assert [r.result is not None for r in checkins(bot, alice)] == [False, True]


async def test_one_unreachable_patient_does_not_stop_the_others(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.agree(bob)
    await bot.send(alice, "/treatment")
    await bot.send(bob, "/treatment")
    bot.clock.advance(timedelta(hours=3))
    bot.fake.fail(
        "sendMessage",
        error_code=403,
        description="Forbidden: bot was blocked by the user",
        chat_id=alice.id,
    )
    assert len((await bot.dispatch()).sent) == 1
    assert [r.result is not None for r in checkins(bot, bob)] == [True]
    assert prompt_row(bot, alice).status == PromptStatus.HELD
