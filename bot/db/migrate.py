"""Apply the Alembic migrations that ship in bot/migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from bot.db.session import create_db_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def engine_for_alembic(config: Config) -> Engine:
    """Used by env.py when Alembic runs without a connection (its own command line)."""
    return create_db_engine(config.get_main_option("sqlalchemy.url") or "")


def upgrade_to_head(engine: Engine) -> None:
    """Bring the database schema up to date; safe to call at every start."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
