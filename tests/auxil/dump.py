"""What a database dump shows, read without the models' types; and the key the bot wrote with."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, select

from bot.config import Settings
from bot.db.keys import key_file_for
from bot.db.models import Base
from bot.db.session import create_db_engine


def raw_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table as the database holds it."""
    rows = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            bare = sa.table(table.name, *(sa.column(c.name) for c in table.columns))
            rows[table.name] = [dict(row) for row in connection.execute(select(bare)).mappings()]
    return rows


def tables_showing(engine: Engine, telegram_id: int) -> set[str]:
    """The tables where a value is this id, plainly (as a number, text, or a rate-limit key)."""
    wanted = {telegram_id, str(telegram_id)}
    return {
        table
        for table, rows in raw_rows(engine).items()
        for row in rows
        for value in row.values()
        if value in wanted or (isinstance(value, str) and value.endswith(f":{telegram_id}"))
    }


def key_in_use(settings: Settings) -> str:
    """The key the bot wrote with: DATA_KEYS on PostgreSQL, else the key file it created."""
    if settings.data_keys is not None:
        return settings.data_keys.get_secret_value()
    engine = create_db_engine(settings.database_url)
    engine.dispose()
    path = key_file_for(engine)
    assert path is not None
    return path.read_text(encoding="ascii").strip()
