"""The journal: recording what a patient writes, prompt buttons, and pages to browse. Plain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.core.localtime import format_short
from bot.core.schedule import Schedule
from bot.core.text import shorten, small_number, step_title
from bot.db import queries
from bot.db.models import Entry, EntryKind, Patient, PromptStatus, ScheduledPrompt, Treatment
from bot.domain.practices import KINDS, record_practice
from bot.domain.treatments import MAX_INTENTION_LENGTH, integration_treatment

PAGE_SIZE = 5
SCALE = range(1, 11)
# A mood this low, however it was given, gets a gentle check-in that offers crisis contacts.
LOW_MOOD = 2
# How long after a mood button the next text is taken as its note.
MOOD_NOTE_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class Content:
    """What a message brings to the journal, whatever Telegram called it."""

    kind: EntryKind
    text: str | None = None  # the text, or a media caption
    file_id: str | None = None
    duration_seconds: int | None = None


@dataclass(frozen=True)
class Recorded:
    entry: Entry
    prompt: ScheduledPrompt | None  # the prompt it answers, if any
    mood_note: bool = False  # the text became the note of the mood just given
    intention_for: Treatment | None = None  # the answer set this planned treatment's intention


def open_prompt(session: Session, patient: Patient, schedule: Schedule) -> ScheduledPrompt | None:
    """The prompt the next message answers: the latest one sent, while it is still waiting.

    A prompt stays answerable until the next prompt arrives; "Later" and "Skip" close it.
    """
    latest = queries.latest_sent_prompt(session, patient.id)
    if latest is None or latest.status != PromptStatus.SENT:
        return None
    step = schedule.step(latest.step_key)
    if step is not None and step.reply == "none":
        return None
    return latest


def open_to_replies(session: Session, patient: Patient, schedule: Schedule) -> int | None:
    """The prompt a Telegram reply can still answer: the latest one that asks something, while
    it waits. A message that asks nothing since (a note to rest) does not close it."""
    answerable = [step.key for step in schedule.steps if step.reply != "none"]
    latest = queries.latest_sent_prompt(session, patient.id, answerable)
    return latest.id if latest is not None and latest.status == PromptStatus.SENT else None


def pending_mood_note(
    session: Session, patient: Patient, current: ScheduledPrompt | None, now: datetime
) -> Entry | None:
    """A mood given with a button moments ago, still waiting for its optional note.

    It waits while it is the patient's latest entry, for MOOD_NOTE_WINDOW, unless a prompt
    has arrived since: then the prompt is what the patient is answering.
    """
    latest = queries.latest_entry(session, patient.id)
    if (
        latest is None
        or latest.kind != EntryKind.MOOD
        or latest.message_id is not None  # typed, not tapped: nothing was asked
        or latest.text
        or now - latest.created_at > MOOD_NOTE_WINDOW
    ):
        return None
    if current is not None and current.sent_at and current.sent_at > latest.created_at:
        return None
    return latest


def record_message(
    session: Session,
    patient: Patient,
    schedule: Schedule,
    content: Content,
    *,
    chat_id: int,
    message_id: int,
    reply_to_message_id: int | None,
    now: datetime,
) -> Recorded:
    """Save a message (one not recorded before) as the answer to the open prompt, a mood note,
    or a free entry.

    The next message after a prompt answers it; a Telegram reply to the open prompt answers it
    even after a first answer. Text right after a mood button is that mood's note. Anything else
    is a free entry in the current integration period.
    """
    current = open_prompt(session, patient, schedule)
    replied_to = (
        queries.prompt_by_message(session, patient.id, reply_to_message_id)
        if reply_to_message_id is not None
        else None
    )
    if replied_to is None and content.kind is EntryKind.TEXT:
        mood = pending_mood_note(session, patient, current, now)
        if mood is not None:
            mood.text = content.text
            mood.message_id = message_id  # a redelivered copy finds it and does nothing
            return Recorded(entry=mood, prompt=None, mood_note=True)

    answers: ScheduledPrompt | None = None
    if replied_to is not None:
        if replied_to.id == open_to_replies(session, patient, schedule):
            answers = replied_to
    elif current is not None and not queries.prompt_has_answer(session, current.id):
        answers = current

    if answers is not None:
        treatment_id: int | None = answers.treatment_id
    elif replied_to is not None:
        treatment_id = replied_to.treatment_id
    else:
        treatment = integration_treatment(session, patient, now, schedule)
        treatment_id = treatment.id if treatment else None

    kind, scale_value = content.kind, None
    step = schedule.step(answers.step_key) if answers else None
    typed = (content.text or "").strip()
    typed_number = small_number(typed)
    if step is not None and step.reply == "scale" and typed_number in SCALE:
        kind, scale_value = EntryKind.MOOD, typed_number

    entry = Entry(
        patient_id=patient.id,
        treatment_id=treatment_id,
        prompt_id=answers.id if answers else None,
        kind=kind,
        text=None if scale_value is not None else content.text,
        scale_value=scale_value,
        file_id=content.file_id,
        duration_seconds=content.duration_seconds,
        chat_id=chat_id,
        message_id=message_id,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    intention_for = None
    if (
        answers is not None
        and step is not None
        and step.reply == "intention"
        and 0 < len(typed) <= MAX_INTENTION_LENGTH
    ):
        intention_for = session.get_one(Treatment, answers.treatment_id)
        intention_for.intention = typed
    return Recorded(entry=entry, prompt=answers, intention_for=intention_for)


def acknowledge(session: Session, entry_id: int, now: datetime) -> None:
    """The patient has been told the entry is saved."""
    entry = session.get(Entry, entry_id)
    if entry is not None:  # deleted with /delete meanwhile
        entry.acknowledged_at = now


def record_edit(
    session: Session, patient: Patient, chat_id: int, message_id: int, text: str, now: datetime
) -> Entry | None:
    """Apply a Telegram edit to the entry that message made (None if it made none)."""
    entry = queries.entry_by_message(session, chat_id, message_id)
    if entry is None or entry.patient_id != patient.id:
        return None
    entry.text = text
    entry.edited_at = now
    return entry


def record_mood(
    session: Session,
    patient: Patient,
    value: int,
    now: datetime,
    schedule: Schedule,
    prompt: ScheduledPrompt | None = None,
) -> Entry:
    """A mood figure from a button: /mood, or a scale prompt."""
    if prompt is not None:
        treatment_id: int | None = prompt.treatment_id
    else:
        treatment = integration_treatment(session, patient, now, schedule)
        treatment_id = treatment.id if treatment else None
    entry = Entry(
        patient_id=patient.id,
        treatment_id=treatment_id,
        prompt_id=prompt.id if prompt else None,
        kind=EntryKind.MOOD,
        scale_value=value,
        chat_id=patient.chat_id,
        message_id=None,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


class PromptAction(StrEnum):
    LATER = "later"
    SKIP = "skip"
    SCALE = "scale"
    PRACTICE = "practice"  # value: the practice's place in practices.KINDS


class ActionOutcome(StrEnum):
    DONE = "done"
    NOT_YOURS = "not_yours"  # a button on someone else's prompt
    CLOSED = "closed"  # answered, skipped, postponed, or a newer prompt has arrived
    BAD_VALUE = "bad_value"


def act_on_prompt(
    session: Session,
    patient: Patient,
    schedule: Schedule,
    prompt_id: int,
    action: PromptAction,
    now: datetime,
    *,
    value: int | None = None,
) -> tuple[ActionOutcome, ScheduledPrompt | None]:
    """Apply a prompt button: Later (ask again after the snooze), Skip, a scale value, or a
    practice chosen under a practice step."""
    prompt = session.get(ScheduledPrompt, prompt_id)
    if prompt is None or prompt.patient_id != patient.id:
        return ActionOutcome.NOT_YOURS, None
    current = open_prompt(session, patient, schedule)
    if current is None or current.id != prompt.id:
        return ActionOutcome.CLOSED, prompt
    if action is PromptAction.LATER:
        prompt.status = PromptStatus.HELD if patient.paused_at else PromptStatus.PENDING
        prompt.due_at = now + schedule.snooze
        return ActionOutcome.DONE, prompt
    if action is PromptAction.SKIP:
        prompt.status = PromptStatus.SKIPPED
        return ActionOutcome.DONE, prompt
    valid = range(len(KINDS)) if action is PromptAction.PRACTICE else SCALE
    if value is None or value not in valid:
        return ActionOutcome.BAD_VALUE, prompt
    if queries.prompt_has_answer(session, prompt.id):
        return ActionOutcome.CLOSED, prompt
    if action is PromptAction.PRACTICE:
        record_practice(session, patient, KINDS[value], now, schedule, prompt=prompt)
    else:
        record_mood(session, patient, value, now, schedule, prompt)
    return ActionOutcome.DONE, prompt


@dataclass(frozen=True)
class JournalPage:
    entries: list[Entry]
    prompts: dict[int, ScheduledPrompt]
    treatment_numbers: dict[int, int]
    page: int  # 0 is the newest
    pages: int
    total: int


def journal_page(session: Session, patient: Patient, page: int) -> JournalPage:
    total = queries.count_entries(session, patient.id)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    entries = list(queries.entries_page(session, patient.id, page * PAGE_SIZE, PAGE_SIZE))
    prompts = queries.prompts_by_id(session, (e.prompt_id for e in entries if e.prompt_id))
    treatments = queries.treatments_by_id(
        session, (e.treatment_id for e in entries if e.treatment_id)
    )
    return JournalPage(
        entries=entries,
        prompts=prompts,
        treatment_numbers={tid: t.number for tid, t in treatments.items()},
        page=page,
        pages=pages,
        total=total,
    )


# Short enough that a page of PAGE_SIZE entries always fits one Telegram message.
ENTRY_PREVIEW_LENGTH = 350


def format_duration(seconds: int | None) -> str:
    """ "0:42", "12:05"; empty when unknown."""
    if seconds is None:
        return ""
    return f"{seconds // 60}:{seconds % 60:02d}"


def entry_view(
    entry: Entry,
    *,
    prompt_title: str,
    treatment_number: int | None,
    zone: ZoneInfo,
    preview_length: int | None,
) -> dict[str, object]:
    """One entry as every journal template shows it."""
    text = entry.text or ""
    return {
        "id": entry.id,
        "when": format_short(entry.created_at, zone),
        "treatment_number": treatment_number,
        "prompt_title": prompt_title,
        "kind": entry.kind,
        "scale_value": entry.scale_value,
        "duration": format_duration(entry.duration_seconds),
        "has_file": entry.file_id is not None,
        "edited": entry.edited_at is not None,
        "text": shorten(text, preview_length) if preview_length else text,
    }


def journal_page_context(
    journal: JournalPage, schedule: Schedule, zone: ZoneInfo
) -> dict[str, object]:
    """What journal_page.html shows; long entries are shortened so a page fits one message."""
    entries = []
    for entry in journal.entries:
        prompt = journal.prompts.get(entry.prompt_id) if entry.prompt_id else None
        entries.append(
            entry_view(
                entry,
                prompt_title=step_title(schedule, prompt.step_key) if prompt else "",
                treatment_number=journal.treatment_numbers.get(entry.treatment_id)
                if entry.treatment_id
                else None,
                zone=zone,
                preview_length=ENTRY_PREVIEW_LENGTH,
            )
        )
    return {
        "entries": entries,
        "page": journal.page + 1,
        "pages": journal.pages,
        "total": journal.total,
    }


@dataclass(frozen=True)
class TreatmentJournal:
    """Everything written around one treatment, in the order it happened."""

    treatment: Treatment
    prompts: list[tuple[ScheduledPrompt, list[Entry]]]  # schedule order, each with its answers
    entries: list[Entry]  # free entries and moods of its integration period


def gather_treatment(
    session: Session, treatment: Treatment, entries: Sequence[Entry], schedule: Schedule
) -> TreatmentJournal:
    """A treatment's prompts in schedule order, each with its answers among `entries`."""
    order = {step.key: index for index, step in enumerate(schedule.steps)}
    prompts = sorted(
        queries.prompts_of_treatment(session, treatment.id),
        key=lambda p: (order.get(p.step_key, len(order)), p.id),
    )
    answers: dict[int, list[Entry]] = {p.id: [] for p in prompts}
    others = []
    for entry in entries:
        if entry.prompt_id in answers:
            answers[entry.prompt_id].append(entry)
        else:
            others.append(entry)
    return TreatmentJournal(
        treatment=treatment, prompts=[(p, answers[p.id]) for p in prompts], entries=others
    )


def treatment_journal(
    session: Session, patient: Patient, number: int, schedule: Schedule
) -> TreatmentJournal | None:
    treatment = queries.treatment_by_number(session, patient.id, number)
    if treatment is None:
        return None
    entries = queries.entries_of_treatment(session, treatment.id)
    return gather_treatment(session, treatment, entries, schedule)


def prompt_state(prompt: ScheduledPrompt, answers: list[Entry]) -> str:
    """How a prompt stands: answered, skipped, failed, unanswered or not_sent (journal_words)."""
    if answers:
        return "answered"
    if prompt.status == PromptStatus.SKIPPED:
        return "skipped"
    if prompt.status == PromptStatus.FAILED:
        return "failed"
    if prompt.status == PromptStatus.SENT:
        return "unanswered"
    return "not_sent"


def treatment_journal_context(
    journal: TreatmentJournal, schedule: Schedule, zone: ZoneInfo
) -> dict[str, object]:
    """What journal_treatment.html shows: whole entries, never shortened."""
    treatment = journal.treatment

    def view(entry: Entry) -> dict[str, object]:
        return entry_view(
            entry, prompt_title="", treatment_number=None, zone=zone, preview_length=None
        )

    return {
        "number": treatment.number,
        "when": format_short(treatment.occurred_at, zone),
        "intention": treatment.intention or "",
        "prompts": [
            {
                "title": step_title(schedule, prompt.step_key),
                "sent": format_short(prompt.sent_at, zone) if prompt.sent_at else "",
                "state": prompt_state(prompt, answers),
                "answers": [view(entry) for entry in answers],
            }
            for prompt, answers in journal.prompts
        ],
        "entries": [view(entry) for entry in journal.entries],
    }


SEARCH_PAGE_SIZE = 5
SNIPPET_RADIUS = 80


@dataclass(frozen=True)
class SearchPage:
    words: list[str]
    matches: list[Entry]
    page: int
    pages: int
    total: int


def search_journal(session: Session, patient: Patient, words: list[str], page: int) -> SearchPage:
    """Entries containing every word (any letter case), newest first.

    The match runs here, not in the database: once entries are encrypted at rest, only the
    application can read them.
    """
    folded = [word.casefold() for word in words]
    found = [
        entry
        for entry in queries.entries_with_text(session, patient.id)
        if entry.text and all(word in entry.text.casefold() for word in folded)
    ]
    pages = max(1, -(-len(found) // SEARCH_PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    start = page * SEARCH_PAGE_SIZE
    return SearchPage(
        words=words,
        matches=found[start : start + SEARCH_PAGE_SIZE],
        page=page,
        pages=pages,
        total=len(found),
    )


def snippet(text: str, words: list[str]) -> list[tuple[str, bool]]:
    """The text around the first match, as (piece, is_a_match) so a template can mark matches.

    Matching is on the casefolded text, which can be longer than the text ("ß" is "ss"), so
    each folded character remembers the character it came from.
    """
    folded_chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for piece in char.casefold():
            folded_chars.append(piece)
            origin.append(index)
    folded = "".join(folded_chars)
    spans: list[tuple[int, int]] = []  # matches, as [start, end) in `text`
    for word in {w.casefold() for w in words if w}:
        at = folded.find(word)
        while at >= 0:
            spans.append((origin[at], origin[at + len(word) - 1] + 1))
            at = folded.find(word, at + len(word))
    first = min((span_start for span_start, _ in spans), default=0)
    start = max(0, first - SNIPPET_RADIUS)
    end = min(len(text), first + SNIPPET_RADIUS * 2)
    window = text[start:end]
    marks = [False] * len(window)
    for span_start, span_end in spans:
        for index in range(max(span_start, start), min(span_end, end)):
            marks[index - start] = True
    pieces: list[tuple[str, bool]] = []
    for char, marked in zip(window, marks, strict=True):
        if pieces and pieces[-1][1] == marked:
            pieces[-1] = (pieces[-1][0] + char, marked)
        else:
            pieces.append((char, marked))
    if start > 0:
        pieces.insert(0, ("…", False))
    if end < len(text):
        pieces.append(("…", False))
    return pieces
