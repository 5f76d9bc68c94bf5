"""/timezone, /quiet, /pause and /resume."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.core.localtime import (
    TIMEZONE_EXAMPLES,
    describe_duration,
    format_clock,
    parse_quiet_hours,
    resolve_timezone,
)
from bot.domain.patients import pause as pause_prompts
from bot.domain.patients import quiet_hours_of, set_quiet_hours, zone_of
from bot.domain.patients import resume as resume_prompts
from bot.handlers.common import from_patient, the_patient


async def timezone(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show or set the patient's IANA time zone."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res = incoming.res
    given = " ".join(context.args or [])
    name = resolve_timezone(given) if given else None
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        if name is not None:
            patient.timezone = name
        zone = zone_of(patient, res.settings.default_timezone)
        is_default = patient.timezone is None
    await incoming.message.reply_html(
        res.texts.render(
            "timezone.html",
            outcome="current" if not given else ("set" if name else "invalid"),
            timezone=zone.key,
            is_default=is_default,
            local_time=format_clock(res.clock(), zone),
            given=given[:64],
            examples=TIMEZONE_EXAMPLES,
        )
    )


async def quiet(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show, set or turn off the hours in which no prompt is sent."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res = incoming.res
    given = "".join(context.args or []).lower()
    outcome, reason = "current", ""
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        if given == "off":
            set_quiet_hours(patient, None)
            outcome = "off"
        elif given:
            try:
                set_quiet_hours(patient, parse_quiet_hours(given))
                outcome = "set"
            except ValueError as exc:
                outcome, reason = "invalid", str(exc)
        hours = quiet_hours_of(patient)
        zone_name = zone_of(patient, res.settings.default_timezone).key
    await incoming.message.reply_html(
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
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res = incoming.res
    with res.sessions.begin() as session:
        paused = pause_prompts(session, the_patient(session, incoming.user_id), res.clock())
    outcome = "paused" if paused else "already_paused"
    await incoming.message.reply_html(res.texts.render("pause.html", outcome=outcome))


async def resume(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Release held prompts; those that fell due come one at a time."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res = incoming.res
    with res.sessions.begin() as session:
        resumed = resume_prompts(session, the_patient(session, incoming.user_id), res.clock())
    await incoming.message.reply_html(
        res.texts.render(
            "pause.html",
            outcome="resumed" if resumed.was_paused else "not_paused",
            overdue=resumed.overdue,
            gap=describe_duration(res.schedule.min_gap),
        )
    )
