"""Guides' ids at rest, invite codes as keyed hashes, a limit on join attempts; when the
pending intention was set; the patient's choice to tell their guides of treatments.

Revision ID: 0014
Revises: 0013

- guide_links: the guide's user and chat ids are encrypted; `guide_user_hash` (the keyed lookup
  hash of the user id) is what every check matches.
- session_notes: `chat_id` (the guide's chat, for a guide's note) becomes `chat_hash`, the lookup
  hash of it, used only to recognise a redelivered message.
- guide_invites: codes were stored as plain SHA-256, which cannot be turned into the keyed hash
  without the code: open invitations are dropped (they lived 24 hours; the patient makes a new
  one with /guide invite).
- guide_join_attempts: failed `/guide join` attempts, by the lookup hash of the user id.
- patients: `pending_intention_at` (set to now for an intention already pending, so retention
  counts from the upgrade) and `announce_treatments` (off: nothing reaches a guide unless the
  patient chooses).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from bot.db.crypto import current_cipher

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now() -> datetime:
    moment = datetime.now(UTC)
    # SQLite keeps no zone: the models store UTC without one there.
    return moment.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else moment


def upgrade() -> None:
    connection = op.get_bind()
    cipher = current_cipher()

    with op.batch_alter_table("patients") as batch_op:
        batch_op.add_column(
            sa.Column("pending_intention_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "announce_treatments", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    connection.execute(
        sa.text(
            "UPDATE patients SET pending_intention_at = :now WHERE pending_intention IS NOT NULL"
        ),
        {"now": _now()},
    )

    op.drop_index("ix_guide_links_guide_user_id", table_name="guide_links")
    with op.batch_alter_table("guide_links") as batch_op:
        batch_op.drop_constraint("uq_guide_links_patient_id_guide_user_id", type_="unique")
        batch_op.add_column(sa.Column("guide_user_hash", sa.String(length=64), nullable=True))
        for column in ("guide_user_id", "guide_chat_id"):
            batch_op.alter_column(
                column,
                existing_type=sa.BigInteger(),
                type_=sa.Text(),
                existing_nullable=False,
                postgresql_using=f"{column}::text",
            )
    links = connection.execute(
        sa.text("SELECT id, guide_user_id, guide_chat_id FROM guide_links")
    ).all()
    for link_id, user_id, chat_id in links:
        user, chat = str(int(user_id)), str(int(chat_id))
        connection.execute(
            sa.text(
                "UPDATE guide_links SET guide_user_hash = :hash, guide_user_id = :user, "
                "guide_chat_id = :chat WHERE id = :id"
            ),
            {
                "hash": cipher.lookup_hash(user),
                "user": cipher.encrypt(user),
                "chat": cipher.encrypt(chat),
                "id": link_id,
            },
        )
    with op.batch_alter_table("guide_links") as batch_op:
        batch_op.alter_column(
            "guide_user_hash", existing_type=sa.String(length=64), nullable=False
        )
        batch_op.create_unique_constraint(
            "uq_guide_links_patient_id_guide_user_hash", ["patient_id", "guide_user_hash"]
        )
    op.create_index("ix_guide_links_guide_user_hash", "guide_links", ["guide_user_hash"])

    connection.execute(sa.text("DELETE FROM guide_invites"))

    op.drop_index("ix_session_notes_message", table_name="session_notes")
    with op.batch_alter_table("session_notes") as batch_op:
        batch_op.add_column(sa.Column("chat_hash", sa.String(length=64), nullable=True))
    notes = connection.execute(sa.text("SELECT id, chat_id FROM session_notes")).all()
    for note_id, chat_id in notes:
        connection.execute(
            sa.text("UPDATE session_notes SET chat_hash = :hash WHERE id = :id"),
            {"hash": cipher.lookup_hash(str(int(chat_id))), "id": note_id},
        )
    with op.batch_alter_table("session_notes") as batch_op:
        batch_op.drop_column("chat_id")
    op.create_index("ix_session_notes_message", "session_notes", ["chat_hash", "message_id"])

    op.create_table(
        "guide_join_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_hash", sa.String(length=64), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guide_join_attempts")),
    )
    op.create_index(
        "ix_guide_join_attempts_user", "guide_join_attempts", ["user_hash", "attempted_at"]
    )


def downgrade() -> None:
    """Back to plain ids. A note's chat cannot be read back from its hash: every note gets its
    patient's chat (the id served only to recognise a redelivery). Join attempts are dropped."""
    connection = op.get_bind()
    cipher = current_cipher()

    op.drop_index("ix_guide_join_attempts_user", table_name="guide_join_attempts")
    op.drop_table("guide_join_attempts")

    op.drop_index("ix_session_notes_message", table_name="session_notes")
    with op.batch_alter_table("session_notes") as batch_op:
        batch_op.add_column(sa.Column("chat_id", sa.BigInteger(), nullable=True))
    connection.execute(
        sa.text(
            "UPDATE session_notes SET chat_id = "
            "(SELECT chat_id FROM patients WHERE patients.id = session_notes.patient_id)"
        )
    )
    with op.batch_alter_table("session_notes") as batch_op:
        batch_op.alter_column("chat_id", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column("chat_hash")
    op.create_index("ix_session_notes_message", "session_notes", ["chat_id", "message_id"])

    op.drop_index("ix_guide_links_guide_user_hash", table_name="guide_links")
    links = connection.execute(
        sa.text("SELECT id, guide_user_id, guide_chat_id FROM guide_links")
    ).all()
    for link_id, user, chat in links:
        connection.execute(
            sa.text(
                "UPDATE guide_links SET guide_user_id = :user, guide_chat_id = :chat "
                "WHERE id = :id"
            ),
            {"user": cipher.decrypt(user), "chat": cipher.decrypt(chat), "id": link_id},
        )
    with op.batch_alter_table("guide_links") as batch_op:
        batch_op.drop_constraint("uq_guide_links_patient_id_guide_user_hash", type_="unique")
        batch_op.drop_column("guide_user_hash")
        for column in ("guide_user_id", "guide_chat_id"):
            batch_op.alter_column(
                column,
                existing_type=sa.Text(),
                type_=sa.BigInteger(),
                existing_nullable=False,
                postgresql_using=f"{column}::bigint",
            )
        batch_op.create_unique_constraint(
            "uq_guide_links_patient_id_guide_user_id", ["patient_id", "guide_user_id"]
        )
    op.create_index("ix_guide_links_guide_user_id", "guide_links", ["guide_user_id"])

    with op.batch_alter_table("patients") as batch_op:
        batch_op.drop_column("announce_treatments")
        batch_op.drop_column("pending_intention_at")
