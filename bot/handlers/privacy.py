"""/privacy and /delete: what is stored, and deleting all of it, as a patient or a guide."""

from __future__ import annotations

import contextlib

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.companion import Companion, companion
from bot.domain.guides import patients_of
from bot.domain.rights import delete_person
from bot.handlers.common import (
    consented_patient,
    from_patient,
    remove_buttons,
    usable_button,
)
from bot.telegram.keyboards import DELETE_YES, delete_keyboard


async def privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """What is stored, where, who can read it, and how to take it or delete it."""
    message = update.effective_message
    if message is None:
        return
    res = companion(context)
    text = res.texts.render("privacy.html", retention_days=res.settings.retention_days)
    await message.reply_html(text)


def roles_of(res: Companion, telegram_user_id: int) -> tuple[bool, int]:
    """Whether the person is an agreed patient, and how many patients they guide."""
    with res.sessions.begin() as session:
        patient = consented_patient(session, telegram_user_id) is not None
        return patient, len(patients_of(session, telegram_user_id))


async def delete(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Explain what deleting means (as a patient, a guide or both) and ask to confirm."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    patient, guiding = roles_of(res, user.id)
    if not patient and not guiding:
        await from_patient(update, context)  # asks for consent; nothing is kept to delete
        return
    await message.reply_html(
        res.texts.render("delete.html", outcome="confirm", patient=patient, guiding=guiding),
        reply_markup=delete_keyboard(res),
    )


async def delete_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Delete every row about the person, or keep everything, as they chose; patients whose
    guide this was are told."""
    query = update.callback_query
    if query is None:
        return
    res = companion(context)
    if not await usable_button(query, res):
        return
    user_id = query.from_user.id
    patient, guiding = roles_of(res, user_id)
    if not patient and not guiding:
        await query.answer(res.label("needs_consent"), show_alert=True)
        return
    confirmed = query.data == DELETE_YES
    left = []
    if confirmed:
        with res.sessions.begin() as session:
            left = delete_person(session, user_id)
    await query.answer()
    await remove_buttons(query)
    outcome = "done" if confirmed else "kept"
    await context.bot.send_message(
        user_id, res.texts.render("delete.html", outcome=outcome, patient=patient)
    )
    for told in left:
        # Kept gentle and best effort: a patient who blocked the bot is simply not told.
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(
                told.chat_id, res.texts.render("guide_left.html", who=told.guide_name)
            )
