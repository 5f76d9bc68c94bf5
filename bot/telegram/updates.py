"""How updates are processed: once each, in order within a chat, different chats at once, and
never interleaved with a prompt to the same chat."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from telegram import Bot, Update
from telegram.ext import Application, BaseUpdateProcessor

from bot.db.session import SessionFactory
from bot.telegram.inbox import Inbox
from bot.telegram.ratelimit import held_while_waiting

log = logging.getLogger(__name__)

# Chats handled at once: while one waits for Telegram (its chat's rate limit, a slow upload),
# the others go on.
CHATS_AT_ONCE = 16
# Updates of one chat kept in memory; beyond them the newest wait in the durable inbox (where
# every update already is) and are read back, in order, as the line moves on.
LINE_LIMIT = 20
# At shutdown, how long updates in hand may take to finish; the rest stay unhandled in the
# inbox and are handled first at the next start.
SHUTDOWN_GRACE_SECONDS = 5.0

Line = deque[tuple[Update, Awaitable[Any]]]
CompanionApp = Application[Any, Any, Any, Any, Any, Any]


@dataclass
class InHand:
    """The update whose handlers run in this task."""

    update_id: int
    inbox: Inbox
    marked: bool = False  # marked handled by the handler's last transaction


in_hand: ContextVar[InHand | None] = ContextVar("in_hand", default=None)


@contextmanager
def last_transaction(sessions: SessionFactory) -> Iterator[Session]:
    """A handler's last transaction, which also marks its update handled: what it did and the
    fact that it is done commit together, and the processor has nothing left to write."""
    with sessions.begin() as session:
        yield session
        handling = in_hand.get()
        if handling is not None and not handling.marked:
            handling.inbox.mark_handled_in(session, handling.update_id)
    if handling is not None:
        handling.marked = True


class HandlerSlot:
    """One of the CHATS_AT_ONCE slots, held by a chat's worker while it handles an update and
    given up while that update's requests wait for Telegram's limits or travel."""

    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots = slots
        self._held = False
        # Only the worker gives it up and takes it back: a task a handler started inherits
        # the context, but must not take a slot that would then never be given back.
        self._owner = asyncio.current_task()

    async def __aenter__(self) -> HandlerSlot:
        await self._slots.acquire()
        self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._held:
            self._held = False
            self._slots.release()

    def give_up(self) -> None:
        if self._held and asyncio.current_task() is self._owner:
            self._held = False
            self._slots.release()

    async def take_back(self) -> None:
        if not self._held and asyncio.current_task() is self._owner:
            await self._slots.acquire()
            self._held = True


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Each chat has a line of updates, handled in the order they arrived, one at a time and
    under the chat's lock (shared with the dispatcher); up to CHATS_AT_ONCE lines move at once.

    python-telegram-bot hands updates over one by one, in order (max_concurrent_updates=1), and
    they join their chat's line there and then: the order cannot depend on which task wakes
    first. An update already handled (Telegram redelivered it after a crash) is skipped; each
    one is marked handled in the inbox once its handlers have run, errors included: the error
    handler has answered it, and retrying a poisonous update forever would help no one.

    A chat's line holds at most LINE_LIMIT updates in memory: a flooding chat's newer updates
    wait in the inbox and are read back when the line has room, so memory stays bounded and
    nothing is dropped. A worker holds a slot only while it works, not while its requests wait
    for Telegram's limits: a chat waiting out its limit never keeps other chats waiting.
    """

    def __init__(
        self,
        chat_lock: Callable[[int], AbstractAsyncContextManager[None]],
        inbox: Inbox,
        chats_at_once: int = CHATS_AT_ONCE,
        line_limit: int = LINE_LIMIT,
    ) -> None:
        super().__init__(max_concurrent_updates=1)
        self._chat_lock = chat_lock
        self._inbox = inbox
        self._chats_at_once = chats_at_once
        self._line_limit = line_limit
        self._slots: asyncio.Semaphore | None = None
        self._lines: dict[int | None, Line] = {}
        # Chats whose newest updates wait in the inbox, not in their line.
        self._overflowing: set[int] = set()
        self.longest_line = 0  # the most updates one line has held: for tests and status
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
        chat = update.effective_chat
        key = chat.id if chat is not None else None
        line = self._lines.setdefault(key, deque())
        if key is not None and (key in self._overflowing or len(line) >= self._line_limit):
            # It is in the inbox already: read back, in order, once the line has room.
            self._overflowing.add(key)
            coroutine.close()  # type: ignore[attr-defined]
        else:
            self.queued.add(update.update_id)
            line.append((update, coroutine))
            self.longest_line = max(self.longest_line, len(line))
        if key not in self._workers:
            self._workers[key] = asyncio.create_task(self._work_through(key))

    async def _work_through(self, key: int | None) -> None:
        line = self._lines[key]
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._chats_at_once)
        try:
            while line or key in self._overflowing:
                if not line and key is not None:
                    self._refill(key, line)
                    continue
                update, coroutine = line.popleft()
                slot = HandlerSlot(self._slots)
                async with slot:
                    token = held_while_waiting.set(slot)
                    try:
                        await self.handle(update, coroutine)
                    finally:
                        held_while_waiting.reset(token)
        finally:
            # Nothing suspends between the empty line and here: a newcomer starts a new worker.
            del self._workers[key]
            if not line:
                del self._lines[key]
            for _, coroutine in line:  # cancelled at shutdown: they stay in the inbox
                coroutine.close()  # type: ignore[attr-defined]

    def _refill(self, chat_id: int, line: Line) -> None:
        """The chat's updates that waited in the inbox, oldest first, as many as fit."""
        waiting = self._inbox.unhandled_in_chat(chat_id, self.bot, self._line_limit)
        for update in waiting:
            if update.update_id not in self.queued:
                self.queued.add(update.update_id)
                line.append((update, self.application.process_update(update)))
        if len(waiting) < self._line_limit or not line:
            # All of them are in the line now; newer updates join it as usual. (Synchronous
            # from the query to here: no update can arrive in between.)
            self._overflowing.discard(chat_id)

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
        handling = InHand(update.update_id, self._inbox)
        token = in_hand.set(handling)
        try:
            await coroutine
        except Exception:
            # Handler errors reach the error handler inside the coroutine; this is a bug of ours.
            log.exception("update %s could not be handled", update.update_id)
        finally:
            in_hand.reset(token)
        # Not when cancelled at shutdown: then it is handled again at the next start.
        if not handling.marked:
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
