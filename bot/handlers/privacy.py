"""/privacy and /delete: what is stored, and deleting all of it."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.handlers.common import from_patient, pressed_by_patient, remove_buttons, the_patient
from bot.keyboards import DELETE_YES, delete_keyboard
from bot.resources import companion
from bot.rights import delete_patient


async def privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """What is stored, where, who can read it, and how to take it or delete it."""
    message = update.effective_message
    if message is None:
        return
    res = companion(context)
    text = res.texts.render("privacy.html", retention_days=res.settings.retention_days)
    await message.reply_html(text)


async def delete(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain what deleting means and ask to confirm with a button."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    await incoming.message.reply_html(
        incoming.res.texts.render("delete.html", outcome="confirm"),
        reply_markup=delete_keyboard(incoming.res),
    )


async def delete_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Delete every row about the patient, or keep everything, as they chose."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    confirmed = query.data == DELETE_YES
    if confirmed:
        with res.sessions.begin() as session:
            delete_patient(session, the_patient(session, pressed.user_id))
    await query.answer()
    await remove_buttons(query)
    outcome = "done" if confirmed else "kept"
    text = res.texts.render("delete.html", outcome=outcome)
    await context.bot.send_message(pressed.user_id, text)
