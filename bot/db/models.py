"""Typed ORM models. Every datetime is aware and stored in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.db.crypto import LOOKUP_HASH_OF, EncryptedInt, EncryptedText

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which keeps no zone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware one")
        converted = value.astimezone(UTC)
        return converted.replace(tzinfo=None) if dialect.name == "sqlite" else converted

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Patient(Base):
    """A Telegram user of the companion. Before consent only the pending state is kept."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    first_name: Mapped[str | None] = mapped_column(EncryptedText())
    consented_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Quiet hours as minutes after local midnight; both NULL means "off".
    quiet_start_minute: Mapped[int | None] = mapped_column(SmallInteger)
    quiet_end_minute: Mapped[int | None] = mapped_column(SmallInteger)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Telegram said we cannot reach them (blocked, account gone): prompts wait until /start.
    unreachable_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # After /notes: the patient's next message is a session note, until then.
    notes_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pending_intention: Mapped[str | None] = mapped_column(EncryptedText())
    # When the pending intention was set: retention (RETENTION_DAYS) goes by it.
    pending_intention_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Whether the patient's guides are told each time a treatment is logged: the patient's
    # choice, off unless chosen (nothing reaches a guide otherwise but what is /share-d).
    announce_treatments: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    # ISO 3166 code for crisis resources; NULL: the time zone's country.
    country: Mapped[str | None] = mapped_column(EncryptedText())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Treatment(Base):
    """One ketamine treatment, numbered per patient; its schedule counts from `occurred_at`."""

    __tablename__ = "treatments"
    __table_args__ = (UniqueConstraint("patient_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(String(64))
    intention: Mapped[str | None] = mapped_column(EncryptedText())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PromptStatus(StrEnum):
    PENDING = "pending"  # waiting for its due time
    HELD = "held"  # the patient paused; released by /resume
    CLAIMED = "claimed"  # a dispatcher is sending it; the lease says until when
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"  # given up after repeated errors; the reason is kept


class ScheduledPrompt(Base):
    """One step of a treatment's schedule: a row with a due time, sent by the dispatch job."""

    __tablename__ = "scheduled_prompts"
    __table_args__ = (
        UniqueConstraint("treatment_id", "step_key"),
        # The dispatcher's claim reads only pending rows in due order: its cost does not grow
        # with future or already-sent prompts.
        Index(
            "ix_scheduled_prompts_pending_due",
            "due_at",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_scheduled_prompts_claim_lease",
            "claimed_until",
            sqlite_where=text("status = 'claimed'"),
            postgresql_where=text("status = 'claimed'"),
        ),
        Index("ix_scheduled_prompts_patient_status", "patient_id", "status", "due_at"),
        Index("ix_scheduled_prompts_patient_sent", "patient_id", "sent_at"),
        Index("ix_scheduled_prompts_patient_message", "patient_id", "telegram_message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id", ondelete="CASCADE"))
    step_key: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=PromptStatus.PENDING)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EntryKind(StrEnum):
    TEXT = "text"
    MOOD = "mood"  # a 1-10 figure, from /mood or a scale prompt, with an optional note
    VOICE = "voice"
    AUDIO = "audio"
    PHOTO = "photo"
    VIDEO = "video"
    VIDEO_NOTE = "video_note"
    DOCUMENT = "document"


class Entry(Base):
    """A journal entry: an answer to a prompt (prompt_id set) or a free entry.

    `text` is what the patient wrote: the message, a media caption, or a mood note. Media are
    kept as Telegram file ids: Telegram holds the file, the journal holds the reference. All of
    it is encrypted, the kind, mood, file id and length too; the ids and times are not.
    """

    __tablename__ = "entries"
    __table_args__ = (
        # A redelivered Telegram message never makes a second entry.
        UniqueConstraint("chat_id", "message_id"),
        Index("ix_entries_patient_created", "patient_id", "created_at", "id"),
        Index("ix_entries_prompt_id", "prompt_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    treatment_id: Mapped[int | None] = mapped_column(
        ForeignKey("treatments.id", ondelete="SET NULL")
    )
    prompt_id: Mapped[int | None] = mapped_column(
        ForeignKey("scheduled_prompts.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(EncryptedText(), default=EntryKind.TEXT)
    text: Mapped[str | None] = mapped_column(EncryptedText())
    scale_value: Mapped[int | None] = mapped_column(EncryptedInt())
    file_id: Mapped[str | None] = mapped_column(EncryptedText())
    duration_seconds: Mapped[int | None] = mapped_column(EncryptedInt())
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    # When the patient was told it was saved; None until then (or for entries not told).
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Practice(Base):
    """An integration practice the patient did: meditation, a walk in nature, art, a talk with
    the guide... with optional minutes and a note. `label` names an "other" practice."""

    __tablename__ = "practices"
    __table_args__ = (
        Index("ix_practices_patient_done", "patient_id", "done_at"),
        Index("ix_practices_prompt_id", "prompt_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    treatment_id: Mapped[int | None] = mapped_column(
        ForeignKey("treatments.id", ondelete="SET NULL")
    )
    prompt_id: Mapped[int | None] = mapped_column(
        ForeignKey("scheduled_prompts.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(EncryptedText())
    label: Mapped[str | None] = mapped_column(EncryptedText())
    minutes: Mapped[int | None] = mapped_column(EncryptedInt())
    note: Mapped[str | None] = mapped_column(EncryptedText())
    # The message that gave the note or label, so a redelivered copy adds nothing.
    note_message_id: Mapped[int | None] = mapped_column(BigInteger)
    done_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Reminder(Base):
    """A daily nudge to a practice, at a local time of day; due times in UTC, claimed with a
    lease like prompts."""

    __tablename__ = "reminders"
    __table_args__ = (Index("ix_reminders_due", "due_at"),)

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[int] = mapped_column(SmallInteger)  # local minute of the day
    kind: Mapped[str] = mapped_column(EncryptedText())  # one of practices.KINDS
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Goal(Base):
    """A goal of the patient's: a habit to build, one to break, or another goal. `number` is
    how the patient names it (/goal done 2)."""

    __tablename__ = "goals"
    __table_args__ = (UniqueConstraint("patient_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(EncryptedText())  # build, break, goal
    text: Mapped[str] = mapped_column(EncryptedText())
    status: Mapped[str] = mapped_column(String(8), default="active")  # active, done, dropped
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GoalCheck(Base):
    """How a goal went in one week (the patient's local ISO week): yes, partly or no."""

    __tablename__ = "goal_checks"
    __table_args__ = (UniqueConstraint("goal_id", "week"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(8))  # "2026-W48"
    answer: Mapped[str] = mapped_column(EncryptedText())  # yes, partly, no
    note: Mapped[str | None] = mapped_column(EncryptedText())
    note_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GoalCheckin(Base):
    """When a patient with active goals is next asked how they went; claimed with a lease."""

    __tablename__ = "goal_checkins"
    __table_args__ = (Index("ix_goal_checkins_due", "due_at"),)

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GuideLink(Base):
    """A guide (a Telegram user) linked by a patient's invitation; the guide may add session
    notes to that patient's treatments and receives only what the patient shares.

    The guide's Telegram ids are encrypted; every check of who a guide is matches the keyed
    lookup hash of their user id, so a database dump does not show who guides whom.
    """

    __tablename__ = "guide_links"
    __table_args__ = (
        UniqueConstraint("patient_id", "guide_user_hash"),
        Index("ix_guide_links_guide_user_hash", "guide_user_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    guide_user_hash: Mapped[str] = mapped_column(
        String(64), info={LOOKUP_HASH_OF: "guide_user_id"}
    )
    guide_user_id: Mapped[int] = mapped_column(EncryptedInt())
    guide_chat_id: Mapped[int] = mapped_column(EncryptedInt())
    guide_name: Mapped[str | None] = mapped_column(EncryptedText())
    # After /notes: the guide's next message is a note for this patient, until then.
    notes_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The message in the guide's chat announcing the patient's latest treatment: a reply to it
    # is a note for that treatment.
    treatment_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GuideInvite(Base):
    """A one-time code a patient gives their guide; only its keyed hash is kept (the lookup
    hash, matched under every key)."""

    __tablename__ = "guide_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SessionNote(Base):
    """What was noted about a session: by the guide, or by the patient themselves."""

    __tablename__ = "session_notes"
    __table_args__ = (
        Index("ix_session_notes_treatment", "treatment_id"),
        Index("ix_session_notes_message", "chat_hash", "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    treatment_id: Mapped[int] = mapped_column(ForeignKey("treatments.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(8))  # guide, patient
    text: Mapped[str] = mapped_column(EncryptedText())
    # Where the note was written (the lookup hash of the chat id) and its message: only to
    # recognise a redelivered message. Both are forgotten after a couple of days, and at once
    # when a guide deletes their data.
    chat_hash: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GuideJoinAttempt(Base):
    """A `/guide join` whose code did not work, kept an hour to limit guessing; the person is
    named by the lookup hash of their Telegram user id only."""

    __tablename__ = "guide_join_attempts"
    __table_args__ = (Index("ix_guide_join_attempts_user", "user_hash", "attempted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_hash: Mapped[str] = mapped_column(String(64))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WeeklyRecap(Base):
    """A patient's recap without asking: which local weekday and time, and when it is due next.

    `due_at` is NULL while it is off; the dispatcher claims due rows with a lease, like prompts.
    """

    __tablename__ = "weekly_recaps"
    __table_args__ = (
        Index(
            "ix_weekly_recaps_due",
            "due_at",
            sqlite_where=text("due_at IS NOT NULL"),
            postgresql_where=text("due_at IS NOT NULL"),
        ),
    )

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 is Monday
    minute: Mapped[int] = mapped_column(SmallInteger)  # local minutes after midnight
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InboxUpdate(Base):
    """A Telegram update, written before Telegram is told it arrived, until it is handled.

    The raw update (encrypted: it holds the patient's words) is cleared once handled; the row
    stays a while so that a redelivery of the same update_id is recognised and skipped.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        Index(
            "ix_inbox_unhandled",
            "update_id",
            sqlite_where=text("handled_at IS NULL"),
            postgresql_where=text("handled_at IS NULL"),
        ),
        # A chat's updates in order: the instance that holds the chat handles the earlier ones.
        Index("ix_inbox_chat_update", "chat_id", "update_id"),
        Index("ix_inbox_received_at", "received_at"),
    )

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    raw: Mapped[str | None] = mapped_column(EncryptedText())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ChatLease(Base):
    """Which instance holds a chat right now: the handling of its updates and the sending of
    a prompt to it take the chat's lease, so with several instances a reply never races the
    prompt it answers and a patient's updates are handled one at a time, in order. An
    instance that dies holds its leases only until `expires_at`."""

    __tablename__ = "chat_leases"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SendSlot(Base):
    """Telegram's limits shared by every instance: for each key (all messages, or one chat) the
    earliest time, in Unix seconds, at which the next message may go. Each send moves it on by
    one interval (the generic cell rate algorithm, with no burst)."""

    __tablename__ = "send_slots"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_at: Mapped[float] = mapped_column(Float)


class Instance(Base):
    """A running bot process, seen recently: what `python -m bot status` counts."""

    __tablename__ = "instances"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))  # polling, webhook
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
