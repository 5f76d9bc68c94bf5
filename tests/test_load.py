"""A thousand prompts due at once, against a fake Bot API that enforces Telegram's limits.

The limits are scaled up (150 a second instead of 30) so the test takes seconds; the limiter
and the server's windows are the same code at any rate.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.db.models import Patient, PromptStatus, ScheduledPrompt
from tests.auxil.harness import Harness
from tests.auxil.seed import add_due_prompts
from tests.fake_telegram import TgUser

pytestmark = pytest.mark.slow

PATIENTS = 1000
OVERALL = 150


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "rate_limit_overall": OVERALL,
            "rate_limit_per_chat": 1,
            "rate_limit_chat_burst": 3,
        }
    )


async def test_a_thousand_prompts_due_at_once_all_go_out_with_no_429(
    agreed: Harness, alice: TgUser
):
    bot = agreed
    with bot.session() as session, session.begin():
        chats = add_due_prompts(session, bot.clock.now, PATIENTS)
    bot.fake.enforce_rate_limits(overall=(OVERALL, 1.0), per_chat=(3, 3.0))
    loop = asyncio.get_running_loop()
    started = loop.time()
    dispatching = asyncio.create_task(bot.dispatch())
    # A patient writing in the middle of it is answered long before the last prompt goes out.
    # (A deadline, not a wait: at the limit the 100 take under a second.)
    await bot.fake.wait_for(
        lambda r: r.chat_id in chats and r.result is not None, count=100, timeout=60
    )
    [ack] = [
        r for r in await bot.send_raw(alice, "Here in the middle") if r.method == "sendMessage"
    ]
    report = await dispatching
    elapsed = loop.time() - started

    assert len(report.sent) == PATIENTS
    assert bot.fake.rate_limited == []
    delivered = Counter(r.chat_id for r in bot.fake.sent() if r.chat_id in chats and r.result)
    assert delivered == dict.fromkeys(chats, 1)
    with bot.session() as session:
        statuses = Counter(session.scalars(select(ScheduledPrompt.status)))
        assert statuses[PromptStatus.SENT] == PATIENTS
        assert session.scalar(select(Patient).where(Patient.unreachable_at.is_not(None))) is None
    prompts = [r for r in bot.fake.requests if r.chat_id in chats]
    assert bot.fake.requests.index(ack) < bot.fake.requests.index(prompts[-1])
    # No faster than the limit allows: the limiter, not the bot's own speed, set the pace.
    assert elapsed >= (PATIENTS - OVERALL) / OVERALL
