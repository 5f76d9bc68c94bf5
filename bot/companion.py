"""The shared resources every handler and job reaches through one typed accessor."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from telegram.ext import CallbackContext

from bot.config import Settings
from bot.core.schedule import Schedule
from bot.crisis import CrisisResources
from bot.db.session import SessionFactory
from bot.render.jinja import Renderer
from bot.telegram.coordination import ChatLocks

Clock = Callable[[], datetime]
BOT_DATA_KEY = "companion"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Companion:
    settings: Settings
    sessions: SessionFactory
    schedule: Schedule
    texts: Renderer  # the bot's own messages (bot/templates)
    prompts: Renderer  # the clinic's prompt templates (PROMPTS_DIR)
    crisis: CrisisResources
    clock: Clock
    # One lock per chat, held by the handling of each update and by the sending of a prompt,
    # so a reply racing the prompt it answers waits until that prompt is recorded as sent; a
    # lease in the database too when several instances share it.
    locks: ChatLocks

    def chat_lock(self, chat_id: int) -> AbstractAsyncContextManager[None]:
        return self.locks(chat_id)

    def label(self, name: str, **context: Any) -> str:
        """A button label or a short notice, from the macros in labels.html."""
        return self.texts.sayer("labels.html")(name, **context)


def companion(context: CallbackContext[Any, Any, Any, Any]) -> Companion:
    return cast(Companion, context.bot_data[BOT_DATA_KEY])
