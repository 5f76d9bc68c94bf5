"""Drive the real Application over HTTP through the fake Bot API, with a controlled clock."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from telegram import Update

from bot.app import (
    MODE_KEY,
    CompanionApp,
    build_application,
    build_companion,
    rate_limiter_for,
)
from bot.companion import Companion
from bot.config import Settings
from bot.db.models import PromptStatus, ScheduledPrompt
from bot.delivery.dispatch import dispatch_due
from bot.delivery.kind import DispatchReport
from bot.telegram.keyboards import CONSENT_AGREE
from bot.telegram.updates import ChatOrderedUpdateProcessor
from bot.telegram.webhook import serve
from tests.fake_telegram import ApiRequest, FakeTelegram, TgUser

WAIT = 10.0


class FakeClock:
    """The time the bot sees; tests move it instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def set(self, moment: datetime) -> None:
        self.now = moment


class Harness:
    """The companion as a patient meets it: updates in through getUpdates, replies recorded."""

    def __init__(self, settings: Settings, fake: FakeTelegram, clock: FakeClock) -> None:
        self.settings = settings
        self.fake = fake
        self.clock = clock
        self.companion: Companion | None = None
        self.app: CompanionApp | None = None
        self._handled: dict[int, asyncio.Event] = {}
        self.dispatched: list[ApiRequest] = []  # every message a dispatch tick sent
        self.handled_counts: Counter[int] = Counter()  # how often each update went through
        self._counted = asyncio.Condition()
        self.last_update_id = 0
        # Requests that reached Telegram while a database connection was checked out: a
        # transaction held open across a Telegram call (the bot and the fake share one loop,
        # so a connection out at that moment belongs to a coroutine suspended inside one).
        self.sent_in_transaction: list[str] = []

    async def start(self) -> None:
        self.companion = build_companion(self.settings, clock=self.clock)
        self._watch_transactions(self.companion)
        self.limiter = rate_limiter_for(self.settings)
        self.limiter.network_backoff = 0.01  # retried as in production, without the wait
        self.app = build_application(self.companion, self.limiter)
        processor = self.app.update_processor
        assert isinstance(processor, ChatOrderedUpdateProcessor)
        self._track_handling(processor)
        await self.app.initialize()
        # run_polling() calls the lifecycle hooks itself; starting piecewise, we do it.
        if self.app.post_init is not None:
            await self.app.post_init(self.app)
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(poll_interval=0, timeout=1)
        await self.fake.wait_until_polled()

    async def stop(self) -> None:
        if self.app is None:
            return
        if self.app.bot_data[MODE_KEY] == "webhook":
            await self._stop_webhook()
            return
        assert self.app.updater is not None
        await self.app.updater.stop()
        await self.app.stop()
        await self.app.shutdown()
        if self.app.post_shutdown is not None:
            await self.app.post_shutdown(self.app)
        self.app = None

    async def start_webhook(self) -> None:
        """Start in webhook mode instead: the fake posts updates to this instance."""
        self.companion = build_companion(self.settings, clock=self.clock)
        self.limiter = rate_limiter_for(self.settings)
        self.limiter.network_backoff = 0.01
        self.app = build_application(self.companion, self.limiter, mode="webhook")
        processor = self.app.update_processor
        assert isinstance(processor, ChatOrderedUpdateProcessor)
        self._track_handling(processor)
        self._stop_serving = asyncio.Event()
        self._serving = asyncio.create_task(serve(self.app, self._stop_serving))
        await self.fake.wait_until(lambda: self.fake.webhook is not None, WAIT)

    async def _stop_webhook(self) -> None:
        self._stop_serving.set()
        await self._serving
        self.app = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def _watch_transactions(self, companion: Companion) -> None:
        engine = companion.sessions.kw["bind"]
        out = [0]

        def checkout(*_: object) -> None:
            out[0] += 1

        def checkin(*_: object) -> None:
            out[0] -= 1

        event.listen(engine, "checkout", checkout)
        event.listen(engine, "checkin", checkin)

        def observe(request: ApiRequest) -> None:
            if out[0] > 0:
                self.sent_in_transaction.append(request.method)

        self.fake.on_request.append(observe)

    def _track_handling(self, processor: ChatOrderedUpdateProcessor) -> None:
        """Know when each update is done, handled or skipped, to wait for it without sleeping."""
        handle = processor.handle

        async def tracked(update: Update, coroutine: Awaitable[Any]) -> None:
            try:
                await handle(update, coroutine)
            finally:
                self._handled.setdefault(update.update_id, asyncio.Event()).set()
                async with self._counted:
                    self.handled_counts[update.update_id] += 1
                    self._counted.notify_all()

        processor.handle = tracked  # type: ignore[method-assign]

    async def wait_handled_times(self, update_id: int, times: int) -> None:
        """Until the update has gone through the processor `times` times (handled or skipped)."""
        async with self._counted:
            await asyncio.wait_for(
                self._counted.wait_for(lambda: self.handled_counts[update_id] >= times), WAIT
            )

    async def wait_handled(self, update_id: int) -> None:
        """Until the bot has run every handler group for this update."""
        await asyncio.wait_for(self._handled.setdefault(update_id, asyncio.Event()).wait(), WAIT)

    async def _handle(self, update_id: int, chat_id: int) -> list[ApiRequest]:
        before = len(self.fake.requests)
        await self.wait_handled(update_id)
        return [r for r in self.fake.requests[before:] if r.chat_id in (chat_id, None)]

    async def send(self, user: TgUser, text: str, *, reply_to: int | None = None) -> list[str]:
        """Send a text as the user; return the texts of the messages the bot sent back."""
        requests = await self.send_raw(user, text, reply_to=reply_to)
        return [r.text or "" for r in requests if r.method == "sendMessage"]

    async def send_raw(
        self, user: TgUser, text: str, *, reply_to: int | None = None
    ) -> list[ApiRequest]:
        before = len(self.fake.requests)
        self.last_update_id = self.fake.text_update(user, text, reply_to=reply_to)
        await self._handle(self.last_update_id, user.id)
        return [r for r in self.fake.requests[before:] if r.chat_id in (user.id, None)]

    async def redeliver(self, user: TgUser, update_id: int) -> list[ApiRequest]:
        """Deliver an earlier update again; return what the bot did about it."""
        before = len(self.fake.requests)
        await self._handle(self.fake.redeliver(update_id), user.id)
        return self.fake.requests[before:]

    async def send_update(self, user: TgUser, **fields: Any) -> list[ApiRequest]:
        before = len(self.fake.requests)
        update_id = self.fake.message_update(user, **fields)
        await self._handle(update_id, user.id)
        return self.fake.requests[before:]

    async def press(
        self, user: TgUser, message_id: int, data: str, *, chat_id: int | None = None
    ) -> list[ApiRequest]:
        """Press an inline button on one of the bot's messages; return what the bot did."""
        before = len(self.fake.requests)
        update_id = self.fake.callback_update(user, message_id, data, chat_id=chat_id)
        await self.wait_handled(update_id)
        return self.fake.requests[before:]

    async def agree(self, user: TgUser) -> None:
        await self.send(user, "/start")
        welcome = self.fake.sent(user.id)[-1]
        await self.press(user, welcome.message_id, CONSENT_AGREE)

    async def dispatch(self) -> DispatchReport:
        """One tick of the dispatch job, at the clock's time."""
        assert self.companion is not None
        assert self.app is not None
        before = len(self.fake.requests)
        report = await dispatch_due(self.companion, self.app.bot)
        self.dispatched += [
            r for r in self.fake.requests[before:] if r.method == "sendMessage" and r.result
        ]
        return report

    async def next_prompt(self, user: TgUser) -> ApiRequest:
        """Move the clock to the next due prompt and run the dispatcher until it is sent."""
        for _ in range(10):
            with self.session() as session:
                due = session.scalar(
                    select(func.min(ScheduledPrompt.due_at)).where(
                        ScheduledPrompt.status == PromptStatus.PENDING
                    )
                )
            if due is None:
                raise AssertionError("no prompt is pending")
            self.clock.set(max(self.clock.now, due))
            before = len(self.prompts_sent(user))
            await self.dispatch()
            sent = self.prompts_sent(user)
            if len(sent) > before:
                return sent[-1]
        raise AssertionError("the dispatcher kept deferring the next prompt")

    def prompts_sent(self, user: TgUser) -> list[ApiRequest]:
        """Every prompt the dispatcher has sent to the user, in order."""
        return [r for r in self.dispatched if r.chat_id == user.id]

    def session(self) -> Session:
        assert self.companion is not None
        return self.companion.sessions()
