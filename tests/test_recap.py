"""/recap: the last seven days, split into messages that fit Telegram's limit."""

from __future__ import annotations

import html
from datetime import timedelta
from html.parser import HTMLParser

from bot.messages import TELEGRAM_LIMIT, visible_length
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser


class TagBalance(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack.pop() == tag


def assert_well_formed(message: str) -> None:
    parser = TagBalance()
    parser.feed(message)
    parser.close()
    assert parser.stack == [], message


async def test_it_recaps_the_week(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/intention Let go of the old story")
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)  # check-in, Wed 17:00
    await bot.send(alice, "Sleepy & <calm>")
    await bot.next_prompt(alice)  # reflection, Thu 08:00
    await bot.send(alice, "A long answer. " * 60)
    await bot.next_prompt(alice)  # day 2, Fri 14:00: not answered
    bot.clock.advance(timedelta(hours=2))
    await bot.send(alice, "/intention Keep walking")
    await bot.send(alice, "/treatment 2026-12-01 10:00")  # planned

    messages = await bot.send(alice, "/recap")
    assert len(messages) == 1
    recap = messages[0]
    assert recap.startswith("<b>Your last 7 days</b> (Friday 20 November – Friday 27 November)")
    assert (
        "• Treatment 1 — Wed 25 Nov, 14:00\n<blockquote>Let go of the old story</blockquote>"
        in recap
    )
    assert "1 of 3 answered" not in recap
    assert "2 of 3 answered." in recap
    assert "<i>Check-in</i> (treatment 1), Wed 25 Nov, 17:00\nSleepy &amp; &lt;calm&gt;" in recap
    # Long answers are shortened at a word.
    reflection = recap.split("<i>Reflection</i>")[1].split("\n\n")[0]
    assert reflection.rstrip().endswith("…")
    assert len(reflection) < 400
    assert "None of your own in these days" in recap
    assert (
        "• Treatment 2 planned for Tue 1 Dec, 10:00, with the intention: <i>Keep walking</i>"
        in recap
    )
    assert "• An integration practice (treatment 1) — Sat 28 Nov, 14:00" in recap
    assert "• Check-in (treatment 2) — Tue 1 Dec, 13:00" in recap


async def test_it_recaps_an_empty_week_kindly(agreed: Harness, alice: TgUser):
    recap = (await agreed.send(alice, "/recap"))[0]
    assert "No treatments in these days." in recap
    assert "No prompts were sent in these days." in recap
    assert "• No prompts scheduled. After your next treatment, send /treatment." in recap


async def test_it_splits_a_long_recap_between_entries(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    written = []
    for number in range(40):
        bot.clock.advance(timedelta(minutes=30))
        text = f"Entry {number:02d}: " + "<b>&amp;</b> 🌿 " * 60
        written.append(text)
        await bot.send(alice, text)

    messages = await bot.send(alice, "/recap")
    assert len(messages) > 1
    for message in messages:
        assert visible_length(message) <= TELEGRAM_LIMIT
        assert_well_formed(message)
    # Every entry appears whole-ly in exactly one message, in order, never cut in two.
    joined = "\n\n".join(messages)
    positions = [joined.index(f"Entry {n:02d}:") for n in range(40)]
    assert positions == sorted(positions)
    for number in range(40):
        holders = [m for m in messages if f"Entry {number:02d}:" in m]
        assert len(holders) == 1
        line = next(x for x in holders[0].split("\n") if f"Entry {number:02d}:" in x)
        assert html.unescape(line).endswith("…")  # shortened, but on one side of a split only
    assert messages[-1].count("<b>What comes next</b>") == 1
