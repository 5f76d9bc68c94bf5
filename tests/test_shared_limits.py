"""Telegram's limits kept by several instances together, through lanes in the database, in
virtual time: however late each message travels, no window holds more than the limit.

Each TelegramRateLimiter stands for one instance; its own windows are left loose so that only
the shared lanes limit. The tests run on SQLite and, with TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator

import pytest

from bot.app import build_companion
from bot.config import Settings
from bot.db.session import SessionFactory
from bot.telegram.coordination import SendSlots, overall_lane
from bot.telegram.ratelimit import Limit, TelegramRateLimiter
from tests.auxil.virtual_time import VirtualTime

LOOSE = Limit(10_000, 1.0)
HOLD = 20.0


@pytest.fixture
def sessions(settings: Settings) -> Iterator[SessionFactory]:
    factory = build_companion(settings).sessions
    yield factory
    factory.kw["bind"].dispose()


class Telegram:
    """Answers after a random latency; Telegram counts each message at a random moment
    between its leaving and its answer (`arrived`)."""

    def __init__(self, time: VirtualTime, seed: int, latency: tuple[float, float]) -> None:
        self.time = time
        self.random = random.Random(seed)
        self.latency = latency
        self.left: list[tuple[object, float]] = []
        self.arrived: list[tuple[object, float]] = []
        self.answered: list[tuple[object, float]] = []

    async def post(self, chat_id: object) -> bool:
        left = self.time.now
        flight = self.random.uniform(*self.latency)
        self.left.append((chat_id, left))
        self.arrived.append((chat_id, left + self.random.uniform(0, flight)))
        await self.time.sleep(flight)
        self.answered.append((chat_id, self.time.now))
        return True


def instance(
    time: VirtualTime, sessions: SessionFactory, overall: Limit, chat_period: float
) -> TelegramRateLimiter:
    limiter = TelegramRateLimiter(LOOSE, LOOSE, clock=time.clock, sleep=time.sleep)
    limiter.share(
        SendSlots(
            sessions,
            overall_lanes=overall.count,
            overall_period=overall.period,
            chat_period=chat_period,
            hold=HOLD,
            clock=time.clock,
            sleep=time.sleep,
        )
    )
    return limiter


async def send(limiter: TelegramRateLimiter, telegram: Telegram, chat_id: object) -> object:
    return await limiter.process_request(
        callback=telegram.post,
        args=(chat_id,),
        kwargs={},
        endpoint="sendMessage",
        data={"chat_id": chat_id},
        rate_limit_args=None,
    )


def most_in_any_window(moments: list[float], period: float) -> int:
    """The most moments in any half-open window of `period`, as Telegram counts them."""
    moments = sorted(moments)
    return max(
        sum(1 for other in moments[i:] if other < start + period)
        for i, start in enumerate(moments)
    )


async def test_it_spaces_a_chat_s_messages_from_the_previous_answer(sessions: SessionFactory):
    # One instance keeps the overall lanes busy, so each message to Alice's chat waits a
    # different time for an overall lane; her messages, sent one after another by two
    # instances in turn, must still leave at least a chat period after the previous answer.
    time = VirtualTime()
    telegram = Telegram(time, seed=1, latency=(0.05, 0.6))
    first, second, busy = (instance(time, sessions, Limit(5, 1.0), 1.0) for _ in range(3))

    async def alice_s_messages() -> None:
        for n in range(6):
            await send((first, second)[n % 2], telegram, "alice")

    await time.run(alice_s_messages(), *(send(busy, telegram, f"other-{n}") for n in range(40)))
    left = [moment for chat, moment in telegram.left if chat == "alice"]
    answered = [moment for chat, moment in telegram.answered if chat == "alice"]
    assert len(left) == 6
    assert all(
        leaving >= previous_answer + 1.0
        for leaving, previous_answer in zip(left[1:], answered, strict=False)
    )


async def test_no_window_holds_more_than_the_limit_however_late_messages_arrive(
    sessions: SessionFactory,
):
    time = VirtualTime()
    telegram = Telegram(time, seed=7, latency=(0.0, 0.4))
    overall = Limit(10, 1.0)
    instances = [instance(time, sessions, overall, 1.0) for _ in range(3)]
    chats = random.Random(3)
    await time.run(
        *(send(instances[n % 3], telegram, f"chat-{chats.randrange(60)}") for n in range(240))
    )
    assert len(telegram.arrived) == 240
    assert most_in_any_window([moment for _, moment in telegram.arrived], 1.0) <= overall.count
    by_chat: dict[object, list[float]] = defaultdict(list)
    for chat, moment in telegram.arrived:
        by_chat[chat].append(moment)
    assert max(most_in_any_window(moments, 1.0) for moments in by_chat.values()) == 1
    # Not needlessly slow either: a lane is held for its flight (0.2 s on average) and a period.
    assert 240 / time.now > 0.9 * overall.count / (overall.period + 0.2)


async def test_a_dead_instance_s_lanes_come_free_once_their_hold_has_passed(
    sessions: SessionFactory,
):
    time = VirtualTime()
    dead = SendSlots(
        sessions,
        overall_lanes=1,
        overall_period=1.0,
        chat_period=1.0,
        hold=HOLD,
        clock=time.clock,
        sleep=time.sleep,
    )
    await time.run(dead.take_chat("alice"), dead.take_overall())  # and never released
    telegram = Telegram(time, seed=2, latency=(0.1, 0.1))
    await time.run(send(instance(time, sessions, Limit(1, 1.0), 1.0), telegram, "alice"))
    [(chat, left)] = telegram.left
    assert chat == "alice"
    assert left == pytest.approx(HOLD + 1.0, abs=0.3)


async def test_a_429_pauses_every_instance(sessions: SessionFactory):
    time = VirtualTime()
    ours, theirs = (
        SendSlots(
            sessions,
            overall_lanes=3,
            overall_period=1.0,
            chat_period=1.0,
            hold=HOLD,
            clock=time.clock,
            sleep=time.sleep,
        )
        for _ in range(2)
    )
    [lane] = await time.run(ours.take_overall())
    ours.release([lane])
    ours.pause(5.0)
    await time.run(theirs.take_overall())
    assert time.now == pytest.approx(5.0, abs=0.3)


async def test_an_instance_uses_only_the_lanes_its_limit_gives_it(sessions: SessionFactory):
    """The overall lanes are one range of keys, read as a range: an instance configured for
    fewer lanes than another created never takes the others' extra ones."""
    time = VirtualTime()

    def slots(lanes: int) -> SendSlots:
        return SendSlots(
            sessions,
            overall_lanes=lanes,
            overall_period=1.0,
            chat_period=1.0,
            hold=HOLD,
            clock=time.clock,
            sleep=time.sleep,
        )

    larger, smaller = slots(12), slots(3)
    await time.run(larger.take_overall())  # creates twelve lanes, holds one
    held = await time.run(*(smaller.take_overall() for _ in range(2)))
    assert time.now == 0.0  # two more of its three lanes were free
    assert {lane.key for lane in held} <= {overall_lane(n) for n in range(3)}
    await time.run(smaller.take_overall())  # its three are held: it waits
    assert time.now > 1.0
