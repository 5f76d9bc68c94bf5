"""Key rotation reaches every encrypted column: after it, the old key can go."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update

from bot.config import Settings
from bot.db.crypto import LOOKUP_HASH_OF, Cipher, EncryptedInt, new_key, use_cipher
from bot.db.keys import encrypted_tables, key_file_for, rotate_keys
from bot.db.migrate import upgrade_to_head
from bot.db.models import InboxUpdate, Patient, Practice
from bot.db.session import create_db_engine, create_session_factory
from tests.auxil.dump import key_in_use
from tests.auxil.filled import (
    CRASHED_UPDATE,
    fill_every_encrypted_column,
    stop_with_an_unhandled_update,
    stored_values,
    use_every_feature,
)
from tests.auxil.harness import Harness
from tests.conftest import REPO_PROMPTS
from tests.fake_telegram import FakeTelegram, TgUser

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# What a patient reads back of each feature, before the rotation and after it.
READ_BACK = ("/journal", "/journal 1", CRASHED_UPDATE, "/goals", "/remind", "/guide", "/country")


def key_file(settings: Settings) -> Path | None:
    engine = create_db_engine(settings.database_url)
    engine.dispose()
    return key_file_for(engine)


async def exported(bot: Harness, user: TgUser) -> dict[str, Any]:
    """/export data, through the bot, without its time of export."""
    await bot.send(user, "/export data")
    document = bot.fake.sent(user.id, "sendDocument")[-1].params["document"]
    data: dict[str, Any] = json.loads(document.data)
    del data["exported_at"]
    return data


async def test_it_rotates_every_column_and_the_bot_reads_everything_with_only_the_new_key(
    agreed: Harness, alice: TgUser, bob: TgUser, fake: FakeTelegram
):
    bot = agreed
    await use_every_feature(bot, alice, bob)
    read_back = {command: await bot.send(alice, command) for command in READ_BACK}
    guide_reads = await bot.send(bob, "/notes")  # Bob is found by the lookup hash of his id
    before = await exported(bot, alice)
    update_id = await stop_with_an_unhandled_update(bot, alice)
    old, new = key_in_use(bot.settings), new_key()
    engine = create_db_engine(bot.settings.database_url)
    both = Cipher([new.encode(), old.encode()])
    assert rotate_keys(engine, both) > 0
    assert rotate_keys(engine, both) == 0  # nothing left under the old key
    engine.dispose()

    # The old key is gone: only the new one, in DATA_KEYS, and no key file.
    old_file = key_file(bot.settings)
    if old_file is not None:
        old_file.unlink()
    settings = bot.settings.model_copy(update={"data_keys": SecretStr(new)})
    restarted = Harness(settings, fake, bot.clock)
    sent_before = len(fake.sent(alice.id))
    await restarted.start()
    try:
        # The update the crash left is handled at start, from the inbox.
        await restarted.wait_handled(update_id)
        answered = [r.text for r in fake.sent(alice.id)[sent_before:]]
        assert answered == read_back[CRASHED_UPDATE]
        assert await exported(restarted, alice) == before
        assert {command: await restarted.send(alice, command) for command in READ_BACK} == (
            read_back
        )
        assert await restarted.send(bob, "/notes") == guide_reads
    finally:
        await restarted.stop()


async def test_after_rotation_every_stored_value_opens_with_the_new_key_alone(
    agreed: Harness, alice: TgUser, bob: TgUser
):
    bot = agreed
    await fill_every_encrypted_column(bot, alice, bob)
    old, new = key_in_use(bot.settings), new_key()
    engine = create_db_engine(bot.settings.database_url)
    rotate_keys(engine, Cipher([new.encode(), old.encode()]))
    only_new = Cipher([new.encode()])
    unreadable = []
    for (table, column), values in stored_values(engine).items():
        for value in values:
            if not only_new.is_current(value):
                unreadable.append(f"{table}.{column}")
    # Every lookup hash is the new key's hash of its column.
    stale = []
    with engine.connect() as connection:
        for spec in encrypted_tables():
            bare = spec.bare()
            for row in connection.execute(select(bare)).mappings():
                for hashed, source in spec.lookups:
                    plain = None if row[source] is None else only_new.decrypt(row[source])
                    if row[hashed] != (None if plain is None else only_new.lookup_hash(plain)):
                        stale.append(f"{spec.name}.{hashed}")
    engine.dispose()
    assert unreadable == []
    assert stale == []


def test_it_recomputes_lookup_hashes_under_the_newest_key(tmp_path: Path):
    metadata = MetaData()
    things = Table(
        "things",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("user_id", EncryptedInt()),
        Column("user_hash", String(64), info={LOOKUP_HASH_OF: "user_id"}),
    )
    old_key, new = new_key().encode(), new_key().encode()
    old = Cipher([old_key])
    use_cipher(old)
    engine = create_db_engine(f"sqlite:///{tmp_path / 'lookups.sqlite3'}")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(things),
            [
                {"id": n, "user_id": 1000 + n, "user_hash": old.lookup_hash(f"{1000 + n}")}
                for n in range(5)
            ],
        )
        connection.execute(insert(things), [{"id": 9, "user_id": None, "user_hash": None}])
    both = Cipher([new, old_key])
    assert rotate_keys(engine, both, batch=2, metadata=metadata) == 5
    assert rotate_keys(engine, both, batch=2, metadata=metadata) == 0
    only_new = Cipher([new])
    use_cipher(only_new)
    with engine.connect() as connection:
        rows = connection.execute(
            select(things.c.user_id, things.c.user_hash).order_by(things.c.id)
        )
        assert [tuple(row) for row in rows] == [
            *((1000 + n, only_new.lookup_hash(f"{1000 + n}")) for n in range(5)),
            (None, None),
        ]
    engine.dispose()


def test_the_command_says_how_many_rows_of_each_table_it_changed(tmp_path: Path):
    old, new = new_key(), new_key()
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    engine = create_db_engine(url)
    use_cipher(Cipher([old.encode()]))
    upgrade_to_head(engine)
    with create_session_factory(engine).begin() as session:
        session.add(Patient(telegram_user_id=1, chat_id=1, first_name="Sam", created_at=NOW))
        session.flush()
        for n in range(3):
            session.add(
                Practice(patient_id=1, kind="walk", minutes=20 + n, done_at=NOW + timedelta(n))
            )
    engine.dispose()

    def rotate() -> list[str]:
        result = subprocess.run(
            [sys.executable, "-m", "bot", "keys", "rotate"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            cwd=tmp_path,  # no .env of the developer's
            env={
                **os.environ,
                "PYTHONPATH": str(REPO_PROMPTS.parent),
                "DATABASE_URL": url,
                "DATA_KEYS": f"{new},{old}",
            },
        )
        return [line for line in result.stdout.splitlines() if not line.endswith(": 0 row(s)")]

    assert rotate() == [
        "patients: 1 row(s)",
        "practices: 3 row(s)",
        "Re-encrypted 4 row(s) under the newest key.",
    ]
    assert rotate() == ["Re-encrypted 0 row(s) under the newest key."]


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="SQLite refuses the second writer instead; PostgreSQL would let it be overwritten",
)
def test_a_rotation_never_brings_back_words_a_running_bot_dropped_meanwhile(settings: Settings):
    old, new = new_key().encode(), new_key().encode()
    engine = create_db_engine(settings.database_url)
    use_cipher(Cipher([old]))
    upgrade_to_head(engine)
    sessions = create_session_factory(engine)
    with sessions.begin() as session:
        session.add(InboxUpdate(update_id=7, chat_id=1, raw='{"update_id": 7}', received_at=NOW))
    both = Cipher([new, old])
    rotate = both.rotate

    def handled_meanwhile(token: str) -> str:
        # The bot handles the update between the rotation's read and its write.
        with engine.begin() as connection:
            connection.execute(
                update(InboxUpdate)
                .where(InboxUpdate.update_id == 7)
                .values(raw=None, handled_at=NOW)
            )
        return rotate(token)

    both.rotate = handled_meanwhile  # type: ignore[method-assign]
    assert rotate_keys(engine, both) == 0
    with sessions() as session:
        assert session.get_one(InboxUpdate, 7).raw is None
    engine.dispose()
