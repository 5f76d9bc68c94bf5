"""How updates are processed: once each, one chat at a time, never interleaved with a prompt."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.inbox import Inbox

log = logging.getLogger(__name__)


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Handles each update under its chat's lock (shared with the dispatcher), once.

    An update already handled (Telegram redelivered it after a crash) is skipped; each one is
    marked handled in the inbox once its handlers have run, errors included: the error handler
    has answered it, and retrying a poisonous update forever would help no one.
    """

    def __init__(self, chat_lock: Callable[[int], asyncio.Lock], inbox: Inbox) -> None:
        # One update at a time for now, so updates are handled in the order they arrive.
        super().__init__(max_concurrent_updates=1)
        self._chat_lock = chat_lock
        self._inbox = inbox

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not isinstance(update, Update):
            await coroutine
            return
        if self._inbox.is_handled(update.update_id):
            log.info("update %s was handled before; skipping it", update.update_id)
            coroutine.close()  # type: ignore[attr-defined]
            return
        chat = update.effective_chat
        try:
            if chat is None:
                await coroutine
            else:
                async with self._chat_lock(chat.id):
                    await coroutine
        finally:
            self._inbox.mark_handled(update.update_id)

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""
