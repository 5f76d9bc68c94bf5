"""What a message someone writes to the companion is, decided in one place and filed in one
transaction: a guide's or a patient's session note, the words for a practice or a goal's
check-in, an answer, a mood note or a free journal entry.

The handler opens one transaction, calls file_message with the facts Telegram gave, and
renders the outcome after the commit: no Telegram call waits inside the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from bot.core.schedule import Schedule
from bot.core.text import step_title
from bot.db import queries
from bot.db.models import (
    Entry,
    EntryKind,
    Goal,
    GoalCheck,
    Patient,
    Practice,
    ScheduledPrompt,
    SessionNote,
    Treatment,
)
from bot.domain.goals import check_awaiting_note
from bot.domain.guides import (
    NOTES_WINDOW,
    GuideError,
    add_note,
    guide_awaiting_notes,
    link_by_announcement,
    user_hashes,
)
from bot.domain.journal import Content, record_message
from bot.domain.practices import add_words, practice_awaiting_words


@dataclass(frozen=True)
class Incoming:
    """A message, as Telegram described it."""

    user_id: int
    chat_id: int
    message_id: int
    reply_to_message_id: int | None
    content: Content | None  # None: nothing a journal can hold (a sticker, a location)
    now: datetime


class Filed(StrEnum):
    NOT_AGREED = "not agreed"  # no consent yet: nothing stored
    UNSUPPORTED = "unsupported"  # nothing a journal can hold
    ALREADY_FILED = "already filed"  # a redelivery of a message kept and answered before
    SESSION_NOTE = "session note"  # after /notes, or a guide's reply to an announcement
    PRACTICE_WORDS = "practice words"  # the name or note of the practice just chosen
    GOAL_NOTE = "goal note"  # a few words on the goal check-in just answered
    JOURNAL = "journal"  # an answer, a mood note or a free entry


@dataclass(frozen=True)
class Note:
    author: str  # "guide" or "patient"
    patient_name: str
    treatment_number: int
    patient_chat_id: int


@dataclass(frozen=True)
class JournalEntry:
    entry_id: int
    kind: EntryKind
    scale_value: int | None
    prompt_title: str  # the prompt it answers, "" for none
    prompt_message_id: int | None  # that prompt's Telegram message, whose buttons go
    mood_note: bool
    intention_for: int | None  # the number of the treatment whose intention it set
    patient_chat_id: int
    new: bool  # False: recorded before (a redelivery) but the patient was never told


@dataclass(frozen=True)
class Filing:
    filed: Filed
    started: bool = False  # NOT_AGREED: they pressed /start, only the agreement is missing
    note: Note | None = None
    practice_part: str = ""  # PRACTICE_WORDS: "label" or "note"
    practice_label: str | None = None
    journal: JournalEntry | None = None


def file_message(session: Session, schedule: Schedule, incoming: Incoming) -> Filing:
    """Decide what the message is and keep it there. The patient is read once; a message
    Telegram delivers twice is kept once."""
    content = incoming.content
    text = content.text if content is not None and content.kind is EntryKind.TEXT else None
    patient = queries.patient_by_user(session, incoming.user_id)
    noted, practice_words, goal_note, entry_id = _filed_before(session, patient, incoming)

    if text:  # session notes are typed words, from guides (who need not be patients) too
        if noted:
            return Filing(Filed.ALREADY_FILED)
        note = _session_note(session, patient, incoming, text)
        if note is not None:
            return Filing(Filed.SESSION_NOTE, note=note)

    if patient is None or patient.consented_at is None:
        return Filing(Filed.NOT_AGREED, started=patient is not None)
    if content is None:
        return Filing(Filed.UNSUPPORTED)

    if text and incoming.reply_to_message_id is None:
        if practice_words or goal_note:
            return Filing(Filed.ALREADY_FILED)
        words = _practice_or_goal_words(session, patient, incoming, text)
        if words is not None:
            return words

    if entry_id is not None:
        entry = session.get_one(Entry, entry_id)
        if entry.acknowledged_at is not None:
            return Filing(Filed.ALREADY_FILED)
        # Saved before a crash, never acknowledged: the patient is told now, once.
        prompt = session.get(ScheduledPrompt, entry.prompt_id) if entry.prompt_id else None
        return _journal(schedule, patient, entry, prompt, new=False)

    recorded = record_message(
        session,
        patient,
        schedule,
        content,
        chat_id=incoming.chat_id,
        message_id=incoming.message_id,
        reply_to_message_id=incoming.reply_to_message_id,
        now=incoming.now,
    )
    return _journal(
        schedule,
        patient,
        recorded.entry,
        recorded.prompt,
        new=True,
        mood_note=recorded.mood_note,
        intention_for=recorded.intention_for,
    )


def _filed_before(
    session: Session, patient: Patient | None, incoming: Incoming
) -> tuple[bool, bool, bool, int | None]:
    """Where this Telegram message was kept before, if it was, in one query: as a session
    note, as a practice's words, as a goal check-in's note, as a journal entry (its id)."""
    message_id = incoming.message_id
    note = exists().where(
        SessionNote.chat_hash.in_(user_hashes(incoming.chat_id)),
        SessionNote.message_id == message_id,
    )
    if patient is None:
        return bool(session.scalar(select(note))), False, False, None
    practice = exists().where(
        Practice.patient_id == patient.id, Practice.note_message_id == message_id
    )
    goal = (
        exists()
        .where(GoalCheck.note_message_id == message_id, Goal.id == GoalCheck.goal_id)
        .where(Goal.patient_id == patient.id)
    )
    entry = (
        select(Entry.id)
        .where(Entry.chat_id == incoming.chat_id, Entry.message_id == message_id)
        .limit(1)
        .scalar_subquery()
    )
    row = session.execute(select(note, practice, goal, entry)).one()
    return bool(row[0]), bool(row[1]), bool(row[2]), row[3]


def _session_note(
    session: Session, patient: Patient | None, incoming: Incoming, text: str
) -> Note | None:
    """A guide's note (after /notes, or replying to a treatment's announcement) or the
    patient's own (after /notes); None when the words are not a note."""
    now = incoming.now
    if incoming.reply_to_message_id is not None:
        # A reply to a treatment's announcement is a note for it; other replies are not.
        link = link_by_announcement(session, incoming.user_id, incoming.reply_to_message_id)
        patient = None
    else:
        link = guide_awaiting_notes(session, incoming.user_id, now)
    if link is not None:
        author, patient_id = "guide", link.patient_id
        if incoming.reply_to_message_id is None:
            link.notes_until = now + NOTES_WINDOW  # a guide may send several in a session
    elif patient is not None and patient.notes_until and patient.notes_until > now:
        author, patient_id = "patient", patient.id
        patient.notes_until = None
    else:
        return None
    try:
        note = add_note(
            session, patient_id, author, text, incoming.chat_id, incoming.message_id, now
        )
    except GuideError:
        return None
    owner = session.get_one(Patient, patient_id)
    return Note(
        author=author,
        patient_name=owner.first_name or "",
        treatment_number=session.get_one(Treatment, note.treatment_id).number,
        patient_chat_id=owner.chat_id,
    )


def _practice_or_goal_words(
    session: Session, patient: Patient, incoming: Incoming, text: str
) -> Filing | None:
    """Words right after choosing a practice or answering a goal's check-in belong there,
    whichever came last."""
    practice = practice_awaiting_words(session, patient, incoming.now)
    check = check_awaiting_note(session, patient, incoming.now)
    if check is not None and (practice is None or check.created_at > practice.done_at):
        check.note, check.note_message_id = text, incoming.message_id
        return Filing(Filed.GOAL_NOTE)
    if practice is not None:
        part = add_words(practice, text, incoming.message_id)
        return Filing(Filed.PRACTICE_WORDS, practice_part=part, practice_label=practice.label)
    return None


def _journal(
    schedule: Schedule,
    patient: Patient,
    entry: Entry,
    prompt: ScheduledPrompt | None,
    *,
    new: bool,
    mood_note: bool = False,
    intention_for: Treatment | None = None,
) -> Filing:
    return Filing(
        Filed.JOURNAL,
        journal=JournalEntry(
            entry_id=entry.id,
            kind=EntryKind(entry.kind),
            scale_value=entry.scale_value,
            prompt_title=step_title(schedule, prompt.step_key) if prompt else "",
            prompt_message_id=prompt.telegram_message_id if prompt else None,
            mood_note=mood_note or (entry.kind == EntryKind.MOOD and bool(entry.text)),
            intention_for=intention_for.number if intention_for else None,
            patient_chat_id=patient.chat_id,
            new=new,
        ),
    )
