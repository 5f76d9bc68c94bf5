"""How updates are processed: once each, in order within a chat, different chats at once, and
never interleaved with a prompt to the same chat."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from telegram import Bot, Update
from telegram.ext import Application, BaseUpdateProcessor

from bot.inbox import Inbox

log = logging.getLogger(__name__)

# Chats handled at once: while one waits for Telegram (its chat's rate limit, a slow upload),
# the others go on.
CHATS_AT_ONCE = 16
# At shutdown, how long updates in hand may take to finish; the rest stay unhandled in the
# inbox and are handled first at the next start.
SHUTDOWN_GRACE_SECONDS = 5.0

Line = deque[tuple[Update, Awaitable[Any]]]
CompanionApp = Application[Any, Any, Any, Any, Any, Any]


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Each chat has a line of updates, handled in the order they arrived, one at a time and
    under the chat's lock (shared with the dispatcher); up to CHATS_AT_ONCE lines move at once.

    python-telegram-bot hands updates over one by one, in order (max_concurrent_updates=1), and
    they join their chat's line there and then: the order cannot depend on which task wakes
    first. An update already handled (Telegram redelivered it after a crash) is skipped; each
    one is marked handled in the inbox once its handlers have run, errors included: the error
    handler has answered it, and retrying a poisonous update forever would help no one.
    """

    def __init__(
        self,
        chat_lock: Callable[[int], AbstractAsyncContextManager[None]],
        inbox: Inbox,
        chats_at_once: int = CHATS_AT_ONCE,
    ) -> None:
        super().__init__(max_concurrent_updates=1)
        self._chat_lock = chat_lock
        self._inbox = inbox
        self._chats_at_once = chats_at_once
        self._slots: asyncio.Semaphore | None = None
        self._lines: dict[int | None, Line] = {}
        self._workers: dict[int | None, asyncio.Task[None]] = {}
        self.in_hand = 0  # updates being handled right now
        self.queued: set[int] = set()  # ids of the updates in a line or being handled
        self._application: CompanionApp | None = None

    @property
    def application(self) -> CompanionApp:
        if self._application is None:
            raise RuntimeError("the update processor has no application yet")
        return self._application

    @application.setter
    def application(self, app: CompanionApp) -> None:
        self._application = app

    @property
    def bot(self) -> Bot:
        bot: Bot = self.application.bot
        return bot

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Put the update in its chat's line and return at once."""
        if not isinstance(update, Update):
            await coroutine
            return
        if update.update_id in self.queued:
            # Already in a line here (the sweep for waiting updates found it): once is enough.
            coroutine.close()  # type: ignore[attr-defined]
            return
        self.queued.add(update.update_id)
        chat = update.effective_chat
        key = chat.id if chat is not None else None
        self._lines.setdefault(key, deque()).append((update, coroutine))
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work_through(key))

    async def _work_through(self, key: int | None) -> None:
        line = self._lines[key]
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._chats_at_once)
        try:
            while line:
                update, coroutine = line.popleft()
                async with self._slots:
                    await self.handle(update, coroutine)
        finally:
            # Nothing suspends between the empty line and here: a newcomer starts a new worker.
            del self._workers[key]
            if not line:
                del self._lines[key]
            for _, coroutine in line:  # cancelled at shutdown: they stay in the inbox
                coroutine.close()  # type: ignore[attr-defined]

    async def handle(self, update: Update, coroutine: Awaitable[Any]) -> None:
        """Run the handlers for one update, unless it was handled before.

        Under the chat's lock, the chat's earlier updates that are still unhandled go first:
        with several instances, another one may have received them and died, or been slower.
        """
        chat = update.effective_chat
        self.in_hand += 1
        try:
            if chat is None:
                if self._inbox.is_handled(update.update_id):
                    self._skip(update, coroutine)
                    return
                await self._run(update, coroutine)
                return
            async with self._chat_lock(chat.id):
                earlier, handled = self._inbox.due_in_chat(chat.id, update.update_id, self.bot)
                for other in earlier:
                    await self._run(other, self.application.process_update(other))
                if handled:
                    self._skip(update, coroutine)
                    return
                await self._run(update, coroutine)
        finally:
            self.in_hand -= 1
            self.queued.discard(update.update_id)

    def _skip(self, update: Update, coroutine: Awaitable[Any]) -> None:
        log.info("update %s was handled before; skipping it", update.update_id)
        coroutine.close()  # type: ignore[attr-defined]

    async def _run(self, update: Update, coroutine: Awaitable[Any]) -> None:
        try:
            await coroutine
        except Exception:
            # Handler errors reach the error handler inside the coroutine; this is a bug of ours.
            log.exception("update %s could not be handled", update.update_id)
        # Not when cancelled at shutdown: then it is handled again at the next start.
        self._inbox.mark_handled(update.update_id)

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Let the updates in hand finish, for a few seconds; what is left stays in the inbox."""
        workers = list(self._workers.values())
        if not workers:
            return
        _, unfinished = await asyncio.wait(workers, timeout=SHUTDOWN_GRACE_SECONDS)
        for worker in unfinished:
            worker.cancel()
        if unfinished:
            log.warning("%s chats' updates left for the next start", len(unfinished))
            await asyncio.wait(unfinished)
