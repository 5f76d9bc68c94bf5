"""Steps that expect a 1-10 scale, or no answer at all."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import Entry, ScheduledPrompt
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "schedule.toml").write_text(
        """
min_gap = "0s"

[[step]]
key = "feeling"
title = "How you feel"
after = "1h"
template = "feeling.html"
reply = "scale"

[[step]]
key = "rest"
title = "A reminder to rest"
after = "2h"
template = "rest.html"
reply = "none"
""",
        encoding="utf-8",
    )
    (folder / "feeling.html").write_text("From 1 to 10, how do you feel?", encoding="utf-8")
    (folder / "rest.html").write_text("Rest well, {{ first_name }}.", encoding="utf-8")
    return folder


def keyboard(request: ApiRequest) -> list[list[str]]:
    rows = request.params["reply_markup"]["inline_keyboard"]
    return [[button["callback_data"] for button in row] for row in rows]


async def test_it_stores_a_scale_answer_from_a_button(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    prompt = await bot.next_prompt(alice)
    assert keyboard(prompt) == [
        [f"prompt:scale:1:{n}" for n in range(1, 6)],
        [f"prompt:scale:1:{n}" for n in range(6, 11)],
        ["prompt:later:1", "prompt:skip:1"],
        ["support"],
    ]
    done = await bot.press(alice, prompt.message_id, "prompt:scale:1:7")
    assert next(r for r in done if r.method == "answerCallbackQuery").params["text"] == (
        "Noted: 7 out of 10."
    )
    assert next(r for r in done if r.method == "sendMessage").text == (
        "Thank you. Saved 7 out of 10 as your answer to <i>How you feel</i>.\n"
        "If you like, write a few words about it: your next message will be kept with it."
    )
    # A second press (a double tap) stores nothing more.
    again = await bot.press(alice, prompt.message_id, "prompt:scale:1:9")
    toast = next(r for r in again if r.method == "answerCallbackQuery")
    assert toast.params["text"] == "That button no longer works. Try the command again."
    with bot.session() as session:
        entries = session.scalars(select(Entry)).all()
        assert [(e.scale_value, e.text, e.prompt_id) for e in entries] == [(7, None, 1)]
    assert "7 out of 10" in (await bot.send(alice, "/journal"))[0]


async def test_it_takes_a_typed_number_as_the_scale_value(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.send(alice, " 4 ")
    with bot.session() as session:
        entry = session.scalars(select(Entry)).one()
        assert (entry.scale_value, entry.prompt_id) == (4, 1)


@pytest.mark.parametrize("data", ["prompt:scale:1:11", "prompt:scale:1:0", "prompt:scale:1:x"])
async def test_it_refuses_a_forged_scale_value(agreed: Harness, alice: TgUser, data: str):
    bot = agreed
    await bot.send(alice, "/treatment")
    prompt = await bot.next_prompt(alice)
    done = await bot.press(alice, prompt.message_id, data)
    assert next(r for r in done if r.method == "answerCallbackQuery").params["text"]
    with bot.session() as session:
        assert session.scalars(select(Entry)).all() == []


async def test_it_sends_a_no_answer_step_without_buttons(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    first = await bot.next_prompt(alice)
    bot.clock.advance(timedelta(hours=1))
    rest = await bot.next_prompt(alice)
    assert rest.text == "Rest well, Alice."
    # Nothing to answer: only the way to the crisis contacts, as under every prompt.
    assert rest.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Talk to someone now", "callback_data": "support"}]]
    }
    assert await bot.send(alice, "Thanks, I will") == ["Saved in your journal."]
    # A message that asks nothing leaves the question before it open to a Telegram reply.
    [answered] = await bot.send(alice, "Late, but here", reply_to=first.message_id)
    assert answered.startswith("Thank you. Saved as your answer to")
    with bot.session() as session:
        assert session.scalars(select(Entry.prompt_id).order_by(Entry.id)).all() == [None, 1]


async def test_it_splits_a_prompt_longer_than_telegram_allows(
    agreed: Harness, alice: TgUser, prompts_dir: Path
):
    bot = agreed
    (prompts_dir / "feeling.html").write_text(
        "<b>Long</b>\n" + "\n".join(f"Line {n}: " + "breathe " * 40 for n in range(30)),
        encoding="utf-8",
    )
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(hours=1))
    report = await bot.dispatch()
    parts = bot.prompts_sent(alice)
    assert len(report.sent) == 1
    assert len(parts) == 3
    assert "".join(p.text or "" for p in parts).count("Line ") == 30
    assert [("reply_markup" in p.params) for p in parts] == [False, False, True]
    with bot.session() as session:
        prompt = session.get_one(ScheduledPrompt, 1)
        assert prompt.telegram_message_id == parts[-1].message_id


async def test_it_sends_plain_text_when_telegram_refuses_the_html(
    agreed: Harness, alice: TgUser, prompts_dir: Path
):
    bot = agreed
    (prompts_dir / "feeling.html").write_text(
        "<p>From 1 to 10</p>, how do you feel &amp; why?", encoding="utf-8"
    )
    await bot.send(alice, "/treatment")
    bot.clock.advance(timedelta(hours=1))
    assert len((await bot.dispatch()).sent) == 1
    attempts = [
        r for r in bot.fake.requests if r.method == "sendMessage" and r.chat_id == alice.id
    ]
    refused, delivered = attempts[-2:]
    assert refused.result is None
    assert delivered.text == "From 1 to 10, how do you feel & why?"
    assert "parse_mode" not in delivered.params
    assert "reply_markup" in delivered.params
