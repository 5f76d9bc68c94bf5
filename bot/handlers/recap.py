"""/recap: the last days, with a mood chart when there are mood figures."""

from __future__ import annotations

import asyncio

from telegram import Update
from telegram.ext import ContextTypes

from bot.chart import mood_chart_png
from bot.handlers.common import from_patient, send_blocks, the_patient
from bot.patients import zone_of
from bot.recap import MAX_RECAP_DAYS, RECAP_DAYS, build_recap


async def recap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/recap (7 days) or /recap 30 (1 to 365 days), split to fit Telegram's limit."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res, message, args = incoming.res, incoming.message, context.args or []
    days = int(args[0]) if len(args) == 1 and args[0].isdigit() else None
    if args and (days is None or not 1 <= days <= MAX_RECAP_DAYS):
        await message.reply_html(
            res.texts.render("recap_usage.html", limit=MAX_RECAP_DAYS, given=" ".join(args)[:40])
        )
        return
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        built = build_recap(
            session,
            patient,
            res.schedule,
            res.clock(),
            res.settings.default_timezone,
            days or RECAP_DAYS,
        )
        zone = zone_of(patient, res.settings.default_timezone)
    await send_blocks(message, res.texts.render_blocks("recap.html", **built.context))
    if built.moods:
        title = res.label("chart_title", days=built.context["days"])
        # Drawing takes a fraction of a second: off the event loop, so other chats go on.
        png = await asyncio.to_thread(
            mood_chart_png,
            built.moods,
            built.treatments,
            built.start,
            built.end,
            zone,
            title=title,
        )
        await message.reply_photo(png, caption=res.label("chart_caption"))
