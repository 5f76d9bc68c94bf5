"""/mood and its 1-10 scale."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.domain.journal import SCALE, record_mood
from bot.handlers.common import (
    check_in_after_a_low_mood,
    from_patient,
    pressed_by_patient,
    remove_buttons,
    the_patient,
)
from bot.telegram.keyboards import MOOD_PREFIX, callback_number, mood_keyboard


async def mood(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ask how the patient feels, on a 1-10 scale."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    await incoming.message.reply_html(
        incoming.res.texts.render("mood_ask.html"), reply_markup=mood_keyboard()
    )


async def mood_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Keep the figure tapped, then invite an optional note."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    value = callback_number(query.data or "", MOOD_PREFIX)
    if value is None or value not in SCALE:
        await query.answer(res.label("bad_button"))
        return
    with res.sessions.begin() as session:
        patient = the_patient(session, pressed.user_id)
        record_mood(session, patient, value, res.clock(), res.schedule)
        chat_id = patient.chat_id
    await query.answer(res.label("scale_saved", value=value))
    # One answer per question: the buttons go, so a double tap cannot count twice.
    await remove_buttons(query)
    text = res.texts.render("mood_saved.html", value=value, prompt_title="")
    await context.bot.send_message(chat_id, text)
    await check_in_after_a_low_mood(res, context.bot, chat_id, value)
