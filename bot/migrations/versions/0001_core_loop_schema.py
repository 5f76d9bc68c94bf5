"""Core loop schema: patients, treatments, scheduled prompts, journal entries.

Revision ID: 0001
Revises:

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("first_name", sa.String(length=128), nullable=True),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("quiet_start_minute", sa.SmallInteger(), nullable=True),
        sa.Column("quiet_end_minute", sa.SmallInteger(), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_intention", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("telegram_user_id", name=op.f("uq_patients_telegram_user_id")),
    )
    op.create_table(
        "treatments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("intention", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_treatments_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treatments")),
        sa.UniqueConstraint("patient_id", "number", name=op.f("uq_treatments_patient_id_number")),
    )
    op.create_table(
        "scheduled_prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("treatment_id", sa.Integer(), nullable=False),
        sa.Column("step_key", sa.String(length=40), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_scheduled_prompts_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["treatment_id"],
            ["treatments.id"],
            name=op.f("fk_scheduled_prompts_treatment_id_treatments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_prompts")),
        sa.UniqueConstraint(
            "treatment_id", "step_key", name=op.f("uq_scheduled_prompts_treatment_id_step_key")
        ),
    )
    with op.batch_alter_table("scheduled_prompts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scheduled_prompts_claim_lease",
            ["claimed_until"],
            unique=False,
            sqlite_where=sa.text("status = 'claimed'"),
            postgresql_where=sa.text("status = 'claimed'"),
        )
        batch_op.create_index(
            "ix_scheduled_prompts_patient_message",
            ["patient_id", "telegram_message_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_scheduled_prompts_patient_sent", ["patient_id", "sent_at"], unique=False
        )
        batch_op.create_index(
            "ix_scheduled_prompts_patient_status", ["patient_id", "status", "due_at"], unique=False
        )
        batch_op.create_index(
            "ix_scheduled_prompts_pending_due",
            ["due_at", "id"],
            unique=False,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )

    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("treatment_id", sa.Integer(), nullable=True),
        sa.Column("prompt_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("scale_value", sa.SmallInteger(), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_entries_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["scheduled_prompts.id"],
            name=op.f("fk_entries_prompt_id_scheduled_prompts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["treatment_id"],
            ["treatments.id"],
            name=op.f("fk_entries_treatment_id_treatments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
        sa.UniqueConstraint("chat_id", "message_id", name=op.f("uq_entries_chat_id_message_id")),
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entries_patient_created", ["patient_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_entries_prompt_id", ["prompt_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_prompt_id")
        batch_op.drop_index("ix_entries_patient_created")

    op.drop_table("entries")
    with op.batch_alter_table("scheduled_prompts", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_scheduled_prompts_pending_due",
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index("ix_scheduled_prompts_patient_status")
        batch_op.drop_index("ix_scheduled_prompts_patient_sent")
        batch_op.drop_index("ix_scheduled_prompts_patient_message")
        batch_op.drop_index(
            "ix_scheduled_prompts_claim_lease",
            sqlite_where=sa.text("status = 'claimed'"),
            postgresql_where=sa.text("status = 'claimed'"),
        )

    op.drop_table("scheduled_prompts")
    op.drop_table("treatments")
    op.drop_table("patients")
