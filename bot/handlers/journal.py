"""Text messages become journal entries or answers; /journal pages through them."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.handlers.common import from_patient, pressed_by_patient, the_patient
from bot.journal import journal_page as load_page
from bot.journal import journal_page_context, record_text
from bot.keyboards import JOURNAL_PREFIX, journal_keyboard
from bot.patients import zone_of
from bot.resources import Companion
from bot.text import step_title

log = logging.getLogger(__name__)


async def text_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Save a text as the answer to the open prompt, or as a free journal entry."""
    incoming = await from_patient(update, context)
    if incoming is None or incoming.message.text is None:
        return
    message, res, text = incoming.message, incoming.res, incoming.message.text
    reply_to = message.reply_to_message
    with res.sessions.begin() as session:
        recorded = record_text(
            session,
            the_patient(session, incoming.user_id),
            res.schedule,
            text=text,
            chat_id=message.chat_id,
            message_id=message.message_id,
            reply_to_message_id=reply_to.message_id if reply_to else None,
            now=res.clock(),
        )
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
) -> tuple[str, InlineKeyboardMarkup | None]:
    """A journal page and its Older/Newer buttons."""
    with res.sessions.begin() as session:
        patient = the_patient(session, telegram_user_id)
        loaded = load_page(session, patient, page)
        zone = zone_of(patient, res.settings.default_timezone)
    view = journal_page_context(loaded, res.schedule, zone)
    return res.texts.render("journal_page.html", **view), journal_keyboard(
        res, loaded.page, loaded.pages
    )


async def journal(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show the newest journal entries with buttons to page back."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    text, keyboard = render_page(incoming.res, incoming.user_id, 0)
    await incoming.message.reply_html(text, reply_markup=keyboard)


async def journal_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Turn the page of a /journal message in place."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    try:
        page = int((query.data or "").removeprefix(JOURNAL_PREFIX))
    except ValueError:
        await query.answer(res.label("bad_button"))
        return
    await query.answer()
    text, keyboard = render_page(res, pressed.user_id, page)
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except BadRequest as exc:
        # Pressing the same page twice changes nothing, which Telegram reports as an error.
        if "not modified" not in exc.message.lower():
            raise
