"""Apply the Alembic migrations that ship in bot/migrations.

Alembic is loaded only when there is something to apply: at an ordinary start the schema is
at its newest revision already, and Alembic would cost a tenth of a second and 12 MiB."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from bot.db.session import create_db_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# The newest revision that encrypts rows written in plain text before it (0004, then 0013).
ENCRYPTING_REVISION = "0014"
MIGRATION_LOCK = 0x1C0_0001  # a PostgreSQL advisory lock key of our own


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def engine_for_alembic(config: Config) -> Engine:
    """Used by env.py when Alembic runs without a connection (its own command line)."""
    return create_db_engine(config.get_main_option("sqlalchemy.url") or "")


def head_revision() -> str:
    """The newest revision that ships: revisions are numbered, each after the one before."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS_DIR / "versions").glob("*_*.py"))


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database schema up to date; safe to call at every start."""
    if current_revision(engine) == head_revision():
        return
    from alembic import command
    from alembic.migration import MigrationContext

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one: with foreign keys
            # on, dropping a parent table would cascade and delete every child row.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        before = MigrationContext.configure(connection).get_current_revision()
        connection.commit()
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    # Instances starting together: one migrates, the others wait, then find
                    # nothing left to do.
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
        if sqlite and before is not None and before < ENCRYPTING_REVISION:
            # The plain text that revision encrypted may linger in free pages and the WAL.
            connection.exec_driver_sql("VACUUM")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.commit()
