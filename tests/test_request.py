"""At most IN_FLIGHT requests on the wire at once; the rest wait their turn, none is lost."""

from __future__ import annotations

import asyncio

from telegram.request import RequestData

from bot.telegram.request import BoundedRequest
from tests.fake_telegram import FakeTelegram


async def test_requests_beyond_the_limit_wait_their_turn_and_all_are_answered(
    fake: FakeTelegram,
) -> None:
    request = BoundedRequest(in_flight=4)
    await request.initialize()
    gate = fake.gate("getMe")
    url = f"{fake.base_url}{fake.token}/getMe"
    try:
        calls = [asyncio.create_task(request.post(url, RequestData())) for _ in range(10)]
        assert await gate.wait_until(lambda: gate.held == 4, within=5)
        # Every call has started by now: four are at Telegram, six wait in line here.
        assert request.waiting == 6
        assert gate.held == 4
        gate.open()
        answers = await asyncio.gather(*calls)
    finally:
        await request.shutdown()
    assert [answer["id"] for answer in answers if isinstance(answer, dict)] == [fake.bot_id] * 10
    assert request.waiting == 0
