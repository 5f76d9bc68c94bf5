"""What several instances on one database agree on: who holds a chat, when the next message may
go, and which instances are alive.

One process alone (SQLite) needs none of this in the database: its chat locks are asyncio
locks and its rate limiter knows every send. With PostgreSQL, any number of instances share
the work, so each chat lock is also a lease row (`chat_leases`), and Telegram's limits are
slots in `send_slots` that every instance's sends move on. Lease and slot times are this
machine's wall clock: instances need synchronised clocks, as they do for due times anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakValueDictionary

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.db.models import ChatLease, Instance, SendSlot
from bot.db.session import SessionFactory

log = logging.getLogger(__name__)

# A chat's lease outlives a stalled instance by at most this; the holder renews it well before.
LEASE = timedelta(seconds=15)
RENEW_EVERY_SECONDS = 5.0
# While another instance holds a chat, look again this often (doubling up to the maximum).
RETRY_FIRST_SECONDS = 0.01
RETRY_MAX_SECONDS = 0.25
# An instance not seen for this long is presumed gone.
INSTANCE_SILENCE = timedelta(minutes=2)


def instance_name() -> str:
    """Unique among the instances: host, process and a random part (pids repeat)."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _upsert(session: Session) -> Any:
    """INSERT … ON CONFLICT for this session's database."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def take_lease(session: Session, chat_id: int, owner: str, now: datetime) -> bool:
    """Hold the chat until now + LEASE, unless another live owner holds it."""
    statement = (
        _upsert(session)(ChatLease)
        .values(chat_id=chat_id, owner=owner, expires_at=now + LEASE)
        .on_conflict_do_update(
            index_elements=[ChatLease.chat_id],
            set_={"owner": owner, "expires_at": now + LEASE},
            where=or_(ChatLease.expires_at <= now, ChatLease.owner == owner),
        )
        .returning(ChatLease.owner)
    )
    return session.execute(statement).scalar() == owner


def drop_lease(session: Session, chat_id: int, owner: str) -> None:
    session.execute(
        delete(ChatLease).where(ChatLease.chat_id == chat_id, ChatLease.owner == owner)
    )


class ChatLocks:
    """`async with locks(chat_id)`: this chat is ours alone until the block ends.

    Within the process an asyncio lock per chat; with `shared`, also the chat's lease in the
    database, waited for while another instance holds it and renewed while held.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        owner: str,
        *,
        shared: bool,
        clock: Callable[[], datetime] = _wall_clock,
    ) -> None:
        self.sessions = sessions
        self.owner = owner
        self.shared = shared
        self._clock = clock
        self._local: WeakValueDictionary[int, asyncio.Lock] = WeakValueDictionary()

    def local(self, chat_id: int) -> asyncio.Lock:
        lock = self._local.get(chat_id)
        if lock is None:
            lock = self._local[chat_id] = asyncio.Lock()
        return lock

    @asynccontextmanager
    async def __call__(self, chat_id: int) -> AsyncIterator[None]:
        async with self.local(chat_id):
            if not self.shared:
                yield
                return
            await self._acquire(chat_id)
            renewing = asyncio.create_task(self._renew(chat_id))
            try:
                yield
            finally:
                renewing.cancel()
                with self.sessions.begin() as session:
                    drop_lease(session, chat_id, self.owner)

    async def _acquire(self, chat_id: int) -> None:
        pause = RETRY_FIRST_SECONDS
        while True:
            with self.sessions.begin() as session:
                if take_lease(session, chat_id, self.owner, self._clock()):
                    return
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)

    async def _renew(self, chat_id: int) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            with self.sessions.begin() as session:
                if not take_lease(session, chat_id, self.owner, self._clock()):
                    # Only if this process stalled past the lease; nothing to do but say so.
                    log.error("the lease on a chat was lost while it was held")
                    return


class SendSlots:
    """Telegram's limits across instances: before a message goes, it takes the next slot for
    its chat, then the next overall slot, and waits for them. Slots are spaced evenly (no
    bursts), so no instance's timing can put more than the limit into any window."""

    def __init__(
        self,
        sessions: SessionFactory,
        overall_interval: float,
        chat_interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.overall_interval = overall_interval
        self.chat_interval = chat_interval
        self._clock = clock

    def take(self, key: str, interval: float) -> float:
        """Reserve the next slot of `key`; seconds to wait for it (0 if it is now)."""
        now = self._clock()
        with self.sessions.begin() as session:
            statement = (
                _upsert(session)(SendSlot)
                .values(key=key, next_at=now + interval)
                .on_conflict_do_update(
                    index_elements=[SendSlot.key],
                    set_={
                        "next_at": case((SendSlot.next_at > now, SendSlot.next_at), else_=now)
                        + interval
                    },
                )
                .returning(SendSlot.next_at)
            )
            next_at: float = session.execute(statement).scalar_one()
        return max(0.0, next_at - interval - now)

    def pause(self, seconds: float) -> None:
        """Telegram answered 429: no instance sends before `seconds` from now."""
        until = self._clock() + seconds
        with self.sessions.begin() as session:
            session.execute(
                update(SendSlot)
                .where(SendSlot.key == "all", SendSlot.next_at < until)
                .values(next_at=until)
            )

    async def wait_turn(self, chat_id: object) -> None:
        if chat_id is not None:
            await asyncio.sleep(self.take(f"chat:{chat_id}", self.chat_interval))
        await asyncio.sleep(self.take("all", self.overall_interval))


def seen(session: Session, name: str, mode: str, now: datetime) -> None:
    """This instance is alive (called at start and then every little while)."""
    statement = (
        _upsert(session)(Instance)
        .values(name=name, mode=mode, started_at=now, seen_at=now)
        .on_conflict_do_update(index_elements=[Instance.name], set_={"seen_at": now})
    )
    session.execute(statement)


def gone(session: Session, name: str) -> None:
    session.execute(delete(Instance).where(Instance.name == name))


def live_instances(session: Session, now: datetime) -> list[Instance]:
    return list(
        session.scalars(
            select(Instance)
            .where(Instance.seen_at > now - INSTANCE_SILENCE)
            .order_by(Instance.started_at)
        )
    )


def forget_stale(session: Session, now: datetime) -> int:
    """Remove instances long silent, leases long expired and chats' slots long past."""
    removed = session.execute(
        delete(Instance).where(Instance.seen_at <= now - INSTANCE_SILENCE * 10)
    ).rowcount  # type: ignore[attr-defined]
    removed += session.execute(
        delete(ChatLease).where(ChatLease.expires_at <= now - LEASE)
    ).rowcount  # type: ignore[attr-defined]
    removed += session.execute(
        delete(SendSlot).where(SendSlot.key != "all", SendSlot.next_at < now.timestamp() - 3600)
    ).rowcount  # type: ignore[attr-defined]
    return int(removed)


def count_leases(session: Session, now: datetime) -> int:
    return (
        session.scalar(select(func.count(ChatLease.chat_id)).where(ChatLease.expires_at > now))
        or 0
    )
