"""Alembic environment: runs on the connection the bot hands it (see bot.db.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bot.db.migrate import engine_for_alembic
from bot.db.models import Base


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    with engine_for_alembic(context.config).connect() as fresh:
        run_migrations(fresh)
