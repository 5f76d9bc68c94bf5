"""/recap: the last seven days."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.handlers.common import ask_for_consent, consented_patient, send_blocks
from bot.recap import build_recap
from bot.resources import companion


async def recap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Recap the last 7 days, in as many messages as Telegram's limit needs."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    with res.sessions.begin() as session:
        patient = consented_patient(session, user.id)
        view = (
            build_recap(session, patient, res.schedule, res.clock(), res.settings.default_timezone)
            if patient
            else None
        )
    if view is None:
        await ask_for_consent(message, res, user.id)
        return
    await send_blocks(message, res.texts.render_blocks("recap.html", **view))
