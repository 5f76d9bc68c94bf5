"""/goal and /goals, and the weekly check-in: on its own, or with the weekly recap."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.db.models import Goal, GoalCheck
from bot.domain.goals import parse_goal_command
from tests.auxil.harness import Harness
from tests.fake_telegram import ApiRequest, TgUser

SUNDAY_18_BERLIN = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


def checkins(bot: Harness, user: TgUser) -> list[ApiRequest]:
    return [
        r
        for r in bot.dispatched
        if r.chat_id == user.id and "How did this week go?" in (r.text or "")
    ]


def buttons(bot: Harness, request: ApiRequest) -> list[str]:
    message = bot.fake.bot_message(request.chat_id or 0, request.message_id)
    return [
        b["callback_data"]
        for row in message.get("reply_markup", {}).get("inline_keyboard", [])
        for b in row
    ]


async def test_it_keeps_a_short_list_of_goals(agreed: Harness, alice: TgUser):
    bot = agreed
    [added] = await bot.send(alice, "/goal add build: walk every morning")
    assert added.startswith("Added as a habit to build, number 1: <b>walk every morning</b>.")
    assert "Each week I'll ask how it went, next on Sun 29 Nov at 18:00." in added
    await bot.send(alice, "/goal add break: phone <in> bed")
    await bot.send(alice, "/goal add call my sister")
    [listed] = await bot.send(alice, "/goals")
    assert "1. walk every morning <i>(a habit to build)</i>" in listed
    assert "2. phone &lt;in&gt; bed <i>(a habit to break)</i>" in listed
    assert "3. call my sister <i>(a goal)</i>" in listed
    assert (await bot.send(alice, "/goal done 1"))[0].startswith(
        "Well done: <b>walk every morning</b>"
    )
    assert (await bot.send(alice, "/goal drop 3"))[0].startswith("Let go: <b>call my sister</b>")
    assert (await bot.send(alice, "/goal done 3"))[0].startswith("I don't have an active goal")
    [listed] = await bot.send(alice, "/goals")
    assert "walk every morning" not in listed
    assert "2. phone &lt;in&gt; bed" in listed
    with bot.session() as session:
        statuses = session.execute(select(Goal.number, Goal.status).order_by(Goal.number)).all()
    assert [tuple(row) for row in statuses] == [(1, "done"), (2, "active"), (3, "dropped")]


async def test_it_keeps_the_list_short(agreed: Harness, alice: TgUser):
    bot = agreed
    for n in range(5):
        await bot.send(alice, f"/goal add goal {n}")
    [refused] = await bot.send(alice, "/goal add one more")
    assert refused.startswith("You have 5 goals already.")


@pytest.mark.parametrize("command", ["/goal add", "/goal done two", "/goal sing", "/goal drop"])
async def test_it_explains_the_command_when_it_cannot_read_it(
    agreed: Harness, alice: TgUser, command: str
):
    [reply] = await agreed.send(alice, command)
    assert reply.startswith("You can send:\n/goal add build: walk every morning")


def test_it_reads_goal_commands():
    added = parse_goal_command(["add", "break:", "doom", "scrolling"])
    assert added is not None
    assert (added.action, added.kind, added.text) == ("add", "break", "doom scrolling")
    odd = parse_goal_command(["add", "note:", "this"])
    assert odd is not None
    assert (odd.kind, odd.text) == ("goal", "note: this")


async def test_the_weekly_checkin_asks_about_each_goal_and_keeps_the_answers(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/goal add build: walk every morning")
    await bot.send(alice, "/goal add break: phone in bed")
    bot.clock.set(SUNDAY_18_BERLIN)
    await bot.dispatch()
    [checkin] = checkins(bot, alice)
    assert "1. walk every morning\n" in (checkin.text or "")
    offered = buttons(bot, checkin)
    assert len(offered) == 6  # yes, partly, no for each goal
    await bot.press(alice, checkin.message_id, offered[0])  # goal 1: yes
    assert len(buttons(bot, checkin)) == 3  # that goal's row is gone
    await bot.press(alice, checkin.message_id, offered[4])  # goal 2: partly
    assert await bot.send(alice, "Mostly charged it in the kitchen") == [
        "Added to this week's check-in. Thank you."
    ]
    with bot.session() as session:
        rows = session.execute(
            select(Goal.number, GoalCheck.week, GoalCheck.answer, GoalCheck.note)
            .join(Goal)
            .order_by(Goal.number)
        ).all()
    assert [tuple(row) for row in rows] == [
        (1, "2026-W48", "yes", None),
        (2, "2026-W48", "partly", "Mostly charged it in the kitchen"),
    ]
    # The recap shows the weeks; the next check-in is a week on, once.
    recap = "\n".join(await bot.send(alice, "/recap"))
    assert "<b>Goals</b>\n1. walk every morning: ···✓" in recap
    assert "2. phone in bed: ···◐" in recap
    await bot.dispatch()
    assert len(checkins(bot, alice)) == 1
    bot.clock.set(datetime(2026, 12, 6, 17, 0, tzinfo=UTC))
    await bot.dispatch()
    assert len(checkins(bot, alice)) == 2


async def test_with_the_weekly_recap_on_the_checkin_comes_with_it(agreed: Harness, alice: TgUser):
    bot = agreed
    await bot.send(alice, "/recap weekly sun 18:00")
    await bot.send(alice, "/goal add build: walk every morning")
    bot.clock.set(SUNDAY_18_BERLIN)
    report = await bot.dispatch()
    assert report.delivered["weekly recap"] == 1
    texts = [r.text or "" for r in bot.fake.sent(alice.id)[-2:]]
    assert texts[0].startswith("<b>Your weekly recap</b>")
    assert texts[1].startswith("<b>How did this week go?</b>")
    await bot.dispatch()
    assert (
        len([r for r in bot.fake.sent(alice.id) if "How did this week go?" in (r.text or "")]) == 1
    )


async def test_no_checkin_without_goals_and_none_after_the_last_is_closed(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/goal add walk")
    await bot.send(alice, "/goal done 1")
    bot.clock.set(SUNDAY_18_BERLIN)
    await bot.dispatch()
    assert checkins(bot, alice) == []


async def test_another_patient_cannot_answer_for_my_goals(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await bot.agree(bob)
    await bot.send(alice, "/goal add walk")
    bot.clock.set(SUNDAY_18_BERLIN)
    await bot.dispatch()
    [checkin] = checkins(bot, alice)
    answers = await bot.press(bob, checkin.message_id, buttons(bot, checkin)[0], chat_id=alice.id)
    assert "someone else's" in str(answers[0].params.get("text"))
    with bot.session() as session:
        assert session.scalars(select(GoalCheck)).all() == []
    await bot.send(bob, "/export data")
    data = json.loads(bot.fake.sent(bob.id, "sendDocument")[-1].params["document"].data)
    assert data["goals"] == []


async def test_words_after_something_else_are_not_the_checkins_note(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/goal add walk")
    bot.clock.set(SUNDAY_18_BERLIN)
    await bot.dispatch()
    [checkin] = checkins(bot, alice)
    await bot.press(alice, checkin.message_id, buttons(bot, checkin)[0])
    bot.clock.advance(timedelta(minutes=1))
    await bot.send_update(alice, voice={"file_id": "v", "file_unique_id": "v", "duration": 3})
    assert await bot.send(alice, "About the voice note") == ["Saved in your journal."]
    with bot.session() as session:
        assert session.scalars(select(GoalCheck.note)).all() == [None]


async def test_the_export_and_the_data_export_include_goals_and_their_weeks(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    await bot.send(alice, "/goal add build: walk every morning")
    await bot.send(alice, "/goal add break: phone in bed")
    await bot.send(alice, "/goal drop 2")
    bot.clock.set(SUNDAY_18_BERLIN)
    await bot.dispatch()
    [checkin] = checkins(bot, alice)
    await bot.press(alice, checkin.message_id, buttons(bot, checkin)[1])  # partly
    await bot.send(alice, "Three mornings of five")
    files = [r for r in await bot.send_raw(alice, "/export") if r.method == "sendDocument"]
    markdown = next(r for r in files if r.params["document"].filename.endswith(".md"))
    text = markdown.params["document"].data.decode()
    assert "## Goals and habits" in text
    assert "#### walk every morning" in text
    assert "*A habit to build · active*" in text
    assert "*Week 2026\\-W48: partly*" in text
    assert "> Three mornings of five" in text
    assert "*A habit to break · let go*" in text
    await bot.send(alice, "/export data")
    data = json.loads(bot.fake.sent(alice.id, "sendDocument")[-1].params["document"].data)
    assert [(g["text"], g["status"]) for g in data["goals"]] == [
        ("walk every morning", "active"),
        ("phone in bed", "dropped"),
    ]
    assert data["goals"][0]["weekly_checks"] == [
        {"week": "2026-W48", "answer": "partly", "note": "Three mornings of five"}
    ]
