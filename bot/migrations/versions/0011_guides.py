"""Guides linked by invitation, and session notes by the guide or the patient.

Revision ID: 0011
Revises: 0010

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _patient_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["patient_id"],
        ["patients.id"],
        name=op.f(f"fk_{table}_patient_id_patients"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch_op:
        batch_op.add_column(sa.Column("notes_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "guide_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("guide_user_id", sa.BigInteger(), nullable=False),
        sa.Column("guide_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("guide_name", sa.Text(), nullable=True),
        sa.Column("notes_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("treatment_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _patient_fk("guide_links"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guide_links")),
        sa.UniqueConstraint(
            "patient_id", "guide_user_id", name=op.f("uq_guide_links_patient_id_guide_user_id")
        ),
    )
    op.create_index("ix_guide_links_guide_user_id", "guide_links", ["guide_user_id"])
    op.create_table(
        "guide_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _patient_fk("guide_invites"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guide_invites")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_guide_invites_code_hash")),
    )
    op.create_table(
        "session_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("treatment_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _patient_fk("session_notes"),
        sa.ForeignKeyConstraint(
            ["treatment_id"],
            ["treatments.id"],
            name=op.f("fk_session_notes_treatment_id_treatments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_notes")),
    )
    op.create_index("ix_session_notes_treatment", "session_notes", ["treatment_id"])
    op.create_index("ix_session_notes_message", "session_notes", ["chat_id", "message_id"])


def downgrade() -> None:
    op.drop_table("session_notes")
    op.drop_table("guide_invites")
    op.drop_index("ix_guide_links_guide_user_id", table_name="guide_links")
    op.drop_table("guide_links")
    with op.batch_alter_table("patients") as batch_op:
        batch_op.drop_column("notes_until")
