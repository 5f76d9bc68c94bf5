"""Sending rendered messages that may take several Telegram messages, and the recap."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from telegram import Bot, InlineKeyboardMarkup

from bot.companion import Companion
from bot.domain.recap import Recap
from bot.render.chart import mood_chart_png
from bot.render.telegram_html import pack_blocks


async def send_blocks(
    bot: Bot,
    chat_id: int,
    blocks: Sequence[str],
    reply_markup: InlineKeyboardMarkup | None = None,
) -> None:
    """Send rendered blocks in as few messages as fit Telegram's limit; buttons on the last."""
    messages = pack_blocks(blocks)
    for index, text in enumerate(messages):
        last = index == len(messages) - 1
        await bot.send_message(chat_id, text, reply_markup=reply_markup if last else None)


async def send_recap(
    companion: Companion, bot: Bot, chat_id: int, recap: Recap, zone: ZoneInfo, *, weekly: bool
) -> None:
    """The recap's text, then its mood chart when there are mood figures."""
    blocks = companion.texts.render_blocks("recap.html", **recap.context, weekly=weekly)
    await send_blocks(bot, chat_id, blocks)
    if not recap.moods:
        return
    title = companion.label("chart_title", days=recap.context["days"])
    # Drawing takes a fraction of a second: off the event loop, so other chats go on.
    png = await asyncio.to_thread(
        mood_chart_png, recap.moods, recap.treatments, recap.start, recap.end, zone, title=title
    )
    await bot.send_photo(chat_id, png, caption=companion.label("chart_caption"))
