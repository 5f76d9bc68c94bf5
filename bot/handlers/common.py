"""Helpers shared by the handlers: the consent gate and sending rendered HTML."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session
from telegram import CallbackQuery, InlineKeyboardMarkup, Message

from bot.db import queries
from bot.db.models import Patient
from bot.keyboards import consent_keyboard
from bot.messages import pack_blocks
from bot.resources import Companion


def consented_patient(session: Session, telegram_user_id: int) -> Patient | None:
    """The patient, if they have agreed; None means: ask for consent, store nothing."""
    patient = queries.patient_by_user(session, telegram_user_id)
    return patient if patient is not None and patient.consented_at is not None else None


async def ask_for_consent(message: Message, companion: Companion, telegram_user_id: int) -> None:
    """The reply to anything a patient sends before agreeing."""
    with companion.sessions.begin() as session:
        started = queries.patient_by_user(session, telegram_user_id) is not None
    await message.reply_html(
        companion.texts.render("consent_needed.html", started=started),
        reply_markup=consent_keyboard(companion) if started else None,
    )


async def send_blocks(
    message: Message, blocks: Sequence[str], reply_markup: InlineKeyboardMarkup | None = None
) -> None:
    """Send rendered blocks in as few messages as fit Telegram's limit; buttons on the last."""
    messages = pack_blocks(blocks)
    for index, text in enumerate(messages):
        last = index == len(messages) - 1
        await message.reply_html(text, reply_markup=reply_markup if last else None)


def pressed_in_own_chat(query: CallbackQuery) -> bool:
    """True when the button sits in the presser's own private chat with the companion.

    A button from someone else's message (forwarded, or in a group) must never show or change
    anything of either person.
    """
    message = query.message
    return message is not None and message.chat.id == query.from_user.id
