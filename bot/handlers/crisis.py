"""Crisis language gets resources at once, before anything else; /crisis and /country."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.companion import Companion, companion
from bot.crisis import country_of_timezone, is_country_code, is_crisis
from bot.db import queries
from bot.handlers.common import from_patient, pressed_in_own_chat, the_patient
from bot.telegram.ratelimit import urgently

log = logging.getLogger(__name__)


def country_for(res: Companion, telegram_user_id: int) -> str | None:
    """The patient's /country, else their time zone's country, else the default zone's."""
    with res.sessions.begin() as session:
        patient = queries.patient_by_user(session, telegram_user_id)
        chosen = patient.country if patient and patient.consented_at else None
        zone = (patient.timezone if patient else None) or res.settings.default_timezone
    return chosen or country_of_timezone(zone)


def render_resources(res: Companion, template: str, country: str | None) -> str:
    return res.texts.render(template, resources=res.crisis.for_country(country))


# Commands whose arguments are the patient's own words; the others take times, numbers and
# names ("/goal done 2", "/quiet 22:00-07:00"), which are no one's feelings.
FREE_TEXT_COMMANDS = ("/intention ", "/notes ", "/goal add ")


def words_to_check(text: str) -> str:
    """The patient's own words in a message: all of it, or a free-text command's argument."""
    if not text.startswith("/"):
        return text
    lowered = text.lower()
    for command in FREE_TEXT_COMMANDS:
        if lowered.startswith(command):
            return text[len(command) :]
    return ""


async def crisis_check(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Runs before every other handler: a message that sounds like a crisis gets resources."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    text = words_to_check(message.text or message.caption or "")
    if not text or not is_crisis(text):
        return
    res = companion(context)
    with urgently():
        await message.reply_html(render_resources(res, "crisis.html", country_for(res, user.id)))
    # No chat or user id: a log must never tie a Telegram identity to crisis language.
    log.info("sent crisis resources")


async def support_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one-tap way to the crisis contacts, under every prompt and journal page."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None or query.message is None:
        return
    res = companion(context)
    if not pressed_in_own_chat(query):
        # Another person's message: nothing may appear in their chat. /crisis works anywhere.
        await query.answer(res.label("not_yours"), show_alert=True)
        return
    await query.answer()
    with urgently():
        await context.bot.send_message(
            query.message.chat.id,
            render_resources(res, "crisis_info.html", country_for(res, user.id)),
        )


async def crisis(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/crisis: who to reach right now, any time."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    country = country_for(res, user.id)
    await message.reply_html(render_resources(res, "crisis_info.html", country))


async def country(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/country GB sets the country for crisis resources; /country auto follows the time zone."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res = incoming.res
    given = "".join(context.args or []).strip().upper()
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        if given == "AUTO":
            patient.country = None
            outcome = "auto"
        elif given and is_country_code(given):
            patient.country = given
            outcome = "set"
        else:
            outcome = "invalid" if given else "current"
        chosen = patient.country
        zone = patient.timezone or res.settings.default_timezone
    await incoming.message.reply_html(
        res.texts.render(
            "country.html",
            outcome=outcome,
            given=given[:20],
            country=chosen,
            zone_country=country_of_timezone(zone),
            timezone=zone,
        )
    )
