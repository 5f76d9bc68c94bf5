"""Integration practices: what a patient does with the window a treatment opens.

Pure domain: recording a practice, its minutes and its note, and summing a window of them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.schedule import Schedule
from bot.db import queries
from bot.db.models import Patient, Practice, ScheduledPrompt
from bot.domain.treatments import integration_treatment

# In the order the buttons show them; names and button labels live in labels.html.
KINDS = (
    "journaling",
    "meditation",
    "movement",
    "nature",
    "art",
    "museum",
    "massage",
    "nutrition",
    "social_break",
    "mindful_media",
    "talk",
    "other",
)
# Words a patient may type after /practice for each kind.
ALIASES = {
    "journaling": ("journal", "journaling", "journalling", "writing", "write"),
    "meditation": ("meditation", "meditate", "meditated", "breathing", "breathwork"),
    "movement": ("yoga", "taichi", "tai-chi", "movement", "qigong", "stretching"),
    "nature": ("walk", "nature", "hike", "forest", "park"),
    "art": ("art", "drawing", "painting", "music", "creative", "craft"),
    "museum": ("museum", "gallery", "exhibition"),
    "massage": ("massage", "bodywork"),
    "nutrition": ("nutrition", "food", "cooking", "exercise", "sleep", "health"),
    "social_break": ("offline", "detox", "social-break", "nosocial"),
    "mindful_media": ("media", "podcast", "book", "reading", "film", "documentary"),
    "talk": ("talk", "therapy", "therapist", "guide", "session"),
    "other": ("other",),
}
MAX_MINUTES = 24 * 60
MAX_NOTE_LENGTH = 4000
MAX_LABEL_LENGTH = 80
MINUTE_CHOICES = (5, 10, 20, 30, 45, 60)
# A note typed this soon after choosing a practice belongs to it.
NOTE_WINDOW = timedelta(minutes=30)
MEDITATION_DAY_MINUTES = 5
_MINUTES = re.compile(r"(\d+)\s*(?:m|min|mins|minutes)?", re.IGNORECASE)


def kind_of(word: str) -> str | None:
    word = word.lower().strip()
    for kind, aliases in ALIASES.items():
        if word == kind or word in aliases:
            return kind
    return None


@dataclass(frozen=True)
class PracticeArgs:
    kind: str
    minutes: int | None
    note: str


def parse_practice_args(args: Sequence[str]) -> PracticeArgs | None:
    """`/practice meditation 10 felt calm`: a kind, optional minutes, an optional note.
    None when the first word names no practice or the minutes are out of range."""
    if not args:
        return None
    kind = kind_of(args[0])
    if kind is None:
        return None
    rest = list(args[1:])
    minutes = None
    if rest and (match := _MINUTES.fullmatch(rest[0])):
        minutes = int(match.group(1))
        if not 0 < minutes <= MAX_MINUTES:
            return None
        rest = rest[1:]
    return PracticeArgs(kind, minutes, " ".join(rest).strip())


def record_practice(
    session: Session,
    patient: Patient,
    kind: str,
    now: datetime,
    schedule: Schedule,
    *,
    minutes: int | None = None,
    note: str = "",
    prompt: ScheduledPrompt | None = None,
) -> Practice:
    """A practice done now, in the current integration period (or the prompt's treatment).
    For "other", the words name it; for the rest, they are its note."""
    if kind not in KINDS:
        raise ValueError(f"unknown practice {kind!r}")
    if prompt is not None:
        treatment_id: int | None = prompt.treatment_id
    else:
        treatment = integration_treatment(session, patient, now, schedule)
        treatment_id = treatment.id if treatment else None
    practice = Practice(
        patient_id=patient.id,
        treatment_id=treatment_id,
        prompt_id=prompt.id if prompt else None,
        kind=kind,
        minutes=minutes,
        done_at=now,
    )
    if note.strip():
        add_words(practice, note, message_id=None)
    session.add(practice)
    session.flush()
    return practice


def set_minutes(session: Session, patient: Patient, practice_id: int, minutes: int) -> Practice:
    """Minutes from a button; the practice must be the patient's own."""
    practice = session.get(Practice, practice_id)
    if practice is None or practice.patient_id != patient.id or not 0 < minutes <= MAX_MINUTES:
        raise LookupError("no such practice")
    practice.minutes = minutes
    return practice


def latest_practice(session: Session, patient: Patient) -> Practice | None:
    return session.scalars(
        select(Practice)
        .where(Practice.patient_id == patient.id)
        .order_by(Practice.done_at.desc(), Practice.id.desc())
        .limit(1)
    ).first()


def practice_awaiting_words(session: Session, patient: Patient, now: datetime) -> Practice | None:
    """The practice just chosen, still open for a note (or, for "other", its name): the latest
    thing the patient did, within NOTE_WINDOW, with no prompt or entry since."""
    practice = latest_practice(session, patient)
    if practice is None or now - practice.done_at > NOTE_WINDOW:
        return None
    if practice.note is not None and not (practice.kind == "other" and practice.label is None):
        return None
    return None if queries.anything_since(session, patient.id, practice.done_at) else practice


def add_words(practice: Practice, text: str, message_id: int | None) -> str:
    """The patient's words for a practice: "other"'s name first, then a note. Which one."""
    practice.note_message_id = message_id
    if practice.kind == "other" and practice.label is None:
        practice.label = text.strip()[:MAX_LABEL_LENGTH]
        return "label"
    practice.note = text[:MAX_NOTE_LENGTH]
    return "note"


def words_already_added(session: Session, patient: Patient, message_id: int) -> bool:
    """A redelivered message that already named or annotated a practice."""
    return (
        session.scalar(
            select(Practice.id).where(
                Practice.patient_id == patient.id, Practice.note_message_id == message_id
            )
        )
        is not None
    )


def practices_between(
    session: Session, patient_id: int, start: datetime | None, end: datetime
) -> Sequence[Practice]:
    """The patient's practices from `start` (or all) to `end`, oldest first."""
    statement = select(Practice).where(Practice.patient_id == patient_id, Practice.done_at <= end)
    if start is not None:
        statement = statement.where(Practice.done_at >= start)
    return session.scalars(statement.order_by(Practice.done_at, Practice.id)).all()


@dataclass(frozen=True)
class PracticeSummary:
    times: dict[str, int]  # kind -> how many times, in KINDS order
    minutes: dict[str, int]  # kind -> total minutes given
    total_minutes: int
    meditation_days: int  # days with at least MEDITATION_DAY_MINUTES of meditation

    @property
    def count(self) -> int:
        return sum(self.times.values())


def summarize(practices: Sequence[Practice], zone: ZoneInfo) -> PracticeSummary:
    times = Counter(p.kind for p in practices)
    minutes: Counter[str] = Counter()
    meditation: Counter[object] = Counter()
    for practice in practices:
        minutes[practice.kind] += practice.minutes or 0
        if practice.kind == "meditation":
            meditation[practice.done_at.astimezone(zone).date()] += practice.minutes or 0
    return PracticeSummary(
        times={kind: times[kind] for kind in KINDS if times[kind]},
        minutes={kind: minutes[kind] for kind in KINDS if times[kind]},
        total_minutes=sum(minutes.values()),
        meditation_days=sum(1 for total in meditation.values() if total >= MEDITATION_DAY_MINUTES),
    )
