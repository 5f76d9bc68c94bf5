"""Webhook mode: Telegram posts updates; only with the secret; stored before the 200; /healthz."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from telegram import Update

from bot.app import SWEEP_JOB
from bot.companion import utc_now
from bot.config import Settings, SettingsError
from bot.db.models import Entry, InboxUpdate
from bot.status import format_status, read_status
from bot.telegram.inbox import InboxBot
from bot.telegram.webhook import SECRET_HEADER
from tests.auxil.harness import FakeClock, Harness
from tests.fake_telegram import FakeTelegram, TgUser

SECRET = "s3cret-token_for-the-webhook"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def webhook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_url": "https://companion.example.org/telegram",
            "webhook_secret": SecretStr(SECRET),
            "webhook_port": free_port(),
        }
    )


@pytest.fixture
async def hooked(
    webhook_settings: Settings, fake: FakeTelegram, clock: FakeClock
) -> AsyncIterator[Harness]:
    fake.webhook_targets = [f"http://127.0.0.1:{webhook_settings.webhook_port}/telegram"]
    harness = Harness(webhook_settings, fake, clock)
    await harness.start_webhook()
    try:
        yield harness
    finally:
        await harness.stop()


def local(settings: Settings, path: str) -> str:
    return f"http://127.0.0.1:{settings.webhook_port}{path}"


async def test_it_sets_the_webhook_with_the_secret_and_the_updates_it_handles(
    hooked: Harness, fake: FakeTelegram
):
    assert fake.webhook is not None
    assert fake.webhook["url"] == "https://companion.example.org/telegram"
    assert fake.webhook["secret_token"] == SECRET
    assert set(fake.webhook["allowed_updates"]) == {"message", "edited_message", "callback_query"}


async def test_a_patient_is_served_through_the_webhook(hooked: Harness, alice: TgUser):
    await hooked.agree(alice)
    await hooked.send(alice, "/treatment")
    prompt = await hooked.next_prompt(alice)
    replies = await hooked.send(alice, "The light felt warm", reply_to=prompt.message_id)
    assert any("Saved" in reply for reply in replies)
    with hooked.session() as session:
        assert [e.text for e in session.scalars(select(Entry))] == ["The light felt warm"]


@pytest.mark.parametrize(
    "headers", [{}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET[:-1]}, {SECRET_HEADER: ""}]
)
async def test_a_request_without_the_right_secret_gets_403_and_changes_nothing(
    hooked: Harness, webhook_settings: Settings, alice: TgUser, headers: dict[str, str]
):
    message = {"message_id": 1, "date": 0, "text": "/start", "chat": alice.private_chat()}
    update = {"update_id": 999, "message": message | {"from": alice.to_dict()}}
    async with (
        aiohttp.ClientSession() as client,
        client.post(local(webhook_settings, "/telegram"), json=update, headers=headers) as r,
    ):
        assert r.status == 403
    with hooked.session() as session:
        assert session.get(InboxUpdate, 999) is None


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"message": {}}', b'{"update_id": "7"}'])
async def test_a_malformed_body_gets_400(hooked: Harness, webhook_settings: Settings, body: bytes):
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            local(webhook_settings, "/telegram"), data=body, headers={SECRET_HEADER: SECRET}
        ) as r,
    ):
        assert r.status == 400


async def test_an_update_is_stored_before_telegram_hears_back(
    hooked: Harness, webhook_settings: Settings, fake: FakeTelegram, alice: TgUser
):
    """The handler is stuck (Telegram holds its answer), yet the 200 has gone and the update
    waits in the inbox: an instance dying now loses nothing."""
    await hooked.agree(alice)
    held = fake.hold("sendMessage")
    update_id = fake.text_update(alice, "/help")
    assert await fake.wait_until(lambda: update_id in fake.delivered, 10)
    with hooked.session() as session:
        row = session.get(InboxUpdate, update_id)
        assert row is not None
        assert row.handled_at is None
        assert json.loads(row.raw or "{}")["message"]["text"] == "/help"
    held.set()
    await hooked.wait_handled(update_id)


async def test_a_redelivered_update_is_handled_once(
    hooked: Harness, fake: FakeTelegram, alice: TgUser
):
    await hooked.agree(alice)
    await hooked.send(alice, "/treatment")
    prompt = await hooked.next_prompt(alice)
    await hooked.send(alice, "Just this once", reply_to=prompt.message_id)
    update_id = hooked.last_update_id
    again = dict(fake.pushed[update_id])
    fake.push_update(again)  # the same update_id, as Telegram retries when it got no 200
    await hooked.wait_handled_times(update_id, 2)
    with hooked.session() as session:
        assert len(session.scalars(select(Entry)).all()) == 1


async def test_healthz_answers_while_the_bot_runs(hooked: Harness, webhook_settings: Settings):
    async with (
        aiohttp.ClientSession() as client,
        client.get(local(webhook_settings, "/healthz")) as r,
    ):
        assert r.status == 200
        assert await r.json() == {"status": "ok"}
        body = await r.text()
    assert "companion" not in body  # nothing about the instance or its data


async def orphan(hooked: Harness, fake: FakeTelegram, user: TgUser, text: str) -> int:
    """An update another instance stored, then died before handling."""
    update_id = fake.text_update(user, text)
    assert hooked.app is not None
    bot = hooked.app.bot
    assert isinstance(bot, InboxBot)
    bot.inbox.store([Update.de_json(fake.withdraw(update_id), bot)])
    return update_id


async def test_healthz_says_unavailable_when_the_database_does_not_answer(
    hooked: Harness, webhook_settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    def down(res: object) -> bool:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr("bot.telegram.webhook._database_answers", down)
    async with (
        aiohttp.ClientSession() as client,
        client.get(local(webhook_settings, "/healthz")) as r,
    ):
        assert r.status == 503
        assert await r.json() == {"status": "unavailable"}


async def test_an_update_left_waiting_by_a_dead_instance_is_taken_up(
    hooked: Harness, fake: FakeTelegram, clock: FakeClock, alice: TgUser
):
    await hooked.agree(alice)
    orphan_id = await orphan(hooked, fake, alice, "Left behind")
    assert hooked.app is not None
    [sweep] = hooked.app.job_queue.get_jobs_by_name(SWEEP_JOB)  # type: ignore[union-attr]
    await sweep.run(hooked.app)
    with hooked.session() as session:
        assert session.scalars(select(Entry)).all() == []  # too recent: its instance may live
    clock.advance(timedelta(seconds=30))
    await sweep.run(hooked.app)
    await hooked.wait_handled(orphan_id)
    with hooked.session() as session:
        assert [e.text for e in session.scalars(select(Entry))] == ["Left behind"]


async def test_a_chat_s_earlier_waiting_update_is_handled_before_its_later_one(
    hooked: Harness, fake: FakeTelegram, alice: TgUser
):
    """Alice's first update reached an instance that died; her second reaches this one,
    which handles the first before it."""
    await hooked.agree(alice)
    first = await orphan(hooked, fake, alice, "First")
    await hooked.send(alice, "Second")
    with hooked.session() as session:
        texts = [e.text for e in session.scalars(select(Entry).order_by(Entry.id))]
        assert session.get_one(InboxUpdate, first).handled_at is not None
    assert texts == ["First", "Second"]


def test_webhook_mode_says_what_it_needs(settings: Settings):
    with pytest.raises(SettingsError, match="WEBHOOK_URL and WEBHOOK_SECRET"):
        settings.require_webhook()


def test_a_weak_secret_is_refused(settings: Settings):
    with pytest.raises(ValueError, match="WEBHOOK_SECRET must be"):
        Settings(_env_file=None, telegram_bot_token="1:a", webhook_secret="short")


async def test_status_lists_the_instance_and_forgets_it_when_it_stops(hooked: Harness):
    assert hooked.app is not None
    [sweep] = hooked.app.job_queue.get_jobs_by_name(SWEEP_JOB)  # type: ignore[union-attr]
    await sweep.run(hooked.app)
    with hooked.session() as session:
        shown = format_status(read_status(session, utc_now()))
    assert "instances seen: 1\n" in shown
    assert "(webhook)" in shown
    companion = hooked.companion
    assert companion is not None
    await hooked.stop()
    with companion.sessions() as session:
        assert "instances seen: 0" in format_status(read_status(session, utc_now()))
    companion.sessions.kw["bind"].dispose()


async def test_an_update_the_database_cannot_take_gets_500_and_telegram_sends_it_again(
    hooked: Harness, fake: FakeTelegram, alice: TgUser
):
    """Nothing is acknowledged to Telegram unless it is stored: while the database refuses the
    write, the webhook answers 500, and Telegram's retry goes through once it takes it."""
    await hooked.agree(alice)
    assert hooked.app is not None
    bot = hooked.app.bot
    assert isinstance(bot, InboxBot)
    store = bot.inbox.store
    failing = True

    def flaky_store(updates: Sequence[Update]) -> None:
        if failing:
            raise OperationalError("INSERT", {}, Exception("database is down"))
        store(updates)

    bot.inbox.store = flaky_store  # type: ignore[method-assign]
    refused_before = len(fake.webhook_refused)
    update_id = fake.text_update(alice, "Kept safe")
    assert await fake.wait_until(lambda: len(fake.webhook_refused) > refused_before, 10)
    assert 500 in fake.webhook_refused
    failing = False
    await hooked.wait_handled(update_id)
    with hooked.session() as session:
        assert [e.text for e in session.scalars(select(Entry))] == ["Kept safe"]
