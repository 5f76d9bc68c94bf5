"""Every request to Telegram goes through here: throttled below Telegram's limits, paused for
everyone when Telegram says 429, and retried a few times when the network fails.

Telegram allows about 30 messages a second overall and about one a second to one chat, with
short bursts tolerated. python-telegram-bot's AIORateLimiter leaves private chats unlimited,
and all of this bot's chats are private; so this limiter keeps two sliding windows: at most N
messages in any window of the overall period, and at most `burst` in any window of a chat's.

Telegram counts a message when it arrives, which is some time after we let it go (the event
loop may be busy, the network slow). So a message holds its place in a window from the moment
it is let go until `period` after its answer came back: the arrival lies in between, and no
`period` of arrivals can then hold more than N, however late each one travels.

Waiters are served in arrival order, so a patient's reply never waits behind more than the
handful of prompts the dispatcher keeps in flight; a crisis reply (sent `urgently()`) goes
before all of them. A task that holds an update processor's slot gives it up while it waits
here and while its request is in flight, so chats waiting out their limits do not keep other
chats' updates waiting.

Several instances on one database also take lanes there (bot/telegram/coordination.py), by the same
rule, so the limits hold for all of them together; each one's own windows stay as well.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter

from bot.telegram.coordination import Lane, SendSlots

log = logging.getLogger(__name__)

# Requests that post or change a message count toward Telegram's limits; the rest (answering a
# button, getMe, setMyCommands) only wait out a 429 pause.
COUNTED_PREFIXES = ("send", "edit", "copy", "forward")
# When a window is full of requests still in flight, look again this often for one to finish.
IN_FLIGHT_POLL_SECONDS = 0.01
IDLE_CHATS_KEPT = 1000


class Yielding(Protocol):
    """Something the sending task holds and can give up while it waits."""

    def give_up(self) -> None: ...

    async def take_back(self) -> None: ...


# What the task sending a request holds and gives up while the request waits and travels: the
# update processor's handler slot.
held_while_waiting: ContextVar[Yielding | None] = ContextVar("held_while_waiting", default=None)
_urgent: ContextVar[bool] = ContextVar("urgent", default=False)


@contextmanager
def urgently() -> Iterator[None]:
    """Requests made inside go before every request waiting for its turn: a crisis reply is
    never queued behind other patients' messages."""
    token = _urgent.set(True)
    try:
        yield
    finally:
        _urgent.reset(token)


class _Turn:
    """A lock handed over first come, first served, except that urgent waiters go first."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, urgent: bool) -> None:
        if not self._held and not self._waiters:
            self._held = True
            return
        handed = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (0 if urgent else 1, next(self._order), handed))
        try:
            await handed
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, handed = heapq.heappop(self._waiters)
            if not handed.done():
                handed.set_result(None)  # the lock passes straight to the next waiter
                return
        self._held = False


@dataclass(frozen=True)
class Limit:
    """At most `count` messages in any `period` seconds."""

    count: int
    period: float

    @classmethod
    def per_second(cls, rate: float, burst: int = 1) -> Limit:
        """`rate` messages a second on average, up to `burst` of them back to back."""
        count = max(burst, round(rate)) if rate >= 1 else burst
        return cls(count=count, period=count / rate)


class SlidingWindow:
    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._in_flight = 0
        self._finished: deque[float] = deque()  # when answers came back, oldest first

    def wait_time(self, now: float) -> float:
        """Seconds until one more message fits; 0 if it fits now."""
        period = self.limit.period
        while self._finished and self._finished[0] <= now - period:
            self._finished.popleft()
        if self._in_flight + len(self._finished) < self.limit.count:
            return 0.0
        if self._finished:
            return self._finished[0] + period - now
        return IN_FLIGHT_POLL_SECONDS

    def started(self) -> None:
        self._in_flight += 1

    def finished(self, now: float) -> None:
        self._in_flight -= 1
        self._finished.append(now)

    def idle(self, now: float) -> bool:
        return not self._in_flight and self.wait_time(now) == 0 and not self._finished


class _Chat:
    def __init__(self, limit: Limit) -> None:
        self.window = SlidingWindow(limit)
        self.lock = asyncio.Lock()


Sleep = Callable[[float], Awaitable[None]]


class TelegramRateLimiter(BaseRateLimiter[None]):
    def __init__(
        self,
        overall: Limit,
        per_chat: Limit,
        *,
        retry_after_attempts: int = 5,
        network_attempts: int = 3,
        network_backoff: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`retry_after_attempts`: tries of a request Telegram answers 429 before giving up;
        `network_attempts`: tries after timeouts, dropped connections and 5xx, waiting
        `network_backoff` seconds, doubling, between them."""
        self._overall = SlidingWindow(overall)
        self._per_chat_limit = per_chat
        self._chats: dict[object, _Chat] = {}
        self._turn = _Turn()
        self._paused_until = 0.0
        self.retry_after_attempts = retry_after_attempts
        self.network_attempts = network_attempts
        self.network_backoff = network_backoff
        self._clock = clock
        self._sleep = sleep
        self._shared: SendSlots | None = None

    def share(self, slots: SendSlots) -> None:
        """Also keep to limits shared with other instances through the database."""
        self._shared = slots

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def paused_for(self) -> float:
        """Seconds left of the pause Telegram asked for with its last 429."""
        return max(0.0, self._paused_until - self._clock())

    @property
    def tracked_chats(self) -> int:
        """Chats with a window in memory: idle ones are forgotten past IDLE_CHATS_KEPT."""
        return len(self._chats)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        counted = endpoint.lower().startswith(COUNTED_PREFIXES)
        chat_id = data.get("chat_id") if counted else None
        holding = held_while_waiting.get()
        if holding is not None:
            holding.give_up()
        try:
            return await self._send(callback, args, kwargs, endpoint, counted, chat_id)
        finally:
            if holding is not None:
                await holding.take_back()

    async def _send(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        counted: bool,
        chat_id: object,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        rate_limited = network_failures = 0
        while True:
            windows, lanes = await self._take_turn(chat_id, counted=counted)
            try:
                try:
                    return await callback(*args, **kwargs)
                finally:
                    now = self._clock()
                    for window in windows:
                        window.finished(now)
                    if self._shared is not None:
                        self._shared.release(lanes)
            except RetryAfter as exc:
                rate_limited += 1
                wait = _seconds(exc.retry_after)
                # Telegram's limit is per bot: everyone waits, not only this request.
                self._paused_until = max(self._paused_until, self._clock() + wait)
                if self._shared is not None:
                    self._shared.pause(wait)
                log.warning("Telegram asked to wait %.1f s (%s); all sends pause", wait, endpoint)
                if rate_limited >= self.retry_after_attempts:
                    raise
            except BadRequest:
                raise
            except NetworkError as exc:
                # Timeouts, dropped connections, 5xx. A timed-out send may have arrived: a retry
                # can then show it twice, which beats losing a reply to a patient.
                network_failures += 1
                if network_failures >= self.network_attempts:
                    raise
                delay = self.network_backoff * 2 ** (network_failures - 1)
                log.warning(
                    "%s failed (%s); retrying in %.1f s", endpoint, type(exc).__name__, delay
                )
                await self._sleep(delay)

    async def _take_turn(
        self, chat_id: object, *, counted: bool
    ) -> tuple[tuple[SlidingWindow, ...], list[Lane]]:
        """Wait until this request may go; the windows and shared lanes it now holds."""
        if not counted:
            await self._wait(lambda now: self._paused_until - now)
            return (), []
        chat = self._chat(chat_id)
        lanes: list[Lane] = []
        async with chat.lock:
            # The chat's own window first, so a chat that must wait does not hold up the rest.
            await self._wait(chat.window.wait_time)
            if self._shared is not None and chat_id is not None:
                lanes.append(await self._shared.take_chat(chat_id))
            await self._turn.acquire(_urgent.get())
            try:
                await self._wait(
                    lambda now: max(self._paused_until - now, self._overall.wait_time(now))
                )
                if self._shared is not None:
                    lanes.append(await self._shared.take_overall())
            except BaseException:
                if self._shared is not None:
                    self._shared.release(lanes)
                raise
            finally:
                self._turn.release()
            self._overall.started()
            chat.window.started()
        return (self._overall, chat.window), lanes

    async def _wait(self, remaining: Callable[[float], float]) -> None:
        while (delay := remaining(self._clock())) > 0:
            await self._sleep(delay)

    def _chat(self, chat_id: object) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            if len(self._chats) >= IDLE_CHATS_KEPT:
                self._forget_idle_chats()
            chat = self._chats[chat_id] = _Chat(self._per_chat_limit)
        return chat

    def _forget_idle_chats(self) -> None:
        now = self._clock()
        for chat_id, chat in list(self._chats.items()):
            if not chat.lock.locked() and chat.window.idle(now):
                del self._chats[chat_id]


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
