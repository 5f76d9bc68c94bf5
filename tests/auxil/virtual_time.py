"""Virtual time for the rate limiter's tests: a clock and a sleep that never really sleep, and
the request callback the limiter wraps."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any


class VirtualTime:
    """A clock and a sleep for the limiter; `run` moves time to the next wake-up whenever
    every task is waiting, so nothing really sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    async def run(self, *coroutines: Coroutine[Any, Any, Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
        while True:
            for _ in range(100):  # let every task that can run get to its next sleep
                await asyncio.sleep(0)
            if all(task.done() for task in tasks):
                return [task.result() for task in tasks]
            assert self._sleepers, "tasks are stuck without sleeping"
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            future.set_result(None)


class FakeApi:
    """The callback the limiter wraps: records when each request went out; can fail, and
    can take `latency` seconds to answer."""

    def __init__(self, time: VirtualTime) -> None:
        self.time = time
        self.calls: list[tuple[str, object, float]] = []
        self.answered: list[float] = []  # when each call's answer came back, in call order
        self.failures: list[Exception] = []
        self.latency = 0.0

    async def post(self, endpoint: str, chat_id: object) -> bool:
        self.calls.append((endpoint, chat_id, self.time.now))
        if self.latency:
            await self.time.sleep(self.latency)
        self.answered.append(self.time.now)
        if self.failures:
            raise self.failures.pop(0)
        return True
