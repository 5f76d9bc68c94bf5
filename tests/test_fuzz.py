"""Random updates from two patients: no unhandled error, no reply Telegram would reject, and
no patient ever sees another's words."""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

import pytest

from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser

COMMANDS = [
    "/start",
    "/help",
    "/timezone",
    "/quiet",
    "/intention",
    "/treatment",
    "/journal",
    "/recap",
    "/mood",
    "/export",
    "/pause",
    "/resume",
    "/privacy",
    "/crisis",
    "/country",
    "/nonsense",
]
WORDS = [
    "",
    "25:99",
    "Mars/Olympus",
    "8-22",
    "-5",
    "off",
    "on",
    "weekly",
    "sun",
    "18:00",
    "search",
    "data",
    "auto",
    "GB",
    "yesterday",
    "2026-11-24",
    "14:30",
    "3",
    "0",
    "999999999999",
    "<b>",
    "&amp;",
    "*x*",
    "_y_",
    "`z`",
    "\u200b",
    "\u202e",
    "שלום",
    "🌱",
    "'; DROP TABLE",
]
CALLBACKS = [
    "consent:agree",
    "prompt:later:1",
    "prompt:skip:2",
    "prompt:scale:3:7",
    "prompt:scale:1:99",
    "journal:1",
    "journal:-1",
    "journal:x",
    "jsearch:0:garden",
    "jsearch:9:",
    "jtreat:1",
    "jtreat:99",
    "file:1",
    "file:abc",
    "mood:5",
    "mood:11",
    "weekly:on",
    "delete:no",
    "garbage",
    "",
    "prompt:",
    "delete:maybe",
]


def random_text(rng: random.Random, secret: str) -> str:
    pieces = [rng.choice(WORDS) for _ in range(rng.randint(0, 6))]
    if rng.random() < 0.3:
        pieces.append(secret)
    if rng.random() < 0.05:
        pieces.append("x" * rng.randint(1000, 4000))
    return " ".join(pieces)[:4096] or "hello"


async def send_random(bot: Harness, rng: random.Random, user: TgUser, secret: str) -> None:
    roll = rng.random()
    if roll < 0.35:
        await bot.send_raw(user, f"{rng.choice(COMMANDS)} {random_text(rng, secret)}".strip())
    elif roll < 0.6:
        await bot.send_raw(user, random_text(rng, secret))
    elif roll < 0.8:
        sent = bot.fake.sent(user.id)
        if sent:
            target = rng.choice(sent)
            markup = bot.fake.bot_message(user.id, target.message_id).get("reply_markup")
            real = [
                b["callback_data"]
                for row in (markup or {}).get("inline_keyboard", [])
                for b in row
            ]
            data = rng.choice(real) if real and rng.random() < 0.7 else rng.choice(CALLBACKS)
            await bot.press(user, target.message_id, data)
    elif roll < 0.9:
        kind = rng.choice(["sticker", "voice", "photo", "location", "contact"])
        options: dict[str, dict[str, Any]] = {
            "sticker": {
                "sticker": {
                    "file_id": "s",
                    "file_unique_id": "s",
                    "type": "regular",
                    "width": 1,
                    "height": 1,
                    "is_animated": False,
                    "is_video": False,
                }
            },
            "voice": {"voice": {"file_id": "v", "file_unique_id": "v", "duration": 3}},
            "photo": {
                "photo": [{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}],
                "caption": random_text(rng, secret),
            },
            "location": {"location": {"latitude": 1.0, "longitude": 2.0}},
            "contact": {"contact": {"phone_number": "1", "first_name": "Z"}},
        }
        await bot.send_update(user, **options[kind])
    else:
        bot.clock.advance(timedelta(hours=rng.randint(1, 30)))
        await bot.dispatch()


@pytest.mark.slow
async def test_it_survives_random_updates(
    bot: Harness, alice: TgUser, bob: TgUser, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.ERROR, logger="bot")
    rng = random.Random(20261125)
    secrets = {alice.id: "ALICE-SECRET-WORDS", bob.id: "BOB-SECRET-WORDS"}
    await bot.agree(alice)
    await bot.agree(bob)
    await bot.send(alice, "/treatment")
    for _ in range(600):
        user = rng.choice([alice, bob])
        await send_random(bot, rng, user, secrets[user.id])
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    rejected = [r for r in bot.fake.requests if r.result is None and r.method.startswith("send")]
    assert rejected == [], [(r.method, r.text) for r in rejected[:3]]
    for user, other in ((alice, bob), (bob, alice)):
        for request in bot.fake.requests:
            if request.chat_id == user.id:
                assert secrets[other.id] not in str(request.params)
