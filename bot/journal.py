"""The journal: recording what a patient writes, prompt buttons, and pages to browse. Plain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.db import queries
from bot.db.models import Entry, Patient, PromptStatus, ScheduledPrompt
from bot.localtime import format_short
from bot.schedule import Schedule
from bot.text import shorten, step_title
from bot.treatments import integration_treatment

PAGE_SIZE = 5
SCALE_VALUES = range(1, 11)


@dataclass(frozen=True)
class Recorded:
    entry: Entry
    prompt: ScheduledPrompt | None  # the prompt it answers, if any
    duplicate: bool  # this Telegram message had already been recorded


def open_prompt(session: Session, patient: Patient, schedule: Schedule) -> ScheduledPrompt | None:
    """The prompt a reply would answer: the latest one sent, while it is still waiting.

    A prompt stays answerable until the next prompt arrives; "Later" and "Skip" close it.
    """
    latest = queries.latest_sent_prompt(session, patient.id)
    if latest is None or latest.status != PromptStatus.SENT:
        return None
    step = schedule.step(latest.step_key)
    if step is not None and step.reply == "none":
        return None
    return latest


def record_text(
    session: Session,
    patient: Patient,
    schedule: Schedule,
    *,
    text: str,
    chat_id: int,
    message_id: int,
    reply_to_message_id: int | None,
    now: datetime,
) -> Recorded:
    """Save a text message as the answer to the open prompt or as a free journal entry.

    The next text after a prompt answers it; a Telegram reply to the open prompt answers it
    even after a first answer. Anything else is a free entry in the current integration period.
    """
    existing = queries.entry_by_message(session, chat_id, message_id)
    if existing is not None:
        return Recorded(entry=existing, prompt=None, duplicate=True)

    current = open_prompt(session, patient, schedule)
    replied_to = (
        queries.prompt_by_message(session, patient.id, reply_to_message_id)
        if reply_to_message_id is not None
        else None
    )
    answers: ScheduledPrompt | None = None
    if current is not None and (
        (replied_to is not None and replied_to.id == current.id)
        or (replied_to is None and not queries.prompt_has_answer(session, current.id))
    ):
        answers = current

    if answers is not None:
        treatment_id: int | None = answers.treatment_id
    elif replied_to is not None:
        treatment_id = replied_to.treatment_id
    else:
        treatment = integration_treatment(session, patient, now, schedule)
        treatment_id = treatment.id if treatment else None

    scale_value = None
    step = schedule.step(answers.step_key) if answers else None
    if step is not None and step.reply == "scale" and text.strip().isdigit():
        number = int(text.strip())
        scale_value = number if number in SCALE_VALUES else None

    entry = Entry(
        patient_id=patient.id,
        treatment_id=treatment_id,
        prompt_id=answers.id if answers else None,
        text=text,
        scale_value=scale_value,
        chat_id=chat_id,
        message_id=message_id,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return Recorded(entry=entry, prompt=answers, duplicate=False)


class PromptAction(StrEnum):
    LATER = "later"
    SKIP = "skip"
    SCALE = "scale"


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
    """Apply a prompt button: Later (ask again after the snooze), Skip, or a scale value."""
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
    if value not in SCALE_VALUES:
        return ActionOutcome.BAD_VALUE, prompt
    if queries.prompt_has_answer(session, prompt.id):
        return ActionOutcome.CLOSED, prompt
    session.add(
        Entry(
            patient_id=patient.id,
            treatment_id=prompt.treatment_id,
            prompt_id=prompt.id,
            scale_value=value,
            chat_id=patient.chat_id,
            message_id=None,
            created_at=now,
        )
    )
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


def journal_page_context(
    journal: JournalPage, schedule: Schedule, zone: ZoneInfo
) -> dict[str, object]:
    """What journal_page.html shows; long entries are shortened so a page fits one message."""
    entries = []
    for entry in journal.entries:
        prompt = journal.prompts.get(entry.prompt_id) if entry.prompt_id else None
        entries.append(
            {
                "when": format_short(entry.created_at, zone),
                "treatment_number": journal.treatment_numbers.get(entry.treatment_id)
                if entry.treatment_id
                else None,
                "prompt_title": step_title(schedule, prompt.step_key) if prompt else "",
                "scale_value": entry.scale_value,
                "text": shorten(entry.text, ENTRY_PREVIEW_LENGTH) if entry.text else "",
            }
        )
    return {
        "entries": entries,
        "page": journal.page + 1,
        "pages": journal.pages,
        "total": journal.total,
    }
