"""What an export holds: the journal organised by treatment, as plain data for any format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
class ExportTreatment:
    number: int
    when: datetime  # aware, local
    intention: str  # empty when none
    notes: list[str] = field(default_factory=list)  # session notes (guide or patient)
    prompts: list[ExportPrompt] = field(default_factory=list)  # in schedule order
    moods: list[ExportEntry] = field(default_factory=list)  # mood records not tied to a prompt
    entries: list[ExportEntry] = field(default_factory=list)  # free entries of this period


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
