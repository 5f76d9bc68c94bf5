"""`python -m bot status`: what an operator watches — prompts by state, failures, the inbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db.models import InboxUpdate, Patient, ScheduledPrompt, WeeklyRecap
from bot.telegram.coordination import count_leases, live_instances


@dataclass(frozen=True)
class Status:
    patients: int
    prompts: dict[str, int]  # by status
    overdue: int  # pending and due already
    inbox_backlog: int  # stored updates not handled yet
    weekly_recaps_on: int
    instances: list[str]  # seen recently: name (mode)
    chats_held: int  # chat leases live now


def read_status(session: Session, now: datetime) -> Status:
    counted = session.execute(
        select(ScheduledPrompt.status, func.count()).group_by(ScheduledPrompt.status)
    )
    by_status: dict[str, int] = dict(counted.all())
    return Status(
        patients=session.scalar(select(func.count(Patient.id))) or 0,
        prompts=by_status,
        overdue=session.scalar(
            select(func.count(ScheduledPrompt.id)).where(
                ScheduledPrompt.status == "pending", ScheduledPrompt.due_at <= now
            )
        )
        or 0,
        inbox_backlog=session.scalar(
            select(func.count(InboxUpdate.update_id)).where(InboxUpdate.handled_at.is_(None))
        )
        or 0,
        weekly_recaps_on=session.scalar(
            select(func.count(WeeklyRecap.patient_id)).where(WeeklyRecap.due_at.is_not(None))
        )
        or 0,
        instances=[f"{i.name} ({i.mode})" for i in live_instances(session, now)],
        chats_held=count_leases(session, now),
    )


def format_status(status: Status) -> str:
    states = ("pending", "held", "claimed", "sent", "skipped", "failed")
    lines = [f"patients: {status.patients}"]
    lines += [f"prompts {state}: {status.prompts.get(state, 0)}" for state in states]
    lines += [
        f"prompts overdue: {status.overdue}",
        f"inbox backlog: {status.inbox_backlog}",
        f"weekly recaps on: {status.weekly_recaps_on}",
        f"chats held: {status.chats_held}",
        f"instances seen: {len(status.instances)}",
    ]
    lines += [f"  {instance}" for instance in status.instances]
    return "\n".join(lines)
