"""/goal and /goals: a short list of goals and habits; the buttons of the weekly check-in."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.core.localtime import format_relative
from bot.domain.goals import (
    MAX_ACTIVE,
    MAX_TEXT_LENGTH,
    GoalError,
    active_goals,
    add_goal,
    close_goal,
    next_checkin,
    parse_goal_command,
    record_check,
)
from bot.domain.patients import zone_of
from bot.handlers.common import from_patient, pressed_by_patient, the_patient
from bot.telegram.keyboards import parse_goal_callback

log = logging.getLogger(__name__)


async def goal(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/goal add build: …, /goal add break: …, /goal add …, /goal done N, /goal drop N."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    message, res = incoming.message, incoming.res
    command = parse_goal_command(context.args or [])
    now, default_tz = res.clock(), res.settings.default_timezone
    view: dict[str, object] = {"outcome": "usage", "limit": MAX_ACTIVE}
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        try:
            if command is None:
                pass
            elif command.action == "list":
                view = {"outcome": "list", "goals": active_goals(session, patient.id)}
            elif command.action == "add":
                added = add_goal(
                    session, patient, command.kind, command.text, now, res.schedule, default_tz
                )
                checkin = next_checkin(res.schedule, patient, now, default_tz)
                view = {
                    "outcome": "added",
                    "kind": added.kind,
                    "number": added.number,
                    "text": added.text,
                    "checkin": format_relative(checkin, now, zone_of(patient, default_tz)),
                }
            else:
                status = "done" if command.action == "done" else "dropped"
                closed = close_goal(session, patient, command.number, status, now)
                view = {"outcome": status, "text": closed.text}
        except GoalError as exc:
            limit = MAX_TEXT_LENGTH if exc.reason == "too_long" else MAX_ACTIVE
            view = {"outcome": exc.reason, "limit": limit}
        reply = res.texts.render("goals.html", **view)
    await message.reply_html(reply)


async def goals(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/goals: the active goals."""
    context.args = []
    await goal(update, context)


async def goal_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Yes, partly or no for one goal this week; that goal's row of buttons goes."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    parsed = parse_goal_callback(query.data or "")
    if parsed is None:
        await query.answer(res.label("bad_button"))
        return
    goal_id, answer = parsed
    try:
        with res.sessions.begin() as session:
            patient = the_patient(session, pressed.user_id)
            record_check(
                session, patient, goal_id, answer, res.clock(), res.settings.default_timezone
            )
    except GoalError:  # another patient's goal, or one deleted since
        await query.answer(res.label("bad_button"))
        return
    await query.answer(res.label("goal_noted", answer=answer))
    message = query.message
    markup = getattr(message, "reply_markup", None)
    if message is None or markup is None:
        return
    prefix = f"{(query.data or '').rsplit(':', 1)[0]}:"
    rows = [
        row
        for row in markup.inline_keyboard
        if not any(str(button.callback_data).startswith(prefix) for button in row)
    ]
    try:
        await context.bot.edit_message_reply_markup(
            message.chat.id, message.message_id, reply_markup=InlineKeyboardMarkup(rows)
        )
    except TelegramError:
        log.info("the check-in's buttons were already changed")
