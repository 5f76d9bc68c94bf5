"""Query functions: each takes a session and never commits; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    exists,
    func,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.orm import Session, aliased

from bot.db.models import Entry, Patient, Practice, PromptStatus, ScheduledPrompt, Treatment


def patient_by_user(session: Session, telegram_user_id: int) -> Patient | None:
    return session.scalars(
        select(Patient).where(Patient.telegram_user_id == telegram_user_id)
    ).one_or_none()


def next_treatment_number(session: Session, patient_id: int) -> int:
    highest = session.scalar(
        select(func.max(Treatment.number)).where(Treatment.patient_id == patient_id)
    )
    return (highest or 0) + 1


def treatments_between(
    session: Session, patient_id: int, start: datetime, end: datetime
) -> Sequence[Treatment]:
    return session.scalars(
        select(Treatment)
        .where(
            Treatment.patient_id == patient_id,
            Treatment.occurred_at >= start,
            Treatment.occurred_at <= end,
        )
        .order_by(Treatment.occurred_at)
    ).all()


def latest_treatment_before(
    session: Session, patient_id: int, moment: datetime
) -> Treatment | None:
    return session.scalars(
        select(Treatment)
        .where(Treatment.patient_id == patient_id, Treatment.occurred_at <= moment)
        .order_by(Treatment.occurred_at.desc())
        .limit(1)
    ).first()


def next_planned_treatment(session: Session, patient_id: int, now: datetime) -> Treatment | None:
    return session.scalars(
        select(Treatment)
        .where(Treatment.patient_id == patient_id, Treatment.occurred_at > now)
        .order_by(Treatment.occurred_at)
        .limit(1)
    ).first()


def treatments_by_id(session: Session, ids: Iterable[int]) -> dict[int, Treatment]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.scalars(select(Treatment).where(Treatment.id.in_(wanted)))
    return {row.id: row for row in rows}


def prompts_by_id(session: Session, ids: Iterable[int]) -> dict[int, ScheduledPrompt]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.scalars(select(ScheduledPrompt).where(ScheduledPrompt.id.in_(wanted)))
    return {row.id: row for row in rows}


def latest_sent_prompt(
    session: Session, patient_id: int, step_keys: Iterable[str] | None = None
) -> ScheduledPrompt | None:
    """The prompt most recently delivered to the patient (of these steps, if given), whatever
    happened to it since."""
    statement = select(ScheduledPrompt).where(
        ScheduledPrompt.patient_id == patient_id, ScheduledPrompt.sent_at.is_not(None)
    )
    if step_keys is not None:
        statement = statement.where(ScheduledPrompt.step_key.in_(list(step_keys)))
    return session.scalars(
        statement.order_by(ScheduledPrompt.sent_at.desc(), ScheduledPrompt.id.desc()).limit(1)
    ).first()


def prompt_by_message(
    session: Session, patient_id: int, telegram_message_id: int
) -> ScheduledPrompt | None:
    return session.scalars(
        select(ScheduledPrompt).where(
            ScheduledPrompt.patient_id == patient_id,
            ScheduledPrompt.telegram_message_id == telegram_message_id,
        )
    ).first()


def prompt_has_answer(session: Session, prompt_id: int) -> bool:
    """An entry answers a prompt; so does a practice chosen under it."""
    return bool(answered_prompt_ids(session, [prompt_id]))


def entry_by_message(session: Session, chat_id: int, message_id: int) -> Entry | None:
    return session.scalars(
        select(Entry).where(Entry.chat_id == chat_id, Entry.message_id == message_id)
    ).one_or_none()


def treatment_by_number(session: Session, patient_id: int, number: int) -> Treatment | None:
    return session.scalars(
        select(Treatment).where(Treatment.patient_id == patient_id, Treatment.number == number)
    ).first()


def treatment_numbers(session: Session, patient_id: int) -> Sequence[int]:
    return session.scalars(
        select(Treatment.number)
        .where(Treatment.patient_id == patient_id)
        .order_by(Treatment.number)
    ).all()


def prompts_of_treatment(session: Session, treatment_id: int) -> Sequence[ScheduledPrompt]:
    return session.scalars(
        select(ScheduledPrompt).where(ScheduledPrompt.treatment_id == treatment_id)
    ).all()


def entries_of_treatment(session: Session, treatment_id: int) -> Sequence[Entry]:
    return session.scalars(
        select(Entry)
        .where(Entry.treatment_id == treatment_id)
        .order_by(Entry.created_at, Entry.id)
    ).all()


def entries_with_text(session: Session, patient_id: int) -> Iterator[Entry]:
    """The patient's entries that carry text, newest first, read in batches."""
    return iter(
        session.scalars(
            select(Entry)
            .where(Entry.patient_id == patient_id, Entry.text.is_not(None))
            .order_by(Entry.created_at.desc(), Entry.id.desc())
            .execution_options(yield_per=500)
        )
    )


def entries_since(session: Session, patient_id: int, start: datetime | None) -> Sequence[Entry]:
    """The patient's entries from `start` (or all), oldest first."""
    statement = select(Entry).where(Entry.patient_id == patient_id)
    if start is not None:
        statement = statement.where(Entry.created_at >= start)
    return session.scalars(statement.order_by(Entry.created_at, Entry.id)).all()


def treatments_of(session: Session, patient_id: int) -> Sequence[Treatment]:
    return session.scalars(
        select(Treatment).where(Treatment.patient_id == patient_id).order_by(Treatment.occurred_at)
    ).all()


def entry_of(session: Session, patient_id: int, entry_id: int) -> Entry | None:
    """The patient's entry with that id; None if there is none, or it is someone else's."""
    return session.scalars(
        select(Entry).where(Entry.id == entry_id, Entry.patient_id == patient_id)
    ).first()


def anything_since(session: Session, patient_id: int, moment: datetime) -> bool:
    """Has a prompt reached the patient, or have they written an entry, after `moment`?"""
    prompt = latest_sent_prompt(session, patient_id)
    if prompt is not None and prompt.sent_at is not None and prompt.sent_at > moment:
        return True
    entry = latest_entry(session, patient_id)
    return entry is not None and entry.created_at > moment


def latest_entry(session: Session, patient_id: int) -> Entry | None:
    return session.scalars(
        select(Entry)
        .where(Entry.patient_id == patient_id)
        .order_by(Entry.created_at.desc(), Entry.id.desc())
        .limit(1)
    ).first()


def count_entries(session: Session, patient_id: int) -> int:
    return session.scalar(select(func.count(Entry.id)).where(Entry.patient_id == patient_id)) or 0


def entries_page(session: Session, patient_id: int, offset: int, limit: int) -> Sequence[Entry]:
    """Entries newest first."""
    return session.scalars(
        select(Entry)
        .where(Entry.patient_id == patient_id)
        .order_by(Entry.created_at.desc(), Entry.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()


def entries_between(
    session: Session, patient_id: int, start: datetime, end: datetime
) -> Sequence[Entry]:
    return session.scalars(
        select(Entry)
        .where(Entry.patient_id == patient_id, Entry.created_at >= start, Entry.created_at <= end)
        .order_by(Entry.created_at, Entry.id)
    ).all()


def prompts_sent_between(
    session: Session, patient_id: int, start: datetime, end: datetime
) -> Sequence[ScheduledPrompt]:
    return session.scalars(
        select(ScheduledPrompt)
        .where(
            ScheduledPrompt.patient_id == patient_id,
            ScheduledPrompt.sent_at >= start,
            ScheduledPrompt.sent_at <= end,
        )
        .order_by(ScheduledPrompt.sent_at)
    ).all()


def answered_prompt_ids(session: Session, prompt_ids: Iterable[int]) -> set[int]:
    wanted = set(prompt_ids)
    if not wanted:
        return set()
    rows = session.scalars(
        union(
            select(Entry.prompt_id).where(Entry.prompt_id.in_(wanted)),
            select(Practice.prompt_id).where(Practice.prompt_id.in_(wanted)),
        )
    )
    return {prompt_id for prompt_id in rows if prompt_id is not None}


def upcoming_prompts(session: Session, patient_id: int, limit: int) -> Sequence[ScheduledPrompt]:
    return session.scalars(
        select(ScheduledPrompt)
        .where(
            ScheduledPrompt.patient_id == patient_id,
            ScheduledPrompt.status.in_([PromptStatus.PENDING, PromptStatus.HELD]),
        )
        .order_by(ScheduledPrompt.due_at, ScheduledPrompt.id)
        .limit(limit)
    ).all()


def set_prompts_status(
    session: Session, patient_id: int, old: PromptStatus, new: PromptStatus
) -> int:
    """Move every prompt of the patient from one status to another; return how many moved."""
    result = session.execute(
        update(ScheduledPrompt)
        .where(ScheduledPrompt.patient_id == patient_id, ScheduledPrompt.status == old)
        .values(status=new)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def count_due_prompts(
    session: Session, patient_id: int, status: PromptStatus, now: datetime
) -> int:
    return (
        session.scalar(
            select(func.count(ScheduledPrompt.id)).where(
                ScheduledPrompt.patient_id == patient_id,
                ScheduledPrompt.status == status,
                ScheduledPrompt.due_at <= now,
            )
        )
        or 0
    )


def release_expired_claims(session: Session, now: datetime) -> list[int]:
    """Claims whose lease ran out (their dispatcher died) become pending again; their ids."""
    return list(
        session.scalars(
            update(ScheduledPrompt)
            .where(
                ScheduledPrompt.status == PromptStatus.CLAIMED,
                ScheduledPrompt.claimed_until <= now,
            )
            .values(status=PromptStatus.PENDING, claimed_until=None)
            .returning(ScheduledPrompt.id)
            .execution_options(synchronize_session=False)
        )
    )


def no_prompt_of_patient_in_flight() -> ColumnElement[bool]:
    """The prompt's patient has no prompt claimed (being sent, here or by another instance)."""
    in_flight = aliased(ScheduledPrompt)
    return ~exists().where(
        in_flight.patient_id == ScheduledPrompt.patient_id,
        in_flight.status == PromptStatus.CLAIMED,
    )


def first_in_line() -> ColumnElement[bool]:
    """No pending prompt of the prompt's patient comes before it (by due time, then id)."""
    earlier = aliased(ScheduledPrompt)
    return ~exists().where(
        earlier.patient_id == ScheduledPrompt.patient_id,
        earlier.status == PromptStatus.PENDING,
        or_(
            earlier.due_at < ScheduledPrompt.due_at,
            and_(earlier.due_at == ScheduledPrompt.due_at, earlier.id < ScheduledPrompt.id),
        ),
    )


def due_prompts_statement(now: datetime, limit: int) -> Select[ScheduledPrompt, Patient]:
    """Pending prompts due by `now`, oldest first; served by the partial index on pending rows.
    A patient with a prompt claimed elsewhere (another instance is sending it) waits."""
    return (
        select(ScheduledPrompt, Patient)
        .join(Patient, Patient.id == ScheduledPrompt.patient_id)
        .where(
            ScheduledPrompt.status == PromptStatus.PENDING,
            ScheduledPrompt.due_at <= now,
            no_prompt_of_patient_in_flight(),
        )
        .order_by(ScheduledPrompt.due_at, ScheduledPrompt.id)
        .limit(limit)
    )


def due_prompts(
    session: Session, now: datetime, limit: int
) -> Sequence[Row[ScheduledPrompt, Patient]]:
    statement = due_prompts_statement(now, limit)
    if skips_locked_rows(session):
        # Instances claiming at once each get other patients, and none waits for another. Only
        # the patient is locked: a prompt row locked and skipped would hide that patient's
        # first prompt from another instance, which would then claim their second.
        statement = statement.with_for_update(of=Patient, skip_locked=True)
    return session.execute(statement).all()


def skips_locked_rows(session: Session) -> bool:
    """Whether this database has SELECT … FOR UPDATE SKIP LOCKED (SQLite has one writer)."""
    return session.get_bind().dialect.name == "postgresql"


def last_sent_times(session: Session, patient_ids: set[int]) -> dict[int, datetime]:
    """When each patient was last sent a prompt (patients never sent one are absent)."""
    if not patient_ids:
        return {}
    # One index lookup per patient (patient_id, sent_at), not a scan of all their sent rows.
    latest = (
        select(func.max(ScheduledPrompt.sent_at))
        .where(ScheduledPrompt.patient_id == Patient.id)
        .scalar_subquery()
    )
    rows = session.execute(select(Patient.id, latest).where(Patient.id.in_(patient_ids)))
    return {patient_id: sent_at for patient_id, sent_at in rows if sent_at is not None}


def claim_prompts(session: Session, prompt_ids: list[int], lease_until: datetime) -> list[int]:
    """Claim these prompts if still pending, first in their patient's line, and their patient
    has none claimed; those another dispatcher got first, or that another got ahead of, are
    left out.

    The checks are the due query's again, read afresh: on PostgreSQL another instance may have
    claimed a patient's earlier prompt, or given one back, while that query ran, and the claim
    is where it shows (this statement reads what was committed when it began)."""
    if not prompt_ids:
        return []
    claimed = session.scalars(
        update(ScheduledPrompt)
        .where(
            ScheduledPrompt.id.in_(prompt_ids),
            ScheduledPrompt.status == PromptStatus.PENDING,
            no_prompt_of_patient_in_flight(),
            first_in_line(),
        )
        .values(status=PromptStatus.CLAIMED, claimed_until=lease_until)
        .returning(ScheduledPrompt.id)
        .execution_options(synchronize_session=False)
    )
    won = set(claimed)
    return [prompt_id for prompt_id in prompt_ids if prompt_id in won]


def chats_of_prompts(session: Session, prompt_ids: list[int]) -> dict[int, int]:
    """The chat each prompt goes to."""
    rows = session.execute(
        select(ScheduledPrompt.id, Patient.chat_id)
        .join(Patient, Patient.id == ScheduledPrompt.patient_id)
        .where(ScheduledPrompt.id.in_(prompt_ids))
    )
    return {row[0]: row[1] for row in rows}


def chats_of_patients(session: Session, patient_ids: list[int]) -> dict[int, int]:
    """The chat of each patient."""
    rows = session.execute(select(Patient.id, Patient.chat_id).where(Patient.id.in_(patient_ids)))
    return {row[0]: row[1] for row in rows}


def prompts_with_patients(
    session: Session, prompt_ids: Sequence[int]
) -> list[tuple[ScheduledPrompt, Patient, Treatment]]:
    """Each prompt with its patient and treatment, in the order of `prompt_ids`."""
    rows = session.execute(
        select(ScheduledPrompt, Patient, Treatment)
        .join(Patient, Patient.id == ScheduledPrompt.patient_id)
        .join(Treatment, Treatment.id == ScheduledPrompt.treatment_id)
        .where(ScheduledPrompt.id.in_(list(prompt_ids)))
    ).all()
    by_id = {row[0].id: (row[0], row[1], row[2]) for row in rows}
    return [by_id[prompt_id] for prompt_id in prompt_ids if prompt_id in by_id]


def begin_attempts(
    session: Session, claims: Sequence[tuple[int, datetime]], until: datetime
) -> set[int]:
    """Extend our claims (each prompt's named by its lease) to `until` and count one more
    attempt to send each prompt; the prompts whose claims are still ours. A claim that ran out
    before its send began is no attempt: it does not bring the prompt nearer to failing."""
    by_lease: dict[datetime, list[int]] = {}
    for prompt_id, lease in claims:
        by_lease.setdefault(lease, []).append(prompt_id)
    ours: set[int] = set()
    for lease, prompt_ids in by_lease.items():  # one statement: a batch shares its lease
        ours.update(
            session.scalars(
                update(ScheduledPrompt)
                .where(
                    ScheduledPrompt.id.in_(prompt_ids),
                    ScheduledPrompt.status == PromptStatus.CLAIMED,
                    ScheduledPrompt.claimed_until == lease,
                )
                .values(claimed_until=until, attempts=ScheduledPrompt.attempts + 1)
                .returning(ScheduledPrompt.id)
                .execution_options(synchronize_session=False)
            )
        )
    return ours


def hold_back_prompts(session: Session, patient_id: int, until: datetime) -> None:
    """The patient's pending prompts due before `until` wait until then, all of them and not
    only those a dispatcher looked at: they keep their order (ties go by id, which follows the
    schedule) when the first of them is deferred or waits for a retry."""
    session.execute(
        update(ScheduledPrompt)
        .where(
            ScheduledPrompt.patient_id == patient_id,
            ScheduledPrompt.status == PromptStatus.PENDING,
            ScheduledPrompt.due_at < until,
        )
        .values(due_at=until)
        .execution_options(synchronize_session=False)
    )
