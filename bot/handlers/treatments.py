"""/intention, /treatment and the buttons under each prompt."""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.core.localtime import (
    TreatmentTimeError,
    describe_duration,
    format_relative,
    format_short,
    parse_treatment_time,
)
from bot.core.text import step_title
from bot.db import queries
from bot.domain.journal import ActionOutcome, PromptAction, act_on_prompt
from bot.domain.patients import zone_of
from bot.domain.treatments import (
    MAX_INTENTION_LENGTH,
    DuplicateTreatmentError,
    log_treatment,
    set_intention,
)
from bot.domain.weekly import weekly_of
from bot.handlers.common import (
    check_in_after_a_low_mood,
    from_patient,
    pressed_by_patient,
    remove_buttons,
    the_patient,
)
from bot.handlers.guides import announce_treatment
from bot.telegram.keyboards import parse_prompt_callback, support_keyboard, weekly_offer_keyboard

log = logging.getLogger(__name__)


def command_text(message: Message) -> str:
    """What follows the command, line breaks kept."""
    parts = (message.text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) == 2 else ""


async def intention(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Set (or show) the intention for the next treatment."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res = incoming.res
    text = command_text(incoming.message)
    now = res.clock()
    view: dict[str, object]
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        zone = zone_of(patient, res.settings.default_timezone)
        if len(text) > MAX_INTENTION_LENGTH:
            view = {"outcome": "too_long", "length": len(text), "limit": MAX_INTENTION_LENGTH}
        elif text:
            target = set_intention(session, patient, text, now).treatment
            view = {
                "outcome": "set",
                "intention": text,
                "treatment_number": target.number if target else 0,
                "treatment_when": format_short(target.occurred_at, zone) if target else "",
            }
        else:
            planned = queries.next_planned_treatment(session, patient.id, now)
            current = planned.intention if planned else patient.pending_intention
            view = {
                "outcome": "show",
                "intention": current or "",
                "treatment_number": planned.number if planned and planned.intention else 0,
            }
    await incoming.message.reply_html(res.texts.render("intention.html", **view))


async def treatment(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log a treatment that has just ended, or one at a given local time (future: planned)."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res = incoming.res
    now = res.clock()
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        patient_id = patient.id
        announcement: tuple[int, str] | None = None  # what the patient's guides are told
        zone = zone_of(patient, res.settings.default_timezone)
        view: dict[str, object] = {"timezone": zone.key}
        try:
            when = parse_treatment_time(context.args or [], now, zone)
            logged = log_treatment(
                session, patient, when, now, res.schedule, res.settings.default_timezone
            )
        except TreatmentTimeError as exc:
            view["outcome"] = exc.reason
        except DuplicateTreatmentError as exc:
            view |= {
                "outcome": "duplicate",
                "number": exc.existing.number,
                "when": format_short(exc.existing.occurred_at, zone),
            }
        else:
            first = logged.first_prompt_at
            logged_when = format_short(logged.treatment.occurred_at, zone)
            announcement = (logged.treatment.number, logged_when)
            view |= {
                "outcome": "logged",
                "number": logged.treatment.number,
                "when": logged_when,
                "planned": logged.planned,
                "intention": logged.treatment.intention or "",
                "first_prompt": format_relative(first, now, zone) if first else "",
                "before_session": format_relative(logged.before_session_at, now, zone)
                if logged.before_session_at
                else "",
                "missed": logged.missed_steps,
                "paused": patient.paused_at is not None,
                # Offered once, after the first treatment, while it is off.
                "offer_weekly": logged.treatment.number == 1
                and weekly_of(session, patient) is None,
            }
    await incoming.message.reply_html(
        res.texts.render("treatment.html", **view),
        reply_markup=weekly_offer_keyboard(res) if view.get("offer_weekly") else None,
    )
    if announcement is not None:
        await announce_treatment(res, incoming.message.get_bot(), patient_id, *announcement)


async def prompt_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Later, Skip or a scale value under a prompt."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    parsed = parse_prompt_callback(query.data or "")
    if parsed is None:
        await query.answer(res.label("bad_button"))
        return
    action, prompt_id, value = parsed
    with res.sessions.begin() as session:
        patient = the_patient(session, pressed.user_id)
        chat_id = patient.chat_id
        outcome, prompt = act_on_prompt(
            session, patient, res.schedule, prompt_id, action, res.clock(), value=value
        )
        title = step_title(res.schedule, prompt.step_key) if prompt else ""
    if outcome is not ActionOutcome.DONE:
        notices = {
            ActionOutcome.NOT_YOURS: "not_yours",
            ActionOutcome.CLOSED: "prompt_closed",
            ActionOutcome.BAD_VALUE: "bad_button",
        }
        await query.answer(
            res.label(notices[outcome]), show_alert=outcome is ActionOutcome.NOT_YOURS
        )
        return
    if action is PromptAction.LATER:
        await query.answer(res.label("later_done", snooze=describe_duration(res.schedule.snooze)))
    elif action is PromptAction.SKIP:
        await query.answer(res.label("skipped"))
    else:
        await query.answer(res.label("scale_saved", value=value))
    try:
        # Only the way to the crisis contacts stays: one tap away from every prompt.
        await remove_buttons(query, keep=support_keyboard(res))
    except TelegramError:
        log.warning("could not remove the buttons of prompt %s", prompt_id)
    if action is PromptAction.SCALE:
        await context.bot.send_message(
            chat_id, res.texts.render("mood_saved.html", value=value, prompt_title=title)
        )
        if value is not None:
            await check_in_after_a_low_mood(res, context.bot, chat_id, value)
