"""What instances agree on through the database: chat leases, send slots, who is alive.

Two ChatLocks objects with different owners stand for two instances; the shared send slots
have tests of their own (test_shared_limits.py). The tests run on SQLite and, with
TEST_DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import build_companion
from bot.config import Settings
from bot.db.session import SessionFactory
from bot.telegram.coordination import (
    LEASE,
    ChatLocks,
    count_leases,
    forget_stale,
    live_instances,
    seen,
    take_lease,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def sessions(settings: Settings) -> Iterator[SessionFactory]:
    factory = build_companion(settings).sessions
    yield factory
    factory.kw["bind"].dispose()


def test_a_chat_s_lease_has_one_holder_until_it_expires(sessions: SessionFactory):
    with sessions.begin() as session:
        assert take_lease(session, 7, "a", NOW)
        assert not take_lease(session, 7, "b", NOW + LEASE - timedelta(seconds=1))
        assert take_lease(session, 8, "b", NOW)  # another chat is free
        assert take_lease(session, 7, "a", NOW + timedelta(seconds=1))  # renewed by its holder
        assert take_lease(session, 7, "b", NOW + timedelta(seconds=1) + LEASE)  # a dead holder
        assert count_leases(session, NOW + timedelta(seconds=2)) == 2


async def test_two_instances_take_turns_with_a_chat(sessions: SessionFactory):
    first = ChatLocks(sessions, "first", shared=True)
    second = ChatLocks(sessions, "second", shared=True)
    order: list[str] = []
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def hold(locks: ChatLocks, name: str) -> None:
        async with locks(42):
            order.append(f"{name} in")
            inside.set()
            await leave.wait()
            order.append(f"{name} out")

    holding = asyncio.create_task(hold(first, "first"))
    await inside.wait()
    waiting = asyncio.create_task(hold(second, "second"))
    await asyncio.sleep(0.1)
    assert order == ["first in"]  # the second instance waits for the lease
    leave.set()
    await asyncio.gather(holding, waiting)
    assert order == ["first in", "first out", "second in", "second out"]
    with sessions() as session:
        assert count_leases(session, datetime.now(UTC)) == 0  # released


def test_instances_seen_recently_are_listed_and_old_rows_forgotten(sessions: SessionFactory):
    with sessions.begin() as session:
        seen(session, "alive", "webhook", NOW)
        seen(session, "silent", "webhook", NOW - timedelta(minutes=5))
        seen(session, "long-gone", "polling", NOW - timedelta(days=1))
        assert [i.name for i in live_instances(session, NOW)] == ["alive"]
        take_lease(session, 1, "long-gone", NOW - timedelta(hours=1))
        assert forget_stale(session, NOW) == 2  # the long-gone instance and its lease
        assert {i.name for i in live_instances(session, NOW - timedelta(minutes=4))} == {
            "alive",
            "silent",
        }
