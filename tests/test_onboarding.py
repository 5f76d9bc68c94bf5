"""/start, consent and /help."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.db.models import Entry, Patient
from bot.telegram.keyboards import CONSENT_AGREE
from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser


async def test_it_welcomes_and_asks_for_consent(bot: Harness, alice: TgUser):
    replies = await bot.send_raw(alice, "/start")
    welcome = [r for r in replies if r.method == "sendMessage"]
    assert len(welcome) == 1
    text = welcome[0].text or ""
    assert "Hello Alice" in text
    assert "not a medical service" in text
    assert "emergency" in text
    assert "/timezone America/New_York" in text  # an example other than the default
    assert "<b>Europe/Berlin</b>" in text  # the default zone, until one is set
    buttons = welcome[0].params["reply_markup"]["inline_keyboard"]
    assert buttons == [[{"text": "I agree", "callback_data": CONSENT_AGREE}]]


async def test_it_stores_only_the_pending_state_before_consent(bot: Harness, alice: TgUser):
    await bot.send(alice, "/start")
    replies = await bot.send(alice, "I felt like I was floating above my childhood home")
    assert "tap <b>I agree</b>" in replies[0]
    replies = await bot.send(alice, "/treatment")
    assert "tap <b>I agree</b>" in replies[0]
    await bot.send(alice, "/intention be kind")
    with bot.session() as session:
        patient = session.scalars(select(Patient)).one()
        assert patient.consented_at is None
        assert patient.first_name is None
        assert patient.pending_intention is None
        assert session.scalar(select(func.count(Entry.id))) == 0


async def test_it_asks_strangers_to_start_first(bot: Harness, bob: TgUser):
    replies = await bot.send(bob, "hello?")
    assert "Send /start to begin" in replies[0]
    with bot.session() as session:
        assert session.scalar(select(func.count(Patient.id))) == 0


async def test_it_records_consent_and_explains_next_steps(bot: Harness, alice: TgUser):
    await bot.send(alice, "/start")
    welcome = bot.fake.sent(alice.id)[-1]
    done = await bot.press(alice, welcome.message_id, CONSENT_AGREE)
    toast = next(r for r in done if r.method == "answerCallbackQuery")
    assert toast.params["text"] == "Thank you. Your journal is ready."
    # The button is gone so it cannot be pressed twice.
    assert "reply_markup" not in bot.fake.bot_message(alice.id, welcome.message_id)
    follow_up = next(r for r in done if r.method == "sendMessage")
    assert "Thank you, Alice" in (follow_up.text or "")
    assert "/timezone" in (follow_up.text or "")
    assert "22:00-08:00" in (follow_up.text or "")
    with bot.session() as session:
        patient = session.scalars(select(Patient)).one()
        assert patient.consented_at == bot.clock.now
        assert patient.first_name == "Alice"

    replies = await bot.send(alice, "A first note")
    assert replies == ["Saved in your journal."]


async def test_it_welcomes_back_after_consent(agreed: Harness, alice: TgUser):
    replies = await agreed.send(alice, "/start")
    assert replies[0].startswith("Welcome back, Alice")


async def test_it_lists_every_command_in_help_and_the_menu(bot: Harness, alice: TgUser):
    replies = await bot.send(alice, "/help")
    for command in (
        "/intention",
        "/treatment",
        "/journal",
        "/recap",
        "/mood",
        "/practice",
        "/remind",
        "/goal add",
        "/goals",
        "/notes",
        "/guide invite",
        "/share recap",
        "/export",
        "/journal search",
        "/recap weekly on",
        "/timezone",
        "/quiet",
        "/pause",
        "/resume",
    ):
        assert command in replies[0]
    menu = bot.fake.sent(method="setMyCommands")[0].params["commands"]
    assert [c["command"] for c in menu] == [
        "treatment",
        "intention",
        "journal",
        "recap",
        "mood",
        "practice",
        "remind",
        "goal",
        "goals",
        "notes",
        "guide",
        "share",
        "export",
        "timezone",
        "quiet",
        "pause",
        "resume",
        "crisis",
        "country",
        "privacy",
        "delete",
        "help",
        "start",
    ]


async def test_it_refuses_group_chats_politely(bot: Harness, alice: TgUser):
    group = {"id": -500, "type": "group", "title": "Friends"}
    requests = await bot.send_update(
        alice,
        text="/start",
        chat=group,
        entities=[{"type": "bot_command", "offset": 0, "length": 6}],
    )
    replies = [r for r in requests if r.method == "sendMessage"]
    assert "private chat" in (replies[0].text or "")
    with bot.session() as session:
        assert session.scalar(select(func.count(Patient.id))) == 0
