"""/practice: integration practices noted from buttons, from a command or under a prompt, and
shown in the recap and the export."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db.models import Entry, Practice
from bot.domain.practices import KINDS, parse_practice_args
from bot.telegram.keyboards import MINUTES_PREFIX, PRACTICE_PREFIX
from tests.auxil.harness import Harness
from tests.conftest import REPO_PROMPTS
from tests.fake_telegram import ApiRequest, TgUser


def practices(bot: Harness) -> list[tuple[str, str | None, int | None, str | None]]:
    with bot.session() as session:
        rows = session.scalars(select(Practice).order_by(Practice.id))
        return [(p.kind, p.label, p.minutes, p.note) for p in rows]


def buttons(bot: Harness, request: ApiRequest) -> list[str]:
    message = bot.fake.bot_message(request.chat_id or 0, request.message_id)
    return [
        button["callback_data"]
        for row in message.get("reply_markup", {}).get("inline_keyboard", [])
        for button in row
    ]


async def test_it_notes_a_practice_from_the_buttons_with_minutes_and_a_note(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/practice")
    question = bot.fake.sent(alice.id)[-1]
    assert len(buttons(bot, question)) == len(KINDS)
    await bot.press(alice, question.message_id, f"{PRACTICE_PREFIX}{KINDS.index('meditation')}")
    saved = bot.fake.sent(alice.id)[-1]
    assert (saved.text or "").startswith("Noted: <b>Meditation</b>.")
    assert "How long did it take, roughly?" in (saved.text or "")
    await bot.press(alice, saved.message_id, f"{MINUTES_PREFIX}1:10")
    assert await bot.send(alice, "Calmer than I expected") == ["Added as a note to your practice."]
    assert practices(bot) == [("meditation", None, 10, "Calmer than I expected")]
    with bot.session() as session:
        assert session.scalars(select(Entry)).all() == []  # a note, not a journal entry


async def test_a_double_tap_notes_one_practice(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/practice")
    question = bot.fake.sent(alice.id)[-1]
    data = f"{PRACTICE_PREFIX}{KINDS.index('nature')}"
    await bot.press(alice, question.message_id, data)
    await bot.press(alice, question.message_id, data)
    assert practices(bot) == [("nature", None, None, None)]


@pytest.mark.parametrize(
    ("command", "kind", "minutes", "note"),
    [
        ("/practice meditation 10", "meditation", 10, None),
        (
            "/practice walk 30min by the river, felt lighter",
            "nature",
            30,
            "by the river, felt lighter",
        ),
        ("/practice Yoga", "movement", None, None),
        ("/practice talk with my guide", "talk", None, "with my guide"),
    ],
)
async def test_it_notes_a_practice_named_in_the_command(
    agreed: Harness, alice: TgUser, command: str, kind: str, minutes: int | None, note: str | None
):
    bot = agreed
    await bot.send(alice, command)
    assert practices(bot) == [(kind, None, minutes, note)]
    reply = bot.fake.sent(alice.id)[-1]
    assert bool(buttons(bot, reply)) is (minutes is None)  # minutes asked only when not given


async def test_something_else_is_named_by_the_next_message(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/practice other")
    assert "What did you do?" in bot.fake.sent(alice.id)[-1].text  # type: ignore[operator]
    [thanks] = await bot.send(alice, "Pottery <class> & tea")
    assert thanks.startswith("Thank you: <b>Pottery &lt;class&gt; &amp; tea</b>.")
    await bot.send(alice, "Hands in the clay")
    assert practices(bot) == [("other", "Pottery <class> & tea", None, "Hands in the clay")]


@pytest.mark.parametrize(
    "command", ["/practice banana", "/practice meditation 0", "/practice yoga 99999"]
)
async def test_it_explains_the_command_when_it_cannot_read_it(
    agreed: Harness, alice: TgUser, command: str
):
    bot = agreed
    [reply] = await bot.send(alice, command)
    assert reply.startswith("You can send /practice to choose from a list")
    assert "/practice meditation 10" in reply
    assert practices(bot) == []


async def test_words_long_after_a_practice_go_to_the_journal(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/practice meditation 10")
    bot.clock.advance(timedelta(minutes=31))
    assert await bot.send(alice, "A thought of its own") == ["Saved in your journal."]
    assert practices(bot) == [("meditation", None, 10, None)]


async def test_a_redelivered_note_is_kept_once(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/practice meditation 10")
    await bot.send(alice, "Quiet mind")
    replies = await bot.redeliver(alice, bot.last_update_id)
    assert [r for r in replies if r.method == "sendMessage"] == []
    assert practices(bot) == [("meditation", None, 10, "Quiet mind")]
    with bot.session() as session:
        assert session.scalars(select(Entry)).all() == []


async def test_another_patient_cannot_press_the_buttons(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.agree(bob)
    await bot.send(alice, "/practice meditation")
    saved = bot.fake.sent(alice.id)[-1]
    answers = await bot.press(bob, saved.message_id, f"{MINUTES_PREFIX}1:10", chat_id=alice.id)
    assert "someone else's" in str(answers[0].params.get("text"))
    assert practices(bot) == [("meditation", None, None, None)]


def test_it_reads_practice_arguments():
    parsed = parse_practice_args(["tai-chi", "20", "in", "the", "park"])
    assert parsed is not None
    assert (parsed.kind, parsed.minutes, parsed.note) == ("movement", 20, "in the park")
    assert parse_practice_args([]) is None


async def test_the_recap_counts_practices_and_days_of_meditation(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/practice meditation 10")
    bot.clock.advance(timedelta(days=1))
    await bot.send(alice, "/practice meditation 3")
    await bot.send(alice, "/practice walk 40")
    bot.clock.advance(timedelta(days=1))
    await bot.send(alice, "/practice meditation 5")
    recap = "\n".join(await bot.send(alice, "/recap"))
    assert "<b>Practices</b>\n4 practices, 58 minutes in all:" in recap
    assert "• Meditation: 3 times, 18 min\n" in recap  # one practice a line
    assert "• A walk in nature: 1 time, 40 min\n" in recap
    # 10 on the first day, 3 on the second (under five), 5 on the third.
    assert "Meditation of 5 minutes or more on 2 of 7 days." in recap


async def test_the_export_and_the_data_export_include_practices(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    await bot.send(alice, "/practice walk 30 by the river")
    await bot.send(alice, "/export")
    [markdown] = [
        r
        for r in bot.fake.sent(alice.id, "sendDocument")
        if str(r.params["document"].filename).endswith(".md")
    ]
    text = markdown.params["document"].data.decode()
    assert "### Practices" in text
    assert "A walk in nature, 30 min" in text
    assert "> by the river" in text
    await bot.send(alice, "/export data")
    data = json.loads(bot.fake.sent(alice.id, "sendDocument")[-1].params["document"].data)
    assert [(p["kind"], p["minutes"], p["note"]) for p in data["practices"]] == [
        ("nature", 30, "by the river")
    ]


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    """The default prompts, with the day-3 step offering the practice buttons."""
    folder = tmp_path / "prompts"
    shutil.copytree(REPO_PROMPTS, folder)
    schedule = folder / "schedule.toml"
    text = schedule.read_text(encoding="utf-8")
    day3 = 'template = "day3.html"\nreply = "text"'
    assert day3 in text
    schedule.write_text(text.replace(day3, day3.replace('"text"', '"practice"')), encoding="utf-8")
    return folder


async def test_a_prompt_can_offer_the_practices(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/treatment")
    prompt = await bot.next_prompt(alice)
    while not (prompt.text or "").startswith("<b>An integration practice"):
        prompt = await bot.next_prompt(alice)
    offered = buttons(bot, prompt)
    assert len(offered) == len(KINDS) + 3  # the practices, Later, Skip and the crisis contacts
    await bot.press(alice, prompt.message_id, offered[KINDS.index("art")])
    assert practices(bot) == [("art", None, None, None)]
    with bot.session() as session:
        practice = session.scalars(select(Practice)).one()
        assert practice.prompt_id is not None
    # It answered the prompt: the recap counts it.
    recap = "\n".join(await bot.send(alice, "/recap"))
    assert "• Art or a creative project: 1 time" in recap
