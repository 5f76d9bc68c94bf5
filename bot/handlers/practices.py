"""/practice: note an integration practice, then how long it took and a few words about it;
/remind: a daily reminder of one."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.companion import Companion
from bot.core.localtime import format_relative
from bot.domain.patients import zone_of
from bot.domain.practices import KINDS, parse_practice_args, record_practice, set_minutes
from bot.domain.reminders import (
    expected_at,
    parse_reminder,
    reminder_of,
    remove_reminder,
    set_reminder,
)
from bot.handlers.common import from_patient, pressed_by_patient, remove_buttons, the_patient
from bot.telegram.keyboards import (
    PRACTICE_PREFIX,
    callback_number,
    minutes_keyboard,
    parse_minutes_callback,
    practice_keyboard,
)


def saved_text(res: Companion, kind: str, minutes: int | None, note: str) -> str:
    return res.texts.render(
        "practice.html", outcome="saved", kind=kind, minutes=minutes, note=bool(note)
    )


async def practice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Offer the practices as buttons, or note one straight away: /practice meditation 10."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    message, res = incoming.message, incoming.res
    args = context.args or []
    if not args:
        await message.reply_html(
            res.texts.render("practice.html", outcome="ask"), reply_markup=practice_keyboard(res)
        )
        return
    parsed = parse_practice_args(args)
    if parsed is None:
        await message.reply_html(res.texts.render("practice.html", outcome="usage"))
        return
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        done = record_practice(
            session,
            patient,
            parsed.kind,
            res.clock(),
            res.schedule,
            minutes=parsed.minutes,
            note=parsed.note,
        )
        practice_id = done.id
    await message.reply_html(
        saved_text(res, parsed.kind, parsed.minutes, parsed.note),
        reply_markup=None if parsed.minutes else minutes_keyboard(res, practice_id),
    )


async def practice_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A practice chosen from the /practice buttons."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    index = callback_number(query.data or "", PRACTICE_PREFIX)
    if index is None or not 0 <= index < len(KINDS):
        await query.answer(res.label("bad_button"))
        return
    kind = KINDS[index]
    with res.sessions.begin() as session:
        patient = the_patient(session, pressed.user_id)
        practice_id = record_practice(session, patient, kind, res.clock(), res.schedule).id
        chat_id = patient.chat_id
    await query.answer(res.label("practice_saved", kind=kind))
    await remove_buttons(query)  # one practice per question: a double tap cannot count twice
    await context.bot.send_message(
        chat_id, saved_text(res, kind, None, ""), reply_markup=minutes_keyboard(res, practice_id)
    )


async def minutes_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """How long a practice took, from the buttons under it."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    parsed = parse_minutes_callback(query.data or "")
    if parsed is None:
        await query.answer(res.label("bad_button"))
        return
    practice_id, minutes = parsed
    try:
        with res.sessions.begin() as session:
            set_minutes(session, the_patient(session, pressed.user_id), practice_id, minutes)
    except LookupError:  # another patient's practice, or one deleted since
        await query.answer(res.label("bad_button"))
        return
    await query.answer(res.label("minutes_saved", minutes=minutes))
    await remove_buttons(query)


async def remind(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/remind 08:00 meditation: a daily reminder; /remind off; /remind shows it."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    message, res = incoming.message, incoming.res
    args = context.args or []
    now, default_timezone = res.clock(), res.settings.default_timezone
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        outcome, reminder = "usage", None
        if [word.lower() for word in args] == ["off"]:
            outcome = "off" if remove_reminder(session, patient) else "none"
        elif not args:
            reminder = reminder_of(session, patient)
            outcome = "show" if reminder else "usage"
        elif (wanted := parse_reminder(args)) is not None:
            reminder = set_reminder(session, patient, *wanted, now, default_timezone)
            outcome = "set"
        view: dict[str, object] = {"outcome": outcome}
        if reminder is not None:
            zone = zone_of(patient, default_timezone)
            first = expected_at(reminder, patient, default_timezone)
            view |= {
                "kind": reminder.kind,
                "time": f"{reminder.minute // 60:02}:{reminder.minute % 60:02}",
                "first": format_relative(first, now, zone),
                "timezone": zone.key,
            }
    await message.reply_html(res.texts.render("remind.html", **view))
