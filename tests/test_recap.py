"""/recap: a window of days, with mood figures and a chart, split to fit Telegram's limit."""

from __future__ import annotations

import html
import io
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from PIL import Image

from bot.domain.recap import mood_trend
from bot.render.telegram_html import TELEGRAM_LIMIT, visible_length
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


async def give_mood(bot: Harness, alice: TgUser, value: int) -> None:
    ask = next(r for r in await bot.send_raw(alice, "/mood") if r.method == "sendMessage")
    await bot.press(alice, ask.message_id, f"mood:{value}")


async def test_it_recaps_the_week(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/intention Let go of the old story")
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)  # check-in, Wed 17:00
    await bot.send(alice, "Sleepy & <calm>")
    mood = await bot.next_prompt(alice)  # mood, Thu 08:00
    await bot.press(alice, mood.message_id, "prompt:scale:2:7")
    await bot.next_prompt(alice)  # reflection, Thu 09:00
    await bot.send(alice, "A long answer. " * 60)
    bot.clock.advance(timedelta(hours=3))
    await give_mood(bot, alice, 4)
    bot.clock.advance(timedelta(hours=1))
    await bot.send(alice, "A free thought")
    await bot.send(alice, "/intention Keep walking")
    await bot.send(alice, "/treatment 2026-12-01 10:00")  # planned

    requests = await bot.send_raw(alice, "/recap")
    [recap] = [r.text or "" for r in requests if r.method == "sendMessage"]
    assert recap.startswith(
        "<b>Your last 7 days</b> (Thursday 19 November – Thursday 26 November)"
    )
    intention = "<blockquote>Let go of the old story</blockquote>"
    assert f"• Treatment 1 — Wed 25 Nov, 14:00\n{intention}" in recap
    assert "3 of 3 answered." in recap
    assert "<b>Mood</b>\n2 records: lowest 4, highest 7, average 5.5, falling." in recap
    # Highlights are the main reflections, shortened at a word; the check-in is not one.
    highlight = recap.split("<b>Highlights</b>")[1].split("<b>Your journal</b>")[0]
    assert "<i>Reflection</i> (treatment 1), Thu 26 Nov, 09:00\nA long answer." in highlight
    assert highlight.rstrip().endswith("…")
    assert "Sleepy" not in highlight
    assert "1 entry of your own; you wrote on 2 of 7 days." in recap
    planned = "• Treatment 2 planned for Tue 1 Dec, 10:00, with the intention: <i>Keep walking</i>"
    assert planned in recap
    assert "• One small step (treatment 1) — Fri 27 Nov, 14:00" in recap

    [photo] = [r for r in requests if r.method == "sendPhoto"]
    assert photo.params["caption"] == "Your mood, with each treatment marked (T1, T2…)."
    image = Image.open(io.BytesIO(photo.params["photo"].data))
    assert image.format == "PNG"
    assert image.size[0] > 500


async def test_it_recaps_any_number_of_days(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "An old note")
    bot.clock.advance(timedelta(days=20))
    await bot.send(alice, "A new note")
    week = (await bot.send(alice, "/recap"))[0]
    month = (await bot.send(alice, "/recap 30"))[0]
    assert "1 entry of your own; you wrote on 1 of 7 days." in week
    assert month.startswith("<b>Your last 30 days</b>")
    assert "2 entries of your own; you wrote on 2 of 30 days." in month


@pytest.mark.parametrize("args", ["0", "366", "abc", "7 8", "-3"])
async def test_it_explains_a_wrong_number_of_days(agreed: Harness, alice: TgUser, args: str):
    replies = await agreed.send(alice, f"/recap {args}")
    assert replies == [
        "Please give a number of days from 1 to 365, for example /recap 30. "
        "/recap alone shows the last 7 days."
    ]


async def test_it_recaps_an_empty_week_kindly_without_a_chart(agreed: Harness, alice: TgUser):
    requests = await agreed.send_raw(alice, "/recap")
    [recap] = [r.text or "" for r in requests if r.method == "sendMessage"]
    assert "No treatments in these days." in recap
    assert "No prompts were sent in these days." in recap
    assert "No mood figures in these days. /mood records one any time." in recap
    assert "No entries of your own; you wrote on 0 of 7 days." in recap
    assert "• No prompts scheduled. After your next treatment, send /treatment." in recap
    assert [r for r in requests if r.method == "sendPhoto"] == []


async def test_it_splits_a_long_recap_between_highlights(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.next_prompt(alice)
    reflection = await bot.next_prompt(alice)
    for number in range(40):
        bot.clock.advance(timedelta(minutes=1))
        text = f"Answer {number:02d}: " + "<b>&amp;</b> 🌿 " * 60
        await bot.send(alice, text, reply_to=reflection.message_id)

    messages = await bot.send(alice, "/recap")
    assert len(messages) > 1
    for message in messages:
        assert visible_length(message) <= TELEGRAM_LIMIT
        assert_well_formed(message)
    joined = "\n\n".join(messages)
    positions = [joined.index(f"Answer {n:02d}:") for n in range(40)]
    assert positions == sorted(positions)
    for number in range(40):
        holders = [m for m in messages if f"Answer {number:02d}:" in m]
        assert len(holders) == 1  # never cut in two
        line = next(x for x in holders[0].split("\n") if f"Answer {number:02d}:" in x)
        assert html.unescape(line).endswith("…")
    assert messages[-1].count("<b>What comes next</b>") == 1


def test_it_reads_the_mood_trend():
    from datetime import UTC, datetime

    from bot.core.moods import MoodPoint

    def points(*values: int) -> list[MoodPoint]:
        start = datetime(2026, 11, 1, tzinfo=UTC)
        return [MoodPoint(start + timedelta(days=n), v) for n, v in enumerate(values)]

    assert mood_trend(points(3, 4, 5, 6)) == "rising"
    assert mood_trend(points(8, 6, 5, 4)) == "falling"
    assert mood_trend(points(5, 6, 5, 6, 5)) == "steady"
    assert mood_trend(points(5)) == ""
