"""/timezone, /quiet, /pause and /resume."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.handlers.common import ask_for_consent, consented_patient
from bot.localtime import (
    TIMEZONE_EXAMPLES,
    describe_duration,
    format_clock,
    parse_quiet_hours,
    resolve_timezone,
)
from bot.patients import pause as pause_prompts
from bot.patients import quiet_hours_of, set_quiet_hours, zone_of
from bot.patients import resume as resume_prompts
from bot.resources import companion


async def timezone(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show or set the patient's IANA time zone."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    given = " ".join(context.args or [])
    with res.sessions.begin() as session:
        patient = consented_patient(session, user.id)
        if patient is not None:
            name = resolve_timezone(given) if given else None
            if name is not None:
                patient.timezone = name
            outcome = "current" if not given else ("set" if name else "invalid")
            zone = zone_of(patient, res.settings.default_timezone)
            is_default = patient.timezone is None
    if patient is None:
        await ask_for_consent(message, res, user.id)
        return
    await message.reply_html(
        res.texts.render(
            "timezone.html",
            outcome=outcome,
            timezone=zone.key,
            is_default=is_default,
            local_time=format_clock(res.clock(), zone),
            given=given[:64],
            examples=TIMEZONE_EXAMPLES,
        )
    )


async def quiet(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show, set or turn off the hours in which no prompt is sent."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    given = "".join(context.args or []).lower()
    reason = ""
    with res.sessions.begin() as session:
        patient = consented_patient(session, user.id)
        if patient is not None:
            if not given:
                outcome = "current"
            elif given == "off":
                set_quiet_hours(patient, None)
                outcome = "off"
            else:
                try:
                    set_quiet_hours(patient, parse_quiet_hours(given))
                    outcome = "set"
                except ValueError as exc:
                    outcome, reason = "invalid", str(exc)
            hours = quiet_hours_of(patient)
            zone_name = zone_of(patient, res.settings.default_timezone).key
    if patient is None:
        await ask_for_consent(message, res, user.id)
        return
    await message.reply_html(
        res.texts.render(
            "quiet.html",
            outcome=outcome,
            reason=reason,
            quiet=hours.label() if hours else "off",
            timezone=zone_name,
        )
    )


async def pause(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Hold every prompt until /resume."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    with res.sessions.begin() as session:
        patient = consented_patient(session, user.id)
        paused = patient is not None and pause_prompts(session, patient, res.clock())
    if patient is None:
        await ask_for_consent(message, res, user.id)
        return
    outcome = "paused" if paused else "already_paused"
    await message.reply_html(res.texts.render("pause.html", outcome=outcome))


async def resume(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Release held prompts; those that fell due come one at a time."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    with res.sessions.begin() as session:
        patient = consented_patient(session, user.id)
        resumed = resume_prompts(session, patient, res.clock()) if patient else None
    if patient is None or resumed is None:
        await ask_for_consent(message, res, user.id)
        return
    await message.reply_html(
        res.texts.render(
            "pause.html",
            outcome="resumed" if resumed.was_paused else "not_paused",
            overdue=resumed.overdue,
            gap=describe_duration(res.schedule.min_gap),
        )
    )
