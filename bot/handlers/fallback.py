"""Everything the companion does not keep: group chats, unknown commands, stickers and such."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.companion import companion


async def group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say politely that the companion works in private chats only (commands only, not chatter)."""
    message = update.effective_message
    if message is None or not (message.text or "").startswith("/"):
        return
    await message.reply_html(companion(context).texts.render("unsupported.html", kind="group"))


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Point to /help for a command the companion does not know."""
    message = update.effective_message
    if message is None:
        return
    await message.reply_html(companion(context).texts.render("unsupported.html", kind="command"))


async def unknown_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button this version does not know (an old message, or forged data)."""
    if update.callback_query is not None:
        await update.callback_query.answer(companion(context).label("bad_button"))
