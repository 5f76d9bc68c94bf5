"""Bring a test database to an old schema revision, to write rows as an old version did."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from sqlalchemy import Connection, Engine

from bot.db.migrate import alembic_config


@contextmanager
def at_revision(engine: Engine, revision: str) -> Iterator[Connection]:
    """A connection, in a transaction, to the database migrated only up to `revision`."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        yield connection
