"""Shared fixtures: a fake Bot API server, a controlled clock, and the real Application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from tests.auxil.harness import FakeClock, Harness
from tests.fake_telegram import FakeTelegram, TgUser

REPO_PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


@pytest.fixture
def alice() -> TgUser:
    return TgUser(id=1001, first_name="Alice", username="alice")


@pytest.fixture
def bob() -> TgUser:
    return TgUser(id=1002, first_name="Bob")


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
        database_url=f"sqlite:///{tmp_path / 'companion.sqlite3'}",
        prompts_dir=prompts_dir,
        # The repeating job never fires during a test: tests call the dispatcher themselves.
        dispatch_interval_seconds=3600,
        default_timezone="Europe/Berlin",
    )


@pytest.fixture
async def bot(settings: Settings, fake: FakeTelegram, clock: FakeClock) -> AsyncIterator[Harness]:
    harness = Harness(settings, fake, clock)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.fixture
async def agreed(bot: Harness, alice: TgUser) -> Harness:
    """The bot with Alice past /start and consent."""
    await bot.agree(alice)
    return bot


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
