"""The guide: linked by a patient's one-time code, adds session notes, sees only what is shared.

Every check is made here, on the server side, from the Telegram user id of whoever asks: a guide
reaches only the patients linked to them, and only to add notes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.db import queries
from bot.db.models import GuideInvite, GuideLink, Patient, SessionNote, Treatment

INVITE_VALID = timedelta(hours=24)
NOTES_WINDOW = timedelta(minutes=30)
MAX_NOTE_LENGTH = 4000
# A session logged as planned a little later still counts as the current one.
CURRENT_SESSION_AHEAD = timedelta(hours=6)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


class GuideError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # what guide.html explains


def _hash(code: str) -> str:
    cleaned = "".join(code.upper().split()).replace("-", "")
    return hashlib.sha256(cleaned.encode()).hexdigest()


def new_invite(session: Session, patient: Patient, now: datetime) -> str:
    """A one-time code, valid INVITE_VALID; only its hash is stored."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    session.add(
        GuideInvite(patient_id=patient.id, code_hash=_hash(raw), expires_at=now + INVITE_VALID)
    )
    return f"{raw[:4]}-{raw[4:]}"


def join(
    session: Session, code: str, guide_user_id: int, guide_chat_id: int, name: str, now: datetime
) -> tuple[GuideLink, Patient]:
    invite = session.scalars(
        select(GuideInvite).where(GuideInvite.code_hash == _hash(code))
    ).one_or_none()
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        raise GuideError("bad_code")
    patient = session.get_one(Patient, invite.patient_id)
    if patient.telegram_user_id == guide_user_id:
        raise GuideError("own_code")
    invite.used_at = now
    link = session.scalars(
        select(GuideLink).where(
            GuideLink.patient_id == patient.id, GuideLink.guide_user_id == guide_user_id
        )
    ).one_or_none()
    if link is None:
        link = GuideLink(
            patient_id=patient.id,
            guide_user_id=guide_user_id,
            guide_chat_id=guide_chat_id,
            guide_name=name,
            created_at=now,
        )
        session.add(link)
    return link, patient


def guides_of(session: Session, patient_id: int) -> Sequence[GuideLink]:
    return session.scalars(
        select(GuideLink).where(GuideLink.patient_id == patient_id).order_by(GuideLink.id)
    ).all()


def unlink_all(session: Session, patient: Patient) -> int:
    """The patient removes every guide; pending invitations go too."""
    session.execute(delete(GuideInvite).where(GuideInvite.patient_id == patient.id))
    result = session.execute(delete(GuideLink).where(GuideLink.patient_id == patient.id))
    return int(result.rowcount)  # type: ignore[attr-defined]


def patients_of(session: Session, guide_user_id: int) -> list[tuple[GuideLink, Patient]]:
    rows = session.execute(
        select(GuideLink, Patient)
        .join(Patient, Patient.id == GuideLink.patient_id)
        .where(GuideLink.guide_user_id == guide_user_id)
        .order_by(GuideLink.id)
    ).all()
    return [(link, patient) for link, patient in rows]


def choose_patient(session: Session, guide_user_id: int, name: str) -> tuple[GuideLink, Patient]:
    """The linked patient a guide means: the only one, or the one whose first name (or its
    start) they typed."""
    linked = patients_of(session, guide_user_id)
    if not linked:
        raise GuideError("not_a_guide")
    if not name:
        if len(linked) == 1:
            return linked[0]
        raise GuideError("which")
    wanted = name.strip().lower()
    matches = [
        (link, patient)
        for link, patient in linked
        if (patient.first_name or "").lower().startswith(wanted)
    ]
    if len(matches) != 1:
        raise GuideError("which")
    return matches[0]


def current_treatment(session: Session, patient_id: int, now: datetime) -> Treatment | None:
    """The session under way or the latest one: what a note during or after it belongs to."""
    return queries.latest_treatment_before(session, patient_id, now + CURRENT_SESSION_AHEAD)


def add_note(
    session: Session,
    patient_id: int,
    author: str,
    text: str,
    chat_id: int,
    message_id: int | None,
    now: datetime,
) -> SessionNote:
    treatment = current_treatment(session, patient_id, now)
    if treatment is None:
        raise GuideError("no_treatment")
    note = SessionNote(
        patient_id=patient_id,
        treatment_id=treatment.id,
        author=author,
        text=text[:MAX_NOTE_LENGTH],
        chat_id=chat_id,
        message_id=message_id,
        created_at=now,
    )
    session.add(note)
    session.flush()
    return note


def note_from_message(session: Session, chat_id: int, message_id: int) -> SessionNote | None:
    """The note a message already made (a redelivery adds nothing)."""
    return session.scalars(
        select(SessionNote).where(
            SessionNote.chat_id == chat_id, SessionNote.message_id == message_id
        )
    ).first()


def notes_of(session: Session, treatment_ids: Sequence[int]) -> dict[int, list[SessionNote]]:
    notes: dict[int, list[SessionNote]] = {tid: [] for tid in treatment_ids}
    if not treatment_ids:
        return notes
    for note in session.scalars(
        select(SessionNote)
        .where(SessionNote.treatment_id.in_(list(treatment_ids)))
        .order_by(SessionNote.created_at, SessionNote.id)
    ):
        notes[note.treatment_id].append(note)
    return notes


def guide_awaiting_notes(session: Session, guide_user_id: int, now: datetime) -> GuideLink | None:
    """The link a guide's plain message is a note for, after /notes."""
    return session.scalars(
        select(GuideLink)
        .where(GuideLink.guide_user_id == guide_user_id, GuideLink.notes_until > now)
        .order_by(GuideLink.notes_until.desc())
        .limit(1)
    ).first()


def link_by_announcement(
    session: Session, guide_user_id: int, message_id: int
) -> GuideLink | None:
    """The link whose treatment announcement the guide replied to."""
    return session.scalars(
        select(GuideLink).where(
            GuideLink.guide_user_id == guide_user_id,
            GuideLink.treatment_message_id == message_id,
        )
    ).first()
