"""Free text is encrypted at rest, rotatable, and never readable without its key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from bot.app import build_companion
from bot.config import Settings
from bot.db.crypto import Cipher, DataKeyError, EncryptedComparisonError, new_key, use_cipher
from bot.db.keys import key_file_for, rotate_keys
from bot.db.migrate import upgrade_to_head
from bot.db.models import Entry, Patient
from bot.db.session import create_db_engine, create_session_factory
from tests.auxil.harness import Harness
from tests.auxil.migrations import at_revision
from tests.conftest import REPO_PROMPTS
from tests.fake_telegram import TgUser

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SECRETS = ("Alice", "Meet the old fear", "A river of light", "My hidden garden")


def raw_bytes(settings: Settings) -> bytes:
    database = Path(settings.database_url.removeprefix("sqlite:///"))
    files = [database, database.with_name(database.name + "-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="reads the SQLite file itself"
)


async def test_it_keeps_no_plain_text_in_the_database_file(
    agreed: Harness, alice: TgUser, settings: Settings
):
    bot = agreed
    await bot.send(alice, "/intention Meet the old fear")
    await bot.send(alice, "/treatment")
    await bot.next_prompt(alice)
    await bot.send(alice, "A river of light")
    await bot.send(alice, "My hidden garden")
    await bot.send_update(
        alice,
        photo=[{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}],
        caption="My hidden garden, drawn",
    )
    # The journal still reads back, searches and recaps...
    assert "My <b>hidden</b> garden" in (await bot.send(alice, "/journal search hidden"))[0]
    assert "Meet the old fear" in (await bot.send(alice, "/recap"))[0]
    await bot.stop()
    # ...but the file holds none of it.
    data = raw_bytes(settings)
    assert data
    for secret in SECRETS:
        assert secret.encode() not in data, secret
    key_file = key_file_for(create_db_engine(settings.database_url))
    assert key_file is not None
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


async def test_it_refuses_to_start_without_the_key_of_an_encrypted_database(
    agreed: Harness, alice: TgUser, settings: Settings
):
    await agreed.send(alice, "Something private")
    await agreed.stop()
    key_file = key_file_for(create_db_engine(settings.database_url))
    assert key_file is not None
    key_file.unlink()
    with pytest.raises(DataKeyError, match=r"its key file .* is missing and DATA_KEYS is not set"):
        build_companion(settings)
    assert not key_file.exists()  # no new key was made for the old rows

    env = {k: v for k, v in os.environ.items() if k not in ("DATA_KEYS",)}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **env,
            "PYTHONPATH": str(REPO_PROMPTS.parent),
            "TELEGRAM_BOT_TOKEN": settings.telegram_bot_token.get_secret_value(),
            "DATABASE_URL": settings.database_url,
        },
    )
    assert result.returncode == 2
    assert "Restore the key file from your backup" in result.stderr


def test_it_needs_data_keys_for_a_database_without_a_file(tmp_path: Path):
    settings = Settings(
        _env_file=None, telegram_bot_token="1:A", database_url="sqlite:///:memory:"
    )
    with pytest.raises(DataKeyError, match="DATA_KEYS is not set"):
        build_companion(settings)


def test_it_rejects_a_malformed_key():
    with pytest.raises(DataKeyError, match="malformed"):
        Cipher([b"not-a-key"])


def test_it_rotates_many_rows_to_the_newest_key_and_can_resume(tmp_path: Path):
    old, new = new_key(), new_key()
    engine = create_db_engine(f"sqlite:///{tmp_path / 'rotate.sqlite3'}")
    use_cipher(Cipher([old.encode()]))
    upgrade_to_head(engine)
    sessions = create_session_factory(engine)
    with sessions.begin() as session:
        session.add(Patient(telegram_user_id=1, chat_id=1, first_name="Sam", created_at=NOW))
    with sessions.begin() as session:
        session.execute(
            insert(Entry),
            [
                {
                    "patient_id": 1,
                    "kind": "text",
                    "text": f"note {n}",
                    "chat_id": 1,
                    "message_id": n,
                    "created_at": NOW,
                }
                for n in range(2500)
            ],
        )
    both = Cipher([new.encode(), old.encode()])

    # Interrupted after the first batch...
    calls = {"n": 0}
    original = both.rotate

    def rotate_then_stop(token: str) -> str:
        # The name, then two values an entry (its text and kind): the first batch of 200
        # entries is done, the second interrupted halfway.
        calls["n"] += 1
        if calls["n"] > 1 + 2 * 200 + 2 * 100:
            raise KeyboardInterrupt
        return original(token)

    both.rotate = rotate_then_stop  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        rotate_keys(engine, both, batch=200)
    both.rotate = original  # type: ignore[method-assign]
    # ...and run again: it finishes what is left, then finds nothing more to do.
    # The name and the first batch of 200 entries were done before the interruption.
    assert rotate_keys(engine, both, batch=200) == 2501 - 201
    assert rotate_keys(engine, both, batch=200) == 0
    use_cipher(Cipher([new.encode()]))  # the old key can go now
    with sessions() as session:
        texts = session.scalars(select(Entry.text).order_by(Entry.id)).all()
        assert texts[0] == "note 0"
        assert texts[-1] == "note 2499"
        assert session.scalars(select(Patient.first_name)).one() == "Sam"
    engine.dispose()


def test_it_encrypts_rows_written_before_encryption(tmp_path: Path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'plain.sqlite3'}")
    with at_revision(engine, "0003") as connection:
        connection.execute(
            text(
                "INSERT INTO patients (id, telegram_user_id, chat_id, first_name, "
                "pending_intention, created_at) "
                "VALUES (1, 5, 5, 'Sam', 'Be brave', '2026-11-01 10:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO entries (patient_id, kind, text, chat_id, message_id, created_at) "
                "VALUES (1, 'text', 'An old plain secret', 5, 1, '2026-11-01 10:00:00')"
            )
        )
    cipher = Cipher([new_key().encode()])
    use_cipher(cipher)
    upgrade_to_head(engine)
    with engine.connect() as connection:
        raw = connection.execute(text("SELECT text FROM entries")).scalar_one()
        name = connection.execute(text("SELECT first_name FROM patients")).scalar_one()
    assert cipher.decrypt(raw) == "An old plain secret"
    assert cipher.decrypt(name) == "Sam"
    engine.dispose()
    assert b"An old plain secret" not in (tmp_path / "plain.sqlite3").read_bytes()


def test_it_prints_a_new_key():
    result = subprocess.run(
        [sys.executable, "-m", "bot", "keys", "new"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO_PROMPTS.parent)},
    )
    Cipher([result.stdout.strip().encode()])  # a valid key


def test_it_hashes_lookups_with_a_secret_derived_from_the_first_key():
    old, new = new_key(), new_key()
    cipher = Cipher([old.encode()])
    rotated = Cipher([new.encode(), old.encode()])
    # HMAC-SHA256 of the value, keyed by HMAC-SHA256(the first key's bytes, the label), in hex.
    secret = hmac.new(
        base64.urlsafe_b64decode(old), b"integration-companion/lookup/v1", hashlib.sha256
    ).digest()
    expected = hmac.new(secret, b"12345", hashlib.sha256).hexdigest()
    assert cipher.lookup_hash("12345") == expected
    assert cipher.lookup_hash("12345") == Cipher([old.encode()]).lookup_hash("12345")
    assert cipher.lookup_hash("12346") != expected
    # Not the bare value's hash, nor one an attacker could compute without the key.
    assert expected != hashlib.sha256(b"12345").hexdigest()
    assert Cipher([new_key().encode()]).lookup_hash("12345") != expected
    # After a rotation the first key hashes, and every key's hash is offered, newest first.
    assert rotated.lookup_hash("12345") != expected
    assert rotated.lookup_hashes("12345") == [rotated.lookup_hash("12345"), expected]
    assert cipher.lookup_hashes("12345") == [expected]


def test_it_refuses_sql_that_would_compare_or_sort_tokens():
    # Each token differs even for equal values: such a query would quietly match nothing.
    queries: list[Callable[[], object]] = [
        lambda: select(Entry).where(Entry.kind == "mood"),
        lambda: select(Entry).where(Entry.scale_value > 5),
        lambda: select(Entry).where(Entry.file_id.in_(["f"])),
        lambda: select(Entry).order_by(Entry.scale_value.desc()),
    ]
    for query in queries:
        with pytest.raises(EncryptedComparisonError):
            query()
    assert "entries.text IS NULL" in str(select(Entry.id).where(Entry.text.is_(None)))
