"""Migrations: they build exactly the models, move old rows along, and index the claim."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from bot.config import Settings
from bot.db.migrate import upgrade_to_head
from bot.db.models import Base
from bot.db.queries import due_prompts_statement
from bot.db.session import create_db_engine
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
    with engine.connect() as connection:
        kinds = connection.execute(text("SELECT kind FROM entries ORDER BY message_id")).all()
    assert [kind for (kind,) in kinds] == ["mood", "text"]
    engine.dispose()
