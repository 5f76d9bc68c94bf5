"""Text messages become journal entries or answers; /journal pages through them."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.handlers.common import ask_for_consent, consented_patient, pressed_in_own_chat
from bot.journal import journal_page as load_page
from bot.journal import journal_page_context, record_text
from bot.keyboards import JOURNAL_PREFIX, journal_keyboard
from bot.patients import zone_of
from bot.resources import Companion, companion
from bot.text import step_title

log = logging.getLogger(__name__)


async def text_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Save a text as the answer to the open prompt, or as a free journal entry."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or message.text is None:
        return
    res = companion(context)
    reply_to = message.reply_to_message
    with res.sessions.begin() as session:
        patient = consented_patient(session, user.id)
        recorded = (
            record_text(
                session,
                patient,
                res.schedule,
                text=message.text,
                chat_id=message.chat_id,
                message_id=message.message_id,
                reply_to_message_id=reply_to.message_id if reply_to else None,
                now=res.clock(),
            )
            if patient
            else None
        )
    if recorded is None:
        await ask_for_consent(message, res, user.id)
        return
    if recorded.duplicate:
        log.info("message %s was already recorded; not answering twice", message.message_id)
        return
    prompt = recorded.prompt
    title = step_title(res.schedule, prompt.step_key) if prompt else ""
    await message.reply_html(res.texts.render("saved.html", prompt_title=title))
    if prompt is not None and prompt.telegram_message_id is not None:
        # Answered: Later and Skip no longer apply.
        try:
            await context.bot.edit_message_reply_markup(
                message.chat_id, prompt.telegram_message_id, reply_markup=None
            )
        except TelegramError:
            log.info("prompt %s had no buttons left to remove", prompt.id)


def render_page(
    res: Companion, telegram_user_id: int, page: int
) -> tuple[str, InlineKeyboardMarkup | None] | None:
    """A journal page and its buttons; None if the patient has not agreed yet."""
    with res.sessions.begin() as session:
        patient = consented_patient(session, telegram_user_id)
        if patient is None:
            return None
        loaded = load_page(session, patient, page)
        zone = zone_of(patient, res.settings.default_timezone)
    text = res.texts.render(
        "journal_page.html", **journal_page_context(loaded, res.schedule, zone)
    )
    return text, journal_keyboard(res, loaded.page, loaded.pages)


async def journal(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show the newest journal entries with buttons to page back."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    rendered = render_page(res, user.id, 0)
    if rendered is None:
        await ask_for_consent(message, res, user.id)
        return
    text, keyboard = rendered
    await message.reply_html(text, reply_markup=keyboard)


async def journal_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Turn the page of a /journal message in place."""
    query, user = update.callback_query, update.effective_user
    if query is None or user is None:
        return
    res = companion(context)
    if not pressed_in_own_chat(query):
        await query.answer(res.label("not_yours"), show_alert=True)
        return
    try:
        page = int((query.data or "").removeprefix(JOURNAL_PREFIX))
    except ValueError:
        await query.answer(res.label("bad_button"))
        return
    rendered = render_page(res, user.id, page)
    if rendered is None:
        await query.answer(res.label("needs_consent"), show_alert=True)
        return
    await query.answer()
    text, keyboard = rendered
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except BadRequest as exc:
        # Pressing the same page twice changes nothing, which Telegram reports as an error.
        if "not modified" not in exc.message.lower():
            raise
