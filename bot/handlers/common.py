"""Helpers shared by the handlers: the consent gate and sending rendered HTML."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from telegram import Bot, CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.companion import Companion, companion
from bot.db import queries
from bot.db.models import Patient
from bot.domain.journal import LOW_MOOD
from bot.telegram.keyboards import consent_keyboard, support_keyboard


def consented_patient(session: Session, telegram_user_id: int) -> Patient | None:
    """The patient, if they have agreed; None means: ask for consent, store nothing."""
    patient = queries.patient_by_user(session, telegram_user_id)
    return patient if patient is not None and patient.consented_at is not None else None


def the_patient(session: Session, telegram_user_id: int) -> Patient:
    """The patient a gate below let through (they have agreed)."""
    patient = consented_patient(session, telegram_user_id)
    if patient is None:
        raise LookupError(f"user {telegram_user_id} has not agreed")
    return patient


@dataclass(frozen=True)
class FromPatient:
    message: Message
    user_id: int
    res: Companion


async def from_patient(update: Update, context: ContextTypes.DEFAULT_TYPE) -> FromPatient | None:
    """The message and its sender once they have agreed; before that, ask them, store nothing."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return None
    res = companion(context)
    with res.sessions.begin() as session:
        patient = queries.patient_by_user(session, user.id)
        started = patient is not None
        agreed = patient is not None and patient.consented_at is not None
    if agreed:
        return FromPatient(message, user.id, res)
    await message.reply_html(
        res.texts.render("consent_needed.html", started=started),
        reply_markup=consent_keyboard(res) if started else None,
    )
    return None


@dataclass(frozen=True)
class Pressed:
    query: CallbackQuery
    user_id: int
    res: Companion


def pressed_in_own_chat(query: CallbackQuery) -> bool:
    """True when the button sits in the presser's own private chat with the companion.

    A button from someone else's message (forwarded, or in a group) must never show or change
    anything of either person.
    """
    message = query.message
    return message is not None and message.chat.id == query.from_user.id


def button_still_there(query: CallbackQuery) -> bool:
    """Whether the message still carries a button with this data.

    Callback data is never trusted: a forged press, or a stale one on a message whose buttons
    are gone (a double tap, an answered prompt), changes nothing.
    """
    message = query.message
    markup = message.reply_markup if isinstance(message, Message) else None
    if markup is None:
        return False
    return any(
        button.callback_data == query.data for row in markup.inline_keyboard for button in row
    )


async def check_in_after_a_low_mood(res: Companion, bot: Bot, chat_id: int, value: int) -> None:
    """A mood of LOW_MOOD or less, however it was given: a gentle word and one tap to the
    crisis contacts. Whatever the words, such a figure asks for it."""
    if value > LOW_MOOD:
        return
    await bot.send_message(
        chat_id, res.texts.render("mood_low.html", value=value), reply_markup=support_keyboard(res)
    )


async def remove_buttons(query: CallbackQuery, keep: InlineKeyboardMarkup | None = None) -> None:
    """Take the buttons off the pressed message (all, or all but `keep`); already gone is
    fine."""
    try:
        await query.edit_message_reply_markup(reply_markup=keep)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


async def usable_button(query: CallbackQuery, res: Companion) -> bool:
    """A button pressed in the presser's own chat, on a message that still carries it;
    otherwise they are told why nothing happens."""
    if not pressed_in_own_chat(query):
        await query.answer(res.label("not_yours"), show_alert=True)
        return False
    if not button_still_there(query):
        await query.answer(res.label("bad_button"))
        return False
    return True


async def pressed_by_patient(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Pressed | None:
    """A button press from an agreed patient in their own chat; otherwise say why not."""
    query = update.callback_query
    if query is None:
        return None
    res = companion(context)
    if not await usable_button(query, res):
        return None
    with res.sessions.begin() as session:
        agreed = consented_patient(session, query.from_user.id) is not None
    if not agreed:
        await query.answer(res.label("needs_consent"), show_alert=True)
        return None
    return Pressed(query, query.from_user.id, res)
