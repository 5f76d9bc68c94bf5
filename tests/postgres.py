"""`python -m tests.postgres URL`: exit 0 if a PostgreSQL server answers at URL (for make)."""

from __future__ import annotations

import sys

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError


def answers(url: str) -> bool:
    if not url.startswith("postgresql"):
        return False
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError:
        return False
    finally:
        engine.dispose()
    return True


if __name__ == "__main__":
    sys.exit(0 if answers(sys.argv[1]) else 1)
