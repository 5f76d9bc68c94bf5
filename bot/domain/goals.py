"""Goals and habits: a short list per patient, and a weekly check-in on each.

Once a week (schedule.toml's `goal_checkin`, or with the weekly recap when it is on) a patient
with active goals is asked how each went: yes, partly or no, and a few words if they like. The
due time lives in the database and is claimed with a lease, like prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.localtime import next_weekly
from bot.core.schedule import Schedule
from bot.core.text import small_number
from bot.db import queries
from bot.db.models import Goal, GoalCheck, GoalCheckin, Patient, WeeklyRecap
from bot.domain.patients import zone_of
from bot.domain.recurring import Recurring, claim_recurring

KINDS = ("build", "break", "goal")
ANSWERS = ("yes", "partly", "no")
MAX_ACTIVE = 5  # a short list: more is a burden, not a help
MAX_TEXT_LENGTH = 200
NOTE_WINDOW = timedelta(minutes=30)
WEEKS_SHOWN = 4


class GoalError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # what goals.html explains


@dataclass(frozen=True)
class GoalCommand:
    action: str  # add, done, drop, list
    kind: str = ""
    text: str = ""
    number: int = 0


def parse_goal_command(args: Sequence[str]) -> GoalCommand | None:
    """`add build: walk every morning`, `add break: phone in bed`, `add read more`, `done 2`,
    `drop 2`, or nothing (the list). None when it cannot be read."""
    if not args:
        return GoalCommand("list")
    action, rest = args[0].lower(), " ".join(args[1:]).strip()
    if action in ("done", "drop"):
        number = small_number(rest)
        return GoalCommand(action, number=number) if number is not None else None
    if action != "add" or not rest:
        return None
    head, colon, tail = rest.partition(":")
    kind = head.strip().lower() if colon else "goal"
    if colon and kind not in KINDS:
        kind, tail = "goal", rest
    text = tail.strip() if colon else rest
    return GoalCommand("add", kind=kind, text=text) if text else None


def active_goals(session: Session, patient_id: int) -> Sequence[Goal]:
    return session.scalars(
        select(Goal)
        .where(Goal.patient_id == patient_id, Goal.status == "active")
        .order_by(Goal.number)
    ).all()


def goals_of(session: Session, patient_id: int) -> Sequence[Goal]:
    """Every goal the patient has had, active or closed, by number."""
    return session.scalars(
        select(Goal).where(Goal.patient_id == patient_id).order_by(Goal.number)
    ).all()


def checks_of(session: Session, goal_id: int) -> list[tuple[str, str, str]]:
    """A goal's weekly answers, oldest first: (week, answer, note)."""
    rows = session.scalars(
        select(GoalCheck).where(GoalCheck.goal_id == goal_id).order_by(GoalCheck.week)
    )
    return [(check.week, check.answer, check.note or "") for check in rows]


def add_goal(
    session: Session,
    patient: Patient,
    kind: str,
    text: str,
    now: datetime,
    schedule: Schedule,
    default_tz: str,
) -> Goal:
    if len(text) > MAX_TEXT_LENGTH:
        raise GoalError("too_long")
    if len(active_goals(session, patient.id)) >= MAX_ACTIVE:
        raise GoalError("too_many")
    highest = session.scalar(select(func.max(Goal.number)).where(Goal.patient_id == patient.id))
    goal = Goal(
        patient_id=patient.id,
        number=(highest or 0) + 1,
        kind=kind,
        text=text,
        status="active",
        created_at=now,
    )
    session.add(goal)
    if session.get(GoalCheckin, patient.id) is None:
        session.add(
            GoalCheckin(
                patient_id=patient.id, due_at=next_checkin(schedule, patient, now, default_tz)
            )
        )
    return goal


def close_goal(
    session: Session, patient: Patient, number: int, status: str, now: datetime
) -> Goal:
    """Done or dropped; it stays in the record, and leaves the weekly check-in."""
    goal = session.scalars(
        select(Goal).where(Goal.patient_id == patient.id, Goal.number == number)
    ).one_or_none()
    if goal is None or goal.status != "active":
        raise GoalError("no_such_goal")
    goal.status, goal.closed_at = status, now
    if not active_goals(session, patient.id):
        checkin = session.get(GoalCheckin, patient.id)
        if checkin is not None:
            session.delete(checkin)
    return goal


def week_of(moment: datetime, patient: Patient, default_tz: str) -> str:
    year, week, _ = moment.astimezone(zone_of(patient, default_tz)).isocalendar()
    return f"{year}-W{week:02}"


def record_check(
    session: Session, patient: Patient, goal_id: int, answer: str, now: datetime, default_tz: str
) -> Goal:
    """This week's answer for a goal (a second tap changes it)."""
    goal = session.get(Goal, goal_id)
    if goal is None or goal.patient_id != patient.id or answer not in ANSWERS:
        raise GoalError("no_such_goal")
    week = week_of(now, patient, default_tz)
    check = session.scalars(
        select(GoalCheck).where(GoalCheck.goal_id == goal.id, GoalCheck.week == week)
    ).one_or_none()
    if check is None:
        check = GoalCheck(goal_id=goal.id, week=week, answer=answer, created_at=now)
        session.add(check)
    check.answer, check.created_at = answer, now
    return goal


def check_awaiting_note(session: Session, patient: Patient, now: datetime) -> GoalCheck | None:
    """The check-in answer just given, still open for a few words: within NOTE_WINDOW, with no
    prompt or entry since."""
    check = session.scalars(
        select(GoalCheck)
        .join(Goal, Goal.id == GoalCheck.goal_id)
        .where(Goal.patient_id == patient.id)
        .order_by(GoalCheck.created_at.desc(), GoalCheck.id.desc())
        .limit(1)
    ).first()
    if check is None or check.note is not None or now - check.created_at > NOTE_WINDOW:
        return None
    return None if queries.anything_since(session, patient.id, check.created_at) else check


def note_already_added(session: Session, patient: Patient, message_id: int) -> bool:
    return (
        session.scalar(
            select(GoalCheck.id)
            .join(Goal, Goal.id == GoalCheck.goal_id)
            .where(Goal.patient_id == patient.id, GoalCheck.note_message_id == message_id)
        )
        is not None
    )


@dataclass(frozen=True)
class GoalProgress:
    number: int
    kind: str
    text: str
    weeks: list[str]  # answers of the last WEEKS_SHOWN weeks, oldest first; "" when none


def progress(
    session: Session, patient: Patient, now: datetime, default_tz: str
) -> list[GoalProgress]:
    """Each active goal with its answers over the last weeks, for the recap."""
    weeks = [week_of(now - timedelta(weeks=n), patient, default_tz) for n in range(WEEKS_SHOWN)]
    weeks.reverse()
    shown = []
    for goal in active_goals(session, patient.id):
        checks = session.execute(
            select(GoalCheck.week, GoalCheck.answer).where(
                GoalCheck.goal_id == goal.id, GoalCheck.week.in_(weeks)
            )
        )
        answers = {check.week: check.answer for check in checks}
        shown.append(
            GoalProgress(goal.number, goal.kind, goal.text, [answers.get(w, "") for w in weeks])
        )
    return shown


def next_checkin(schedule: Schedule, patient: Patient, now: datetime, default_tz: str) -> datetime:
    weekday, minute = schedule.goal_checkin
    return next_weekly(now, weekday, minute, zone_of(patient, default_tz))


def claim_due_checkins(
    session: Session, now: datetime, schedule: Schedule, default_tz: str
) -> list[int]:
    """Claim the goal check-ins to send now (patient ids). With the weekly recap on, the
    check-in goes with the recap instead; paused or unreachable patients skip a week."""

    def recap_is_on(patient: Patient) -> bool:
        weekly = session.get(WeeklyRecap, patient.id)
        return weekly is not None and weekly.due_at is not None

    def next_week(row: Recurring, patient: Patient) -> datetime:
        return next_checkin(schedule, patient, now, default_tz)

    return claim_recurring(session, GoalCheckin, now, default_tz, next_week, skip=recap_is_on)


def checkin_done(
    session: Session, patient_id: int, now: datetime, schedule: Schedule, default_tz: str
) -> None:
    checkin = session.get(GoalCheckin, patient_id)
    if checkin is None:
        return
    checkin.last_sent_at, checkin.claimed_until = now, None
    checkin.due_at = next_checkin(schedule, session.get_one(Patient, patient_id), now, default_tz)
