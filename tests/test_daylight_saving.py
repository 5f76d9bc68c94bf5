"""A step one day after a treatment on the eve of a daylight-saving change keeps its local hour."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.auxil.harness import Harness
from tests.fake_telegram import TgUser


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "schedule.toml").write_text(
        'min_gap = "1h"\n[[step]]\nkey = "next_day"\nafter = "1d"\ntemplate = "next_day.html"\n',
        encoding="utf-8",
    )
    (folder / "next_day.html").write_text(
        "Treatment {{ treatment_number }} was {{ hours_since }} hours ago.", encoding="utf-8"
    )
    return folder


async def test_it_keeps_the_local_hour_across_a_daylight_saving_change(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    # Saturday 24 October 2026, the eve of the end of summer time in Berlin.
    bot.clock.set(datetime(2026, 10, 24, 16, 0, tzinfo=UTC))  # 18:00 CEST
    await bot.send(alice, "/treatment")
    bot.clock.set(datetime(2026, 10, 25, 16, 0, tzinfo=UTC))  # 17:00 CET: 24 h, but not 18:00
    assert (await bot.dispatch()).sent == []
    prompt = await bot.next_prompt(alice)
    assert bot.clock.now == datetime(2026, 10, 25, 17, 0, tzinfo=UTC)  # 18:00 CET
    assert prompt.text == "Treatment 1 was 25 hours ago."
