"""Where the encryption keys come from: DATA_KEYS, or a key file beside a SQLite database."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    MetaData,
    RowMapping,
    Text,
    cast,
    column,
    inspect,
    literal,
    select,
    table,
    update,
)
from sqlalchemy.sql.expression import TableClause

from bot.config import ToolSettings
from bot.db.crypto import (
    LOOKUP_HASH_OF,
    TOKEN_PREFIX,
    Cipher,
    DataKeyError,
    create_key_file,
    is_encrypted,
    parse_keys,
)
from bot.db.models import Base

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncryptedTable:
    """A table with encrypted columns, as the models declare it."""

    name: str
    key: str  # its one-column primary key, by which rotation pages through it
    encrypted: tuple[str, ...]
    # (lookup-hash column, the encrypted column of the same table it is the hash of)
    lookups: tuple[tuple[str, str], ...]

    def bare(self) -> TableClause:
        """The table with untyped columns: values as stored, nothing encrypted or decrypted."""
        names = {self.key, *self.encrypted, *(hashed for hashed, _ in self.lookups)}
        return table(self.name, *(column(name) for name in sorted(names)))


def encrypted_tables(metadata: MetaData = Base.metadata) -> list[EncryptedTable]:
    """Every table with a column of an Encrypted type or a lookup hash (see LOOKUP_HASH_OF)."""
    found = []
    for model in metadata.sorted_tables:
        encrypted = tuple(c.name for c in model.columns if is_encrypted(c.type))
        lookups = tuple(
            (c.name, c.info[LOOKUP_HASH_OF]) for c in model.columns if LOOKUP_HASH_OF in c.info
        )
        for hashed, source in lookups:
            if source not in encrypted:
                raise TypeError(
                    f"{model.name}.{hashed} is the lookup hash of {source!r}, "
                    "which is not an encrypted column of the same table"
                )
        if not encrypted:
            continue
        if len(model.primary_key.columns) != 1:
            raise TypeError(f"{model.name} has encrypted columns but no one-column primary key")
        [key] = model.primary_key.columns
        found.append(EncryptedTable(model.name, key.name, encrypted, lookups))
    return found


def key_file_for(engine: Engine) -> Path | None:
    """The key file beside a SQLite database file; None for other databases."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    database = Path(url.database)
    return database.with_name(database.name + ".key")


def holds_encrypted_text(engine: Engine) -> bool:
    """Whether any encrypted column of the models, as far as the database has it yet, holds a
    Fernet token."""
    inspector = inspect(engine)
    existing = set(inspector.get_table_names())
    with engine.connect() as connection:
        for spec in encrypted_tables():
            if spec.name not in existing:
                continue
            present = {c["name"] for c in inspector.get_columns(spec.name)}
            bare = table(spec.name, *(column(name) for name in spec.encrypted if name in present))
            for stored in bare.columns:
                # A column not migrated yet may still hold integers: compare its text.
                token = cast(stored, Text).like(TOKEN_PREFIX + "%")
                if connection.execute(select(literal(1)).where(token).limit(1)).first():
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


def rotate_keys(
    engine: Engine,
    cipher: Cipher,
    batch: int = 500,
    progress: Callable[[str, int], None] | None = None,
    metadata: MetaData = Base.metadata,
) -> int:
    """Re-encrypt every value of every encrypted column not yet under the newest key, and
    recompute every lookup hash under it; return how many rows changed. `progress` hears each
    table's name and its count once the table is done.

    Each batch is its own transaction, so an interrupted run keeps what it did and the next
    run carries on: rows already under the newest key are left alone.
    """
    changed = 0
    for spec in encrypted_tables(metadata):
        done = _rotate_table(engine, cipher, spec, batch)
        if progress is not None:
            progress(spec.name, done)
        changed += done
    return changed


def _rotate_table(engine: Engine, cipher: Cipher, spec: EncryptedTable, batch: int) -> int:
    bare = spec.bare()
    key = bare.c[spec.key]
    last: Any = None
    changed = 0
    while True:
        statement = select(*bare.columns).order_by(key).limit(batch)
        if last is not None:
            statement = statement.where(key > last)
        with engine.begin() as connection:
            rows = connection.execute(statement).mappings().all()
            for row in rows:
                fresh = _fresh_values(cipher, spec, row)
                if not fresh:
                    continue
                # Only if the row still holds what was read: a running bot may have written
                # since (an inbox update handled and its words dropped), and its write stands.
                unchanged = [bare.c[name] == row[name] for name in fresh]
                result = connection.execute(
                    update(bare).where(key == row[spec.key], *unchanged).values(fresh)
                )
                changed += result.rowcount
        if not rows:
            return changed
        last = rows[-1][spec.key]


def _fresh_values(cipher: Cipher, spec: EncryptedTable, row: RowMapping) -> dict[str, Any]:
    """What must change in a row for the newest key: tokens under an older key, and lookup
    hashes that are not the newest key's hash of their column."""
    fresh: dict[str, Any] = {
        name: cipher.rotate(row[name])
        for name in spec.encrypted
        if row[name] is not None and not cipher.is_current(row[name])
    }
    for hashed, source in spec.lookups:
        token = fresh.get(source, row[source])
        wanted = None if token is None else cipher.lookup_hash(cipher.decrypt(token))
        if row[hashed] != wanted:
            fresh[hashed] = wanted
    return fresh
