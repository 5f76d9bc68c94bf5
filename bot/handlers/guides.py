"""/guide, /notes and /share: linking a guide, session notes, and what a patient shares.

A guide is any Telegram user who joins with a patient's code; they need not be a patient. They
can add notes to their patients' sessions and receive what a patient shares; nothing else.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from telegram import Bot, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.companion import Companion, companion
from bot.db.models import GuideLink, Patient
from bot.domain.export_data import collect_export
from bot.domain.guides import (
    INVITE_VALID,
    NOTES_WINDOW,
    GuideError,
    add_note,
    announced_links,
    choose_patient,
    current_treatment,
    guides_of,
    join,
    new_invite,
    patients_of,
    set_announcements,
    unlink_all,
)
from bot.domain.patients import zone_of
from bot.domain.recap import build_recap
from bot.handlers.common import from_patient, pressed_by_patient, remove_buttons, the_patient
from bot.handlers.export import send_export_files, with_mood_chart
from bot.telegram.keyboards import (
    GUIDE_ANNOUNCE_ON,
    announce_choice_keyboard,
    announce_toggle_keyboard,
)
from bot.telegram.sending import send_recap


async def guide(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Patients: /guide (who is linked), /guide invite, /guide remove, /guide announce on|off.
    Guides: /guide join CODE."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res, args = companion(context), [arg.lower() for arg in context.args or []]
    if args[:1] == ["join"]:
        code = " ".join((context.args or [])[1:])
        await guide_join(res, message, user.id, user.first_name, code)
        return
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    now = res.clock()
    markup: InlineKeyboardMarkup | None = None
    template = "guide.html"
    view: dict[str, object] = {"outcome": "usage"}
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        if args == ["invite"]:
            code = new_invite(session, patient, now)
            hours = int(INVITE_VALID.total_seconds() // 3600)
            view = {"outcome": "invite", "code": code, "hours": hours}
            markup = announce_choice_keyboard(res)
        elif args == ["remove"]:
            view = {"outcome": "removed", "count": unlink_all(session, patient)}
        elif args in (["announce", "on"], ["announce", "off"]):
            set_announcements(patient, args[1] == "on")
            template, view = "guide_announce.html", {"on": patient.announce_treatments}
        elif not args:
            names = [link.guide_name or "" for link in guides_of(session, patient.id)]
            view = {"outcome": "linked", "names": names, "announce": patient.announce_treatments}
            if names:
                markup = announce_toggle_keyboard(res, on=patient.announce_treatments)
        text = res.texts.render(template, **view)
    await message.reply_html(text, reply_markup=markup)


async def announce_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The patient's choice, under an invitation or /guide: tell the guides of treatments."""
    pressed = await pressed_by_patient(update, context)
    if pressed is None:
        return
    query, res = pressed.query, pressed.res
    on = query.data == GUIDE_ANNOUNCE_ON
    with res.sessions.begin() as session:
        set_announcements(the_patient(session, pressed.user_id), on)
    await query.answer()
    await remove_buttons(query)
    await context.bot.send_message(pressed.user_id, res.texts.render("guide_announce.html", on=on))


async def guide_join(res: Companion, message: Message, user_id: int, name: str, code: str) -> None:
    now = res.clock()
    refusal: GuideError | None = None
    with res.sessions.begin() as session:
        try:
            _, patient = join(session, code, user_id, message.chat_id, name, now)
            patient_chat, patient_name = patient.chat_id, patient.first_name or ""
        except GuideError as exc:
            refusal = exc  # committed all the same: a failed attempt counts
    if refusal is not None:
        await message.reply_html(
            res.texts.render("guide.html", outcome=refusal.reason, **refusal.details)
        )
        return
    await message.reply_html(res.texts.render("guide.html", outcome="joined", who=patient_name))
    await message.get_bot().send_message(
        patient_chat, res.texts.render("guide.html", outcome="guide_linked", who=name)
    )


async def notes(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Guides: /notes [name] [text] — a note now, or the next message. Patients without a
    guide's role: /notes [text], their own notes about the session."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    res, args, now = companion(context), context.args or [], companion(context).clock()
    with res.sessions.begin() as session:
        is_guide = bool(patients_of(session, user.id))
    if is_guide:
        await guide_notes(res, message, user.id, args, now)
        return
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    text = " ".join(args).strip()
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        treatment = current_treatment(session, patient.id, now)
        if treatment is None:
            reply = res.texts.render("guide.html", outcome="no_treatment")
        elif text:
            add_note(session, patient.id, "patient", text, message.chat_id, message.id, now)
            reply = res.texts.render("guide.html", outcome="own_noted", number=treatment.number)
        else:
            patient.notes_until = now + NOTES_WINDOW
            reply = res.texts.render("guide.html", outcome="own_ask", number=treatment.number)
    await message.reply_html(reply)


async def guide_notes(
    res: Companion, message: Message, user_id: int, args: list[str], now: datetime
) -> None:
    # "/notes Alice she felt safe": a name first when it names a linked patient.
    try:
        with res.sessions.begin() as session:
            try:
                link, patient = choose_patient(session, user_id, args[0] if args else "")
                text = " ".join(args[1:])
            except GuideError:
                link, patient = choose_patient(session, user_id, "")
                text = " ".join(args)
            treatment = current_treatment(session, patient.id, now)
            if treatment is None:
                raise GuideError("no_treatment")
            view = {"who": patient.first_name or "", "number": treatment.number}
            if not text.strip():
                link.notes_until = now + NOTES_WINDOW
                reply = res.texts.render("guide.html", outcome="guide_ask", **view)
                patient_chat = None
            else:
                add_note(session, patient.id, "guide", text, message.chat_id, message.id, now)
                reply = res.texts.render("guide.html", outcome="guide_noted", **view)
                patient_chat = patient.chat_id
    except GuideError as exc:
        await message.reply_html(res.texts.render("guide.html", outcome=exc.reason))
        return
    await message.reply_html(reply)
    if patient_chat is not None:
        await tell_patient(res, message, patient_chat, view["number"])


async def tell_patient(res: Companion, message: Message, chat_id: int, number: object) -> None:
    # If this fails, the note is kept all the same: the patient sees it in their journal.
    with contextlib.suppress(TelegramError):
        await message.get_bot().send_message(
            chat_id, res.texts.render("guide.html", outcome="note_arrived", number=number)
        )


async def share(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/share recap or /share export: to the linked guides, only when the patient asks."""
    incoming = await from_patient(update, context)
    if incoming is None:
        return
    message, res = incoming.message, incoming.res
    what = [arg.lower() for arg in context.args or []]
    now, default_tz = res.clock(), res.settings.default_timezone
    with res.sessions.begin() as session:
        patient = the_patient(session, incoming.user_id)
        guide_chats = [link.guide_chat_id for link in guides_of(session, patient.id)]
        zone = zone_of(patient, default_tz)
        name = patient.first_name or ""
        recap = (
            build_recap(session, patient, res.schedule, now, default_tz)
            if what == ["recap"]
            else None
        )
        data = (
            collect_export(session, patient, res.schedule, now, default_tz)
            if what == ["export"]
            else None
        )
    if what not in (["recap"], ["export"]):
        await message.reply_html(res.texts.render("guide.html", outcome="share_usage"))
        return
    if not guide_chats:
        await message.reply_html(res.texts.render("guide.html", outcome="no_guide"))
        return
    bot = message.get_bot()
    for chat_id in guide_chats:
        await bot.send_message(
            chat_id,
            res.texts.render("guide.html", outcome="shared_with_you", who=name, what=what[0]),
        )
    if recap is not None:
        for chat_id in guide_chats:
            await send_recap(res, bot, chat_id, recap, zone, weekly=False)
    elif data is not None:
        await send_export_files(res, bot, guide_chats, with_mood_chart(res, data, zone), zone)
    await message.reply_html(
        res.texts.render("guide.html", outcome="shared", what=what[0], count=len(guide_chats))
    )


async def announce_treatment(
    res: Companion, bot: Bot, patient_id: int, number: int, when: str
) -> None:
    """Tell the patient's guides a treatment was logged, if the patient chose so; a reply to
    this is a session note."""
    with res.sessions.begin() as session:
        links = [(link.id, link.guide_chat_id) for link in announced_links(session, patient_id)]
        name = session.get_one(Patient, patient_id).first_name or ""
    for link_id, chat_id in links:
        text = res.texts.render(
            "guide.html", outcome="announce", who=name, number=number, when=when
        )
        try:
            sent = await bot.send_message(chat_id, text)
        except TelegramError:
            continue  # the guide can still use /notes
        with res.sessions.begin() as session:
            link = session.get(GuideLink, link_id)
            if link is not None:
                link.treatment_message_id = sent.message_id
