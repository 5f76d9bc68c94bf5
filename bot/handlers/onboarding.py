"""/start, the consent button and /help."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.companion import companion
from bot.core.localtime import TIMEZONE_EXAMPLES, describe_duration
from bot.domain.patients import give_consent, quiet_hours_of, reactivate, start_pending
from bot.handlers.common import (
    consented_patient,
    remove_buttons,
    usable_button,
)
from bot.telegram.keyboards import consent_keyboard


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Welcome a patient and ask for consent, or welcome them back."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    with res.sessions.begin() as session:
        patient = start_pending(session, user.id, message.chat_id, res.clock())
        consented, paused = patient.consented_at is not None, patient.paused_at is not None
        missed = reactivate(session, patient, res.clock()) if consented else None
        timezone = patient.timezone or res.settings.default_timezone
    if consented:
        await message.reply_html(
            res.texts.render(
                "welcome_back.html",
                first_name=user.first_name,
                paused=paused,
                missed=missed,
                gap=describe_duration(res.schedule.min_gap),
            )
        )
        return
    await message.reply_html(
        res.texts.render(
            "welcome.html",
            first_name=user.first_name,
            timezone=timezone,
            example_zone=next(zone for zone in TIMEZONE_EXAMPLES if zone != timezone),
        ),
        reply_markup=consent_keyboard(res),
    )


async def consent(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Record the patient's consent from the "I agree" button."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    res = companion(context)
    if not await usable_button(query, res):
        return
    with res.sessions.begin() as session:
        patient = start_pending(session, user.id, user.id, res.clock())
        newly = give_consent(patient, user.first_name, res.clock())
        quiet = quiet_hours_of(patient)
        timezone = patient.timezone or res.settings.default_timezone
    await query.answer(res.label("consent_recorded" if newly else "consent_already"))
    if not newly:
        return
    await remove_buttons(query)
    await context.bot.send_message(
        patient.chat_id,
        res.texts.render(
            "consented.html",
            first_name=user.first_name,
            timezone=timezone,
            quiet=quiet.label() if quiet else "off",
        ),
    )


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List everything the companion can do."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    with res.sessions.begin() as session:
        patient = consented_patient(session, user.id)
        timezone = (patient.timezone if patient else None) or res.settings.default_timezone
        quiet = quiet_hours_of(patient) if patient else None
    await message.reply_html(
        res.texts.render("help.html", timezone=timezone, quiet=quiet.label() if quiet else "off")
    )
