"""The shared resources every handler and job reaches through one typed accessor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from telegram.ext import CallbackContext

from bot.config import Settings
from bot.db.session import SessionFactory
from bot.render import Renderer
from bot.schedule import Schedule

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
    clock: Clock

    def label(self, name: str, **context: Any) -> str:
        """A button label or a short notice, from the macros in labels.html."""
        macro = getattr(self.texts.env.get_template("labels.html").module, name)
        return str(macro(**context)).strip()


def companion(context: CallbackContext[Any, Any, Any, Any]) -> Companion:
    return cast(Companion, context.bot_data[BOT_DATA_KEY])
