"""How updates are processed: one chat at a time, never interleaved with a prompt to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Handles each update under its chat's lock (shared with the dispatcher)."""

    def __init__(self, chat_lock: Callable[[int], asyncio.Lock]) -> None:
        # One update at a time for now, so updates are handled in the order they arrive.
        super().__init__(max_concurrent_updates=1)
        self._chat_lock = chat_lock

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        async with self._chat_lock(chat.id):
            await coroutine

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""
