"""The one error handler: log first, without message content, then tell the patient kindly."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.companion import companion

log = logging.getLogger(__name__)


async def error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the exception (never the text of the update) and apologise to the patient."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("error while handling update %s", update_id, exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    if update.effective_chat.type != "private":
        return
    try:
        await context.bot.send_message(
            update.effective_chat.id, companion(context).texts.render("error.html")
        )
    except TelegramError:
        log.warning("could not tell chat about the error", exc_info=True)
