"""What an export holds: the journal organised by treatment, as plain data for any format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.core.schedule import Schedule
from bot.core.text import step_title
from bot.db import queries
from bot.db.models import Entry, EntryKind, Patient, Practice
from bot.domain.goals import checks_of, goals_of
from bot.domain.guides import notes_of
from bot.domain.journal import gather_treatment, prompt_state
from bot.domain.patients import zone_of
from bot.domain.practices import practices_between


@dataclass(frozen=True)
class ExportEntry:
    when: datetime  # aware, in the patient's zone
    kind: str  # text, mood, voice, audio, photo, video, video_note, document
    text: str  # what the patient wrote, a caption or a mood note; may be empty
    mood: int | None = None  # 1-10 for mood records
    duration_seconds: int | None = None  # voice notes, audio, video
    edited: bool = False


@dataclass(frozen=True)
class ExportPrompt:
    title: str
    sent_at: datetime | None  # aware, local; None when it was never sent
    status: str  # "answered", "skipped", "unanswered", "not sent yet"
    answers: list[ExportEntry] = field(default_factory=list)


@dataclass(frozen=True)
class ExportPractice:
    when: datetime  # aware, local
    kind: str  # one of practices.KINDS
    label: str  # what an "other" practice was; empty otherwise
    minutes: int | None
    note: str


@dataclass(frozen=True)
class ExportGoal:
    number: int
    kind: str  # build, break, goal
    text: str
    status: str  # active, done, dropped
    checks: list[tuple[str, str, str]] = field(default_factory=list)  # (week, answer, note)


@dataclass(frozen=True)
class ExportTreatment:
    number: int
    when: datetime  # aware, local
    intention: str  # empty when none
    notes: list[tuple[str, str]] = field(default_factory=list)  # (guide or patient, text)
    prompts: list[ExportPrompt] = field(default_factory=list)  # in schedule order
    moods: list[ExportEntry] = field(default_factory=list)  # mood records not tied to a prompt
    entries: list[ExportEntry] = field(default_factory=list)  # free entries of this period
    practices: list[ExportPractice] = field(default_factory=list)


@dataclass(frozen=True)
class ExportData:
    patient_name: str  # may be empty
    timezone: str  # IANA name
    generated_at: datetime  # aware, local
    start: datetime | None  # aware, local; None: from the beginning
    end: datetime  # aware, local
    treatments: list[ExportTreatment]
    other_entries: list[ExportEntry]  # free entries and moods outside any treatment
    mood_chart_png: bytes | None = None
    other_practices: list[ExportPractice] = field(default_factory=list)
    goals: list[ExportGoal] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.treatments or self.other_entries or self.other_practices or self.goals)


def collect_export(
    session: Session,
    patient: Patient,
    schedule: Schedule,
    now: datetime,
    default_timezone: str,
    days: int | None = None,
) -> ExportData:
    """The patient's journal, organised by treatment, for the last `days` (or everything)."""
    zone = zone_of(patient, default_timezone)
    start = now - timedelta(days=days) if days else None

    def entry(row: Entry) -> ExportEntry:
        return ExportEntry(
            when=row.created_at.astimezone(zone),
            kind=row.kind,
            text=row.text or "",
            mood=row.scale_value,
            duration_seconds=row.duration_seconds,
            edited=row.edited_at is not None,
        )

    def practice(row: Practice) -> ExportPractice:
        return ExportPractice(
            when=row.done_at.astimezone(zone),
            kind=row.kind,
            label=row.label or "",
            minutes=row.minutes,
            note=row.note or "",
        )

    practices: dict[int | None, list[ExportPractice]] = {}
    for done in practices_between(session, patient.id, start, now):
        practices.setdefault(done.treatment_id, []).append(practice(done))

    rows = queries.entries_since(session, patient.id, start)
    by_treatment: dict[int | None, list[Entry]] = {}
    for row in rows:
        by_treatment.setdefault(row.treatment_id, []).append(row)
    # Treatments in the window, and earlier ones whose integration reaches into it.
    treatments = [
        t
        for t in queries.treatments_of(session, patient.id)
        if t.occurred_at <= now
        and (start is None or t.occurred_at >= start or t.id in by_treatment or t.id in practices)
    ]
    notes = notes_of(session, [t.id for t in treatments])
    exported = []
    for treatment in treatments:
        gathered = gather_treatment(
            session, treatment, by_treatment.pop(treatment.id, []), schedule
        )
        others = gathered.entries
        exported.append(
            ExportTreatment(
                number=treatment.number,
                when=treatment.occurred_at.astimezone(zone),
                intention=treatment.intention or "",
                notes=[(note.author, note.text) for note in notes[treatment.id]],
                prompts=[
                    ExportPrompt(
                        title=step_title(schedule, prompt.step_key),
                        sent_at=prompt.sent_at.astimezone(zone) if prompt.sent_at else None,
                        status=prompt_state(prompt, answers),
                        answers=[entry(row) for row in answers],
                    )
                    for prompt, answers in gathered.prompts
                ],
                moods=[entry(row) for row in others if row.kind == EntryKind.MOOD],
                entries=[entry(row) for row in others if row.kind != EntryKind.MOOD],
                practices=practices.pop(treatment.id, []),
            )
        )
    outside = [row for group in by_treatment.values() for row in group]
    return ExportData(
        patient_name=patient.first_name or "",
        timezone=zone.key,
        generated_at=now.astimezone(zone),
        start=start.astimezone(zone) if start else None,
        end=now.astimezone(zone),
        treatments=exported,
        other_entries=[entry(row) for row in sorted(outside, key=lambda r: (r.created_at, r.id))],
        goals=[
            ExportGoal(goal.number, goal.kind, goal.text, goal.status, checks_of(session, goal.id))
            for goal in goals_of(session, patient.id)
        ],
        other_practices=sorted(
            (done for group in practices.values() for done in group), key=lambda p: p.when
        ),
    )
