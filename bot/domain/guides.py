"""The guide: linked by a patient's one-time code, adds session notes, sees only what is shared.

Every check is made here, on the server side, from the Telegram user id of whoever asks: a guide
reaches only the patients linked to them, and only to add notes. The guide's ids are stored
encrypted and matched through their keyed lookup hash (under every key, newest first), so a
database dump does not tell who guides whom; invite codes are stored as that same keyed hash.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from bot.db import queries
from bot.db.crypto import current_cipher
from bot.db.models import (
    GuideInvite,
    GuideJoinAttempt,
    GuideLink,
    Patient,
    SessionNote,
    Treatment,
)

INVITE_VALID = timedelta(hours=24)
NOTES_WINDOW = timedelta(minutes=30)
MAX_NOTE_LENGTH = 4000
# A session logged as planned a little later still counts as the current one.
CURRENT_SESSION_AHEAD = timedelta(hours=6)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: 32 letters, 5 bits each
# Ten letters, 50 bits: with at most MAX_FAILED_JOINS guesses an hour per person, guessing any
# of a clinic's open codes stays out of reach even for someone with many accounts.
CODE_LENGTH = 10
MAX_FAILED_JOINS = 5
JOIN_WINDOW = timedelta(hours=1)
# Where a note was written is kept only as long as Telegram may deliver its message again.
NOTE_ORIGIN_MEMORY = timedelta(days=2)


class GuideError(Exception):
    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason  # what guide.html explains
        self.details = details  # and what it says it with


def user_hashes(telegram_id: int) -> list[str]:
    """The lookup hashes of a Telegram user or chat id under every key, newest first."""
    return current_cipher().lookup_hashes(str(telegram_id))


def user_hash(telegram_id: int) -> str:
    """The lookup hash to store, under the newest key."""
    return current_cipher().lookup_hash(str(telegram_id))


def _clean_code(code: str) -> str:
    return "".join(code.upper().split()).replace("-", "")


def new_invite(session: Session, patient: Patient, now: datetime) -> str:
    """A one-time code, valid INVITE_VALID; only its keyed hash is stored."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(CODE_LENGTH))
    session.add(
        GuideInvite(
            patient_id=patient.id,
            code_hash=current_cipher().lookup_hash(raw),
            expires_at=now + INVITE_VALID,
        )
    )
    half = CODE_LENGTH // 2
    return f"{raw[:half]}-{raw[half:]}"


def join_wait(session: Session, guide_user_id: int, now: datetime) -> timedelta | None:
    """How long someone with MAX_FAILED_JOINS failed codes in the last JOIN_WINDOW waits until
    they may try again; None if they may try now."""
    failed = session.scalars(
        select(GuideJoinAttempt.attempted_at)
        .where(
            GuideJoinAttempt.user_hash.in_(user_hashes(guide_user_id)),
            GuideJoinAttempt.attempted_at > now - JOIN_WINDOW,
        )
        .order_by(GuideJoinAttempt.attempted_at.desc())
        .limit(MAX_FAILED_JOINS)
    ).all()
    if len(failed) < MAX_FAILED_JOINS:
        return None
    # The window opens again when the oldest of these leaves it.
    return failed[-1] + JOIN_WINDOW - now


def join(
    session: Session, code: str, guide_user_id: int, guide_chat_id: int, name: str, now: datetime
) -> tuple[GuideLink, Patient]:
    """Link the guide to the patient whose code this is. A code that does not work is recorded
    as a failed attempt (the caller commits it with the refusal); after MAX_FAILED_JOINS in an
    hour, every code is refused, the right one too, until the hour has passed."""
    wait = join_wait(session, guide_user_id, now)
    if wait is not None:
        raise GuideError("wait", minutes=max(1, math.ceil(wait.total_seconds() / 60)))
    cleaned = _clean_code(code)
    invite = (
        session.scalars(
            select(GuideInvite).where(
                GuideInvite.code_hash.in_(current_cipher().lookup_hashes(cleaned))
            )
        ).first()
        if cleaned
        else None
    )
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        if cleaned:
            session.add(GuideJoinAttempt(user_hash=user_hash(guide_user_id), attempted_at=now))
        raise GuideError("bad_code")
    patient = session.get_one(Patient, invite.patient_id)
    if patient.telegram_user_id == guide_user_id:
        raise GuideError("own_code")
    invite.used_at = now
    link = session.scalars(
        select(GuideLink).where(
            GuideLink.patient_id == patient.id,
            GuideLink.guide_user_hash.in_(user_hashes(guide_user_id)),
        )
    ).first()
    if link is None:
        link = GuideLink(
            patient_id=patient.id,
            guide_user_hash=user_hash(guide_user_id),
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


def set_announcements(patient: Patient, on: bool) -> None:
    """Whether the patient's guides are told each time a treatment is logged."""
    patient.announce_treatments = on


def announced_links(session: Session, patient_id: int) -> Sequence[GuideLink]:
    """The guides to tell of a treatment just logged: none unless the patient chose so."""
    patient = session.get_one(Patient, patient_id)
    return guides_of(session, patient_id) if patient.announce_treatments else []


def patients_of(session: Session, guide_user_id: int) -> list[tuple[GuideLink, Patient]]:
    rows = session.execute(
        select(GuideLink, Patient)
        .join(Patient, Patient.id == GuideLink.patient_id)
        .where(GuideLink.guide_user_hash.in_(user_hashes(guide_user_id)))
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
        chat_hash=user_hash(chat_id),
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
            SessionNote.chat_hash.in_(user_hashes(chat_id)), SessionNote.message_id == message_id
        )
    ).first()


def forget_note_origins(session: Session, before: datetime) -> int:
    """Notes written before `before` forget which chat and message they came from: that served
    only to recognise a redelivered message."""
    result = session.execute(
        update(SessionNote)
        .where(
            SessionNote.created_at < before,
            or_(SessionNote.chat_hash.is_not(None), SessionNote.message_id.is_not(None)),
        )
        .values(chat_hash=None, message_id=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def forget_spent(session: Session, now: datetime) -> int:
    """Daily: invitations used or expired (no code can open them again) and failed join
    attempts older than their window (they limit nothing any more), and where old notes were
    written."""
    invites = session.execute(
        delete(GuideInvite).where(
            or_(GuideInvite.used_at.is_not(None), GuideInvite.expires_at <= now)
        )
    )
    attempts = session.execute(
        delete(GuideJoinAttempt).where(GuideJoinAttempt.attempted_at <= now - JOIN_WINDOW)
    )
    forgotten = forget_note_origins(session, now - NOTE_ORIGIN_MEMORY)
    removed = (int(result.rowcount) for result in (invites, attempts))  # type: ignore[attr-defined]
    return sum(removed) + forgotten


@dataclass(frozen=True)
class GuideLeft:
    """A patient whose guide deleted their data: to be told, kindly."""

    chat_id: int
    guide_name: str


def end_guide_role(session: Session, telegram_user_id: int) -> list[GuideLeft]:
    """Someone deletes their data: every link where they are a guide goes, with their failed
    join attempts; the notes they wrote stay in their patients' records, without where they
    came from. Returns the patients to tell."""
    links = session.scalars(
        select(GuideLink)
        .where(GuideLink.guide_user_hash.in_(user_hashes(telegram_user_id)))
        .order_by(GuideLink.id)
    ).all()
    chats = {telegram_user_id} | {link.guide_chat_id for link in links}
    chat_hashes = [value for chat in chats for value in user_hashes(chat)]
    session.execute(
        update(SessionNote)
        .where(SessionNote.author == "guide", SessionNote.chat_hash.in_(chat_hashes))
        .values(chat_hash=None, message_id=None)
    )
    told = [
        GuideLeft(patient.chat_id, link.guide_name or "")
        for link in links
        if (patient := session.get(Patient, link.patient_id)) is not None
    ]
    session.execute(delete(GuideLink).where(GuideLink.id.in_([link.id for link in links])))
    session.execute(
        delete(GuideJoinAttempt).where(
            GuideJoinAttempt.user_hash.in_(user_hashes(telegram_user_id))
        )
    )
    return told


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
        .where(
            GuideLink.guide_user_hash.in_(user_hashes(guide_user_id)),
            GuideLink.notes_until > now,
        )
        .order_by(GuideLink.notes_until.desc())
        .limit(1)
    ).first()


def link_by_announcement(
    session: Session, guide_user_id: int, message_id: int
) -> GuideLink | None:
    """The link whose treatment announcement the guide replied to."""
    return session.scalars(
        select(GuideLink).where(
            GuideLink.guide_user_hash.in_(user_hashes(guide_user_id)),
            GuideLink.treatment_message_id == message_id,
        )
    ).first()
