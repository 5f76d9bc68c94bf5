"""Shared fixtures: a fake Bot API server, a controlled clock, and the real Application."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from bot.config import Settings
from bot.db.crypto import Cipher, new_key, use_cipher
from tests.auxil.harness import FakeClock, Harness
from tests.fake_telegram import FakeTelegram, TgUser

REPO_PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
# Only these fixtures, or a module that reads TEST_DATABASE_URL itself, lead a test to the
# database TEST_DATABASE_URL names: the PostgreSQL pass runs just the tests that do.
DATABASE_FIXTURES = frozenset({"settings"})


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets a PostgreSQL database of its own (the tests empty
    theirs at will), named after TEST_DATABASE_URL's with the worker's name added. Setting the
    variable here reaches every test, and the processes tests start, alike."""
    url = os.environ.get("TEST_DATABASE_URL")
    worker = getattr(config, "workerinput", {}).get("workerid")
    if not url or not worker or not url.startswith("postgresql"):
        return
    base = make_url(url)
    own = base.set(database=f"{base.database}_{worker}")
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": own.database}
        ).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{own.database}"'))
    engine.dispose()
    os.environ["TEST_DATABASE_URL"] = own.render_as_string(hide_password=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, leave out the tests that never reach it: they ran in the SQLite pass."""
    if not os.environ.get("TEST_DATABASE_URL"):
        return
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        reads_url = "TEST_DATABASE_URL" in Path(item.path).read_text(encoding="utf-8")
        (kept if fixtures & DATABASE_FIXTURES or reads_url else left_out).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(autouse=True)
def cipher() -> Cipher:
    """A fresh key for every test; the bot, when started, opens its own key file instead."""
    fresh = Cipher([new_key().encode()])
    use_cipher(fresh)
    return fresh


@pytest.fixture
def alice() -> TgUser:
    return TgUser(id=1001, first_name="Alice", username="alice")


@pytest.fixture
def bob() -> TgUser:
    return TgUser(id=1002, first_name="Bob")


@pytest.fixture
def carol() -> TgUser:
    return TgUser(id=1003, first_name="Carol")


@pytest.fixture
def dave() -> TgUser:
    return TgUser(id=1004, first_name="Dave")


@pytest.fixture
def clock() -> FakeClock:
    # A Wednesday afternoon in Berlin (UTC+1 in winter).
    return FakeClock(datetime(2026, 11, 25, 13, 0, tzinfo=UTC))


@pytest.fixture
def prompts_dir() -> Path:
    return REPO_PROMPTS


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, fake: FakeTelegram, prompts_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
        telegram_bot_token=fake.token,
        telegram_api_base_url=fake.base_url,
        database_url=_database_url(tmp_path),
        prompts_dir=prompts_dir,
        # The repeating job never fires during a test: tests call the dispatcher themselves.
        dispatch_interval_seconds=3600,
        default_timezone="Europe/Berlin",
        # Limits far above Telegram's so tests are not throttled; tests of the limits set theirs.
        rate_limit_overall=1000,
        rate_limit_per_chat=1000,
        rate_limit_chat_burst=100,
        telegram_timeout_seconds=5,
        # SQLite keeps its key in a file beside the database; other databases need DATA_KEYS.
        data_keys=new_key() if os.environ.get("TEST_DATABASE_URL") else None,
    )


@pytest.fixture
async def bot(settings: Settings, fake: FakeTelegram, clock: FakeClock) -> AsyncIterator[Harness]:
    harness = Harness(settings, fake, clock)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
    # No Telegram call is made while a transaction is open, in any test that drives the bot.
    assert harness.sent_in_transaction == []


@pytest.fixture
async def agreed(bot: Harness, alice: TgUser) -> Harness:
    """The bot with Alice past /start and consent."""
    await bot.agree(alice)
    return bot


def _database_url(tmp_path: Path) -> str:
    """A SQLite file per test, or the PostgreSQL database TEST_DATABASE_URL names, emptied."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path / 'companion.sqlite3'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url
