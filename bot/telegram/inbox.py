"""The durable inbox: no update is lost between Telegram and the handlers.

python-telegram-bot confirms a batch of updates to Telegram with its next getUpdates call,
before the batch has been handled; a crash in between would lose them. InboxBot writes every
update it receives to the database before returning it, so by the time Telegram is told, the
update is safe. The update processor skips updates already handled and marks each one handled
once its handlers have run; at start, what was stored but not handled is handled first.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.orm import Session
from telegram import Bot, Update
from telegram.ext import ExtBot

from bot.companion import Clock
from bot.db.models import InboxUpdate
from bot.db.session import SessionFactory

log = logging.getLogger(__name__)


class Inbox:
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    def store(self, updates: Sequence[Update]) -> None:
        """Keep updates not seen before, in one transaction."""
        with self.sessions.begin() as session:
            known = set(
                session.scalars(
                    select(InboxUpdate.update_id).where(
                        InboxUpdate.update_id.in_([u.update_id for u in updates])
                    )
                )
            )
            for item in updates:
                if item.update_id in known:
                    continue
                chat = item.effective_chat
                session.add(
                    InboxUpdate(
                        update_id=item.update_id,
                        chat_id=chat.id if chat else None,
                        raw=json.dumps(item.to_dict()),
                        received_at=self.clock(),
                    )
                )

    def unhandled(self, bot: Bot) -> list[Update]:
        """Updates stored but not handled (a crash came between), oldest first."""
        with self.sessions() as session:
            rows = session.scalars(
                select(InboxUpdate)
                .where(InboxUpdate.handled_at.is_(None))
                .order_by(InboxUpdate.update_id)
            ).all()
            return [Update.de_json(json.loads(row.raw), bot) for row in rows if row.raw]

    def due_in_chat(self, chat_id: int, update_id: int, bot: Bot) -> tuple[list[Update], bool]:
        """For the holder of `chat_id`'s lock, about to handle `update_id`: the chat's earlier
        updates not handled yet (another instance received them, then died or was slower),
        oldest first, and whether `update_id` itself was handled already."""
        with self.sessions() as session:
            # The update in hand is already parsed: only the earlier ones' text is read.
            earlier_raw = case((InboxUpdate.update_id < update_id, InboxUpdate.raw), else_=None)
            rows = session.execute(
                select(InboxUpdate.update_id, earlier_raw, InboxUpdate.handled_at)
                .where(
                    InboxUpdate.chat_id == chat_id,
                    InboxUpdate.update_id <= update_id,
                    or_(InboxUpdate.handled_at.is_(None), InboxUpdate.update_id == update_id),
                )
                .order_by(InboxUpdate.update_id)
            ).all()
        earlier, handled = [], False
        for row_id, raw, handled_at in rows:
            if row_id == update_id:
                handled = handled_at is not None
            elif raw:
                earlier.append(Update.de_json(json.loads(raw), bot))
            else:
                self.mark_handled(row_id)  # an unreadable update, kept only by its id
        return earlier, handled

    def unhandled_in_chat(self, chat_id: int, bot: Bot, limit: int) -> list[Update]:
        """The chat's first `limit` unhandled updates, oldest first."""
        with self.sessions() as session:
            raws = session.scalars(
                select(InboxUpdate.raw)
                .where(
                    InboxUpdate.chat_id == chat_id,
                    InboxUpdate.handled_at.is_(None),
                    InboxUpdate.raw.is_not(None),
                )
                .order_by(InboxUpdate.update_id)
                .limit(limit)
            ).all()
        return [Update.de_json(json.loads(raw), bot) for raw in raws if raw]

    def waiting(self, received_before: datetime, limit: int = 100) -> list[int]:
        """The first unhandled update of each chat that has waited since before
        `received_before`: its instance died, or is busy with that chat for a long time."""
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(func.min(InboxUpdate.update_id))
                    .where(
                        InboxUpdate.handled_at.is_(None),
                        InboxUpdate.received_at < received_before,
                    )
                    .group_by(InboxUpdate.chat_id)
                    .limit(limit)
                )
            )

    def load(self, update_ids: Sequence[int], bot: Bot) -> list[Update]:
        with self.sessions() as session:
            raws = session.scalars(
                select(InboxUpdate.raw)
                .where(InboxUpdate.update_id.in_(update_ids), InboxUpdate.handled_at.is_(None))
                .order_by(InboxUpdate.update_id)
            ).all()
        return [Update.de_json(json.loads(raw), bot) for raw in raws if raw]

    def is_handled(self, update_id: int) -> bool:
        with self.sessions() as session:
            handled = session.scalar(
                select(InboxUpdate.handled_at).where(InboxUpdate.update_id == update_id)
            )
        return handled is not None

    def mark_handled(self, update_id: int) -> None:
        """Done: the words are dropped, the id stays to recognise a redelivery."""
        with self.sessions.begin() as session:
            self.mark_handled_in(session, update_id)

    def mark_handled_in(self, session: Session, update_id: int) -> None:
        """The same, in a transaction the caller commits (a handler's last one)."""
        session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(handled_at=self.clock(), raw=None)
        )

    def prune(self, before: datetime) -> int:
        """Forget handled updates received before `before`."""
        with self.sessions.begin() as session:
            result = session.execute(
                delete(InboxUpdate).where(
                    InboxUpdate.received_at < before, InboxUpdate.handled_at.is_not(None)
                )
            )
        return int(result.rowcount)  # type: ignore[attr-defined]


class InboxBot(ExtBot[None]):
    """An ExtBot whose getUpdates stores what it receives before returning it."""

    def __init__(self, token: str, *, inbox: Inbox, **kwargs: Any) -> None:
        super().__init__(token, **kwargs)
        self._inbox = inbox  # python-telegram-bot freezes a bot's public attributes

    @property
    def inbox(self) -> Inbox:
        return self._inbox

    async def _post(self, endpoint: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        result = await super()._post(endpoint, data, **kwargs)
        if endpoint == "getUpdates" and isinstance(result, list):
            return [readable(raw, self) for raw in result]
        return result

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        updates = await super().get_updates(*args, **kwargs)
        if updates:
            self._inbox.store(updates)
        return updates


def readable(raw: dict[str, Any], bot: Bot) -> dict[str, Any]:
    """The update, or only its id if this python-telegram-bot cannot read it (a newer Bot API,
    a malformed field). One unreadable update would otherwise fail every getUpdates, never be
    confirmed, and stop the bot; python-telegram-bot would also log its content."""
    try:
        Update.de_json(raw, bot)
    except Exception as exc:  # whatever the parser trips on
        log.error(
            "update %s cannot be read (%s); it is skipped",
            raw.get("update_id"),
            type(exc).__name__,
        )
        return {"update_id": raw["update_id"]}
    return raw
