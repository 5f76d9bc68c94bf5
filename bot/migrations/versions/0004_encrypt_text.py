"""Encrypt what patients write (names, intentions, entries) at rest; a country setting.

Revision ID: 0004
Revises: 0003

Rows written before this revision hold plain text: they are encrypted here, in batches, with
the key the bot opened at start (see bot.db.keys).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot.db.crypto import current_cipher, is_token

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENCRYPTED_COLUMNS = (
    ("patients", "first_name"),
    ("patients", "pending_intention"),
    ("treatments", "intention"),
    ("entries", "text"),
)
BATCH = 500


def encrypt_plain_rows(table: str, column: str) -> None:
    # Table and column names come from ENCRYPTED_COLUMNS above, never from input.
    connection = op.get_bind()
    cipher = current_cipher()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.text(
                f"SELECT id, {column} FROM {table} "
                f"WHERE id > :last AND {column} IS NOT NULL ORDER BY id LIMIT :batch"
            ),
            {"last": last_id, "batch": BATCH},
        ).all()
        if not rows:
            return
        for row_id, value in rows:
            if not is_token(value):
                connection.execute(
                    sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
                    {"value": cipher.encrypt(value), "id": row_id},
                )
        last_id = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch_op:
        batch_op.alter_column("first_name", existing_type=sa.String(length=128), type_=sa.Text())
        batch_op.add_column(sa.Column("country", sa.String(length=2), nullable=True))
    for table, column in ENCRYPTED_COLUMNS:
        encrypt_plain_rows(table, column)


def downgrade() -> None:
    connection = op.get_bind()
    cipher = current_cipher()
    for table, column in ENCRYPTED_COLUMNS:
        rows = connection.execute(
            sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")
        ).all()
        for row_id, value in rows:
            connection.execute(
                sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
                {"value": cipher.decrypt(value), "id": row_id},
            )
    with op.batch_alter_table("patients") as batch_op:
        batch_op.drop_column("country")
        batch_op.alter_column("first_name", existing_type=sa.Text(), type_=sa.String(length=128))
