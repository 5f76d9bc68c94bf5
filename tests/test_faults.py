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

TIMEOUT = 1.0


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
    await bot.send(alice, "Despite the outage")
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


async def test_any_message_telegram_cannot_parse_goes_out_as_plain_text(
    agreed: Harness, alice: TgUser, caplog: pytest.LogCaptureFixture
):
    # Not only prompts: whatever path a text takes, the patient gets the words.
    bot = agreed
    assert bot.app is not None
    await bot.app.bot.send_message(alice.id, "<p>Tea with Alice</p> &amp; friends")
    refused, delivered = bot.fake.sent(alice.id)[-2:]
    assert refused.result is None
    assert delivered.text == "Tea with Alice & friends"
    assert "parse_mode" not in delivered.params
    assert "could not parse the HTML of a sendMessage" in caplog.text
    assert "Alice & friends" not in caplog.text


async def test_a_message_telegram_finds_too_long_goes_out_in_parts(agreed: Harness, alice: TgUser):
    bot = agreed
    assert bot.app is not None
    long_text = "\n".join(f"<b>Line {n}</b> " + "word " * 20 for n in range(60))
    before = len(bot.fake.sent(alice.id))
    await bot.app.bot.send_message(alice.id, long_text)
    refused, *parts = bot.fake.sent(alice.id)[before:]
    assert refused.result is None
    assert len(parts) == 2
    assert all(part.result is not None for part in parts)
    assert "".join(part.text or "" for part in parts).count("Line ") == 60
