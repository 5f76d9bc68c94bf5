"""Encrypt at rest what a patient or Telegram produced that 0004 left plain: moods, file ids,
lengths, kinds, practices and their minutes, goal answers, the country.

Revision ID: 0013
Revises: 0012

Each column becomes text holding a Fernet token; the rows written before this revision are
encrypted here, in batches, with the key the bot opened at start (see bot.db.keys). Nothing
filters or sorts on these columns in SQL: the application does it after decrypting.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic import op

from bot.db.crypto import current_cipher, is_token

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500


@dataclass(frozen=True)
class Plain:
    """A column as it was before this revision."""

    name: str
    type_: sa.types.TypeEngine[Any]
    server_default: str | None = None


# Table, its primary key (for paging), and the columns encrypted from now on.
TABLES: tuple[tuple[str, str, tuple[Plain, ...]], ...] = (
    ("patients", "id", (Plain("country", sa.String(length=2)),)),
    (
        "entries",
        "id",
        (
            Plain("kind", sa.String(length=16), server_default="text"),
            Plain("scale_value", sa.SmallInteger()),
            Plain("file_id", sa.String(length=256)),
            Plain("duration_seconds", sa.Integer()),
        ),
    ),
    (
        "practices",
        "id",
        (Plain("kind", sa.String(length=24)), Plain("minutes", sa.SmallInteger())),
    ),
    ("reminders", "patient_id", (Plain("kind", sa.String(length=24)),)),
    ("goals", "id", (Plain("kind", sa.String(length=8)),)),
    ("goal_checks", "id", (Plain("answer", sa.String(length=8)),)),
)


def rewrite_rows(table: str, key: str, columns: Sequence[str], encrypt: bool) -> None:
    """Encrypt (or, going down, decrypt) every value of the columns, a batch at a time."""
    connection = op.get_bind()
    cipher = current_cipher()
    bare = sa.table(table, sa.column(key), *(sa.column(name) for name in columns))
    last = None
    while True:
        statement = sa.select(*bare.columns).order_by(bare.c[key]).limit(BATCH)
        if last is not None:
            statement = statement.where(bare.c[key] > last)
        rows = connection.execute(statement).mappings().all()
        if not rows:
            return
        for row in rows:
            values = {}
            for name in columns:
                value = row[name]
                if value is None:
                    continue
                if encrypt and not (isinstance(value, str) and is_token(value)):
                    values[name] = cipher.encrypt(str(value))
                elif not encrypt:
                    values[name] = cipher.decrypt(value)
            if values:
                connection.execute(sa.update(bare).where(bare.c[key] == row[key]).values(values))
        last = rows[-1][key]


def upgrade() -> None:
    for table, key, columns in TABLES:
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column.name,
                    existing_type=column.type_,
                    type_=sa.Text(),
                    # A default would be written in plain text: the application sets the value.
                    server_default=None if column.server_default is not None else False,
                    existing_server_default=column.server_default,
                    postgresql_using=f"{column.name}::text",
                )
        rewrite_rows(table, key, [column.name for column in columns], encrypt=True)


def downgrade() -> None:
    for table, key, columns in reversed(TABLES):
        rewrite_rows(table, key, [column.name for column in columns], encrypt=False)
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column.name,
                    existing_type=sa.Text(),
                    type_=column.type_,
                    server_default=(
                        column.server_default if column.server_default is not None else False
                    ),
                    postgresql_using=(
                        f"{column.name}::{column.type_.compile(dialect=op.get_bind().dialect)}"
                    ),
                )
