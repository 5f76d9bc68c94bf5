"""/recap: the last days with a mood chart; /recap weekly: the recap without asking."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from telegram import Update
from telegram.ext import ContextTypes

from bot.companion import Companion
from bot.core.localtime import WEEKDAY_NAMES, format_relative, parse_clock, parse_weekday
from bot.core.text import small_number
from bot.db.models import Patient, WeeklyRecap
from bot.domain.patients import zone_of
from bot.domain.recap import MAX_RECAP_DAYS, RECAP_DAYS, Recap, build_recap
from bot.domain.weekly import (
    DEFAULT_MINUTE,
    DEFAULT_WEEKDAY,
    expected_at,
    turn_off,
    turn_on,
    weekly_of,
)
from bot.handlers.common import (
    FromPatient,
    from_patient,
    pressed_by_patient,
    remove_buttons,
    the_patient,
)
from bot.telegram.sending import send_recap


async def recap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/recap (7 days), /recap 30 (1 to 365 days), or /recap weekly ... (the weekly recap)."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res, message, args = incoming.res, incoming.message, context.args or []
    if args and args[0].lower() == "weekly":
        await message.reply_html(weekly_settings(incoming, [a.lower() for a in args[1:]]))
        return
    days = small_number(args[0]) if len(args) == 1 else None
    if args and (days is None or not 1 <= days <= MAX_RECAP_DAYS):
        await message.reply_html(res.texts.render("recap_usage.html", limit=MAX_RECAP_DAYS))
        return

    def build() -> tuple[Recap, ZoneInfo]:
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
            return built, zone_of(patient, res.settings.default_timezone)

    # Up to a year of the journal, decrypted: off the event loop, so other chats go on.
    built, zone = await asyncio.to_thread(build)
    await send_recap(res, message.get_bot(), message.chat_id, built, zone, weekly=False)


def weekly_settings(incoming: FromPatient, words: list[str]) -> str:
    """Show, turn on or off, or move the weekly recap; returns the reply."""
    res = incoming.res
    now, default_timezone = res.clock(), res.settings.default_timezone
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        if words == ["on"]:
            turn_on(session, patient, now, default_timezone)
            outcome = "on"
        elif words == ["off"]:
            outcome = "off" if turn_off(session, patient) else "already_off"
        elif len(words) == 2 and parse_weekday(words[0]) is not None and parse_clock(words[1]):
            clock = parse_clock(words[1])
            assert clock is not None
            minute = clock.hour * 60 + clock.minute
            turn_on(session, patient, now, default_timezone, parse_weekday(words[0]), minute)
            outcome = "on"
        elif not words:
            outcome = "status"
        else:
            outcome = "usage"
        session.flush()
        view = describe_weekly(res, patient, weekly_of(session, patient))
    return res.texts.render("weekly.html", outcome=outcome, **view)


def describe_weekly(
    res: Companion, patient: Patient, weekly: WeeklyRecap | None
) -> dict[str, object]:
    """The weekly recap's day, time and next arrival, for weekly.html."""
    weekday = weekly.weekday if weekly else DEFAULT_WEEKDAY
    minute = weekly.minute if weekly else DEFAULT_MINUTE
    zone = zone_of(patient, res.settings.default_timezone)
    expected = expected_at(weekly, patient, res.settings.default_timezone) if weekly else None
    return {
        "is_on": expected is not None,
        "day": WEEKDAY_NAMES[weekday].capitalize(),
        "time": f"{minute // 60:02d}:{minute % 60:02d}",
        "next": format_relative(expected, res.clock(), zone) if expected else "",
        "timezone": zone.key,
    }


async def weekly_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The weekly recap offered after the first treatment: one tap turns it on."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    res, query = pressed.res, pressed.query
    with res.sessions.begin() as session:
        patient = the_patient(session, pressed.user_id)
        weekly = turn_on(session, patient, res.clock(), res.settings.default_timezone)
        session.flush()
        view = describe_weekly(res, patient, weekly)
        chat_id = patient.chat_id
    await query.answer()
    await remove_buttons(query)
    await context.bot.send_message(chat_id, res.texts.render("weekly.html", outcome="on", **view))
