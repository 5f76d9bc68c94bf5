"""Migrations: they build exactly the models, move old rows along, and index the claim."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from bot.config import Settings
from bot.db.crypto import Cipher, new_key, use_cipher
from bot.db.migrate import alembic_config, head_revision, upgrade_to_head
from bot.db.models import Base, Entry, Goal, GoalCheck, Patient, Practice, Reminder
from bot.db.queries import due_prompts_statement
from bot.db.session import create_db_engine, create_session_factory
from tests.auxil.migrations import at_revision


def test_it_claims_through_the_partial_index_on_pending_rows(tmp_path: Path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    upgrade_to_head(engine)
    statement = due_prompts_statement(datetime(2026, 11, 25, tzinfo=UTC), 200)
    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        plan = " | ".join(
            str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
    # A search of the pending-only index, in due order: no scan of sent or future rows, no sort.
    assert "SEARCH scheduled_prompts USING INDEX ix_scheduled_prompts_pending_due" in plan
    assert "TEMP B-TREE" not in plan
    engine.dispose()


def test_it_migrates_to_exactly_the_models(settings: Settings):
    engine = create_db_engine(settings.database_url)
    upgrade_to_head(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_it_turns_old_scale_answers_into_mood_records(tmp_path: Path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    with at_revision(engine, "0001") as connection:
        connection.execute(
            text(
                "INSERT INTO patients (id, telegram_user_id, chat_id, created_at) "
                "VALUES (1, 5, 5, '2026-11-01 10:00:00')"
            )
        )
        for message_id, scale in ((1, 7), (2, None)):
            connection.execute(
                text(
                    "INSERT INTO entries (patient_id, text, scale_value, chat_id, message_id, "
                    "created_at) VALUES (1, 'x', :scale, 5, :message_id, '2026-11-01 10:00:00')"
                ),
                {"scale": scale, "message_id": message_id},
            )
    upgrade_to_head(engine)
    with create_session_factory(engine)() as session:
        kinds = session.scalars(select(Entry.kind).order_by(Entry.message_id)).all()
    assert kinds == ["mood", "text"]
    engine.dispose()


# What 0013 encrypts, as a version before it wrote it: (table, column, value).
PLAIN_BEFORE_0013 = (
    ("patients", "country", "GB"),
    ("entries", "kind", "voice"),
    ("entries", "scale_value", 7),
    ("entries", "file_id", "AwACAgIAAxkBAAIBOLDVOICE"),
    ("entries", "duration_seconds", 42),
    ("practices", "kind", "meditation"),
    ("practices", "minutes", 20),
    ("reminders", "kind", "walk"),
    ("goals", "kind", "break"),
    ("goal_checks", "answer", "partly"),
)
# The row of each table those values are in.
ROW = {"entries": "id = 2", "reminders": "patient_id = 1"}


def test_it_encrypts_what_was_plain_before_0013_and_reads_it_back(
    settings: Settings, cipher: Cipher
):
    engine = create_db_engine(settings.database_url)
    at = "'2026-11-01 10:00:00'"
    with at_revision(engine, "0012") as connection:
        for statement in (
            "INSERT INTO patients (id, telegram_user_id, chat_id, country, created_at) "
            f"VALUES (1, 5, 5, 'GB', {at})",
            # A text entry that leaves its kind to the old default, and a voice note.
            f"INSERT INTO entries (id, patient_id, chat_id, message_id, created_at) "
            f"VALUES (1, 1, 5, 1, {at})",
            "INSERT INTO entries (id, patient_id, kind, scale_value, file_id, duration_seconds, "
            f"chat_id, message_id, created_at) VALUES (2, 1, 'voice', 7, "
            f"'AwACAgIAAxkBAAIBOLDVOICE', 42, 5, 2, {at})",
            f"INSERT INTO practices (id, patient_id, kind, minutes, done_at) "
            f"VALUES (1, 1, 'meditation', 20, {at})",
            "INSERT INTO reminders (patient_id, minute, kind, due_at) "
            f"VALUES (1, 480, 'walk', {at})",
            "INSERT INTO goals (id, patient_id, number, kind, text, status, created_at) "
            f"VALUES (1, 1, 1, 'break', :text, 'active', {at})",
            "INSERT INTO goal_checks (id, goal_id, week, answer, created_at) "
            f"VALUES (1, 1, '2026-W48', 'partly', {at})",
        ):
            connection.execute(text(statement), {"text": cipher.encrypt("phone in bed")})
    upgrade_to_head(engine)

    # Stored as tokens of the key the bot opened...
    with engine.connect() as connection:
        stored = {
            (table, column): connection.execute(
                text(f"SELECT {column} FROM {table} WHERE {ROW.get(table, 'id = 1')}")
            ).scalar_one()
            for table, column, _ in PLAIN_BEFORE_0013
        }
        assert connection.execute(text("SELECT count(*) FROM entries")).scalar_one() == 2
    assert {key: cipher.decrypt(value) for key, value in stored.items()} == {
        (table, column): str(value) for table, column, value in PLAIN_BEFORE_0013
    }
    # ...and read back by the application as before.
    with create_session_factory(engine)() as session:
        assert session.get_one(Patient, 1).country == "GB"
        text_entry, voice = session.scalars(select(Entry).order_by(Entry.id)).all()
        assert text_entry.kind == "text"
        assert (voice.kind, voice.scale_value, voice.file_id, voice.duration_seconds) == (
            "voice",
            7,
            "AwACAgIAAxkBAAIBOLDVOICE",
            42,
        )
        practice = session.get_one(Practice, 1)
        assert (practice.kind, practice.minutes) == ("meditation", 20)
        assert session.get_one(Reminder, 1).kind == "walk"
        assert session.get_one(Goal, 1).kind == "break"
        assert session.get_one(GoalCheck, 1).answer == "partly"

    # Going back to 0012 gives the plain values back, in their old types.
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # As upgrade_to_head does: a copied parent table must not cascade to its children.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            config.attributes["connection"] = connection
            command.downgrade(config, "0012")
        plain = {
            (table, column): connection.execute(
                text(f"SELECT {column} FROM {table} WHERE {ROW.get(table, 'id = 1')}")
            ).scalar_one()
            for table, column, _ in PLAIN_BEFORE_0013
        }
        kinds = connection.execute(text("SELECT kind FROM entries ORDER BY id")).scalars().all()
    assert plain == {(table, column): value for table, column, value in PLAIN_BEFORE_0013}
    assert kinds == ["text", "voice"]
    engine.dispose()


def test_the_head_it_knows_without_alembic_is_alembic_s_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revision() == script.get_current_head()


def test_a_start_on_a_database_at_its_newest_revision_does_not_load_alembic(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'started.sqlite3'}"
    use_cipher(Cipher([new_key().encode()]))
    engine = create_db_engine(url)
    upgrade_to_head(engine)  # the first start migrates
    engine.dispose()
    probe = (
        "import sys\n"
        "from bot.db.migrate import upgrade_to_head\n"
        "from bot.db.session import create_db_engine\n"
        f"upgrade_to_head(create_db_engine({url!r}))\n"
        "print('alembic' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "False"
