"""What a database dump shows without the keys: ids, times, statuses and settings, nothing a
patient wrote or Telegram produced; and the database file is readable by its owner only."""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from bot.config import Settings
from bot.db.crypto import is_encrypted, is_token
from bot.db.models import Base, Entry, EntryKind
from bot.db.session import create_db_engine, create_session_factory
from tests.auxil.filled import (
    MOOD,
    PRACTICE_MINUTES,
    SECRET_WORDS,
    VOICE_SECONDS,
    fill_every_encrypted_column,
)
from tests.auxil.harness import FakeClock, Harness
from tests.fake_telegram import FakeTelegram, TgUser

README = Path(__file__).resolve().parent.parent / "README.md"
PLAIN_COLUMNS = re.compile(r"<!-- plain-columns:start -->\n(.*?)<!-- plain-columns:end -->", re.S)
PLAIN_LINE = re.compile(r"- `(\w+)`: ((?:`\w+`, )*`\w+`) — \S.*")

sqlite_only = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="reads the SQLite file itself"
)


def dump(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, read with plain SQL: what a backup shows without the keys."""
    engine = create_db_engine(settings.database_url)
    with engine.connect() as connection:
        tables = sa.inspect(connection).get_table_names()
        rows = {
            name: [
                dict(row)
                for row in connection.execute(sa.text(f"SELECT * FROM {name}")).mappings()
            ]
            for name in tables
        }
    engine.dispose()
    return rows


async def test_a_dump_without_the_keys_shows_nothing_written_or_sent_by_telegram(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await fill_every_encrypted_column(bot, alice, bob)
    rows = dump(bot.settings)
    # Words of five letters or more: a shorter one could turn up by chance inside a token.
    words = [word for word in SECRET_WORDS.values() if len(word) >= 5]
    numbers = (VOICE_SECONDS, PRACTICE_MINUTES)
    seen = []
    for table, table_rows in rows.items():
        for row in table_rows:
            for column, value in row.items():
                if isinstance(value, str) and is_token(value):
                    continue  # a Fernet token: nothing readable in it
                shown = [w for w in words if isinstance(value, str) and w in value]
                shown += [str(n) for n in numbers if value in (n, str(n))]
                seen += [f"{table}.{column}: {item}" for item in shown]
    assert seen == []
    # The mood: in no column of its row (a figure from 1 to 10 could be any small id elsewhere).
    engine = create_db_engine(bot.settings.database_url)
    with create_session_factory(engine)() as session:
        mood_id = session.scalars(select(Entry.id).where(Entry.scale_value.is_not(None))).one()
    engine.dispose()
    [mood_row] = [row for row in rows["entries"] if row["id"] == mood_id]
    assert [c for c, value in mood_row.items() if value in (MOOD, str(MOOD))] == []
    assert EntryKind.MOOD not in [row["kind"] for row in rows["entries"]]


@sqlite_only
async def test_it_creates_the_database_and_its_folder_readable_by_the_owner_only(
    settings: Settings, fake: FakeTelegram, clock: FakeClock, tmp_path: Path, alice: TgUser
):
    folder = tmp_path / "data"
    database = folder / "companion.sqlite3"
    settings = settings.model_copy(update={"database_url": f"sqlite:///{database}"})
    bot = Harness(settings, fake, clock)
    await bot.start()
    try:
        await bot.agree(alice)
        await bot.send(alice, "Something private")
        files = {
            path.name: stat.S_IMODE(path.stat().st_mode)
            for path in folder.iterdir()
            if path.name.startswith("companion.sqlite3")
        }
    finally:
        await bot.stop()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    # The key, the database, and SQLite's write-ahead log and shared memory beside it.
    assert files == {
        "companion.sqlite3": 0o600,
        "companion.sqlite3.key": 0o600,
        "companion.sqlite3-wal": 0o600,
        "companion.sqlite3-shm": 0o600,
    }


@sqlite_only
async def test_it_tightens_a_database_file_others_can_read_and_says_so_once(
    settings: Settings,
    fake: FakeTelegram,
    clock: FakeClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
):
    database = tmp_path / "companion.sqlite3"
    engine = create_db_engine(settings.database_url)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
    engine.dispose()
    database.chmod(0o644)
    caplog.set_level(logging.WARNING)
    bot = Harness(settings, fake, clock)
    await bot.start()
    await bot.stop()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    warnings = [r.getMessage() for r in caplog.records if "readable by others" in r.getMessage()]
    assert warnings == [
        f"{database} was readable by others; it is now readable by its owner only (0600)"
    ]


def readme_plain_columns() -> set[tuple[str, str]]:
    """The (table, column) pairs the README's "Privacy and safety" section says stay plain."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Privacy and safety\n")
    section = text[start : text.index("\n## ", start + 1)]
    [block] = PLAIN_COLUMNS.findall(section)
    listed = set()
    for line in block.splitlines():
        match = PLAIN_LINE.fullmatch(line)
        assert match, f"not - `table`: `column`, `column` — why: {line!r}"
        listed |= {(match[1], column) for column in re.findall(r"`(\w+)`", match[2])}
    return listed


def test_the_readme_lists_exactly_the_columns_a_dump_shows_in_plain():
    plain = {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if not is_encrypted(column.type)
    }
    listed = readme_plain_columns()
    assert sorted(plain - listed) == [], "plain in the models but not listed in the README"
    assert sorted(listed - plain) == [], "listed in the README but not a plain column"
