"""The engine and session factory. Sessions are opened at the edge: a handler, a job, a command."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SessionFactory = sessionmaker[Session]

log = logging.getLogger(__name__)

# SQLite's companions of a database file: its write-ahead log, shared memory, rollback journal.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets a reader (a CLI status call) work while the bot writes; the busy timeout waits
    # out a brief lock instead of failing; SQLite leaves foreign keys off unless asked.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_private_sqlite_file(database: Path) -> None:
    """The database file, readable by its owner only, before SQLite opens it.

    A folder we create is 0700 and a file we create 0600; SQLite gives its -wal and -shm files
    the database file's mode. A file others can read is tightened to 0600, with a warning.
    """
    if not database.parent.exists():
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # An empty file is a database SQLite will happily start.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    loose = [
        path
        for path in (database, *(database.with_name(database.name + s) for s in SQLITE_SIDE_FILES))
        if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077
    ]
    for path in loose:
        path.chmod(0o600)
    if loose:
        log.warning(
            "%s was readable by others; it is now readable by its owner only (0600)", database
        )


def create_db_engine(url: str) -> Engine:
    """An engine for `url`; for a SQLite file, the file is created private (see
    create_private_sqlite_file) and pragmas are set."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            create_private_sqlite_file(Path(parsed.database))
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def create_session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(engine, expire_on_commit=False)
