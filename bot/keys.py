"""Where the encryption keys come from: DATA_KEYS, or a key file beside a SQLite database."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine, inspect, text

from bot.config import ToolSettings
from bot.db.crypto import TOKEN_PREFIX, Cipher, DataKeyError, create_key_file, parse_keys

log = logging.getLogger(__name__)

ENCRYPTED_COLUMNS = (
    ("patients", "first_name"),
    ("patients", "pending_intention"),
    ("treatments", "intention"),
    ("entries", "text"),
)


def key_file_for(engine: Engine) -> Path | None:
    """The key file beside a SQLite database file; None for other databases."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = Path(url.database)
    return database.with_name(database.name + ".key")


def holds_encrypted_text(engine: Engine) -> bool:
    existing = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        for table, column in ENCRYPTED_COLUMNS:
            if (
                table in existing
                and connection.execute(
                    text(f"SELECT 1 FROM {table} WHERE {column} LIKE :prefix LIMIT 1"),
                    {"prefix": TOKEN_PREFIX + "%"},
                ).first()
            ):
                return True
    return False


def open_cipher(settings: ToolSettings, engine: Engine) -> Cipher:
    """The cipher for this database; on a fresh SQLite database without DATA_KEYS, a new key.

    Refuses, with a message saying what to do, rather than write rows no key could read.
    """
    if settings.data_keys is not None:
        return Cipher(parse_keys(settings.data_keys.get_secret_value()))
    key_file = key_file_for(engine)
    if key_file is None:
        raise DataKeyError(
            "DATA_KEYS is not set. With this database the journal's encryption key must come "
            "from DATA_KEYS: make one with `python -m bot keys new` and keep it safe."
        )
    if key_file.exists():
        return Cipher(parse_keys(key_file.read_text(encoding="ascii")))
    if holds_encrypted_text(engine):
        raise DataKeyError(
            f"The database holds encrypted journal text, but its key file {key_file} is missing "
            "and DATA_KEYS is not set. Restore the key file from your backup, or set DATA_KEYS; "
            "the bot will not start without the key, so that nothing unreadable is written."
        )
    create_key_file(key_file)
    log.warning(
        "created the journal's encryption key at %s (readable by this user only). Back it up "
        "separately from the database: without it the journal cannot be read.",
        key_file,
    )
    return Cipher(parse_keys(key_file.read_text(encoding="ascii")))


def rotate_keys(engine: Engine, cipher: Cipher, batch: int = 500) -> int:
    """Re-encrypt every row not yet under the newest key; return how many changed.

    Each batch is its own transaction, so an interrupted run keeps what it did and the next
    run carries on: rows already under the newest key are left alone.
    """
    changed = 0
    for table, column in ENCRYPTED_COLUMNS:
        last_id = 0
        while True:
            with engine.begin() as connection:
                rows = connection.execute(
                    text(
                        f"SELECT id, {column} FROM {table} WHERE id > :last "
                        f"AND {column} IS NOT NULL ORDER BY id LIMIT :batch"
                    ),
                    {"last": last_id, "batch": batch},
                ).all()
                for row_id, value in rows:
                    if not cipher.is_current(value):
                        connection.execute(
                            text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
                            {"value": cipher.rotate(value), "id": row_id},
                        )
                        changed += 1
            if not rows:
                break
            last_id = rows[-1][0]
    return changed
