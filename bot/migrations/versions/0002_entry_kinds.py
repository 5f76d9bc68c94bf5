"""Entry kinds: media (Telegram file ids), mood records, and edits.

Revision ID: 0002
Revises: 0001

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="text")
        )
        batch_op.add_column(sa.Column("file_id", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("duration_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True))
    # Scale answers were the only numbers so far: they are mood records now.
    op.execute("UPDATE entries SET kind = 'mood' WHERE scale_value IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch_op:
        batch_op.drop_column("edited_at")
        batch_op.drop_column("duration_seconds")
        batch_op.drop_column("file_id")
        batch_op.drop_column("kind")
