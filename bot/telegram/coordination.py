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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakValueDictionary

from sqlalchemy import and_, case, delete, func, or_, select, update
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


@dataclass(frozen=True)
class Lane:
    """A lane this sender holds: its key, and the value that marks it held by us."""

    key: str
    held_until: float
    period: float


LANE_DIGITS = 6


def overall_lane(number: int) -> str:
    return f"all:{number:0{LANE_DIGITS}d}"


class SendSlots:
    """Telegram's limits across instances, kept as lanes in `send_slots`.

    A lane carries one message at a time. It is taken only when free, held while its message
    is in flight, and free again one period after Telegram answered. Telegram counts a message
    when it arrives, somewhere between leaving and the answer, so two messages of one lane
    arrive at least a period apart however late either travels; `overall_lanes` lanes of
    `overall_period` then never put more than that many messages into any such period,
    whichever instance sent them. Each chat is one lane of `chat_period`. (Evenly spaced
    departures, the first design, let a message that waited long for the overall slot go out
    right after the chat's previous one, and arrival jitter broke the overall limit.)

    `hold` bounds how long a request can be in flight: a dead instance's lanes come free once
    it has passed.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        overall_lanes: int,
        overall_period: float,
        chat_period: float,
        hold: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.sessions = sessions
        self.overall_period = overall_period
        self.chat_period = chat_period
        self.hold = hold
        # Zero-padded, so the lanes are one range of keys: a query names the range, not each
        # of thousands of keys (which made every send compile and ship a 10,000-key IN list).
        count = max(1, min(overall_lanes, 10**LANE_DIGITS - 1))
        self._lanes = [overall_lane(n) for n in range(count)]
        self._in_lanes = and_(SendSlot.key >= overall_lane(0), SendSlot.key < overall_lane(count))
        self._clock = clock
        self._sleep = sleep
        self._lanes_exist = False

    async def take_chat(self, chat_id: object) -> Lane:
        """Wait until the chat's lane is free and hold it."""
        key = f"chat:{chat_id}"
        return await self._take(
            lambda session, now: self._take_chat(session, key, now), self.chat_period
        )

    async def take_overall(self) -> Lane:
        """Wait until one of the overall lanes is free and hold it."""
        if not self._lanes_exist:
            self._create_lanes()
        return await self._take(self._take_overall, self.overall_period)

    def release(self, lanes: Sequence[Lane]) -> None:
        """Telegram answered (or the request failed): each lane is free a period from now."""
        if not lanes:
            return
        now = self._clock()
        with self.sessions.begin() as session:
            session.execute(
                update(SendSlot)
                .where(
                    or_(
                        *(
                            and_(SendSlot.key == lane.key, SendSlot.next_at == lane.held_until)
                            for lane in lanes
                        )
                    )
                )
                .values(
                    next_at=case(
                        *((SendSlot.key == lane.key, now + lane.period) for lane in lanes),
                        else_=SendSlot.next_at,
                    )
                )
            )

    def pause(self, seconds: float) -> None:
        """Telegram answered 429: no instance sends before `seconds` from now."""
        until = self._clock() + seconds
        with self.sessions.begin() as session:
            session.execute(
                update(SendSlot)
                .where(self._in_lanes, SendSlot.next_at < until)
                .values(next_at=until)
            )

    async def _take(
        self, attempt: Callable[[Session, float], Lane | float], period: float
    ) -> Lane:
        poll = RETRY_FIRST_SECONDS
        while True:
            now = self._clock()
            with self.sessions.begin() as session:
                outcome = attempt(session, now)
            if isinstance(outcome, Lane):
                return outcome
            wait = outcome - now
            if 0 < wait <= period:
                await self._sleep(wait)  # cooling down: free at a known time
            else:
                # In flight (free when its answer comes, which only looking again can tell),
                # paused by a 429, or taken by another instance a moment ago.
                await self._sleep(poll)
                poll = min(poll * 2, RETRY_MAX_SECONDS)

    def _take_chat(self, session: Session, key: str, now: float) -> Lane | float:
        held_until = now + self.chat_period + self.hold
        taken = session.execute(
            _upsert(session)(SendSlot)
            .values(key=key, next_at=held_until)
            .on_conflict_do_update(
                index_elements=[SendSlot.key],
                set_={"next_at": held_until},
                where=SendSlot.next_at <= now,
            )
            .returning(SendSlot.key)
        ).first()
        if taken is not None:
            return Lane(key, held_until, self.chat_period)
        return float(session.scalar(select(SendSlot.next_at).where(SendSlot.key == key)) or now)

    def _take_overall(self, session: Session, now: float) -> Lane | float:
        held_until = now + self.overall_period + self.hold
        free = (
            select(SendSlot.key)
            .where(self._in_lanes, SendSlot.next_at <= now)
            .order_by(SendSlot.next_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        key = session.execute(
            update(SendSlot)
            .where(SendSlot.key == free)
            .values(next_at=held_until)
            .returning(SendSlot.key)
        ).scalar()
        if key is not None:
            return Lane(key, held_until, self.overall_period)
        soonest = session.scalar(select(func.min(SendSlot.next_at)).where(self._in_lanes))
        return float(soonest if soonest is not None else now)

    def _create_lanes(self) -> None:
        with self.sessions.begin() as session:
            session.execute(
                _upsert(session)(SendSlot)
                .values([{"key": key, "next_at": 0.0} for key in self._lanes])
                .on_conflict_do_nothing(index_elements=[SendSlot.key])
            )
        self._lanes_exist = True


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
        delete(SendSlot).where(
            SendSlot.key.startswith("chat:"), SendSlot.next_at < now.timestamp() - 3600
        )
    ).rowcount  # type: ignore[attr-defined]
    return int(removed)


def count_leases(session: Session, now: datetime) -> int:
    return (
        session.scalar(select(func.count(ChatLease.chat_id)).where(ChatLease.expires_at > now))
        or 0
    )
