"""The dispatcher's claim reads only pending rows, through the partial index."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bot.db.migrate import upgrade_to_head
from bot.db.queries import due_prompts_statement
from bot.db.session import create_db_engine


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
