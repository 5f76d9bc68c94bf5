"""The rate limiter on its own, in virtual time: windows, fairness, 429 pauses and retries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.telegram.ratelimit import Limit, TelegramRateLimiter
from tests.auxil.virtual_time import FakeApi, VirtualTime

LOOSE = Limit(1000, 1.0)


def limiter(time: VirtualTime, overall: Limit = LOOSE, per_chat: Limit = LOOSE, **options: Any):
    return TelegramRateLimiter(overall, per_chat, clock=time.clock, sleep=time.sleep, **options)


async def send(
    rate_limiter: TelegramRateLimiter, api: FakeApi, chat_id: object, endpoint: str = "sendMessage"
) -> object:
    return await rate_limiter.process_request(
        callback=api.post,
        args=(endpoint, chat_id),
        kwargs={},
        endpoint=endpoint,
        data={"chat_id": chat_id} if chat_id is not None else {},
        rate_limit_args=None,
    )


def test_limits_from_rates():
    assert Limit.per_second(30) == Limit(30, 1.0)
    assert Limit.per_second(1, burst=3) == Limit(3, 3.0)
    assert Limit.per_second(0.5) == Limit(1, 2.0)


async def test_it_sends_at_most_n_in_any_window_overall():
    time = VirtualTime()
    api = FakeApi(time)
    rate_limiter = limiter(time, overall=Limit(2, 1.0))
    await time.run(*(send(rate_limiter, api, chat) for chat in range(5)))
    assert [when for *_, when in api.calls] == [0, 0, 1, 1, 2]
    # First come, first served.
    assert [chat for _, chat, _ in api.calls] == [0, 1, 2, 3, 4]


async def test_a_message_holds_its_place_until_a_period_after_its_answer():
    # Telegram counts a message when it arrives, somewhere between sending and the answer: the
    # next one may go only a full period after the answer, or two could arrive too close.
    time = VirtualTime()
    api = FakeApi(time)
    api.latency = 0.5
    rate_limiter = limiter(time, overall=Limit(2, 1.0))
    await time.run(*(send(rate_limiter, api, chat) for chat in range(4)))
    assert [when for *_, when in api.calls] == [0, 0, 1.5, 1.5]


async def test_a_busy_chat_does_not_hold_up_the_others():
    time = VirtualTime()
    api = FakeApi(time)
    rate_limiter = limiter(time, per_chat=Limit(1, 1.0))
    await time.run(*(send(rate_limiter, api, chat) for chat in ("a", "a", "a", "b")))
    sent = {(chat, when) for _, chat, when in api.calls}
    assert sent == {("a", 0), ("b", 0), ("a", 1), ("a", 2)}


async def test_a_429_pauses_every_send_for_as_long_as_telegram_asks():
    time = VirtualTime()
    api = FakeApi(time)
    api.failures = [RetryAfter(timedelta(seconds=3))]
    rate_limiter = limiter(time)

    async def later(chat: object, delay: float, endpoint: str = "sendMessage") -> object:
        await time.sleep(delay)
        return await send(rate_limiter, api, chat, endpoint)

    results = await time.run(
        send(rate_limiter, api, "a"), later("b", 1), later(None, 2, "answerCallbackQuery")
    )
    assert results == [True, True, True]
    # The refused send, then nothing until the pause ends: not even the other chat's message
    # or a button's answer; then all three.
    assert api.calls[0] == ("sendMessage", "a", 0)
    assert all(when == 3 for *_, when in api.calls[1:])
    assert sorted(str(chat) for _, chat, _ in api.calls[1:]) == ["None", "a", "b"]


async def test_it_gives_up_after_a_few_429s_so_the_caller_can_reschedule():
    time = VirtualTime()
    api = FakeApi(time)
    api.failures = [RetryAfter(timedelta(seconds=2)) for _ in range(3)]
    rate_limiter = limiter(time, retry_after_attempts=2)
    with pytest.raises(RetryAfter):
        await time.run(send(rate_limiter, api, "a"))
    assert [when for *_, when in api.calls] == [0, 2]


async def test_network_failures_are_retried_with_growing_waits():
    time = VirtualTime()
    api = FakeApi(time)
    api.failures = [TimedOut(), NetworkError("Bad Gateway")]
    rate_limiter = limiter(time, network_attempts=3, network_backoff=0.5)
    assert await time.run(send(rate_limiter, api, "a")) == [True]
    assert [when for *_, when in api.calls] == [0, 0.5, 1.5]


async def test_it_stops_retrying_a_network_failure_after_the_last_attempt():
    time = VirtualTime()
    api = FakeApi(time)
    api.failures = [TimedOut() for _ in range(3)]
    rate_limiter = limiter(time, network_attempts=3, network_backoff=0.5)
    with pytest.raises(TimedOut):
        await time.run(send(rate_limiter, api, "a"))
    assert len(api.calls) == 3


async def test_a_request_telegram_refuses_is_not_retried():
    time = VirtualTime()
    api = FakeApi(time)
    api.failures = [BadRequest("Bad Request: message is too long")]
    with pytest.raises(BadRequest):
        await time.run(send(limiter(time), api, "a"))
    assert len(api.calls) == 1


async def test_it_forgets_idle_chats():
    time = VirtualTime()
    api = FakeApi(time)
    rate_limiter = limiter(time, overall=Limit(10_000, 1.0), per_chat=Limit(1, 1.0))
    await time.run(*(send(rate_limiter, api, chat) for chat in range(1500)))
    time.now += 10
    await time.run(send(rate_limiter, api, "late"))
    assert rate_limiter.tracked_chats < 1000
