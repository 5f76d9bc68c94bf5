"""The dispatch job: claim the prompts that are due, send them, record them as sent.

Due times live in the database. A conditional UPDATE claims each row (status pending ->
claimed, with a lease), so two dispatchers never send the same row; a crash between claim and
"sent" leaves a claim whose lease expires and the row is sent again. A prompt can therefore,
rarely, arrive twice, in two ways: Telegram accepted it just before a crash (the window is the
few milliseconds between Telegram's answer and the UPDATE that records it), or Telegram
accepted it but its answer was lost to a timeout and the send was retried.

A tick claims and sends batch after batch until nothing is due, a few prompts in flight at a
time; the rate limiter (bot/telegram/ratelimit.py) spaces them under Telegram's limits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jinja2 import TemplateError
from sqlalchemy import update
from sqlalchemy.orm import Session
from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bot.companion import Companion
from bot.core.localtime import defer_past_quiet_hours
from bot.core.schedule import Schedule
from bot.db import queries
from bot.db.models import (
    GoalCheckin,
    Patient,
    PromptStatus,
    Reminder,
    ScheduledPrompt,
    Treatment,
    WeeklyRecap,
)
from bot.domain.goals import active_goals, checkin_done, claim_due_checkins
from bot.domain.guides import notes_of
from bot.domain.patients import mark_unreachable, quiet_hours_of, zone_of
from bot.domain.recap import build_recap
from bot.domain.recurring import Recurring, release_for_retry
from bot.domain.reminders import claim_due_reminders, reminder_sent
from bot.domain.weekly import claim_due_recaps, recap_sent
from bot.render.prompt_folder import prompt_context
from bot.render.telegram_html import pack_blocks
from bot.telegram.keyboards import goal_checkin_keyboard, prompt_keyboard, reminder_keyboard
from bot.telegram.sending import send_recap

log = logging.getLogger(__name__)

BATCH_SIZE = 200  # due prompts looked at a time
# Enough to keep Telegram's 30 a second busy over a slow link, few enough that a patient's
# reply, queued in the rate limiter behind them, still goes out within a second.
IN_FLIGHT = 10
# Prompts claimed a time: no more than go out well within a lease. A claim that runs out
# while its prompt waits its turn here passes to another instance, and this one's send, if it
# had begun, may then reach the patient late, after a later step.
CLAIMED_AT_ONCE = 3 * IN_FLIGHT
BATCHES_PER_TICK = 150  # then weekly recaps get their turn, and the next tick goes on
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
WEEKLY_RETRY = timedelta(minutes=5)


@dataclass
class DispatchReport:
    sent: list[int] = field(default_factory=list)
    deferred: int = 0  # pushed past quiet hours or spaced after the previous prompt
    retrying: int = 0
    failed: int = 0
    recaps: int = 0  # weekly recaps sent
    reminders: int = 0  # practice reminders sent
    checkins: int = 0  # weekly goal check-ins sent on their own


def claim_due(
    session: Session,
    now: datetime,
    schedule: Schedule,
    default_timezone: str,
    report: DispatchReport,
    lease: timedelta,
) -> list[int]:
    """Claim the prompts to send now: at most one per patient, outside quiet hours, and at least
    `min_gap` after the patient's previous prompt. The others get a later due time."""
    released = queries.release_expired_claims(session, now)
    if released:
        log.warning("claims on prompts %s ran out; they are due again", released)
    candidates = queries.due_prompts(session, now, BATCH_SIZE)
    last_sent = queries.last_sent_times(session, {patient.id for _, patient in candidates})
    chosen: list[int] = []
    settled: set[int] = set()  # patients whose next prompt is chosen or deferred
    for prompt, patient in candidates:
        if patient.id in settled:
            continue  # one at a time: the next one waits for a later tick
        if (
            patient.paused_at is not None
            or patient.unreachable_at is not None
            or patient.consented_at is None
        ):
            prompt.status = PromptStatus.HELD
            continue
        zone = zone_of(patient, default_timezone)
        not_before = defer_past_quiet_hours(now, zone, quiet_hours_of(patient))
        previous = last_sent.get(patient.id)
        if previous is not None:
            not_before = max(not_before, previous + schedule.min_gap)
        step = schedule.step(prompt.step_key)
        if step is not None and step.before_session:
            session_at = session.get_one(Treatment, prompt.treatment_id).occurred_at
            if not_before >= session_at:
                # An invitation to set an intention is no use once the session has begun.
                prompt.status = PromptStatus.SKIPPED
                continue
        if not_before > now:
            # Their later due prompts too, even those past this batch, or they would go first.
            queries.hold_back_prompts(session, patient.id, not_before)
            settled.add(patient.id)
            report.deferred += 1
            continue
        chosen.append(prompt.id)
        settled.add(patient.id)
    claimed = queries.claim_prompts(session, chosen[:CLAIMED_AT_ONCE], now + lease)
    log.debug("claimed prompts %s until %s", claimed, now + lease)
    return claimed


def _finish(session: Session, prompt_id: int, claim: datetime, **values: object) -> bool:
    """End our claim (`claim` is its lease, which names it) with `values`; False if the claim
    had run out and passed to another dispatcher."""
    result = session.execute(
        update(ScheduledPrompt)
        .where(
            ScheduledPrompt.id == prompt_id,
            ScheduledPrompt.status == PromptStatus.CLAIMED,
            ScheduledPrompt.claimed_until == claim,
        )
        .values(claimed_until=None, **values)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _retry_or_fail(
    session: Session,
    prompt: ScheduledPrompt,
    claim: datetime,
    now: datetime,
    reason: str,
    report: DispatchReport,
) -> None:
    if prompt.attempts >= MAX_ATTEMPTS:
        _finish(session, prompt.id, claim, status=PromptStatus.FAILED, last_error=reason)
        report.failed += 1
        log.error("prompt %s failed after %s attempts: %s", prompt.id, prompt.attempts, reason)
        return
    delay = RETRY_BASE * 2 ** (prompt.attempts - 1)
    _finish(
        session,
        prompt.id,
        claim,
        status=PromptStatus.PENDING,
        due_at=now + delay,
        last_error=reason,
    )
    queries.hold_back_prompts(session, prompt.patient_id, now + delay)
    report.retrying += 1
    log.warning("prompt %s will be retried in %s: %s", prompt.id, delay, reason)


@dataclass(frozen=True)
class Outgoing:
    prompt_id: int
    claim: datetime  # the lease that names our claim
    patient_id: int
    step_key: str
    chat_id: int
    text: str
    keyboard: InlineKeyboardMarkup | None


def prepare(
    companion: Companion, prompt_id: int, claim: datetime, report: DispatchReport
) -> Outgoing | None:
    """Render a claimed prompt; a step gone from the schedule or a broken template fails it.

    First the claim is renewed for a full lease and the attempt counted, unless the claim ran
    out and another dispatcher took the prompt over: then it is theirs to send, not ours."""
    renewed = companion.clock() + timedelta(seconds=companion.settings.claim_lease_seconds)
    with companion.sessions.begin() as session:
        if not queries.begin_attempt(session, prompt_id, claim, renewed):
            log.warning(
                "prompt %s: the claim ran out before it was sent; left to others", prompt_id
            )
            return None
        log.debug("prompt %s: claim renewed until %s", prompt_id, renewed)
        claim = renewed
        prompt, patient, treatment = queries.prompt_with_patient(session, prompt_id)
        step = companion.schedule.step(prompt.step_key)
        try:
            if step is None:
                raise LookupError("step not in schedule")
            text = companion.prompts.render(
                step.template,
                **prompt_context(
                    first_name=patient.first_name or "",
                    treatment_number=treatment.number,
                    treatment_at=treatment.occurred_at,
                    intention=treatment.intention or "",
                    step=step,
                    now=companion.clock(),
                    zone=zone_of(patient, companion.settings.default_timezone),
                    guide_notes=[
                        note.text
                        for note in notes_of(session, [treatment.id])[treatment.id]
                        if note.author == "guide"
                    ],
                ),
            )
        except (LookupError, TemplateError, OSError) as exc:
            reason = f"cannot render step {prompt.step_key}: {type(exc).__name__}"
            _finish(session, prompt.id, claim, status=PromptStatus.FAILED, last_error=reason)
            report.failed += 1
            log.error("prompt %s: %s", prompt.id, reason)
            return None
        return Outgoing(
            prompt_id=prompt.id,
            claim=claim,
            patient_id=patient.id,
            step_key=prompt.step_key,
            chat_id=patient.chat_id,
            text=text,
            keyboard=prompt_keyboard(companion, step, prompt.id),
        )


async def send_prompt(
    companion: Companion,
    bot: Bot,
    prompt_id: int,
    chat_id: int,
    claim: datetime,
    report: DispatchReport,
) -> None:
    """Send one claimed prompt and record what happened.

    The chat's lock is held from before the claim is renewed until the prompt is recorded: a
    reply to it is handled only once it is known as sent, and however long another instance
    held the chat, the claim is checked after that wait.
    """
    async with companion.chat_lock(chat_id):
        outgoing = prepare(companion, prompt_id, claim, report)
        if outgoing is None:
            return
        # A clinic's template may outgrow Telegram's limit: split it, buttons on the last part.
        *first_parts, last_part = pack_blocks([outgoing.text])
        try:
            for part in first_parts:
                await bot.send_message(outgoing.chat_id, part)
            message = await bot.send_message(
                outgoing.chat_id, last_part, reply_markup=outgoing.keyboard
            )
        except TelegramError as exc:
            _record_failure(companion, outgoing, exc, report)
            return
        with companion.sessions.begin() as session:
            recorded = _finish(
                session,
                prompt_id,
                outgoing.claim,
                status=PromptStatus.SENT,
                sent_at=companion.clock(),
                telegram_message_id=message.message_id,
                last_error=None,
            )
    if not recorded:
        # It took longer than a lease to send: another dispatcher may send it too.
        log.error("prompt %s was sent after its claim ran out", prompt_id)
    report.sent.append(prompt_id)
    log.info(
        "sent prompt %s (step %s) to patient %s", prompt_id, outgoing.step_key, outgoing.patient_id
    )


def unreachable(error: TelegramError) -> bool:
    """Telegram will not deliver to this chat: blocked, deactivated, or no such chat."""
    return isinstance(error, Forbidden) or (
        isinstance(error, BadRequest) and "chat not found" in error.message.lower()
    )


def _record_failure(
    companion: Companion, outgoing: Outgoing, error: TelegramError, report: DispatchReport
) -> None:
    now = companion.clock()
    with companion.sessions.begin() as session:
        if isinstance(error, RetryAfter):
            wait = error.retry_after
            delay = wait if isinstance(wait, timedelta) else timedelta(seconds=wait)
            _finish(
                session,
                outgoing.prompt_id,
                outgoing.claim,
                status=PromptStatus.PENDING,
                due_at=now + delay,
            )
            queries.hold_back_prompts(session, outgoing.patient_id, now + delay)
            report.retrying += 1
            log.warning("prompt %s: Telegram asks to wait %s", outgoing.prompt_id, delay)
        elif unreachable(error):
            # Blocked, or the account is gone: keep everything and stop sending (their rows are
            # held, so not scanned again) until /start brings them back.
            _finish(session, outgoing.prompt_id, outgoing.claim, status=PromptStatus.PENDING)
            patient = session.get_one(Patient, outgoing.patient_id)
            mark_unreachable(session, patient, now)
            log.warning("patient %s cannot be reached; their prompts are held", patient.id)
        elif isinstance(error, BadRequest):
            reason = f"rejected by Telegram: {error.message[:150]}"
            _finish(
                session,
                outgoing.prompt_id,
                outgoing.claim,
                status=PromptStatus.FAILED,
                last_error=reason,
            )
            report.failed += 1
            log.error("prompt %s was rejected by Telegram", outgoing.prompt_id)
        else:
            prompt = session.get_one(ScheduledPrompt, outgoing.prompt_id)
            _retry_or_fail(session, prompt, outgoing.claim, now, type(error).__name__, report)


async def send_weekly_recap(
    companion: Companion, bot: Bot, patient_id: int, report: DispatchReport
) -> None:
    """Build and send one claimed weekly recap, then schedule the next one."""
    default_timezone = companion.settings.default_timezone
    with companion.sessions.begin() as session:
        patient = session.get_one(Patient, patient_id)
        recap = build_recap(
            session, patient, companion.schedule, companion.clock(), default_timezone
        )
        zone, chat_id = zone_of(patient, default_timezone), patient.chat_id
    async with companion.chat_lock(chat_id):
        try:
            await send_recap(companion, bot, chat_id, recap, zone, weekly=True)
        except TelegramError as exc:
            _recurring_failed(companion, WeeklyRecap, patient_id, exc, "weekly recap")
            return
        with companion.sessions.begin() as session:
            recap_sent(
                session, session.get_one(Patient, patient_id), companion.clock(), default_timezone
            )
            checkin = goal_checkin_message(companion, session, patient_id)
        if checkin is not None:
            # With the weekly recap on, the goals' check-in comes with it.
            try:
                await bot.send_message(chat_id, checkin[0], reply_markup=checkin[1])
            except TelegramError as exc:
                log.warning(
                    "the goal check-in after patient %s's recap failed: %s", patient_id, exc
                )
            else:
                with companion.sessions.begin() as session:
                    checkin_done(
                        session,
                        patient_id,
                        companion.clock(),
                        companion.schedule,
                        default_timezone,
                    )
    report.recaps += 1
    log.info("sent the weekly recap to patient %s", patient_id)


def _recurring_failed(
    companion: Companion, model: type[Recurring], patient_id: int, error: TelegramError, what: str
) -> None:
    """A weekly recap, reminder or check-in Telegram did not take: try again later (when
    Telegram says, on 429), and stop for a patient it cannot reach."""
    wait = error.retry_after if isinstance(error, RetryAfter) else WEEKLY_RETRY
    delay = wait if isinstance(wait, timedelta) else timedelta(seconds=wait)
    with companion.sessions.begin() as session:
        release_for_retry(session, model, patient_id, companion.clock() + delay)
        if unreachable(error):
            mark_unreachable(session, session.get_one(Patient, patient_id), companion.clock())
    log.warning(
        "the %s for patient %s will be retried: %s", what, patient_id, type(error).__name__
    )


def goal_checkin_message(
    companion: Companion, session: Session, patient_id: int
) -> tuple[str, InlineKeyboardMarkup] | None:
    """The weekly check-in on the patient's active goals; None without any."""
    patient = session.get_one(Patient, patient_id)
    goals = active_goals(session, patient_id)
    if not goals:
        return None
    text = companion.texts.render(
        "goal_checkin.html", first_name=patient.first_name or "", goals=goals
    )
    return text, goal_checkin_keyboard(companion, [(goal.id, goal.number) for goal in goals])


async def send_goal_checkin(
    companion: Companion, bot: Bot, patient_id: int, report: DispatchReport
) -> None:
    """Send one claimed goal check-in and set the next, a week on."""
    default_timezone = companion.settings.default_timezone
    with companion.sessions.begin() as session:
        chat_id = session.get_one(Patient, patient_id).chat_id
        checkin = goal_checkin_message(companion, session, patient_id)
        if checkin is None:
            checkin_done(
                session, patient_id, companion.clock(), companion.schedule, default_timezone
            )
            return
    async with companion.chat_lock(chat_id):
        try:
            await bot.send_message(chat_id, checkin[0], reply_markup=checkin[1])
        except TelegramError as exc:
            _recurring_failed(companion, GoalCheckin, patient_id, exc, "goal check-in")
            return
        with companion.sessions.begin() as session:
            checkin_done(
                session, patient_id, companion.clock(), companion.schedule, default_timezone
            )
    report.checkins += 1
    log.info("sent the goal check-in to patient %s", patient_id)


async def send_reminder(
    companion: Companion, bot: Bot, patient_id: int, report: DispatchReport
) -> None:
    """Send one claimed practice reminder, with a button to note the practice as done."""
    default_timezone = companion.settings.default_timezone
    with companion.sessions.begin() as session:
        patient = session.get_one(Patient, patient_id)
        reminder = session.get(Reminder, patient_id)
        if reminder is None:  # turned off since the claim
            return
        chat_id, kind = patient.chat_id, reminder.kind
        text = companion.texts.render(
            "reminder.html", first_name=patient.first_name or "", kind=kind
        )
    async with companion.chat_lock(chat_id):
        try:
            await bot.send_message(chat_id, text, reply_markup=reminder_keyboard(companion, kind))
        except TelegramError as exc:
            _recurring_failed(companion, Reminder, patient_id, exc, "practice reminder")
            return
        with companion.sessions.begin() as session:
            reminder_sent(session, patient_id, companion.clock(), default_timezone)
    report.reminders += 1
    log.info("sent the practice reminder to patient %s", patient_id)


def _release(companion: Companion, prompt_id: int, claim: datetime) -> None:
    """Give a claimed prompt back unsent, due as it was: the next tick, here or elsewhere."""
    with companion.sessions.begin() as session:
        _finish(session, prompt_id, claim, status=PromptStatus.PENDING)


async def _start_sending(
    companion: Companion,
    bot: Bot,
    claimed: list[int],
    claim: datetime,
    report: DispatchReport,
    keep_going: Callable[[], bool],
    sends: asyncio.TaskGroup,
    in_flight: asyncio.Semaphore,
) -> None:
    """Send claimed prompts in `sends`, `in_flight` at a time with the batches before, and
    return once each has begun: the next batch is claimed while these are on their way, and
    no claim waits long for its turn. When the bot is stopping, those not begun are given
    back."""
    with companion.sessions() as session:
        chats = queries.chats_of_prompts(session, claimed)
    begun = [asyncio.Event() for _ in claimed]

    async def send_one(prompt_id: int, started: asyncio.Event) -> None:
        async with in_flight:
            started.set()
            if not keep_going():
                _release(companion, prompt_id, claim)
                return
            try:
                await send_prompt(companion, bot, prompt_id, chats[prompt_id], claim, report)
            except Exception:
                # A bug must not cancel the others; this claim expires and is retried.
                log.exception("prompt %s could not be sent", prompt_id)

    for prompt_id, started in zip(claimed, begun, strict=True):
        sends.create_task(send_one(prompt_id, started))
    for started in begun:
        await started.wait()


async def dispatch_due(
    companion: Companion, bot: Bot, keep_going: Callable[[], bool] = lambda: True
) -> DispatchReport:
    """One tick: claim and send the prompts due now, batch after batch, then weekly recaps.
    `keep_going` turns false when the bot is asked to stop: the tick then winds down."""
    report = DispatchReport()
    default_timezone = companion.settings.default_timezone
    lease = timedelta(seconds=companion.settings.claim_lease_seconds)
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    async with asyncio.TaskGroup() as sends:
        for _ in range(BATCHES_PER_TICK):
            if not keep_going():
                break
            with companion.sessions.begin() as session:
                now = companion.clock()
                claimed = claim_due(
                    session, now, companion.schedule, default_timezone, report, lease
                )
            if not claimed:
                break
            await _start_sending(
                companion, bot, claimed, now + lease, report, keep_going, sends, in_flight
            )
    if not keep_going():
        return report
    with companion.sessions.begin() as session:
        recaps = claim_due_recaps(session, companion.clock(), default_timezone)
        reminders = claim_due_reminders(session, companion.clock(), default_timezone)
        checkins = claim_due_checkins(
            session, companion.clock(), companion.schedule, default_timezone
        )
    for patient_id in recaps:
        await send_weekly_recap(companion, bot, patient_id, report)
    for patient_id in checkins:
        await send_goal_checkin(companion, bot, patient_id, report)
    for patient_id in reminders:
        await send_reminder(companion, bot, patient_id, report)
    return report
