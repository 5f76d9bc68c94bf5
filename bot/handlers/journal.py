"""Text messages become journal entries or answers; /journal pages through them."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from telegram import (
    Audio,
    Bot,
    CallbackQuery,
    Document,
    InlineKeyboardMarkup,
    Message,
    Update,
    Video,
    VideoNote,
    Voice,
)
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.companion import Companion, companion
from bot.core.localtime import format_short
from bot.core.text import small_number, step_title
from bot.db import queries
from bot.db.models import EntryKind
from bot.domain.guides import notes_of
from bot.domain.incoming import Filed, Incoming, JournalEntry, file_message
from bot.domain.journal import (
    Content,
    acknowledge,
    journal_page_context,
    record_edit,
    search_journal,
    snippet,
    treatment_journal,
    treatment_journal_context,
)
from bot.domain.journal import journal_page as load_page
from bot.domain.patients import zone_of
from bot.handlers.common import (
    check_in_after_a_low_mood,
    consented_patient,
    from_patient,
    pressed_by_patient,
    the_patient,
)
from bot.handlers.guides import tell_patient
from bot.telegram.keyboards import (
    FILE_PREFIX,
    JOURNAL_PREFIX,
    MAX_SEARCH_BYTES,
    SEARCH_PREFIX,
    TREATMENT_PREFIX,
    callback_number,
    consent_keyboard,
    journal_keyboard,
    search_keyboard,
    support_keyboard,
)
from bot.telegram.sending import send_blocks
from bot.telegram.updates import last_transaction

log = logging.getLogger(__name__)


def content_of(message: Message) -> Content | None:
    """What a message brings to the journal; None for what it cannot hold (stickers...)."""
    if message.text is not None:
        return Content(EntryKind.TEXT, text=message.text)
    caption = message.caption
    media: tuple[EntryKind, Voice | Audio | Video | VideoNote | Document | None] = (
        (EntryKind.VOICE, message.voice)
        if message.voice
        else (EntryKind.AUDIO, message.audio)
        if message.audio
        else (EntryKind.VIDEO, message.video)
        if message.video
        else (EntryKind.VIDEO_NOTE, message.video_note)
        if message.video_note
        else (EntryKind.DOCUMENT, message.document)
    )
    kind, attachment = media
    if attachment is not None:
        duration = getattr(attachment, "duration", None)
        if isinstance(duration, timedelta):
            duration = int(duration.total_seconds())
        return Content(kind, caption, attachment.file_id, duration)
    if message.photo:
        return Content(EntryKind.PHOTO, caption, message.photo[-1].file_id)
    return None


async def journal_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """File a message where it belongs (bot/domain/incoming.py), in one transaction, then
    answer; the acknowledgement is recorded with the update's being handled."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res = companion(context)
    reply_to = message.reply_to_message
    incoming = Incoming(
        user_id=user.id,
        chat_id=message.chat_id,
        message_id=message.message_id,
        reply_to_message_id=reply_to.message_id if reply_to else None,
        content=content_of(message),
        now=res.clock(),
    )
    with res.sessions.begin() as session:
        filing = file_message(session, res.schedule, incoming)
    match filing.filed:
        case Filed.NOT_AGREED:
            await message.reply_html(
                res.texts.render("consent_needed.html", started=filing.started),
                reply_markup=consent_keyboard(res) if filing.started else None,
            )
        case Filed.UNSUPPORTED:
            await message.reply_html(res.texts.render("unsupported.html", kind="media"))
        case Filed.ALREADY_FILED:
            log.info("message %s was already filed; not answering twice", message.message_id)
        case Filed.SESSION_NOTE if filing.note is not None:
            note = filing.note
            view = {"who": note.patient_name, "number": note.treatment_number}
            await message.reply_html(
                res.texts.render("guide.html", outcome=f"{note.author}_noted", **view)
            )
            if note.author == "guide":
                await tell_patient(res, message, note.patient_chat_id, note.treatment_number)
        case Filed.GOAL_NOTE:
            await message.reply_html(res.texts.render("goals.html", outcome="noted"))
        case Filed.PRACTICE_WORDS:
            await message.reply_html(
                res.texts.render(
                    "practice.html",
                    outcome="words",
                    part=filing.practice_part,
                    label=filing.practice_label,
                )
            )
        case Filed.JOURNAL if filing.journal is not None:
            await acknowledge_entry(res, context.bot, message, filing.journal)


async def acknowledge_entry(
    res: Companion, bot: Bot, message: Message, kept: JournalEntry
) -> None:
    """Tell the patient the entry is saved, record that they were told, then the rest."""
    await message.reply_html(
        res.texts.render(
            "saved.html",
            prompt_title=kept.prompt_title,
            kind=kept.kind,
            mood_note=kept.mood_note,
            scale_value=kept.scale_value,
            intention_for=kept.intention_for,
        )
    )
    with last_transaction(res.sessions) as session:
        acknowledge(session, kept.entry_id, res.clock())
    if kept.kind == EntryKind.MOOD and kept.scale_value is not None and kept.new:
        await check_in_after_a_low_mood(res, bot, message.chat_id, kept.scale_value)
    if kept.prompt_message_id is not None:
        # Answered: Later and Skip no longer apply; the way to the crisis contacts stays.
        try:
            await bot.edit_message_reply_markup(
                message.chat_id, kept.prompt_message_id, reply_markup=support_keyboard(res)
            )
        except TelegramError:
            log.info("an answered prompt had no buttons left to remove")


async def edited_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edit in Telegram updates the entry that message made, noting that it was edited."""
    message, user = update.edited_message, update.effective_user
    if message is None or user is None:
        return
    new_text = message.text if message.text is not None else message.caption
    if new_text is None:
        return
    res = companion(context)
    with res.sessions.begin() as session:
        patient = consented_patient(session, user.id)
        entry = (
            record_edit(
                session, patient, message.chat_id, message.message_id, new_text, res.clock()
            )
            if patient
            else None
        )
    if entry is not None:
        await message.reply_html(res.texts.render("edited.html"))


TREATMENT_BUTTONS = 5


def render_page(
    res: Companion, telegram_user_id: int, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """A journal page, with buttons for its kept files and recent treatments, Older/Newer."""
    with res.sessions.begin() as session:
        patient = the_patient(session, telegram_user_id)
        loaded = load_page(session, patient, page)
        numbers = queries.treatment_numbers(session, patient.id)[-TREATMENT_BUTTONS:]
        zone = zone_of(patient, res.settings.default_timezone)
    view = journal_page_context(loaded, res.schedule, zone)
    files = [
        (
            entry.id,
            res.label("get_file", kind=entry.kind, when=format_short(entry.created_at, zone)),
        )
        for entry in loaded.entries
        if entry.file_id
    ]
    keyboard = journal_keyboard(res, loaded.page, loaded.pages, files, numbers)
    return res.texts.render("journal_page.html", **view), keyboard


def render_search(
    res: Companion, telegram_user_id: int, words: list[str], page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """A page of search results, matches marked, with Older/Newer."""
    with res.sessions.begin() as session:
        patient = the_patient(session, telegram_user_id)
        found = search_journal(session, patient, words, page)
        zone = zone_of(patient, res.settings.default_timezone)
        prompts = queries.prompts_by_id(
            session, (e.prompt_id for e in found.matches if e.prompt_id)
        )
        numbers = queries.treatments_by_id(
            session, (e.treatment_id for e in found.matches if e.treatment_id)
        )
    matches = [
        {
            "when": format_short(entry.created_at, zone),
            "treatment_number": numbers[entry.treatment_id].number if entry.treatment_id else None,
            "prompt_title": step_title(res.schedule, prompts[entry.prompt_id].step_key)
            if entry.prompt_id
            else "",
            "snippet": snippet(entry.text or "", words),
        }
        for entry in found.matches
    ]
    text = res.texts.render(
        "journal_search.html",
        words=words,
        matches=matches,
        total=found.total,
        page=found.page + 1,
        pages=found.pages,
    )
    return text, search_keyboard(res, found.page, found.pages, words)


async def send_treatment(res: Companion, message: Message, user_id: int, number: int) -> None:
    """Everything around one treatment, in as many messages as it takes."""
    with res.sessions.begin() as session:
        patient = the_patient(session, user_id)
        journal = treatment_journal(session, patient, number, res.schedule)
        zone = zone_of(patient, res.settings.default_timezone)
        numbers = list(queries.treatment_numbers(session, patient.id))
        notes = (
            [
                {"author": note.author, "text": note.text}
                for note in notes_of(session, [journal.treatment.id])[journal.treatment.id]
            ]
            if journal
            else []
        )
    if journal is None:
        await message.reply_html(
            res.texts.render(
                "journal_usage.html", reason="no_treatment", number=number, numbers=numbers
            )
        )
        return
    view = treatment_journal_context(journal, res.schedule, zone) | {"notes": notes}
    await send_blocks(
        message.get_bot(),
        message.chat_id,
        res.texts.render_blocks("journal_treatment.html", **view),
        reply_markup=support_keyboard(res),
    )


async def journal(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/journal: the latest entries; /journal 3: one treatment; /journal search words."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    res, message, args = incoming.res, incoming.message, context.args or []
    if not args:
        text, keyboard = render_page(res, incoming.user_id, 0)
    elif len(args) == 1 and (number := small_number(args[0])) is not None:
        await send_treatment(res, message, incoming.user_id, number)
        return
    elif args[0].lower() == "search" and len(args) > 1:
        words = args[1:]
        if len(" ".join(words).encode()) > MAX_SEARCH_BYTES:
            text = res.texts.render(
                "journal_usage.html", reason="search_long", limit=MAX_SEARCH_BYTES
            )
            keyboard = None
        else:
            # Search decrypts the whole journal: off the event loop, so other chats go on.
            text, keyboard = await asyncio.to_thread(
                render_search, res, incoming.user_id, words, 0
            )
    else:
        text, keyboard = res.texts.render("journal_usage.html", reason="usage"), None
    await message.reply_html(text, reply_markup=keyboard)


async def edit_in_place(
    query: CallbackQuery, text: str, keyboard: InlineKeyboardMarkup | None
) -> None:
    try:
        await query.edit_message_text(text, reply_markup=keyboard)
    except BadRequest as exc:
        # Pressing the same page twice changes nothing, which Telegram reports as an error.
        if "not modified" not in exc.message.lower():
            raise


async def journal_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Turn the page of a /journal message in place."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    page = callback_number(query.data or "", JOURNAL_PREFIX)
    if page is None:
        await query.answer(res.label("bad_button"))
        return
    await query.answer()
    await edit_in_place(query, *render_page(res, pressed.user_id, page))


async def search_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Turn the page of search results in place."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    data = query.data or ""
    page = callback_number(data, SEARCH_PREFIX)
    words = data.removeprefix(SEARCH_PREFIX).partition(":")[2].split()
    if page is None or not words:
        await query.answer(res.label("bad_button"))
        return
    await query.answer()
    await edit_in_place(
        query, *await asyncio.to_thread(render_search, res, pressed.user_id, words, page)
    )


async def treatment_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show one treatment's journal from its button."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    number = callback_number(query.data or "", TREATMENT_PREFIX)
    if number is None or not isinstance(query.message, Message):
        await query.answer(res.label("bad_button"))
        return
    await query.answer()
    await send_treatment(res, query.message, pressed.user_id, number)


async def file_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send back a voice note, photo, video or document kept in the journal."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    entry_id = callback_number(query.data or "", FILE_PREFIX) or 0
    with res.sessions.begin() as session:
        patient = the_patient(session, pressed.user_id)
        entry = queries.entry_of(session, patient.id, entry_id)
        chat_id = patient.chat_id
    if entry is None or entry.file_id is None:
        await query.answer(res.label("bad_button"))
        return
    await query.answer()
    bot, file_id = context.bot, entry.file_id
    match entry.kind:
        case EntryKind.VOICE:
            await bot.send_voice(chat_id, file_id)
        case EntryKind.AUDIO:
            await bot.send_audio(chat_id, file_id)
        case EntryKind.PHOTO:
            await bot.send_photo(chat_id, file_id)
        case EntryKind.VIDEO:
            await bot.send_video(chat_id, file_id)
        case EntryKind.VIDEO_NOTE:
            await bot.send_video_note(chat_id, file_id)
        case _:
            await bot.send_document(chat_id, file_id)
