"""/recap: the last seven days."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.handlers.common import from_patient, send_blocks, the_patient
from bot.recap import build_recap


async def recap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Recap the last 7 days, in as many messages as Telegram's limit needs."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res = incoming.res
    with res.sessions.begin() as session:
        view = build_recap(
            session,
            the_patient(session, incoming.user_id),
            res.schedule,
            res.clock(),
            res.settings.default_timezone,
        )
    await send_blocks(incoming.message, res.texts.render_blocks("recap.html", **view))
